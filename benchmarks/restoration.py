"""Restoration against its baselines: inpainting, 4x super-resolution, colourisation, per route.

Held-back test images are degraded (the centre box missing: a centred square of half the side;
an s x s box downsample; the BT.601 luma), restored by every route, and compared with the
originals: PSNR, SSIM, the judge-feature distance (a learned perceptual distance: the domain
judge's penultimate features, LPIPS-style) and the domain FID of the restored set against the
train-half reference at equal N (never against the test images, whose given pixels the results
share). Routes: zero-shot with a ``ddpm`` trained for the budget (DDNM-style projection of every
clean estimate; for inpainting also RePaint resampling R = 1), and the task models ``inpaint``,
``sr``, ``colorize`` trained for the same budget (when the registry has them). Baselines:
harmonic fill, bicubic, the training set's mean chroma per luma bin. Every output is checked for
exactness (known pixels, downsample, luma) and a picture per task shows input, each route,
baseline and original.

- ``--quick`` (at most 10 minutes): digits (inpainting, 2x super-resolution), 1.5-minute models,
  and emoji at 16x16 for colourisation; N = 300.
- full: MNIST (inpainting, 4x: 7 -> 28) and emoji 32x32 (inpainting, 4x: 8 -> 32,
  colourisation), 15-minute models, N = 1,000.

Targets (issue 21): inpainting FID <= 0.5x harmonic fill's, zero-shot within 2x of the task
model; super-resolution FID <= 0.5x bicubic's; colourisation FID <= 0.5x mean chroma's with
colourfulness within 20% of the real test set's.

    python benchmarks/restoration.py --quick [--threads 1] [--json out.json]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data, registry
from genvision.apps import restore
from genvision.data import degrade
from genvision.metrics import judges
from genvision.metrics.evaluate import domain_fid_card

MEASURES = [
    "benchmarks/restoration.py",
    "src/genvision/apps/restore.py",
    "src/genvision/data/degrade.py",
    "src/genvision/families/diffusion/",
    *common.TRAINED_AND_SCORED,
]

#: dataset -> (spec, image size or None, tasks with their scale)
QUICK = {
    "digits": ("digits", None, {"inpaint": None, "sr": 2}),
    "emoji16": ("emoji", 16, {"colorize": None}),
}
FULL = {
    "mnist": ("mnist", None, {"inpaint": None, "sr": 4}),
    "emoji32": ("emoji", 32, {"inpaint": None, "sr": 4, "colorize": None}),
}
QUICK_MINUTES = 1.5
TASK_MODEL = {"inpaint": "inpaint", "sr": "sr", "colorize": "colorize"}


def spec_of(name: str) -> str:
    if name == "digits":
        return "digits"
    if name == "mnist":
        return f"mnist:{data.shared_path('datasets', 'mnist')}"
    return f"folder:{data.shared_path('datasets', 'emoji', 'twemoji')}"


def baseline(task: str, y, mask, scale, train_x):
    if task == "inpaint":
        return restore.harmonic_fill(y, mask)
    if task == "sr":
        return restore.bicubic(y, scale)
    return restore.MeanChroma(train_x)(y).clamp(-1, 1)


def exactness(task: str, out, y, mask, scale) -> float:
    """Mean absolute violation of the measurement (0 = exact)."""
    if task == "inpaint":
        return float(((out - y) * (1 - mask)).abs().mean())
    return float((degrade.degrade(task, out, scale=scale or 4) - y).abs().mean())


def measure(out, original, train_ds, test_ds, judge) -> dict:
    fid = domain_fid_card(out, train_ds, test_ds)  # the train-half reference at the samples' N
    return {
        "fid": fid["fid"],
        "fid_ci": fid.get("ci"),
        "fid_floor": fid.get("floor"),
        "psnr_db": float(restore.psnr(out, original).mean()),
        "ssim": float(restore.ssim(out, original).mean()),
        "feature_distance": float(restore.feature_distance(out, original, judge).mean()),
    }


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plan, minutes, n = (QUICK, QUICK_MINUTES, 300) if args.quick else (FULL, 15.0, 1000)
    suffix = "-quick" if args.quick else ""
    results, skipped = {}, {}
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="restoration-") as tmp:
        for name, (kind, size, tasks) in plan.items():
            spec = spec_of(kind)
            if kind != "digits" and not data.shared_path("datasets").is_dir():
                skipped[name] = "the shared datasets folder is missing"
                continue
            config = {"image_size": size} if size else {}
            train_ds, test_ds = (
                data.load(spec, "train", image_size=size),
                data.load(spec, "test", image_size=size),
            )
            judge = judges.get_judge(train_ds, test_ds)
            original = test_ds.batch(torch.arange(min(n, len(test_ds))))[0]
            train_x = train_ds.batch(torch.arange(min(2000, len(train_ds))))[0]
            side = original.shape[-1]
            ddpm = Path(tmp) / f"ddpm-{name}"
            gv.train(
                "ddpm",
                data=spec,
                out=ddpm,
                minutes=minutes,
                model_config=config,
                progress=False,
                sample_every=0,
            )
            zero_shot = gv.load(ddpm)
            rows = {}
            for task, scale in tasks.items():
                mask = degrade.center_mask(len(original), side) if task == "inpaint" else None
                y = degrade.degrade(task, original, mask=mask, scale=scale or 4)
                if task == "inpaint":
                    y = original  # restore() masks it itself
                routes = {
                    "baseline": baseline(
                        task, y if task != "inpaint" else y * (1 - mask), mask, scale, train_x
                    )
                }
                timings = {}
                t0 = time.perf_counter()
                routes["zero-shot"] = restore.restore(zero_shot, task, y, mask=mask, scale=scale)[0]
                timings["zero-shot"] = time.perf_counter() - t0
                if task == "inpaint":
                    t0 = time.perf_counter()
                    routes["zero-shot-resample1"] = restore.restore(
                        zero_shot, task, y, mask=mask, resample=1
                    )[0]
                    timings["zero-shot-resample1"] = time.perf_counter() - t0
                if TASK_MODEL[task] in registry.MODELS:
                    run = Path(tmp) / f"{task}-{name}"
                    extra = {"scale": scale} if task == "sr" else {}
                    gv.train(
                        TASK_MODEL[task],
                        data=spec,
                        out=run,
                        minutes=minutes,
                        model_config={**config, **extra},
                        progress=False,
                        sample_every=0,
                    )
                    t0 = time.perf_counter()
                    routes["task-model"] = restore.restore(gv.load(run), task, y, mask=mask, scale=scale)[0]
                    timings["task-model"] = time.perf_counter() - t0
                else:
                    skipped[f"{name}/{task}/task-model"] = f"{TASK_MODEL[task]} is not in the registry yet"
                row = {}
                for route, out in routes.items():
                    row[route] = measure(out, original, train_ds, test_ds, judge)
                    row[route]["exactness_mean_abs"] = exactness(
                        task, out, y if task != "inpaint" else original, mask, scale
                    )
                    row[route]["seconds"] = timings.get(route)
                    if task == "colorize":
                        row[route]["colourfulness"] = restore.colourfulness(out)
                if task == "colorize":
                    row["real_colourfulness"] = restore.colourfulness(original)
                k = 10
                shown = degrade.enlarge(y[:k], scale) if task == "sr" else y[:k]
                if task == "inpaint":
                    shown = y[:k] * (1 - mask[:k])
                if shown.shape[1] != original.shape[1]:
                    shown = shown.expand(-1, original.shape[1], -1, -1)
                picture = common.RESULTS / f"restoration-{name}-{task}{suffix}.png"
                gv.save_grid(
                    torch.cat([shown, *(o[:k] for o in routes.values()), original[:k]]), picture, nrow=k
                )
                row["picture"] = str(picture.relative_to(common.REPO))
                row["picture_rows"] = ["input", *routes, "original"]
                row["summary"] = summarise(task, row)
                rows[task] = row
                loads.append(os.getloadavg()[0])
                print(
                    f"{name} {task}: "
                    + ", ".join(
                        f"{r} FID {v['fid']:.1f}"
                        for r, v in row.items()
                        if isinstance(v, dict) and "fid" in v
                    ),
                    flush=True,
                )
            results[name] = {"minutes": minutes, "n": len(original), "tasks": rows}
    common.emit(
        {
            "benchmark": "restoration",
            "mode": "quick" if args.quick else "full",
            "skipped": skipped,
            "results": results,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "table": table_rows(results),
        },
        args,
    )


def summarise(task: str, row: dict) -> dict:
    base = row["baseline"]["fid"]
    out = {
        f"{r}_fid_over_baseline": v["fid"] / base
        for r, v in row.items()
        if isinstance(v, dict) and "fid" in v and r != "baseline"
    }
    best = min(
        (v["fid"], r) for r, v in row.items() if isinstance(v, dict) and "fid" in v and r != "baseline"
    )
    out["best_route"] = best[1]
    out["target_met"] = best[0] <= 0.5 * base
    if task == "inpaint" and "task-model" in row:
        out["zero_shot_over_task_model"] = row["zero-shot"]["fid"] / row["task-model"]["fid"]
    if task == "colorize":
        real = row["real_colourfulness"]
        out["colourfulness_ratio"] = {
            r: v["colourfulness"] / real
            for r, v in row.items()
            if isinstance(v, dict) and "colourfulness" in v
        }
    return out


def table_rows(results: dict) -> list[dict]:
    table = []
    for name, r in results.items():
        for task, row in r["tasks"].items():
            routes = [k for k, v in row.items() if isinstance(v, dict) and "fid" in v]
            table.append(
                {
                    "figure": f"{task} on {name} ({r['minutes']:g}-min models, N = {r['n']}): domain FID / PSNR / judge-feature distance, "
                    + ", ".join(routes),
                    "value": " ; ".join(
                        f"{row[k]['fid']:.1f} / {row[k]['psnr_db']:.1f} / {row[k]['feature_distance']:.2f}"
                        for k in routes
                    )
                    + f" (best route / baseline FID {min(row['summary'][f'{k}_fid_over_baseline'] for k in routes if k != 'baseline'):.2f}; target <= 0.5)",
                }
            )
    return table


if __name__ == "__main__":
    main()
