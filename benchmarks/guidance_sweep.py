"""Classifier-free guidance's trade-off: FID against alignment as the guidance scale grows.

A text-conditioned ``ddpm-text`` is trained on a digit set with template captions ("a handwritten
digit seven"), and the unconditional ``ddpm`` of the same network for the same wall-clock budget.
The text model then samples the same N images (image k from generator ``seeding.image_seed(0, k)``,
prompted "a handwritten digit K" for K = k mod 10) at every guidance scale w in {0, 1, 2, 3, 5, 8};
each set gets its domain FID under the equal-N protocol (INTERFACES.md) and its alignment: the
domain judge's accuracy on the prompted digit (conditional accuracy). The unconditional model's FID
at the same N is the reference of the target.

Target (issue 19, MNIST, 15 minutes per model): conditional accuracy >= 0.95 at the best guidance,
with domain FID <= 1.5x the unconditional model's at the same budget.

Full mode: MNIST (``../shared/datasets/mnist``), 15 minutes per model, N = 2000.
``--quick``: digits, 2 minutes per model, N = 500.

    python benchmarks/guidance_sweep.py --quick [--threads 1]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data
from genvision.families.base import sample_in_batches
from genvision.metrics import judges
from genvision.metrics.evaluate import quantise

MEASURES = [
    "benchmarks/guidance_sweep.py",
    "src/genvision/families/diffusion/",
    "src/genvision/data/captions.py",
    *common.TRAINED_AND_SCORED,
]
SCALES = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)
QUICK = {"data": "digits", "minutes": 2.0, "n": 500}
FULL = {"data": "mnist:../shared/datasets/mnist", "minutes": 15.0, "n": 2000}
NET = {"base_channels": 32}
TRAIN = {"progress": False, "sample_every": 0, "save_every": 0}


def prompts_for(n: int) -> tuple[torch.Tensor, list[str]]:
    labels = torch.arange(n) % 10
    return labels, [f"a handwritten digit {data.datasets.DIGIT_NAMES[k]}" for k in labels.tolist()]


def score(images: torch.Tensor, labels: torch.Tensor | None, spec: str, levels: int) -> dict:
    card = common.fid_against(images, spec, seed=0)
    out = {"fid": card["fid"], "ci": card.get("ci"), "floor": card["floor"]}
    if labels is not None:
        judge = judges.get_judge(data.load(spec, "train"), data.load(spec, "test"))
        predicted = judge.logits(quantise(images, levels)).argmax(dim=1)
        out["accuracy"] = int((predicted == labels).sum()) / len(labels)  # exact, unlike a float32 mean
    return out


def plot(sweep: list[dict], unconditional_fid: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot([r["accuracy"] for r in sweep], [r["fid"] for r in sweep], "o-")
    for r in sweep:
        ax.annotate(
            f"w={r['guidance_scale']:g}", (r["accuracy"], r["fid"]), textcoords="offset points", xytext=(4, 4)
        )
    ax.axhline(unconditional_fid, color="grey", ls="--", label="unconditional ddpm")
    ax.axhline(1.5 * unconditional_fid, color="grey", ls=":", label="1.5x unconditional")
    ax.set_xlabel("conditional accuracy (domain judge)")
    ax.set_ylabel("domain FID")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    common.set_threads(args)
    mode = QUICK if args.quick else FULL
    spec, n = mode["data"], mode["n"]
    levels = data.load(spec, "test").levels
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    labels, prompts = prompts_for(n)
    with tempfile.TemporaryDirectory(prefix="guidance-bench-") as tmp:
        runs = {}
        for name in ("ddpm-text", "ddpm"):
            runs[name] = Path(tmp) / name
            gv.train(name, data=spec, out=runs[name], minutes=mode["minutes"], model_config=NET, **TRAIN)
            loads.append(os.getloadavg()[0])
        steps = {name: common.training_records(run)[-1]["step"] for name, run in runs.items()}
        plain = gv.load(runs["ddpm"])
        unconditional = score(sample_in_batches(plain, n, seed=0, batch_size=250), None, spec, levels)
        model = gv.load(runs["ddpm-text"])
        sweep = []
        for w in SCALES:
            t0 = time.perf_counter()
            images = sample_in_batches(
                model, n, seed=0, batch_size=250, prompts=prompts, options={"guidance_scale": w}
            )
            row = {
                "guidance_scale": w,
                **score(images, labels, spec, levels),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            sweep.append(row)
            print(f"w={w:g}: FID {row['fid']:.2f}, accuracy {row['accuracy']:.3f}", flush=True)
            loads.append(os.getloadavg()[0])
    within = [r for r in sweep if r["fid"] <= 1.5 * unconditional["fid"]]
    best = max(within, key=lambda r: r["accuracy"]) if within else max(sweep, key=lambda r: r["accuracy"])
    picture = common.RESULTS / f"guidance_sweep{'-quick' if args.quick else ''}.png"
    plot(sweep, unconditional["fid"], picture)
    met = best["accuracy"] >= 0.95 and best["fid"] <= 1.5 * unconditional["fid"]
    common.emit(
        {
            "benchmark": "guidance_sweep",
            "mode": "quick" if args.quick else "full",
            "settings": {**mode, "scales": list(SCALES), "network": NET},
            "training_steps": steps,
            "unconditional": unconditional,
            "sweep": sweep,
            "best": best,
            "target_met": met,
            "plot": str(picture.relative_to(common.REPO)),
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "table": [
                {
                    "figure": f"ddpm-text on {spec.split(':')[0]}, {mode['minutes']:g} min: domain FID / conditional "
                    f"accuracy at w = {', '.join(f'{w:g}' for w in SCALES)} (N = {n})",
                    "value": "; ".join(f"{r['fid']:.2f} / {r['accuracy']:.3f}" for r in sweep)
                    + f" (unconditional ddpm FID {unconditional['fid']:.2f})",
                },
                {
                    "figure": "best guidance within 1.5x the unconditional FID: accuracy (target >= 0.95)",
                    "value": f"w = {best['guidance_scale']:g}: {best['accuracy']:.3f}, FID {best['fid']:.2f} "
                    f"({'met' if met else 'NOT met'})",
                },
            ],
        },
        args,
    )


if __name__ == "__main__":
    main()
