"""FID against network evaluations: every sampler on one trained model per objective, and the
one-step consistency student.

One model per objective (``ddpm``, ``flow-matching``, ``edm``; with ``--latent`` their latent
forms ``ldm-ddpm``, ``ldm``, ``ldm-edm`` on one autoencoder trained first for a third of
``steps``, a staged run's grey split) of the same network is trained on
the same data for the same number of steps of 128 images (a length, not a time budget, so the
comparison of samplers does not depend on how busy the machine is), and a consistency student is
distilled from the ``flow-matching`` one (``ldm`` with ``--latent``; ``genvision distill --method
consistency``). ``--model DIR`` sweeps a trained run instead (``genvision train ldm --minutes 15``,
say) and distils its student: no training of the objectives. Each model
then samples the same N images (image k from generator ``seeding.image_seed(seed, k)``) with
every sampler of the table at each number of network evaluations (NFE) in the grid, and each
set's domain FID is measured under the equal-N protocol (INTERFACES.md). A discrete-time model
(``ddpm``, ``ldm-ddpm``) also samples ancestrally on all 1000 training levels (DDPM-1000). The
student samples with 1 and 2 calls.

Reported per objective: FID for every (sampler, NFE), the best sampler's FID at 10 calls against
the best at 1000 (DDPM-1000 for the discrete models; 1000-call Heun for the continuous ones), and
the consistency student's one-step FID against its teacher's best.

Targets (issue 18): at 10 network evaluations, FID within 10% of the same model's best at 1000;
one-step consistency FID <= 2x its teacher's best.

Datasets (``--data``): ``digits`` (default), ``mnist`` (28x28 grey) and ``emoji`` (32x32 RGB),
the specs and sizes of ``quality_budget.py``; the models are pixel-space unless ``--latent`` (the
latent ones' network calls see 4x to 6x fewer values, so their sweeps fit a CPU; ``--model`` takes
either). Full mode on digits: 1400 training steps each (the demo's length), 400
distillation steps, N = 650, NFE 1, 2, 4, 10, 20, 50, 1000. On MNIST and emoji: 3000 steps each,
1000 distillation steps, N = 2000 / 800 (quality_budget's), NFE 1 to 50 with 1000 as the
reference; that is hours on a 2-core CPU and minutes on a GPU (``--device auto`` takes one when
torch sees it). ``--quick``: 400 steps each, 150 distillation steps, N = 300, NFE 1, 2, 4, 10, 20,
50 (1000 only for DDPM's ancestral sampler and the reference). ``--steps``, ``--distill-steps``,
``--n`` override either mode.

    python benchmarks/nfe_curve.py --quick [--threads 1] [--latent]
    python benchmarks/nfe_curve.py --data mnist --json benchmarks/results/nfe_curve-mnist.json
    python benchmarks/nfe_curve.py --data mnist --model runs/mnist-ldm --json benchmarks/results/nfe_curve-mnist-ldm.json
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import quality_budget as qb
import torch

import genvision as gv
from genvision.families.base import sample_in_batches
from genvision.sampling import resolve_device

MEASURES = [
    "benchmarks/nfe_curve.py",
    "benchmarks/quality_budget.py",
    "src/genvision/families/diffusion/",
    "src/genvision/nn/",
    "src/genvision/families/vae/autoencoder.py",
    *common.TRAINED_AND_SCORED,
]
OBJECTIVES = ("ddpm", "flow-matching", "edm")
LATENT_OBJECTIVES = ("ldm-ddpm", "ldm", "ldm-edm")
#: the objective whose consistency student is distilled, pixel and latent
TEACHER = {False: "flow-matching", True: "ldm"}
SAMPLERS = ("ddim", "dpm++2m", "euler", "heun", "edm")
QUICK = {"steps": 400, "distill_steps": 150, "n": 300, "nfe": (1, 2, 4, 10, 20, 50)}
FULL = {"steps": 1400, "distill_steps": 400, "n": 650, "nfe": (1, 2, 4, 10, 20, 50, 1000)}
#: full mode on the larger images: longer training, quality_budget's N, 1000 calls for the reference only
FULL_LARGE = {"steps": 3000, "distill_steps": 1000, "nfe": (1, 2, 4, 10, 20, 50)}
DATASETS = ("digits", "mnist", "emoji")
REFERENCE_NFE = 1000
NET = {"base_channels": 32}  # the default network of every objective
TRAIN = {"batch_size": 128, "progress": False, "sample_every": 0, "save_every": 0}


def fid_of(model, n: int, data: str = "digits", **options) -> dict:
    t0 = time.perf_counter()
    batch = 1000 if model.device.type == "cuda" else 250  # image k's noise is its own either way
    x = sample_in_batches(model, n, seed=0, batch_size=batch, options=options)
    seconds = time.perf_counter() - t0
    card = qb.score(x, data, seed=0)
    return {"fid": card["fid"], "ci": card.get("ci"), "floor": card["floor"], "seconds": round(seconds, 2)}


def settings(data: str, quick: bool, args) -> dict:
    """The mode's lengths, N and NFE grid for ``data``, with the command line's overrides."""
    if quick:
        mode = dict(QUICK)
    elif data == "digits":
        mode = dict(FULL)
    else:
        mode = {**FULL_LARGE, "n": qb.FID_N[data]}
    for key in ("steps", "distill_steps", "n"):
        if getattr(args, key) is not None:
            mode[key] = getattr(args, key)
    return mode


def discrete(model) -> bool:
    """A discrete-time model (``ddpm``, ``ldm-ddpm``): 1000 training levels, DDPM-1000 its reference."""
    from genvision.families.diffusion.model import Diffusion

    return isinstance(model, Diffusion)


def valid(model, sampler: str, nfe: int) -> bool:
    """Whether ``sampler`` can spend exactly ``nfe`` calls on ``model`` (a discrete one has 1000 levels)."""
    return not (discrete(model) and nfe > 1000)


def curve(run: Path, name: str, n: int, grid: tuple[int, ...], data: str = "digits", device="cpu") -> dict:
    model = gv.load(run, device=device)
    rows: dict = {}
    for sampler in SAMPLERS:
        for nfe in grid:
            if not valid(model, sampler, nfe):
                continue
            rows[f"{sampler}-{nfe}"] = {
                "sampler": sampler,
                "nfe": nfe,
                **fid_of(model, n, data, sampler=sampler, steps=nfe),
            }
            print(f"{name} {sampler}-{nfe}: FID {rows[f'{sampler}-{nfe}']['fid']:.2f}", flush=True)
    if discrete(model):
        rows["ddpm-1000"] = {"sampler": "ddpm", "nfe": 1000, **fid_of(model, n, data, sampler="ddpm")}
    elif REFERENCE_NFE not in grid:
        rows[f"heun-{REFERENCE_NFE}"] = {
            "sampler": "heun",
            "nfe": REFERENCE_NFE,
            **fid_of(model, n, data, sampler="heun", steps=REFERENCE_NFE),
        }
    return rows


def best(rows: dict, nfe: int) -> dict | None:
    at = [r for r in rows.values() if r["nfe"] == nfe]
    return min(at, key=lambda r: r["fid"]) if at else None


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument("--data", choices=DATASETS, default="digits", help="dataset (default digits)")
    p.add_argument("--latent", action="store_true", help="the latent objectives on one autoencoder")
    p.add_argument("--model", help="a trained diffusion run to sweep (and distil) instead of training")
    p.add_argument("--steps", type=int, help="training steps of 128 images per objective")
    p.add_argument("--distill-steps", type=int, help="consistency distillation steps")
    p.add_argument("--n", type=int, help="images per sampler and NFE")
    p.add_argument("--device", default="auto", help="auto (a GPU when torch sees one) | cpu | cuda")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data
    mode = settings(data, args.quick, args)
    device = str(resolve_device(args.device))  # auto: a GPU when torch sees one
    train = {**TRAIN, "device": device}
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="nfe-bench-") as tmp:
        if args.model:
            given = check_model(Path(args.model), data)
            runs = {given: (Path(args.model), None)}
        else:
            runs = train_objectives(Path(tmp), data, mode, args.latent, train, results)
        for name, (run, trained_seconds) in runs.items():
            t0 = time.perf_counter()
            rows = curve(run, name, mode["n"], mode["nfe"], data, device)
            ref, ten = best(rows, REFERENCE_NFE), best(rows, 10)
            results[name] = {
                "train_seconds": trained_seconds,
                "sweep_seconds": round(time.perf_counter() - t0, 1),
                "samplers": rows,
                "best_at_10": ten,
                "best_at_1000": ref,
                "ratio_10_to_1000": ten["fid"] / ref["fid"],
                "target_within_10pct": ten["fid"] <= 1.1 * ref["fid"],
            }
            loads.append(os.getloadavg()[0])
        teacher_name = next(iter(runs)) if args.model else TEACHER[args.latent]
        teacher = runs[teacher_name][0]
        student = Path(tmp) / "consistency"
        t0 = time.perf_counter()
        gv.distill(teacher, student, method="consistency", steps=mode["distill_steps"], **train)
        model = gv.load(student, device=device)
        one, two = fid_of(model, mode["n"], data), fid_of(model, mode["n"], data, steps=2)
        teacher_best = min(r["fid"] for r in results[teacher_name]["samplers"].values())
        results["consistency"] = {
            "teacher": teacher_name,
            "distill_seconds": round(time.perf_counter() - t0, 1),
            "one_step": one,
            "two_steps": two,
            "teacher_best_fid": teacher_best,
            "ratio_one_step_to_teacher_best": one["fid"] / teacher_best,
            "target_within_2x": one["fid"] <= 2 * teacher_best,
        }
        loads.append(os.getloadavg()[0])
    common.emit(
        {
            "benchmark": "nfe_curve",
            "mode": "quick" if args.quick else "full",
            "data": data,
            "models": "given: " + args.model if args.model else ("latent" if args.latent else "pixel"),
            "device": device,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in mode.items()},
            "results": results,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "table": table_rows(results, mode["n"], data),
        },
        args,
    )


def check_model(run: Path, data: str) -> str:
    """The registry name of the diffusion run ``--model`` names, checked against ``--data``'s images."""
    from genvision.model_dir import read_config

    meta = read_config(run)
    size = meta.get("model_config", {}).get("image_size")
    want = qb.IMAGE_SIZE.get(data) or {"digits": 8, "mnist": 28}[data]
    if meta.get("family") != "diffusion" or size != want:
        raise SystemExit(
            f"--model {run}: a {meta.get('registry_name')} of {size}x{size} images; --data {data} needs a "
            f"diffusion model of {want}x{want} images"
        )
    return meta["registry_name"]


def train_objectives(tmp: Path, data: str, mode: dict, latent: bool, train: dict, results: dict) -> dict:
    """Train each objective (``--latent``: on one autoencoder, trained first); name -> (run, seconds)."""
    spec, size = qb.spec_of(data), qb.IMAGE_SIZE.get(data)
    sized = {"image_size": size} if size else {}
    net = {**NET, **sized}
    if latent:  # the latent models' own default width; digits' 8x8 halved once (4x4 latents)
        ae_config = {**sized, **({"downsample": 1} if data == "digits" else {})}
        t0 = time.perf_counter()
        ae, ae_steps = tmp / "autoencoder", max(1, mode["steps"] // 3)
        gv.train("autoencoder", data=spec, out=ae, steps=ae_steps, model_config=ae_config, **train)
        results["autoencoder"] = {"steps": ae_steps, "train_seconds": round(time.perf_counter() - t0, 1)}
        net = {**sized, "autoencoder": str(ae)}
    runs = {}
    for name in LATENT_OBJECTIVES if latent else OBJECTIVES:
        run = tmp / name
        t0 = time.perf_counter()
        gv.train(name, data=spec, out=run, steps=mode["steps"], model_config=net, **train)
        runs[name] = (run, round(time.perf_counter() - t0, 1))
    return runs


def table_rows(results: dict, n: int, data: str = "digits") -> list[dict]:
    rows = []
    for name, r in results.items():
        if "best_at_10" not in r:  # the autoencoder, the student
            continue
        ten, ref = r["best_at_10"], r["best_at_1000"]
        rows.append(
            {
                "figure": f"{data} {name}: best FID at 10 calls ({ten['sampler']}) / at 1000 "
                f"({ref['sampler']}), N = {n}",
                "value": f"{ten['fid']:.2f} / {ref['fid']:.2f} (ratio {r['ratio_10_to_1000']:.2f}; target <= 1.10)",
            }
        )
    c = results["consistency"]
    rows.append(
        {
            "figure": f"{data} consistency student of {c['teacher']}: FID in 1 / 2 calls vs teacher's best, "
            f"N = {n}",
            "value": f"{c['one_step']['fid']:.2f} / {c['two_steps']['fid']:.2f} vs {c['teacher_best_fid']:.2f} "
            f"(ratio {c['ratio_one_step_to_teacher_best']:.2f}; target <= 2)",
        }
    )
    return rows


if __name__ == "__main__":
    main()
