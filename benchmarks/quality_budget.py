"""Quality per wall-clock: domain FID of genvision's default and the peers after the same training time.

Four trainers, each given the same training-time budget in the same process:

- ``genvision``: ``genvision.train("ddpm", ...)`` with the model's own defaults, sampled with its
  default sampler;
- ``diffusers``: diffusers' default recipe, UNet2DModel (shaped like genvision's UNet, same
  widths) + DDPMScheduler (epsilon prediction, linear betas) + AdamW at the data's native
  resolution, sampled with 50-step DDIMScheduler (``peers.DiffusersDDPM``);
- ``diffusers-best``: the same network and training loop in diffusers' best documented
  configuration (v-prediction, cosine betas), sampled with DPM-Solver++ (orders 2 and 3, 25
  steps) and with DDIM-50 (``peers.DIFFUSERS_CONFIGS``);
- ``pythae-vae``: pythae's VAE with its default MLP networks (``peers.PythaeVAE``; pythae
  documents no better configuration).

The budget is spent in round-robin slices (each trainer trains a slice in turn, the order
rotating every round), so a change in the machine's load lands on all of them alike. Each
trained model then draws N images per sampler with the same per-image seeds (image k from
generator ``seeding.image_seed(seed, k)``), scored by domain FID under the equal-N protocol
(``genvision.metrics.protocol``: judge features, a seeded half of the train split as reference,
the floor N real images of the other half), with the 95% bootstrap interval of each FID
(samples resampled against the fixed reference; with several seeds, the spread over seeds is
reported too). Every configuration's FID is recorded (mean over seeds); a library's figure is its
best configuration's, and the ratio is taken against the best library's. The picture shows each
trainer's first sampler. Budgets (:data:`FULL`, :data:`QUICK`; the JSON states them): full 5
minutes per trainer on digits and 15 on MNIST, 3 seeds; ``--quick`` 1.5 minutes per trainer on
digits (6 minutes of training in all), 1 seed.

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
    *common.TRAINED_AND_SCORED,
]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the trainers, in the order of the first round-robin round and of the picture
TRAINERS = ("genvision", "diffusers", "diffusers-best", "pythae-vae")
#: training minutes per trainer and dataset, and the seeds. Quick: 4 trainers x 1.5 min = 6 min
#: of training, the rest of the 10 minutes for sampling and FIDs
FULL = {"budgets": {"digits": 5.0, "mnist": 15.0}, "seeds": [0, 1, 2]}
QUICK = {"budgets": {"digits": 1.5}, "seeds": [0]}
#: generated images per FID: the protocol's 650 for digits; 2,000 for MNIST (the protocol's
#: 10,000 would take hours of DDIM-50 sampling on a CPU; every trainer is scored at the same N)
FID_N = {"digits": 650, "mnist": 2000}
TARGET_RATIO = 0.5


def spec_of(name: str) -> str:
    return "digits" if name == "digits" else f"mnist:{data.shared_path('datasets', 'mnist')}"


def unet_widths(image_size: int) -> tuple[int, ...]:
    """Widths of genvision's default UNet at this size (the diffusers UNets get the same)."""
    c = gv.create("ddpm", image_size=image_size).config
    return tuple(c.base_channels * m for m in c.channel_mults)


def make_trainers(spec: str, seed: int, workdir: Path) -> list:
    """The :data:`TRAINERS`, fresh."""
    train_ds = data.load(spec, "train")
    widths = unet_widths(train_ds.image_size)
    return [
        peers.Genvision(spec, seed, workdir / f"genvision-seed{seed}"),
        peers.DiffusersDDPM(train_ds, seed, widths, config="diffusers"),
        peers.DiffusersDDPM(train_ds, seed, widths, config="diffusers-best"),
        peers.PythaeVAE(train_ds, seed),
    ]


def samplers_of(trainer) -> dict:
    """label -> a function ``(n, seed) -> images`` for every way this trainer is scored."""
    if isinstance(trainer, peers.DiffusersDDPM):
        return {
            f"{s.upper()}-{k}": (lambda n, seed, s=s, k=k: trainer.sample(n, seed, sampler=s, steps=k))
            for s, k in trainer.recipe["samplers"]
        }
    if isinstance(trainer, peers.Genvision):
        c = trainer.load().config
        return {f"{c.sampler.upper()}-{c.steps} (its default)": trainer.sample}
    return {"prior": trainer.sample}


def library_of(trainer) -> str:
    """The library a trainer's figure counts for (the diffusers configurations are one library)."""
    return "diffusers" if isinstance(trainer, peers.DiffusersDDPM) else trainer.name


def configuration_of(trainer) -> dict:
    if isinstance(trainer, peers.DiffusersDDPM):
        return trainer.settings()
    if isinstance(trainer, peers.PythaeVAE):
        return {"what": "pythae VAE, default MLP networks, bce loss", "note": peers.PYTHAE_NOTE}
    return {"what": "genvision's default ddpm, its own defaults"}


def race(spec: str, seed: int, minutes: float, slices: int, workdir: Path, n: int, loads: list) -> dict:
    """Train the trainers on ``spec`` for ``minutes`` each (in slices), then score every sampler."""
    trainers = make_trainers(spec, seed, workdir)
    seconds = minutes * 60 / slices
    for k in range(slices):
        r = k % len(trainers)
        for trainer in trainers[r:] + trainers[:r]:
            trainer.train_for(seconds)
            loads.append(os.getloadavg()[0])
            print(f"  seed {seed} slice {k + 1}/{slices}: {trainer.name} {trainer.steps} steps", flush=True)
    out, grids = {}, {}
    for trainer in trainers:
        scored_by = {}
        for label, sample in samplers_of(trainer).items():
            t0 = time.perf_counter()
            images = sample(n, seed)
            sample_s = time.perf_counter() - t0
            scored = common.fid_against(images, spec, seed)
            scored_by[label] = {
                "fid": scored["fid"],
                "ci": scored["ci"],
                "sample_seconds": round(sample_s, 1),
            }
            grids.setdefault(trainer.name, images[:64])
            loads.append(os.getloadavg()[0])
            print(
                f"  seed {seed}: {trainer.name} {label} FID {scored['fid']:.2f} (floor {scored['floor']:.2f})",
                flush=True,
            )
        out[trainer.name] = {
            "library": library_of(trainer),
            "configuration": configuration_of(trainer),
            "samplers": scored_by,
            "floor": scored["floor"],
            "floor_std": scored["floor_std"],
            "floor_at_equal_n": scored["equal_n"],
            "n_generated": n,
            "train_steps": trainer.steps,
            "train_images": trainer.images,
            "train_seconds": round(trainer.elapsed, 1),
            "train_img_per_s": trainer.images / max(trainer.elapsed, 1e-9),
        }
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


def configurations(run: dict) -> dict[str, tuple[str, float]]:
    """``"<trainer> <sampler>"`` -> (library, FID) of one seed's run. Runs recorded before the
    samplers were (one FID per trainer) read as one configuration per trainer."""
    out = {}
    for name, t in run["trainers"].items():
        for label, s in (t.get("samplers") or {"": {"fid": t["fid"]}}).items():
            out[f"{name} {label}".strip()] = (t.get("library", name), s["fid"])
    return out


def intervals(run: dict) -> dict[str, list | None]:
    """``"<trainer> <sampler>"`` -> the FID's 95% bootstrap interval in one seed's run (None before
    runs recorded one)."""
    return {
        f"{name} {label}".strip(): s.get("ci")
        for name, t in run["trainers"].items()
        for label, s in (t.get("samplers") or {"": {}}).items()
    }


def summarise(runs: list[dict]) -> dict:
    """Mean FID of every configuration over seeds, each library's best, the ratio of genvision's
    to the best peer library's, the verdict."""
    per_run = [configurations(r) for r in runs]
    keys = list(per_run[0])
    by_config = {k: statistics.fmean(c[k][1] for c in per_run) for k in keys}
    best: dict[str, str] = {}
    for k in keys:
        library = per_run[0][k][0]
        if library not in best or by_config[k] < by_config[best[library]]:
            best[library] = k
    mean = {library: by_config[k] for library, k in best.items()}
    best_peer = min((t for t in mean if t != "genvision"), key=mean.get)
    ratio = mean["genvision"] / mean[best_peer]
    spread = {
        library: statistics.stdev(c[k][1] for c in per_run) if len(per_run) > 1 else None
        for library, k in best.items()
    }
    return {
        "mean_fid": mean,
        "fid_std_over_seeds": spread,
        "fid_ci_first_seed": {library: intervals(runs[0]).get(k) for library, k in best.items()},
        "best_configuration": best,
        "mean_fid_by_configuration": by_config,
        "library_of_configuration": {k: per_run[0][k][0] for k in keys},
        "floor": runs[0]["trainers"]["genvision"]["floor"],
        "best_peer": best_peer,
        "ratio_genvision_to_best_peer": ratio,
        "target": f"ratio <= {TARGET_RATIO} (each library at its best configuration)",
        "target_met": ratio <= TARGET_RATIO,
        "seeds": [r["seed"] for r in runs],
        "per_seed": runs,
    }


def table_rows(datasets: dict) -> list[dict]:
    """The README rows of each dataset: each library's best FID and the floor, every configuration
    of a library that has several, then the ratio and its verdict."""
    table = []
    for name, d in datasets.items():
        m, best = d["mean_fid"], d.get("best_configuration", {})
        by_config, library_of = d.get("mean_fid_by_configuration", {}), d.get("library_of_configuration", {})
        seeds = f"{len(d['seeds'])} seed{'s' * (len(d['seeds']) > 1)}"
        table.append(
            {
                "figure": f"domain FID after {d['budget_minutes_per_trainer']:g} min per trainer on {name} "
                f"({seeds}; each library at its best configuration)",
                "value": ", ".join(
                    f"{t} {v:.2f}{_bar(d, t)}"
                    + (f" ({best[t]})" if list(library_of.values()).count(t) > 1 else "")
                    for t, v in m.items()
                )
                + f"; floor {d['floor']:.2f}",
            }
        )
        for library in m:
            mine = [k for k in by_config if library_of.get(k) == library]
            if len(mine) > 1:
                table.append(
                    {
                        "figure": f"{library} domain FID by configuration on {name} ({seeds})",
                        "value": "; ".join(f"{k} {by_config[k]:.2f}" for k in mine),
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


def _bar(d: dict, library: str) -> str:
    """The suffix: ± std over seeds, or [lo, hi] (the bootstrap interval) with one seed, or nothing."""
    std = (d.get("fid_std_over_seeds") or {}).get(library)
    if std is not None:
        return f" ± {std:.2f}"
    ci = (d.get("fid_ci_first_seed") or {}).get(library)
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def merge(paths: list[str]) -> dict:
    """Several results of this script (e.g. one seed each, run side by side) as one.

    Per dataset, the runs of every file are pooled and summarised again (mean over all seeds).
    Refuses files whose budgets or configurations (trainers and samplers) differ for a dataset or
    that repeat a seed. The merged result keeps each part's command, date, load note and
    provenance, is "loaded" when any part was, and is stale where the parts measured different
    code (``common.merged_provenance``).
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
                if entry["runs"] and list(configurations(run)) != list(configurations(entry["runs"][0])):
                    raise SystemExit(
                        f"{path}: {name} seed {run['seed']} scored other trainers or samplers than the "
                        "other files; merge runs of one configuration"
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
        "peer_configurations": parts[0].get("peer_configurations"),
        "slices": parts[0].get("slices"),
        "datasets": datasets,
        "table": table_rows(datasets),
        "all_targets_met": all(d["target_met"] for d in datasets.values()),
        "provenance": common.merged_provenance([p.get("provenance") for p in parts]),
    }


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument(
        "--minutes", type=float, help="training minutes per trainer (overrides the mode's budgets)"
    )
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 2, quick: 0)")
    p.add_argument("--data", nargs="+", choices=["digits", "mnist"], help="datasets (default: the mode's)")
    p.add_argument("--slices", type=int, default=4, help="round-robin slices of each budget (default 4)")
    p.add_argument("--n", type=int, help="generated images per FID (default: 650 digits, 2000 MNIST)")
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
                    suffix = "-quick" if args.quick else ""
                    picture = side_by_side(grids, levels, RESULTS / f"quality_budget-{name}{suffix}.png")
                runs.append({"seed": seed, **r})
            datasets[name] = {
                "budget_minutes_per_trainer": minutes,
                "picture": str(picture.relative_to(HERE.parent)),
                **summarise(runs),
            }
    table = table_rows(datasets)
    per_trainer = "; ".join(f"{d} {m:g} min per trainer" for d, m in budgets.items())
    common.emit(
        {
            "benchmark": "quality_budget",
            "mode": f"quick: {per_trainer} ({len(TRAINERS)} trainers), {len(seeds)} seed"
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
            "budgets": {
                "training_minutes_per_trainer": budgets,
                "trainers": list(TRAINERS),
                "training_minutes_per_seed": {d: m * len(TRAINERS) for d, m in budgets.items()},
                "seeds": seeds,
                "fid_n": {d: args.n or FID_N[d] for d in budgets},
                "note": "training time only; sampling and FID come on top",
            },
            "peer_settings": peers.PEER_TRAIN,
            "peer_configurations": {
                **{name: peers.diffusers_settings(name) for name in peers.DIFFUSERS_CONFIGS},
                "pythae-vae": peers.PYTHAE_NOTE,
                "rule": "a library's figure is its best configuration's mean FID; every one is recorded",
            },
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
