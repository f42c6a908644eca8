"""Synthetic training data: does a class-conditional model trained on n real images per class help a
classifier trained on those same n images?

For each n (real images per class, drawn from MNIST's train split with the seed) and each seed, a
small CNN (two conv layers, the same architecture, optimiser and number of steps in every arm) is
trained on:

- ``real``: the n x 10 real images;
- ``real+shift``: the same with the classic augmentation (random shifts of up to 2 pixels);
- ``real+synthetic``: the real images and M synthetic images per class from a
  ``flow-matching-cond`` model trained *on those same real images* (``genvision train`` on an
  ``npz:`` of them, sampled by class);
- ``real+synthetic+shift``: both;
- ``real+synthetic(all data)``: synthetic images from a model trained on the whole train split
  (the upper line: what a good generator would give), with the same n real images.

Each arm's accuracy on the full MNIST test split (10,000 images); mean and spread over the seeds.
A plot of accuracy against n (``results/synthetic_data-<mode>.png``).

Target (issue 23): at n = 10 per class, real + synthetic beats real alone by >= 3 points and
beats augmentation alone; where synthetic data hurts, the table says so.

- ``--quick`` (at most 10 minutes): n = 10, one seed, generators trained 1.5 minutes, M = 50.
- full: n = 5, 10, 50, 500; seeds 0, 1, 2; generators trained 5 minutes; M = 200.

    python benchmarks/synthetic_data.py --quick [--threads 1] [--json out.json]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import genvision as gv
from genvision import data

MEASURES = [
    "benchmarks/synthetic_data.py",
    "src/genvision/families/diffusion/",
    *common.TRAINED_AND_SCORED,
]
QUICK = {"n": [10], "seeds": [0], "minutes": 1.5, "m": 50}
FULL = {"n": [5, 10, 50, 500], "seeds": [0, 1, 2], "minutes": 5.0, "m": 200}
STEPS = 600  # classifier steps in every arm
BATCH = 64
SHIFT = 2


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.LazyLinear(128)  # any image size (28x28 MNIST: 64 x 7 x 7 inputs)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc2(F.dropout(F.relu(self.fc1(x.flatten(1))), 0.25, self.training))


def shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random offset of up to SHIFT pixels (zero-filled; background is -1)."""
    out = torch.full_like(x, -1.0)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(torch.randint(-SHIFT, SHIFT + 1, (len(x), 2), generator=g).tolist()):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = x[i, :, ys, xs]
    return out


def classify(
    x: torch.Tensor, y: torch.Tensor, test: tuple, seed: int, augment: bool, steps: int = STEPS
) -> float:
    """Test accuracy of a SmallCNN trained for ``steps`` steps on (x, y)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = SmallCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (BATCH,), generator=g)
        xb = shift(x[idx], g) if augment else x[idx]
        loss = F.cross_entropy(net(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test[0]), 1000):
            correct += (
                (net(test[0][start : start + 1000]).argmax(-1) == test[1][start : start + 1000]).sum().item()
            )
    return correct / len(test[0])


def subset(train_ds, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images per class of the train split, drawn with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for k in range(train_ds.num_classes):
        members = (train_ds.labels == k).nonzero().flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:n]])
    idx = torch.cat(idx)
    x, y = train_ds.batch(idx)
    return x, y


def generator_samples(x, y, minutes: float, m: int, seed: int, workdir: Path, **train) -> torch.Tensor:
    """M images per class from a flow-matching-cond trained on (x, y) for ``minutes``: (10 M, 1, H, W)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "real.npz"
    arr = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez(path, images=arr, labels=y.numpy().astype(np.int64))
    return train_and_sample(f"npz:{path}", minutes, m, seed, workdir / "model", **train)


def train_and_sample(spec: str, minutes: float | None, m: int, seed: int, out: Path, **train) -> torch.Tensor:
    """``train``: other ``genvision.train`` options (a test's ``steps=`` and ``model_config=``)."""
    budget = {"minutes": minutes} if minutes else {}
    gv.train(
        "flow-matching-cond", data=spec, out=out, seed=seed, progress=False, sample_every=0, **budget, **train
    )
    model = gv.load(out)
    labels = torch.arange(10).repeat_interleave(m)
    images = []
    for start in range(0, len(labels), 250):
        images.append(
            model.sample(
                len(labels[start : start + 250]), y=labels[start : start + 250], seed=seed + start
            ).cpu()
        )
    return torch.cat(images)


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    spec = f"mnist:{data.shared_path('datasets', 'mnist')}"
    train_ds, test_ds = data.load(spec, "train"), data.load(spec, "test")
    test = test_ds.batch(torch.arange(len(test_ds)))
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    labels_all = torch.arange(10).repeat_interleave(plan["m"])
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="synthetic-") as tmp:
        tmp = Path(tmp)
        upper = train_and_sample(spec, plan["minutes"], plan["m"], 0, tmp / "all-data")
        loads.append(os.getloadavg()[0])
        for n in plan["n"]:
            arms: dict[str, list[float]] = {}
            for seed in plan["seeds"]:
                x, y = subset(train_ds, n, seed)
                synth = generator_samples(x, y, plan["minutes"], plan["m"], seed, tmp / f"n{n}-s{seed}")
                mixed = (torch.cat([x, synth]), torch.cat([y, labels_all]))
                mixed_upper = (torch.cat([x, upper]), torch.cat([y, labels_all]))
                for arm, (xs, ys, aug) in {
                    "real": (x, y, False),
                    "real+shift": (x, y, True),
                    "real+synthetic": (*mixed, False),
                    "real+synthetic+shift": (*mixed, True),
                    "real+synthetic(all data)": (*mixed_upper, False),
                }.items():
                    arms.setdefault(arm, []).append(classify(xs, ys, test, seed, aug))
                loads.append(os.getloadavg()[0])
                print(
                    f"n={n} seed {seed}: " + ", ".join(f"{a} {v[-1]:.3f}" for a, v in arms.items()),
                    flush=True,
                )
            rows[str(n)] = {
                arm: {
                    "mean": statistics.fmean(v),
                    "std": statistics.stdev(v) if len(v) > 1 else None,
                    "per_seed": v,
                }
                for arm, v in arms.items()
            }
    summary = {}
    if "10" in rows:
        r = rows["10"]
        gain = r["real+synthetic"]["mean"] - r["real"]["mean"]
        summary = {
            "n10_gain_points": 100 * gain,
            "n10_beats_shift": r["real+synthetic"]["mean"] > r["real+shift"]["mean"],
            "target_met": 100 * gain >= 3 and r["real+synthetic"]["mean"] > r["real+shift"]["mean"],
        }
    hurts = [f"n={n}" for n, r in rows.items() if r["real+synthetic"]["mean"] < r["real"]["mean"]]
    picture = common.RESULTS / f"synthetic_data-{'quick' if args.quick else 'full'}.png"
    plot(rows, picture)
    table = [
        {
            "figure": f"MNIST test accuracy with n real images per class (+ {plan['m']} synthetic per class from a "
            f"flow-matching-cond trained {plan['minutes']:g} min on them), {len(plan['seeds'])} seed(s)",
            "value": "; ".join(
                f"n={n}: real {r['real']['mean']:.3f}, +shift {r['real+shift']['mean']:.3f}, "
                f"+synthetic {r['real+synthetic']['mean']:.3f}, +both {r['real+synthetic+shift']['mean']:.3f}, "
                f"+synthetic from all data {r['real+synthetic(all data)']['mean']:.3f}"
                for n, r in rows.items()
            ),
        }
    ]
    common.emit(
        {
            "benchmark": "synthetic_data",
            "mode": "quick" if args.quick else "full",
            "plan": {**plan, "classifier_steps": STEPS, "batch": BATCH, "shift_pixels": SHIFT},
            "accuracy": rows,
            "summary": summary,
            "synthetic_hurts_at": hurts,
            "picture": str(picture.relative_to(common.REPO)),
            "table": table,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
        },
        args,
    )


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm in next(iter(rows.values())):
        ax.plot(ns, [rows[str(n)][arm]["mean"] for n in ns], marker="o", label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("real images per class")
    ax.set_ylabel("MNIST test accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
