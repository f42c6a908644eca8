"""Quality per wall-clock: domain FID of genvision's default and the peers after the same training time.

Three trainers, each given the same training-time budget in the same process:

- ``genvision``: ``genvision.train("ddpm", ...)`` with the model's own defaults, sampled with its
  default sampler (DPM-Solver++(2M), 20 denoiser calls; v-prediction);
- ``diffusers``: UNet2DModel (shaped like genvision's UNet, same widths) + DDPMScheduler + AdamW at
  the data's native resolution, sampled with 50-step DDIMScheduler (``peers.DiffusersDDPM``);
- ``pythae-vae``: pythae's VAE with its default MLP networks (``peers.PythaeVAE``).

The budget is spent in round-robin slices (each trainer trains a slice in turn, the order
rotating every round), so a change in the machine's load lands on all three alike. Each
trained model then draws N images with the same per-image seeds (image k from generator
``seeding.image_seed(seed, k)``), scored by domain FID (INTERFACES.md protocol: judge features, train split
as reference, floor = test split against train split). Budgets: 5 minutes on digits and 15 on
MNIST, 3 seeds (full mode); ``--quick``: 2 minutes per trainer on digits, 1 seed.

Target (issue 4): genvision's mean FID at most half the best peer's mean FID.

    python benchmarks/quality_budget.py --quick [--threads 1]
    python benchmarks/quality_budget.py --merge seed1.json seed2.json [--json pooled.json]  # no training
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import common
import peers
import torch

import genvision as gv
from genvision import data
from genvision.viz import grid_array

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/quality_budget.py",
    "benchmarks/peers.py",
    "src/genvision/families/diffusion/",
    "src/genvision/families/base.py",
    "src/genvision/nn/",
    "src/genvision/training/",
    "src/genvision/metrics/",
    "src/genvision/data/",
    "src/genvision/seeding.py",
]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FULL = {"budgets": {"digits": 5.0, "mnist": 15.0}, "seeds": [0, 1, 2]}
QUICK = {"budgets": {"digits": 2.0}, "seeds": [0]}
#: generated images per FID: the protocol's 1,000 for digits; 2,000 for MNIST (the protocol's
#: 10,000 would take hours of DDIM-50 sampling on a CPU; every trainer is scored at the same N)
FID_N = {"digits": 1000, "mnist": 2000}
TARGET_RATIO = 0.5


def spec_of(name: str) -> str:
    return "digits" if name == "digits" else f"mnist:{data.shared_path('datasets', 'mnist')}"


def unet_widths(image_size: int) -> tuple[int, ...]:
    """Widths of genvision's default UNet at this size (the diffusers UNet gets the same)."""
    c = gv.create("ddpm", image_size=image_size).config
    return tuple(c.base_channels * m for m in c.channel_mults)


def race(spec: str, seed: int, minutes: float, slices: int, workdir: Path, n: int, loads: list) -> dict:
    """Train the three trainers on ``spec`` for ``minutes`` each (in slices), then score them."""
    train_ds = data.load(spec, "train")
    trainers = [
        peers.Genvision(spec, seed, workdir / f"genvision-seed{seed}"),
        peers.DiffusersDDPM(train_ds, seed, unet_widths(train_ds.image_size)),
        peers.PythaeVAE(train_ds, seed),
    ]
    seconds = minutes * 60 / slices
    for k in range(slices):
        for trainer in trainers[k % 3 :] + trainers[: k % 3]:
            trainer.train_for(seconds)
            loads.append(os.getloadavg()[0])
            print(f"  seed {seed} slice {k + 1}/{slices}: {trainer.name} {trainer.steps} steps", flush=True)
    out, grids = {}, {}
    for trainer in trainers:
        t0 = time.perf_counter()
        images = trainer.sample(n, seed)
        sample_s = time.perf_counter() - t0
        scored = common.fid_against(images, spec)
        out[trainer.name] = {
            "fid": scored["fid"],
            "floor": scored["floor"],
            "n_generated": n,
            "train_steps": trainer.steps,
            "train_images": trainer.images,
            "train_seconds": round(trainer.elapsed, 1),
            "train_img_per_s": trainer.images / max(trainer.elapsed, 1e-9),
            "sample_seconds": round(sample_s, 1),
        }
        grids[trainer.name] = images[:64]
        loads.append(os.getloadavg()[0])
        print(
            f"  seed {seed}: {trainer.name} FID {scored['fid']:.2f} (floor {scored['floor']:.2f})", flush=True
        )
    return {"trainers": out, "grids": grids}


def side_by_side(grids: dict, levels: int, path: Path) -> Path:
    """One PNG: each trainer's 8x8 grid of samples, titled, left to right."""
    from PIL import Image, ImageDraw

    tiles = [grid_array(g, nrow=8, levels=levels) for g in grids.values()]
    h = max(t.shape[0] for t in tiles)
    gap, title = 16, 18
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) + 1)
    canvas = Image.new("L", (width, h + title + gap), 255)
    draw = ImageDraw.Draw(canvas)
    x = gap
    for name, t in zip(grids, tiles):
        canvas.paste(Image.fromarray(t[..., 0]), (x, title))
        draw.text((x, 2), name, fill=0)
        x += t.shape[1] + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def summarise(runs: list[dict]) -> dict:
    """Mean FID per trainer over seeds, the ratio of genvision's to the best peer's, the verdict."""
    names = list(runs[0]["trainers"])
    mean = {t: statistics.fmean(r["trainers"][t]["fid"] for r in runs) for t in names}
    best_peer = min((t for t in names if t != "genvision"), key=mean.get)
    ratio = mean["genvision"] / mean[best_peer]
    return {
        "mean_fid": mean,
        "floor": runs[0]["trainers"]["genvision"]["floor"],
        "best_peer": best_peer,
        "ratio_genvision_to_best_peer": ratio,
        "target": f"ratio <= {TARGET_RATIO}",
        "target_met": ratio <= TARGET_RATIO,
        "seeds": [r["seed"] for r in runs],
        "per_seed": runs,
    }


def table_rows(datasets: dict) -> list[dict]:
    """The README rows of each dataset: mean FIDs and floor, then the ratio and its verdict."""
    table = []
    for name, d in datasets.items():
        m = d["mean_fid"]
        table.append(
            {
                "figure": f"domain FID after {d['budget_minutes_per_trainer']:g} min on {name} "
                f"({len(d['seeds'])} seed{'s' * (len(d['seeds']) > 1)})",
                "value": ", ".join(f"{t} {v:.2f}" for t, v in m.items()) + f"; floor {d['floor']:.2f}",
            }
        )
        table.append(
            {
                "figure": f"genvision / best peer ({d['best_peer']}) FID on {name}, target <= {TARGET_RATIO}",
                "value": f"{d['ratio_genvision_to_best_peer']:.2f}"
                + (" (met)" if d["target_met"] else " (NOT met)"),
            }
        )
    return table


def merge(paths: list[str]) -> dict:
    """Several results of this script (e.g. one seed each, run side by side) as one.

    Per dataset, the runs of every file are pooled and summarised again (mean over all seeds).
    Refuses files whose budgets differ for a dataset or that repeat a seed. The merged result
    keeps each part's command, date and load note, and is "loaded" when any part was.
    """
    parts = [json.loads(Path(p).read_text()) for p in paths]
    pooled: dict[str, dict] = {}
    for path, part in zip(paths, parts):
        if part.get("benchmark") != "quality_budget":
            raise SystemExit(f"{path} is not a quality_budget result; pass files this script wrote")
        for name, d in part["datasets"].items():
            entry = pooled.setdefault(
                name, {"minutes": d["budget_minutes_per_trainer"], "picture": d["picture"], "runs": []}
            )
            if d["budget_minutes_per_trainer"] != entry["minutes"]:
                got, want = d["budget_minutes_per_trainer"], entry["minutes"]
                raise SystemExit(
                    f"{path}: {name} budget {got} min, others {want} min; merge runs of one budget"
                )
            seen = {r["seed"] for r in entry["runs"]}
            for run in d["per_seed"]:
                if run["seed"] in seen:
                    raise SystemExit(
                        f"{path}: {name} seed {run['seed']} is already in another file; merge distinct seeds"
                    )
                entry["runs"].append(run)
    datasets = {}
    for name, entry in pooled.items():
        runs = sorted(entry["runs"], key=lambda r: r["seed"])
        datasets[name] = {
            "budget_minutes_per_trainer": entry["minutes"],
            "picture": entry["picture"],
            **summarise(runs),
        }
    loaded = [p["load"] for p in parts if p.get("load", "").startswith("LOADED")]
    return {
        "benchmark": "quality_budget",
        "mode": "merged full: "
        + "; ".join(
            f"{n} {d['budget_minutes_per_trainer']:g} min, seeds {d['seeds']}" for n, d in datasets.items()
        )
        + f" (from {len(parts)} runs)",
        "versions": parts[0].get("versions"),
        "load": loaded[0] if loaded else parts[0].get("load", ""),
        "parts": [
            {k: p.get(k) for k in ("command", "date", "mode", "load", "loadavg_samples")}
            | {"torch_threads": p.get("machine", {}).get("torch_threads")}
            for p in parts
        ],
        "peer_settings": parts[0].get("peer_settings"),
        "slices": parts[0].get("slices"),
        "datasets": datasets,
        "table": table_rows(datasets),
        "all_targets_met": all(d["target_met"] for d in datasets.values()),
    }


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument(
        "--minutes", type=float, help="training minutes per trainer (overrides the mode's budgets)"
    )
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 2, quick: 0)")
    p.add_argument("--data", nargs="+", choices=["digits", "mnist"], help="datasets (default: the mode's)")
    p.add_argument("--slices", type=int, default=4, help="round-robin slices of each budget (default 4)")
    p.add_argument("--n", type=int, help="generated images per FID (default: 1000 digits, 2000 MNIST)")
    p.add_argument(
        "--merge", nargs="+", metavar="JSON", help="do not train: pool the seeds of these results into one"
    )
    args = p.parse_args()
    if args.merge:
        common.emit(merge(args.merge), args)
        return
    common.set_threads(args)
    mode = QUICK if args.quick else FULL
    budgets = {d: mode["budgets"].get(d, FULL["budgets"][d]) for d in (args.data or mode["budgets"])}
    if args.minutes:
        budgets = dict.fromkeys(budgets, args.minutes)
    seeds = args.seeds or mode["seeds"]
    loads = [os.getloadavg()[0]]
    peak = common.matmul_peak_gflops()
    datasets = {}
    with tempfile.TemporaryDirectory(prefix="gv-quality-") as tmp:
        for name, minutes in budgets.items():
            spec = spec_of(name)
            n = args.n or FID_N[name]
            runs = []
            for seed in seeds:
                print(f"{name}: seed {seed}, {minutes} min per trainer", flush=True)
                r = race(spec, seed, minutes, args.slices, Path(tmp) / name, n, loads)
                grids = r.pop("grids")
                if seed == seeds[0]:
                    levels = data.load(spec, "train").levels
                    picture = side_by_side(grids, levels, RESULTS / f"quality_budget-{name}.png")
                runs.append({"seed": seed, **r})
            datasets[name] = {
                "budget_minutes_per_trainer": minutes,
                "picture": str(picture.relative_to(HERE.parent)),
                **summarise(runs),
            }
    table = table_rows(datasets)
    common.emit(
        {
            "benchmark": "quality_budget",
            "mode": "quick: 2 min per trainer on digits, 1 seed"
            if args.quick
            else "full"
            if not (args.seeds or args.data or args.minutes)
            else "partial full: "
            + "; ".join(f"{d} {m:g} min" for d, m in budgets.items())
            + f"; seeds {seeds}",
            "versions": common.peer_versions(),
            "matmul_peak_gflops": peak,
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "peer_settings": peers.PEER_TRAIN,
            "slices": args.slices,
            "datasets": datasets,
            "table": table,
            "all_targets_met": all(d["target_met"] for d in datasets.values()),
        },
        args,
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
