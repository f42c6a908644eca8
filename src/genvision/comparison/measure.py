"""What ``genvision compare`` measures of a run: FID at a checkpoint, the full evaluation, the
trainer's clock and the sampling rate.

Every model gets the same metrics, N and seed (``measure``); ``fid_point`` places an intermediate
FID on the trainer's clock; ``training_stats`` reads that clock from ``metrics.jsonl`` (a model
trained in stages counts both stages); ``sampling_rate`` times ``sampling.sample`` after a warm-up
and keeps the first set as the run's row of ``grids.png``. The orchestration around them is
``runner.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .. import io
from ..errors import one_line
from ..families.base import has
from ..metrics import inception
from ..metrics.evaluate import evaluate
from ..model_dir import load_model_dir
from ..sampling import resolve_device, sample
from ..training.staged import STAGE
from .plan import Plan

#: the full evaluation's metrics; bits/dim is added for models with a likelihood
METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "memorization")
#: what the state keeps of each metric entry (``metrics.json`` in the run directory has the rest)
KEPT = (
    "value", "ci", "scale", "floor", "floor_std", "n_floor", "equal_n", "n_generated", "ratio_to_floor",
    "features", "reason",
)  # fmt: skip
#: sampling rate: images per timed call, repeated until this much sampling time or this many calls
SPEED_N = 256
SPEED_MIN_SECONDS = 1.0
SPEED_MAX_CALLS = 8
#: a run directory's compare extras (speed samples, FID during training, Inception FID)
EXTRAS = "compare"


def fid_point(run_dir: Path, plan: Plan, rec: dict, fraction: float, features) -> dict:
    """FID of the run as it stands, with its place on the trainer's clock."""
    result = evaluate(
        run_dir,
        data=plan.data,
        metrics=["fid"],
        n=plan.n,
        seed=rec["seed"],
        out=run_dir / EXTRAS / f"fid-{round(fraction * 100):03d}pct",
        features=features,
    )
    fid = _slim(result["metrics"]["fid"])
    return {"fraction": fraction, **training_stats(run_dir), "fid": fid.get("value"), "ci": fid.get("ci")}


def measure(run_dir: Path, plan: Plan, rec: dict, features, progress: bool) -> dict:
    """The full evaluation of a trained run: metrics, Inception FID where possible, rates, size."""
    model = load_model_dir(run_dir)
    parameters = sum(p.numel() for p in model.parameters())
    names, bpd_note = list(METRICS), None
    if not has(model, "log_likelihood"):
        bpd_note = model.capability_notes.get("log_likelihood", f"{model.family} models have no likelihood")
    elif not plan.wants_bpd(model.family):
        bpd_note = "left out by --quick (slow for diffusion; genvision evaluate RUN --metrics bpd gives it)"
    else:
        names.append("bpd")
    del model
    result = evaluate(
        run_dir,
        data=plan.data,
        metrics=names,
        n=plan.n,
        seed=rec["seed"],
        features=features,
        progress=progress,
    )
    metrics = {k: _slim(v) for k, v in result["metrics"].items() if k in names}
    if bpd_note:
        metrics["bpd"] = {"value": "n/a", "reason": bpd_note}
    out = {
        "metrics": metrics,
        "eval_seconds": result.get("seconds"),
        "train": training_stats(run_dir),
        "sampling": sampling_rate(run_dir, rec["seed"]),
        "parameters": parameters,
    }
    if features == "domain" and inception.available():
        try:
            extra = evaluate(
                run_dir,
                data=plan.data,
                metrics=["fid"],
                n=plan.n,
                seed=rec["seed"],
                features="inception",
                out=run_dir / EXTRAS / "inception",
            )
            out["inception_fid"] = _slim(extra["metrics"]["fid"])
        except (ValueError, OSError) as e:  # a damaged weights file: the column says why, the run stands
            out["inception_fid"] = {"value": "n/a", "reason": one_line(e)}
    return out


def training_stats(run_dir: Path) -> dict:
    """Steps, images and trainer-clock seconds so far, and images per second (``metrics.jsonl``).

    A model trained in stages: ``elapsed`` adds its autoencoder's seconds (the budget counts both
    stages), which ``stage_one`` gives apart; steps, images and their rate are the latent model's.
    """
    own = _stats(run_dir)
    if not (run_dir / STAGE / "metrics.jsonl").is_file():
        return own
    first = _stats(run_dir / STAGE)
    return {**own, "elapsed": (own["elapsed"] or 0.0) + (first["elapsed"] or 0.0), "stage_one": first}


def _stats(run_dir: Path) -> dict:
    records = [r for r in io.read_jsonl(run_dir / "metrics.jsonl") if "elapsed" in r and "images" in r]
    if not records:
        return {"step": None, "images": None, "elapsed": None, "img_per_s": None}
    last = records[-1]
    elapsed, images = float(last["elapsed"]), int(last["images"])
    return {
        "step": last.get("step"),
        "images": images,
        "elapsed": elapsed,
        "img_per_s": images / elapsed if elapsed > 0 else None,
    }


def sampling_rate(run_dir: Path, seed: int) -> dict:
    """Images per second of ``sampling.sample`` with the model's defaults, after a warm-up call.

    The first timed set (``SPEED_N`` images, seed ``seed``, labels k mod K for conditional models)
    is kept as ``compare/samples-seed<S>.npz``: its first images are the model's row in grids.png.
    """
    device = resolve_device("auto")
    model = load_model_dir(run_dir, device=device)
    labels = torch.arange(SPEED_N) % model.config.num_classes if model.config.conditional else None
    sample(model, 2, seed=seed + 1, labels=None if labels is None else labels[:2])  # warm-up
    path = run_dir / EXTRAS / f"samples-seed{seed}.npz"
    seconds = sample(model, SPEED_N, seed=seed, labels=labels, out=path)["seconds"]
    calls = 1
    while seconds < SPEED_MIN_SECONDS and calls < SPEED_MAX_CALLS:
        seconds += sample(model, SPEED_N, seed=seed, labels=labels)["seconds"]
        calls += 1
    return {
        "images": SPEED_N * calls,
        "seconds": seconds,
        "img_per_s": SPEED_N * calls / seconds if seconds > 0 else None,
        "batch_size": SPEED_N,
        "device": str(device),
        "samples": str(path.relative_to(run_dir)),
    }


def _slim(entry) -> dict:
    """The scalar fields of a metric entry (cards dropped), non-finite numbers as strings."""
    if not isinstance(entry, dict):
        return {"value": "n/a"}
    out = {}
    for k in KEPT:
        if k in entry:
            v = entry[k]
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            elif isinstance(v, (list, tuple)):
                v = [float(x) if isinstance(x, (int, float)) and math.isfinite(x) else str(x) for x in v]
            out[k] = v
    return out
