"""Real-versus-generated detection on generators the detector never saw: leave one family out.

One model per family is trained on MNIST for the budget (``ddpm``, ``sngan``, ``gated-pixelcnn``,
``glow``, ``vae``: diffusion, GAN, autoregressive, flow, VAE). For each family F, ``genvision
detect`` (``apps/detect.py``: the judges' network, task real-vs-generated) trains on real MNIST
train images against samples of the *other* four families and is scored on held-out real test
images against samples of F alone: AUROC clean and after JPEG quality 75. The mean over the five
held-out families is the figure.

Targets (issue 23): mean leave-one-family-out AUROC >= 0.9 clean and >= 0.8 after JPEG.

- ``--quick`` (at most 10 minutes): 0.75-minute models, n = 400 images per side.
- full: 5-minute models, n = 2,000.

    python benchmarks/detector.py --quick [--threads 1] [--json out.json]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data
from genvision.apps import detect

MEASURES = [
    "benchmarks/detector.py",
    "src/genvision/apps/detect.py",
    "src/genvision/metrics/judges.py",
    *common.TRAINED_AND_SCORED,
]
FAMILIES = {
    "diffusion": "ddpm",
    "gan": "sngan",
    "autoregressive": "gated-pixelcnn",
    "flow": "glow",
    "vae": "vae",
}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    minutes, n = (0.75, 400) if args.quick else (5.0, 2000)
    spec = f"mnist:{data.shared_path('datasets', 'mnist')}"
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    held_out = {}
    with tempfile.TemporaryDirectory(prefix="detector-") as tmp:
        runs = {}
        for family, name in FAMILIES.items():
            runs[family] = str(Path(tmp) / name)
            gv.train(name, data=spec, out=runs[family], minutes=minutes, progress=False, sample_every=0)
            loads.append(os.getloadavg()[0])
            print(f"trained {name}", flush=True)
        for family in FAMILIES:
            others = [runs[f] for f in FAMILIES if f != family]
            r = detect.detect(spec, others, spec, [runs[family]], n=n, seed=0, cache_dir=Path(tmp) / "judges")
            held_out[family] = {"model": FAMILIES[family], **r["auroc"], "n": r["n"]}
            loads.append(os.getloadavg()[0])
            print(
                f"held out {family}: AUROC clean {r['auroc']['clean']:.3f}, JPEG {r['auroc']['jpeg']:.3f}",
                flush=True,
            )
    mean_clean = statistics.fmean(h["clean"] for h in held_out.values())
    mean_jpeg = statistics.fmean(h["jpeg"] for h in held_out.values())
    common.emit(
        {
            "benchmark": "detector",
            "mode": "quick" if args.quick else "full",
            "train_minutes_per_model": minutes,
            "n_per_side": n,
            "held_out": held_out,
            "mean_auroc": {"clean": mean_clean, "jpeg": mean_jpeg},
            "target": "mean leave-one-family-out AUROC >= 0.9 clean, >= 0.8 after JPEG 75",
            "target_met": mean_clean >= 0.9 and mean_jpeg >= 0.8,
            "table": [
                {
                    "figure": f"leave-one-family-out AUROC of the real-vs-generated detector on MNIST "
                    f"({minutes:g}-min models), clean / JPEG 75, mean over 5 families (target 0.9 / 0.8)",
                    "value": f"{mean_clean:.3f} / {mean_jpeg:.3f}; "
                    + ", ".join(f"{f} {h['clean']:.2f}/{h['jpeg']:.2f}" for f, h in held_out.items()),
                }
            ],
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
        },
        args,
    )


if __name__ == "__main__":
    main()
