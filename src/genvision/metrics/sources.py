"""Where the images under evaluation come from: a model, a model directory, ``npz:`` or ``folder:``.

Every set is quantised to the dataset's grey levels (what saving it to a file would do). A model
is sampled ``batch_size`` images at a time with per-image seeds (image k: ``seeding.image_seed(seed, k)``),
so the set does not depend on the batch size; conditional models get labels cycling 0..K-1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from ..data.datasets import read_npz
from ..families.base import sample_in_batches
from . import protocol

SMALL_N, LARGE_N = 1_000, 10_000


def default_n(train_ds) -> int:
    """Generated-set size: 1,000 for digits-size data, 10,000 for MNIST-size (train >= 10,000),
    capped where the floor can still be measured at the same N (the equal-N protocol: digits 650)."""
    return protocol.default_n(len(train_ds), SMALL_N, LARGE_N)


def conditional(model) -> bool:
    """Whether ``model`` samples class-conditionally (its config says ``conditional``)."""
    return bool(model.config.conditional)


def quantise(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Round float images in [-1, 1] to ``levels`` grey levels (what saving them to a file does)."""
    return datasets.to_float(datasets.to_levels(images, levels), levels)


def source_images(source, train_ds, *, n=None, seed=0, batch_size=250, sample_options=None, test_ds=None):
    """The generated images of ``source``, float (N, C, H, W) on the data's levels, and a description.

    A structure-conditioned model (``takes_control``) follows the maps of ``test_ds``'s images
    (:func:`control_maps`); without ``test_ds`` it follows its own stored maps.
    """
    shape = (train_ds.channels, train_ds.image_size, train_ds.image_size)
    if isinstance(source, torch.nn.Module) or isinstance(source, (str, Path)) and model_dir(source):
        model = load_model(source, train_ds)
        n = n or default_n(train_ds)
        controls = control_maps(model, test_ds, n) if test_ds is not None else None
        images = sample_model(
            model, n, seed=seed, batch_size=batch_size, options=sample_options or {}, controls=controls
        )
        info = {
            "kind": "model directory" if not isinstance(source, torch.nn.Module) else "model",
            "registry_name": model.registry_name,
            "family": model.family,
            "seed": seed,
            "sample_options": sample_options or {},
        }
        if not isinstance(source, torch.nn.Module):
            info["path"] = str(source)
        if controls is not None:
            info["controls"] = (
                f"image k follows the {model.config.control} map of test image k mod {len(test_ds)}"
            )
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


def sample_model(
    model, n: int, *, seed: int = 0, batch_size: int = 250, options: dict | None = None, controls=None
):
    """``n`` samples, float (n, C, H, W); image k uses ``seeding.image_seed(seed, k)`` whatever ``batch_size``.

    Conditional models get labels cycling 0..K-1 (image k has label k mod K); a structure-conditioned
    model follows ``controls`` ((n, C', H, W) maps), image k map k.
    """
    labels = torch.arange(n) % model.config.num_classes if conditional(model) else None
    return sample_in_batches(
        model, n, seed=seed, batch_size=batch_size, labels=labels, options=options, controls=controls
    )


def control_maps(model, test_ds, n: int) -> torch.Tensor | None:
    """What a structure-conditioned model is measured on: image k follows test image (k mod T)'s
    map of the model's kind (``data/structure.py``), so its samples have the test split's variety;
    None for any other model."""
    if not getattr(model, "takes_control", False):
        return None
    from ..data import structure

    idx = torch.arange(n) % len(test_ds)
    return torch.cat(
        [
            structure.extract(model.config.control, test_ds.batch(idx[i : i + 500])[0])
            for i in range(0, n, 500)
        ]
    )


def load_model(source, train_ds):
    """The model of a model / model-directory source (shape-checked against the data), else None."""
    if isinstance(source, torch.nn.Module):
        model = source
    elif isinstance(source, (str, Path)) and model_dir(source):
        from ..model_dir import load_model_dir

        model = load_model_dir(source)
    else:
        return None
    shape = (train_ds.channels, train_ds.image_size, train_ds.image_size)
    model_shape = (model.config.channels, model.config.image_size, model.config.image_size)
    if model_shape != shape:
        raise ValueError(f"the model makes images of shape {model_shape} but {train_ds.spec} has {shape}")
    return model


def kind(source) -> str:
    if isinstance(source, torch.nn.Module):
        return "model"
    if isinstance(source, str) and source.startswith(("npz:", "folder:")):
        return source.split(":", 1)[0]
    return "model directory"


def _npz_images(path: str) -> torch.Tensor:
    arr, _ = read_npz(f"npz:{path}", path)  # the training loader's reader and its one-line errors
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


def model_dir(source) -> Path | None:
    if isinstance(source, (str, Path)) and not str(source).startswith(("npz:", "folder:")):
        path = Path(source)
        if not path.is_dir():
            raise FileNotFoundError(
                f"model directory {path} does not exist; give a model directory, npz: or folder:"
            )
        return path
    return None


def recorded_spec(run_dir: Path | None) -> str | None:
    if run_dir is None or not (run_dir / "config.json").is_file():
        return None
    meta = json.loads((run_dir / "config.json").read_text())
    data = meta.get("data")
    return data.get("spec") if isinstance(data, dict) else data if isinstance(data, str) else None


def recorded_size(run_dir: Path | None, spec: str) -> int | None:
    """The image size a run trained at when it trained on ``spec`` resized (``--set image_size``), else None."""
    if run_dir is None or not (run_dir / "config.json").is_file():
        return None
    try:
        meta = json.loads((run_dir / "config.json").read_text())
    except ValueError:
        return None
    data = meta.get("data")
    if not isinstance(data, dict) or data.get("spec") != spec:
        return None
    size = (meta.get("model_config") or {}).get("image_size")
    return size if isinstance(size, int) else None
