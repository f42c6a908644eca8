"""GANs under a fixed training-time budget: domain FID, class coverage, precision/recall, speed.

Every model is trained with ``genvision.train(name, minutes=BUDGET)`` and its own defaults,
then scored with ``genvision.evaluate`` (domain FID against the train split, the judge's class
histogram of the samples and its entropy; precision and recall where the evaluation suite
provides them), and timed: training images/s (real images drawn per second, discriminator and
generator phases together, as the trainer logs it), training steps/s, and sampling ms/image.

- ``--quick`` (at most 10 minutes, the acceptance mode): ``gan``, ``dcgan``, ``wgan``,
  ``wgan-gp``, ``sngan`` for 1.5 minutes each on digits, 650 samples each; no diffusion.
- full: those five plus ``gan-minimax`` (its saturation is the lesson) and the diffusion
  default ``ddpm``, 5 minutes each on digits and, when the shared MNIST folder exists, 15 minutes
  each on MNIST (2,000 samples per model there: DDIM-50 sampling of 10,000 would take hours).

Targets (issue 7): every GAN but ``gan-minimax`` keeps a class entropy >= 2.1 nats (of
log 10 = 2.30); on MNIST the best GAN's FID is within 1.5x the diffusion default's while
sampling >= 100x faster per image.

    python benchmarks/gan_digits.py --quick [--threads 1] [--json out.json]
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/gan_digits.py",
    "src/genvision/families/gan/",
    "src/genvision/families/diffusion/",
    *common.TRAINED_AND_SCORED,
]

QUICK = {"digits": 1.5}
FULL = {"digits": 5.0, "mnist": 15.0}
GANS = ["gan", "dcgan", "wgan", "wgan-gp", "sngan"]
FULL_EXTRA = ["gan-minimax", "ddpm"]
FID_N = {"digits": 650, "mnist": 2000}  # digits: the equal-N protocol's largest N (held half 673)
ENTROPY_TARGET = 2.1


def spec_of(name: str) -> str:
    return "digits" if name == "digits" else f"mnist:{data.shared_path('datasets', 'mnist')}"


def scores(run: Path, spec: str, n: int) -> dict:
    """FID, class entropy and (when available) precision/recall of a trained run directory."""
    try:
        report = gv.evaluate(str(run), data=spec, metrics=["fid", "precision", "recall"], n=n, out=run)
        pr_note = None
    except ValueError as e:  # an evaluation module without precision/recall yet
        report = gv.evaluate(str(run), data=spec, metrics=["fid"], n=n, out=run)
        pr_note = f"n/a: {e}"
    m = report["metrics"]
    hist = m.get("class_histogram") or {}
    out = {
        "fid": m["fid"]["value"],
        "fid_floor": m["fid"].get("floor"),
        "n_generated": n,
        "class_entropy_nats": hist.get("entropy_nats"),
        "class_counts": hist.get("counts"),
    }
    for k in ("precision", "recall"):
        out[k] = m[k]["value"] if k in m else pr_note
    return out


def speed(run: Path, n: int = 500) -> dict:
    """Training throughput from the run's log, and sampling time per image (seed 0, batch 250)."""
    records = common.training_records(run)
    rates = [r["img_per_s"] for r in records]
    last = records[-1]
    model = gv.load(run)
    timing = common.timeit(lambda: _sample(model, n), repeats=1, warmup=0)
    return {
        "steps": last["step"],
        "train_images_per_s": statistics.median(rates) if rates else None,
        "train_steps_per_s": last["step"] / max(last["elapsed"], 1e-9),
        "sample_ms_per_image": 1000 * timing["median_s"] / n,
    }


def _sample(model, n: int) -> torch.Tensor:
    from genvision.families.base import sample_in_batches

    labels = (
        torch.arange(n) % model.config.num_classes if getattr(model.config, "conditional", False) else None
    )
    return sample_in_batches(model, n, seed=0, batch_size=250, labels=labels)


def entropy_curve(run: Path) -> list:
    """(step, entropy) of the trainer's mode-collapse monitor, and whether it ever warned."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [
        [r["step"], round(r["monitor/class_entropy"], 3)] for r in records if "monitor/class_entropy" in r
    ]


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budgets = QUICK if args.quick else dict(FULL)
    if not args.quick and not data.shared_path("datasets", "mnist").is_dir():
        budgets.pop("mnist")
    names = GANS if args.quick else GANS + FULL_EXTRA
    results: dict = {}
    start = time.perf_counter()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        for dataset, minutes in budgets.items():
            spec = spec_of(dataset)
            rows = {}
            for name in names:
                run = Path(tmp) / f"{name}-{dataset}"
                torch.manual_seed(0)
                gv.train(name, data=spec, out=run, minutes=minutes, progress=False, sample_every=0)
                row = {**scores(run, spec, FID_N[dataset]), **speed(run)}
                row["entropy_curve"] = entropy_curve(run)
                warned = [r for r in (run / "metrics.jsonl").read_text().splitlines() if '"warning"' in r]
                row["collapse_warnings"] = len(warned)
                rows[name] = row
                loads.append(os.getloadavg()[0])
                print(
                    f"{dataset} {name}: FID {row['fid']:.2f}, entropy {row['class_entropy_nats']}", flush=True
                )
            results[dataset] = {"budget_minutes": minutes, "models": rows, "summary": summarise(rows)}
    common.emit(
        {
            "benchmark": "gan_digits",
            "mode": "quick" if args.quick else "full",
            "budgets_minutes": budgets,
            "entropy_target_nats": ENTROPY_TARGET,
            "results": results,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "table": table_rows(results),
        },
        args,
    )


def cells(rows: dict, key: str, fmt: str) -> str:
    """``rows[model][key]`` of every model, formatted, joined by " / " (n/a where missing)."""
    return " / ".join("n/a" if row[key] is None else format(row[key], fmt) for row in rows.values())


def table_rows(results: dict) -> list[dict]:
    """The README rows per dataset: FID, class entropy and sampling time of every model, then the
    GAN-against-diffusion targets when ``ddpm`` ran."""
    table = []
    for dataset, r in results.items():
        rows, names = r["models"], " / ".join(r["models"])
        first = next(iter(rows.values()))
        n, floor = first["n_generated"], first["fid_floor"]
        table.append(
            {
                "figure": f"domain FID after {r['budget_minutes']:g} min on {dataset}, {names} ({n} samples)",
                "value": cells(rows, "fid", ".2f") + (f" (floor {floor:.2f})" if floor is not None else ""),
            }
        )
        table.append(
            {
                "figure": f"class entropy (nats, target >= {ENTROPY_TARGET}) on {dataset}, {names}",
                "value": cells(rows, "class_entropy_nats", ".3f"),
            }
        )
        table.append(
            {
                "figure": f"sampling ms/image on {dataset}, {names}",
                "value": cells(rows, "sample_ms_per_image", ".3f"),
            }
        )
        s = r["summary"]
        if "best_gan_fid_over_ddpm_fid" in s:
            table.append(
                {
                    "figure": f"best GAN ({s['best_gan']}) FID / ddpm FID on {dataset} (target <= 1.5); "
                    "ddpm / best GAN sampling time (target >= 100)",
                    "value": f"{s['best_gan_fid_over_ddpm_fid']:.2f}; {s['ddpm_over_best_gan_sample_time']:.0f}",
                }
            )
    return table


def summarise(rows: dict) -> dict:
    """Best GAN by FID, entropy target per model, and the comparison with ddpm when it ran."""
    gans = {k: v for k, v in rows.items() if k != "ddpm" and isinstance(v["fid"], float)}
    best = min(gans, key=lambda k: gans[k]["fid"]) if gans else None
    out = {
        "best_gan": best,
        "entropy_target_met": {
            k: v["class_entropy_nats"] is not None and v["class_entropy_nats"] >= ENTROPY_TARGET
            for k, v in rows.items()
            if k != "ddpm"
        },
    }
    if best and "ddpm" in rows:
        d = rows["ddpm"]
        out["best_gan_fid_over_ddpm_fid"] = gans[best]["fid"] / d["fid"]
        out["ddpm_over_best_gan_sample_time"] = d["sample_ms_per_image"] / gans[best]["sample_ms_per_image"]
    return out


if __name__ == "__main__":
    main()
