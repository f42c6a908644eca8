"""Autoregressive family on MNIST: bits/dim after a fixed budget, binarised NLL, sampling speed,
training throughput against pytorch-generative's PixelCNN. Prints one JSON object.

- ``bpd_8bit``: MNIST (256 levels) test bits/dim of pixelcnn, gated-pixelcnn and pixelrnn after
  the same training time each (quick: 60 s, on the first 1000 test images; full: 30 min, all 10k).
- ``binary_nll``: binarised MNIST test NLL in nats of gated-pixelcnn, measured after each slice
  of training (the curve of NLL against training seconds); the published figures beside it
  (:data:`PUBLISHED_BINARY_NLL`) took hours on a GPU.
- ``sampling``: 64 images at 28x28 from the Gated PixelCNN and the PixelCNN, cached against
  naive (whole network per sub-pixel); quick mode times the naive sampler on the first rows and scales by rows (every
  naive step costs one full pass), and checks those rows equal the cached sampler's.
- ``throughput``: training images/s of genvision's PixelCNN and pytorch-generative's at the same
  size (residual blocks, channels, head) on binarised 28x28 batches, steps alternating in one
  process. pytorch-generative is not on PyPI: give its checkout with ``--peer-path`` (default
  ``$PYTORCH_GENERATIVE_PATH``); its code is only imported from there, never copied.

    python benchmarks/ar_mnist.py --quick [--threads 1] [--peer-path DIR]
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import common
import torch
from common import emit, load_note, parser, set_threads

import genvision as gv
from genvision import data
from genvision.families.base import sample_in_batches

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/ar_mnist.py",
    "src/genvision/families/autoregressive/",
    *common.TRAINED,
]

MNIST = "mnist:../shared/datasets/mnist"
BINARY = "binary-mnist:../shared/datasets/mnist"
PUBLISHED_BINARY_NLL = {
    "pytorch-generative PixelCNN": 81.45,
    "pytorch-generative Gated PixelCNN": 81.50,
    "PixelRNN paper PixelCNN": 81.30,
}


def test_nll(model, spec: str, n: int) -> float:
    """Mean test NLL in nats per image over the first ``n`` test images."""
    test = data.load(spec, "test")
    n = min(n, len(test))
    total = 0.0
    for start in range(0, n, 250):
        x, _ = test.batch(torch.arange(start, min(n, start + 250)))
        total += -model.log_likelihood(x).sum().item()
    return total / n


def train_for(name: str, spec: str, seconds: float, out: Path, resume: bool = False) -> Path:
    gv.train(
        name,
        data=spec,
        out=out,
        minutes=seconds / 60,
        resume=resume,
        overwrite=not resume,
        progress=False,
        sample_every=0,
        save_every=10**9,
        num_samples=4,
    )
    return out


def bpd_8bit(budget: float, n_test: int, work: Path, loads: list) -> dict:
    rows = {}
    for name in ("pixelcnn", "gated-pixelcnn", "pixelrnn"):
        out = train_for(name, MNIST, budget, work / f"{name}-mnist")
        loads.append(os.getloadavg()[0])
        model = gv.load(out)
        t0 = time.perf_counter()
        nll = test_nll(model, MNIST, n_test)
        rows[name] = {
            "test_bpd": nll / (784 * math.log(2)),
            "train_seconds": budget,
            "images_seen": _images_seen(out),
            "eval_images_per_s": n_test / (time.perf_counter() - t0),
        }
    return rows


def _images_seen(out: Path) -> int | None:
    records = common.training_records(out)
    return records[-1]["images"] if records else None


def binary_curve(budget: float, slices: int, n_test: int, work: Path, loads: list) -> dict:
    out, curve = work / "gated-binary", []
    for k in range(slices):
        train_for("gated-pixelcnn", BINARY, budget * (k + 1) / slices, out, resume=k > 0)
        loads.append(os.getloadavg()[0])
        curve.append(
            {
                "train_seconds": budget * (k + 1) / slices,
                "test_nll_nats": test_nll(gv.load(out), BINARY, n_test),
            }
        )
    return {"model": "gated-pixelcnn", "curve": curve, "published": PUBLISHED_BINARY_NLL}


def sampling(model, naive_rows: int | None) -> dict:
    """Seconds to draw 64 images cached, and naive (measured on ``naive_rows`` rows, scaled)."""
    t0 = time.perf_counter()
    cached = sample_in_batches(model, 64, seed=0, batch_size=64)
    cached_s = time.perf_counter() - t0
    side = model.config.image_size
    rows = naive_rows or side
    known = torch.zeros(64, 1, side, side, dtype=torch.bool)
    known[:, :, rows:] = True  # naive sampler draws only the first rows; later ones are skipped
    x = torch.zeros(64, 1, side, side)
    t0 = time.perf_counter()
    naive = model.complete(x, known, seed=0, cached=False)
    naive_s = (time.perf_counter() - t0) * side / rows
    return {
        "images": 64,
        "cached_s": cached_s,
        "naive_s": naive_s,
        "naive_measured_rows": rows,
        "speedup": naive_s / cached_s,
        "identical_on_measured_rows": bool(torch.equal(naive[:, :, :rows], cached[:, :, :rows])),
    }


def load_peer(path: str | None):
    """pytorch-generative's PixelCNN class from a checkout, or (None, why)."""
    root = Path(path or "") / "pytorch_generative"
    if not path or not (root / "models" / "autoregressive" / "pixel_cnn.py").is_file():
        return (
            None,
            f"pytorch-generative not found at {path!r}; pass --peer-path or set PYTORCH_GENERATIVE_PATH",
        )
    # bare packages instead of the package __init__s, which import torchvision and every model
    for name, sub in (("pytorch_generative", root), ("pytorch_generative.models", root / "models")):
        module = types.ModuleType(name)
        module.__path__ = [str(sub)]
        sys.modules[name] = module
    return importlib.import_module("pytorch_generative.models.autoregressive.pixel_cnn").PixelCNN, None


def throughput(peer_path: str | None, steps: int, loads: list) -> dict:
    blocks, channels, head, batch = 5, 32, 32, 32
    ours = gv.create(
        "pixelcnn",
        image_size=28,
        levels=2,
        head="softmax",
        width=2 * channels,
        num_layers=blocks,
        head_width=head,
    )
    result = {
        "size": {
            "residual_blocks": blocks,
            "residual_channels": channels,
            "head_channels": head,
            "batch": batch,
        }
    }
    peer_cls, why = load_peer(peer_path)
    peer = (
        peer_cls(
            in_channels=1, out_channels=1, n_residual=blocks, residual_channels=channels, head_channels=head
        )
        if peer_cls
        else None
    )
    x = (torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.2).float() * 2 - 1

    def ours_step(opt):
        opt.zero_grad()
        ours.loss(x)["loss"].backward()
        opt.step()

    def peer_step(opt):
        opt.zero_grad()
        logits = peer((x + 1) / 2)
        torch.nn.functional.binary_cross_entropy_with_logits(logits, (x + 1) / 2).backward()
        opt.step()

    runs = [("genvision", ours, ours_step)] + ([("pytorch-generative", peer, peer_step)] if peer else [])
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m, _ in runs}
    times = {name: 0.0 for name, _, _ in runs}
    for k in range(steps + 1):  # step 0 warms up, not timed
        for name, _, step in runs:
            t0 = time.perf_counter()
            step(opts[name])
            times[name] += (time.perf_counter() - t0) if k else 0.0
    loads.append(os.getloadavg()[0])
    for name, model, _ in runs:
        result[name] = {
            "images_per_s": steps * batch / times[name],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    if peer is None:
        result["pytorch-generative"] = {"skipped": why}
    else:
        result["ratio_genvision_over_peer"] = (
            result["genvision"]["images_per_s"] / result["pytorch-generative"]["images_per_s"]
        )
        result["note"] = (
            "the peer has no channel masking (1 channel here, so equal work); loss: ours softmax over 2 levels, peer Bernoulli logits"
        )
    return result


def main():
    p = parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument(
        "--peer-path",
        default=os.environ.get("PYTORCH_GENERATIVE_PATH"),
        help="pytorch-generative checkout (the directory holding pytorch_generative/)",
    )
    args = p.parse_args()
    set_threads(args)
    quick = args.quick
    budget = 60.0 if quick else 1800.0
    n_test = 1000 if quick else 10000
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bpd = bpd_8bit(budget, n_test, work, loads)
        binary = binary_curve(budget, 2 if quick else 6, n_test, work, loads)
        speed = {
            name: sampling(gv.load(work / f"{name}-mnist"), 2 if quick else None)
            for name in ("gated-pixelcnn", "pixelcnn")
        }
    loads.append(os.getloadavg()[0])
    peer = throughput(args.peer_path, 5 if quick else 50, loads)
    table = [
        {"figure": f"MNIST test bits/dim, {k}, {budget / 60:.0f} min CPU", "value": round(v["test_bpd"], 3)}
        for k, v in bpd.items()
    ]
    table.append(
        {
            "figure": "binarised MNIST NLL (nats), gated-pixelcnn",
            "value": round(binary["curve"][-1]["test_nll_nats"], 2),
        }
    )
    if "ratio_genvision_over_peer" in peer:
        table.append(
            {
                "figure": "PixelCNN training img/s, genvision / pytorch-generative (same size, binarised 28x28)",
                "value": f"{peer['genvision']['images_per_s']:.0f} / "
                f"{peer['pytorch-generative']['images_per_s']:.0f} "
                f"(ratio {peer['ratio_genvision_over_peer']:.2f})",
            }
        )
    for name, row in speed.items():
        table.append(
            {
                "figure": f"cached / naive sampling speed-up, {name}, 64 images 28x28",
                "value": round(row["speedup"], 1),
            }
        )
    emit(
        {
            "benchmark": "ar_mnist",
            "mode": "quick" if quick else "full",
            "budget_seconds_per_model": budget,
            "test_images": n_test,
            "bpd_8bit": bpd,
            "binary_nll": binary,
            "sampling": speed,
            "throughput": peer,
            "load": load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "table": table,
        },
        args,
    )


if __name__ == "__main__":
    main()
