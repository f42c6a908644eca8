"""``genvision evaluate``: score generated images against a dataset with domain FID.

SOURCE is a model, a model directory (sampled with its defaults and seed 0), ``npz:FILE``
(``images`` uint8 (N, H, W, C) 0..255, every image used) or ``folder:DIR`` (every readable image
in DIR, both of its hash splits). Every set of generated images is quantised to the dataset's
grey levels before it is judged, as saving it to a file would do, so a model is not rewarded or
punished for sub-level noise and ``npz:`` files of real data land exactly on the data's levels.

Domain FID (INTERFACES.md, "Domain-FID protocol"): features of the judge
(:mod:`genvision.metrics.domain`); reference = the train split; floor = the test split against
the train split; N generated = 1,000 for digits-size data (train split under 10,000 images) and
10,000 otherwise, unless ``n`` is given. FID is biased upwards at small N, so every result states
its N; the digits floor uses the 450 test images, so it carries more bias than a 1,000-image FID
and is a slightly generous floor.

Always reported beside FID: the class histogram of the generated images under the judge (counts,
entropy in nats), the judge's mean max-softmax confidence on them and on the test split, and the
judge's test accuracy. The other metric names of INTERFACES.md arrive with the evaluation suite.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from .. import io
from ..families.base import sample_in_batches
from . import domain, fid

KNOWN = (
    "fid",
    "kid",
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
    "bpd",
    "nll",
    "elbo",
    "memorization",
    "conditional_accuracy",
)
ALIASES = {"pr": ("precision", "recall"), "dc": ("density", "coverage")}
AVAILABLE = ("fid",)
FEATURES = ("domain",)
SMALL_N, LARGE_N = 1_000, 10_000


def resolve_metrics(metrics) -> list[str]:
    """Metric names (list or comma-separated string, aliases expanded); None = all available."""
    if metrics is None:
        return list(AVAILABLE)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names: list[str] = []
    for m in metrics:
        for name in ALIASES.get(m, (m,)):
            if name not in KNOWN:
                raise ValueError(
                    f"unknown metric {m!r}; known: {', '.join(KNOWN)} (aliases: pr = precision+recall, "
                    "dc = density+coverage)"
                )
            if name not in AVAILABLE:
                raise ValueError(
                    f"metric {m!r} arrives with the evaluation suite; available now: {', '.join(AVAILABLE)}"
                )
            if name not in names:
                names.append(name)
    return names


def default_n(train_ds) -> int:
    """Generated-set size: 1,000 for digits-size data, 10,000 for MNIST-size (train >= 10,000)."""
    return SMALL_N if len(train_ds) < 10_000 else LARGE_N


def evaluate(
    source,
    data: str | None = "digits",
    metrics=None,
    n: int | None = None,
    out=None,
    *,
    seed: int = 0,
    batch_size: int = 250,
    features: str = "domain",
    sample_options: dict | None = None,
) -> dict:
    """Evaluate generated images from ``source`` against dataset ``data``.

    Args:
        source: a model, a model directory (str / Path), ``"npz:FILE"`` or ``"folder:DIR"``.
        data: dataset spec; None takes the spec recorded in a model directory's config.json.
        metrics: names or comma-separated string (INTERFACES.md); None = all available.
        n: number of generated images (models) or the first n images (files); default per dataset.
        out: folder for ``metrics.json``; a model directory source writes there by default and
            refreshes its ``report.md``.
        seed: sampling seed (image k uses seed * 2**32 + k, whatever ``batch_size``).
        batch_size: images per ``model.sample`` call.
        features: "domain" (others arrive with the evaluation suite).
        sample_options: extra keyword options for ``model.sample`` (sampler, steps, ...).

    Returns:
        {"metrics": {...}, "source": {...}, "data": train split description, "seconds": float},
        plus "path" of the metrics.json written, if one was.
    """
    start = time.perf_counter()
    explicit = metrics is not None
    names = resolve_metrics(metrics)
    if features not in FEATURES:
        raise ValueError(
            f"features {features!r} arrive with the evaluation suite; available now: {', '.join(FEATURES)}"
        )
    run_dir = _model_dir(source)
    if data is None:
        data = _recorded_spec(run_dir) or "digits"
    train_ds, test_ds = datasets.load(data, "train"), datasets.load(data, "test")

    judge, reason = None, None
    try:
        judge = domain.get_judge(train_ds, test_ds)
    except ValueError as e:
        if explicit:
            raise
        reason = str(e)

    images, source_info = source_images(
        source, train_ds, n=n, seed=seed, batch_size=batch_size, sample_options=sample_options
    )
    results: dict = {}
    if judge is None:
        results["fid"] = {"value": "n/a", "reason": reason}
    else:
        logits = _batched(judge.logits, images)
        if "fid" in names:
            value = fid.frechet_distance(*fid.statistics(fid.extract(judge, images)), *judge.stats["train"])
            results["fid"] = {
                "value": value,
                "floor": judge.floor,
                "ratio_to_floor": value / judge.floor if judge.floor > 0 else math.inf,
                "n_generated": len(images),
                "n_reference": len(train_ds),
                "n_floor": len(test_ds),
                "features": "domain",
                "judge": judge.info(),
                "reference": "train split",
                "floor_definition": "test split against train split",
                "note": "FID is biased upwards at small N; compare values at equal n_generated",
            }
        results["class_histogram"] = class_histogram(logits, judge)
        results["confidence"] = {
            "samples": float(logits.softmax(dim=1).max(dim=1).values.mean()),
            "test_split": judge.meta["test_confidence"],
            "judge_test_accuracy": judge.accuracy,
        }
    report = {
        "metrics": results,
        "source": source_info,
        "data": train_ds.describe(),
        "seconds": round(time.perf_counter() - start, 2),
    }
    target = Path(out) if out is not None else run_dir
    if target is not None:
        io.write_json(target / "metrics.json", _jsonable(report))
        report["path"] = str(target / "metrics.json")  # where it went (not stored in the file)
        if run_dir is not None and target.resolve() == run_dir.resolve():
            from .report import write_report

            write_report(run_dir)
    return report


def domain_fid(images, train_ds, test_ds) -> tuple[float, float]:
    """(domain FID of ``images`` against the train split, the floor); images float (N, C, H, W)."""
    judge = domain.get_judge(train_ds, test_ds)
    x = quantise(torch.as_tensor(images), train_ds.levels)
    value = fid.frechet_distance(*fid.statistics(fid.extract(judge, x)), *judge.stats["train"])
    return value, judge.floor


def class_histogram(logits: torch.Tensor, judge) -> dict:
    """Judge-predicted class counts of generated images, their entropy and the test split's."""
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(dim=1), minlength=k).tolist()
    out = {"counts": counts, "entropy_nats": _entropy(counts), "max_entropy_nats": math.log(k)}
    if "test_class_counts" in judge.meta:
        out["test_split_counts"] = judge.meta["test_class_counts"]
        out["test_split_entropy_nats"] = _entropy(judge.meta["test_class_counts"])
    return out


def quantise(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Round float images in [-1, 1] to ``levels`` grey levels (what saving them to a file does)."""
    return datasets.to_float(datasets.to_levels(images, levels), levels)


# ----------------------------------------------------------------------------- sources
def source_images(source, train_ds, *, n=None, seed=0, batch_size=250, sample_options=None):
    """The generated images of ``source``, float (N, C, H, W) on the data's levels, and a description."""
    shape = (train_ds.channels, train_ds.image_size, train_ds.image_size)
    if isinstance(source, torch.nn.Module) or isinstance(source, (str, Path)) and _model_dir(source):
        from .. import load

        model = source if isinstance(source, torch.nn.Module) else load(source)
        model_shape = (model.config.channels, model.config.image_size, model.config.image_size)
        if model_shape != shape:
            raise ValueError(f"the model makes images of shape {model_shape} but {train_ds.spec} has {shape}")
        n = n or default_n(train_ds)
        images = sample_model(model, n, seed=seed, batch_size=batch_size, options=sample_options or {})
        info = {
            "kind": "model directory" if not isinstance(source, torch.nn.Module) else "model",
            "registry_name": getattr(model, "registry_name", type(model).__name__),
            "family": getattr(model, "family", ""),
            "seed": seed,
            "sample_options": sample_options or {},
        }
        if not isinstance(source, torch.nn.Module):
            info["path"] = str(source)
    elif isinstance(source, str) and source.startswith("npz:"):
        images, info = _npz_images(source[4:]), {"kind": "npz", "path": source[4:]}
    elif isinstance(source, str) and source.startswith("folder:"):
        images, info = _folder_images(source, train_ds.image_size), {"kind": "folder", "path": source[7:]}
    else:
        raise ValueError(
            f"cannot evaluate {source!r}: give a model, a model directory, npz:FILE or folder:DIR"
        )
    if tuple(images.shape[1:]) != shape:
        raise ValueError(
            f"{source} holds images of shape {tuple(images.shape[1:])}; {train_ds.spec} has {shape}"
        )
    if n is not None and info["kind"] in ("npz", "folder"):
        if len(images) < n:
            raise ValueError(f"{source} holds {len(images)} images, fewer than n={n}")
        images = images[:n]
    info["n"] = len(images)
    return quantise(images, train_ds.levels), info


def sample_model(model, n: int, *, seed: int = 0, batch_size: int = 250, options: dict | None = None):
    """``n`` samples, float (n, C, H, W); image k uses seed * 2**32 + k whatever ``batch_size``.

    Conditional models get labels cycling 0..K-1 (image k has label k mod K).
    """
    conditional = bool(getattr(model.config, "conditional", False))
    labels = torch.arange(n) % model.config.num_classes if conditional else None
    return sample_in_batches(model, n, seed=seed, batch_size=batch_size, labels=labels, options=options)


def _npz_images(path: str) -> torch.Tensor:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"npz:{path}: no such file; give a .npz holding 'images' uint8 (N, H, W, C)")
    with np.load(p, allow_pickle=False) as z:
        if "images" not in z:
            raise ValueError(f"npz:{path} has no 'images' array (found: {', '.join(z.files) or 'nothing'})")
        arr = z["images"]
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4):
        raise ValueError(f"npz:{path}: 'images' must be uint8 (N, H, W, C), got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
    return datasets.to_float(x, 256)


def _folder_images(spec: str, image_size: int) -> torch.Tensor:
    parts = []
    for split in ("train", "test"):  # a folder of samples is used whole, both hash splits
        try:
            ds = datasets.load(spec, split, image_size=image_size)
        except ValueError as e:
            if "has no images" not in str(e):
                raise
            continue
        parts.append(datasets.to_float(ds.images, ds.levels))
    if not parts:
        raise ValueError(f"{spec} holds no readable images")
    return torch.cat(parts)


def _model_dir(source) -> Path | None:
    if isinstance(source, (str, Path)) and not str(source).startswith(("npz:", "folder:")):
        path = Path(source)
        if not path.is_dir():
            raise FileNotFoundError(
                f"model directory {path} does not exist; give a model directory, npz: or folder:"
            )
        return path
    return None


def _recorded_spec(run_dir: Path | None) -> str | None:
    if run_dir is None or not (run_dir / "config.json").is_file():
        return None
    meta = json.loads((run_dir / "config.json").read_text())
    data = meta.get("data")
    return data.get("spec") if isinstance(data, dict) else data if isinstance(data, str) else None


# ----------------------------------------------------------------------------- helpers
def _batched(fn, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def _entropy(counts) -> float:
    p = np.asarray(counts, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
