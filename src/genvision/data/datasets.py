"""Datasets behind ``--data SPEC``: one in-memory ``ImageDataset`` per split.

=========================  ================================================  ======================
spec                       what                                              test split
=========================  ================================================  ======================
``digits`` (default)       scikit-learn's 8x8 digits, 17 levels, 10 classes  stratified 25% (450)
``mnist:DIR``              the four MNIST IDX files in DIR, 256 levels       the t10k files
``binary-mnist:DIR``       MNIST binarised (levels 2), see below             the t10k files
``folder:DIR``             images in DIR (rules in ``folder.py``)            sha1(rel. path) < 10%
``pairs:SRC,DST``          same-path pairs stacked on channels (``pairs.py``)  sha1(rel. path) < 10%
``unpaired:A,B``           A (label 0) then B (label 1) (``pairs.py``)        each folder's own
``npz:FILE``               array ``images`` uint8 (N,H,W[,C]), opt. labels   sha1(str(index)) < 10%
``torchvision:NAME[:ROOT]``  a torchvision dataset (if installed)            its own test set
=========================  ================================================  ======================

Here: the specs, ``load``, the validation slice and the class filter; each kind's loader is in
``sources.py`` (``pairs.py`` for the two-folder kinds), the dataset class in ``image_dataset.py``.

Binary MNIST (Salakhutdinov & Murray, 2008, dynamic binarisation): the train split keeps raw
intensities 0..255 with ``binarize=True``, and every ``batch`` draws x ~ Bernoulli(intensity/255)
afresh; the test split is binarised once, with ``torch.Generator().manual_seed(0)``, and stores 0/1.

Images are stored as uint8 (N, C, H, W) level indices 0..levels-1 and leave as float32 in [-1, 1]
through ``transforms.to_float``; ``image_size`` resizes the shorter side (bilinear with
antialiasing for array sources, Lanczos for folders) and centre-crops.

The validation slice (split ``"val"``) is cut from the train split by the same kind of rule as
the test split, so it is stable as images are added: the images whose sha1 key (the relative
path for ``folder:``, ``str(index)`` in the source otherwise; digits: the index in the
scikit-learn array) falls in [0.1, 0.2) (``folder.in_val_split``), about 11% of train (digits:
119 of 1347). ``load(spec, "train", validation=True)`` is train minus that slice; a plain
``"train"`` is the whole train split, as always. A binarised (binary-mnist) slice is drawn once,
like the test split.

An empty split is an error (a folder of a few images may have no test image), never a dataset of
length 0 that would fail later in a less readable way.

Class filter: any labelled spec may end in ``?classes=LIST`` (``mnist:DIR?classes=0-8``,
``digits?classes=3,5,7``; ranges and single classes, comma-separated): every split keeps only
those classes, with their original label numbers and ``num_classes`` (a model trained on 0-8
keeps ten label slots). Held-out-class experiments (anomaly detection) train on one filter and
score another.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import folder, pairs, sources
from .image_dataset import ImageDataset
from .sources import DIGIT_NAMES, read_npz  # noqa: F401 (re-exported: captions, evaluate, inputs)
from .transforms import bernoulli

SPLITS = ("train", "val", "test")
SPEC_HELP = "use digits, mnist:DIR, binary-mnist:DIR, folder:DIR, pairs:SRC,DST, unpaired:A,B, npz:FILE or torchvision:NAME[:ROOT]"
ARGUMENTS = {
    "mnist": "DIR",
    "binary-mnist": "DIR",
    "folder": "DIR",
    "pairs": "SRC_DIR,DST_DIR",
    "unpaired": "A_DIR,B_DIR",
    "npz": "FILE",
    "torchvision": "NAME[:ROOT]",
}


#: the class names of the digit sets (digits, mnist, binary-mnist)


# ----------------------------------------------------------------------------- specs
def shared_path(*parts: str) -> Path:
    """Path under the shared folder: ``$GENVISION_SHARED``, else ``../shared`` next to the repository.

    The path is returned whether or not it exists.
    """
    env = os.environ.get("GENVISION_SHARED")
    if env:
        return Path(env).expanduser().joinpath(*parts)
    repo = Path(__file__).resolve().parents[3]  # src/genvision/data/datasets.py -> repository root
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base.parent.joinpath("shared", *parts)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a dataset spec into (kind, argument): ``"mnist:/data"`` -> ``("mnist", "/data")``.

    Raises:
        ValueError: unknown kind, an argument where none is taken, or a missing argument.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string (got {spec!r}); {SPEC_HELP}")
    kind, _, arg = spec.strip().partition(":")
    if kind == "digits":
        if arg:
            raise ValueError(f"dataset spec {spec!r}: digits takes no argument; use plain 'digits'")
        return "digits", None
    if kind not in ARGUMENTS:
        raise ValueError(f"unknown dataset spec {spec!r}; {SPEC_HELP}")
    if not arg:
        raise ValueError(f"dataset spec {spec!r} needs an argument; use {kind}:{ARGUMENTS[kind]}")
    return kind, arg


def load(
    spec: str = "digits",
    split: str = "train",
    *,
    strict: bool = False,
    image_size: int | None = None,
    validation: bool = False,
):
    """Load one split of the dataset named by ``spec`` (table in the module docstring).

    Args:
        spec: dataset spec string.
        split: "train", "val" (the validation slice of train) or "test".
        strict: ``folder:`` only; unreadable files raise instead of being skipped with a warning.
        image_size: resize (shorter side) and centre-crop to this size; None keeps the native size
            (``folder:``: the most common min(H, W), capped at 64).
        validation: ``"train"`` only: leave the validation slice out (train minus val).

    Returns:
        :class:`ImageDataset`.

    Raises:
        ValueError, FileNotFoundError: one line naming the problem and the fix.
    """
    full = spec.strip() if isinstance(spec, str) else spec
    spec, classes = split_classes(spec)
    kind, arg = parse_spec(spec)
    if split not in SPLITS:
        raise ValueError(f"split must be 'train', 'val' or 'test' (got {split!r})")
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer (got {image_size!r})")
    spec, image_size = spec.strip(), None if image_size is None else int(image_size)
    part = "test" if split == "test" else "train"
    if kind == "digits":
        ds = sources.load_digits(spec, part, image_size)
    elif kind in ("mnist", "binary-mnist"):
        ds = sources.load_mnist(spec, arg, part, image_size, binary=kind == "binary-mnist")
    elif kind == "folder":
        ds = sources.load_folder(spec, arg, part, image_size, strict)
    elif kind == "pairs":
        ds = pairs.load_pairs(spec, arg, part, image_size, strict)
    elif kind == "unpaired":
        ds = pairs.load_unpaired(spec, arg, part, image_size, strict)
    elif kind == "npz":
        ds = sources.load_npz(spec, arg, part, image_size)
    else:
        ds = sources.load_torchvision(spec, arg, part, image_size)
    if split == "val" or validation and split == "train":
        ds = _carve(ds, split)
    if classes is not None:
        ds = _keep_classes(ds, classes, full)
    if len(ds) == 0:
        raise ValueError(f"{spec} has no images in its {split} split; add images (about 10% land in test)")
    return ds


def split_classes(spec: str) -> tuple[str, tuple[int, ...] | None]:
    """``"mnist:DIR?classes=0-8"`` -> ``("mnist:DIR", (0, ..., 8))``; no ``?`` -> ``(spec, None)``."""
    if not isinstance(spec, str) or "?" not in spec:
        return spec, None
    base, _, query = spec.rpartition("?")
    key, eq, value = query.partition("=")
    if key.strip() != "classes" or not eq or not value.strip():
        raise ValueError(
            f"dataset spec {spec!r}: the only option is ?classes=LIST, e.g. ?classes=0-8 or ?classes=1,3"
        )
    classes: set[int] = set()
    for part in value.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            a, b = (int(lo), int(hi)) if dash else (int(lo), int(lo))
        except ValueError:
            raise ValueError(
                f"dataset spec {spec!r}: classes {value!r} must be numbers or ranges like 0-8"
            ) from None
        if a < 0 or b < a:
            raise ValueError(
                f"dataset spec {spec!r}: bad class range {part.strip()!r}; use LOW-HIGH with LOW <= HIGH"
            )
        classes.update(range(a, b + 1))
    return base, tuple(sorted(classes))


def _keep_classes(ds: ImageDataset, classes: tuple[int, ...], spec: str) -> ImageDataset:
    """The images of ``ds`` whose label is in ``classes`` (labels and ``num_classes`` unchanged)."""
    if ds.num_classes == 0:
        raise ValueError(f"{spec}: ?classes= needs a labelled dataset (this one has no classes)")
    unknown = [c for c in classes if c >= ds.num_classes]
    if unknown:
        raise ValueError(f"{spec}: no class {unknown[0]}; its classes are 0-{ds.num_classes - 1}")
    keep = torch.isin(torch.as_tensor(ds.labels), torch.tensor(classes))
    return ds.subset(keep, spec=spec)


def _carve(ds: ImageDataset, split: str) -> ImageDataset:
    """The validation slice of a train split (``split="val"``), or train without it ("train")."""
    val = np.array([folder.in_val_split(k) for k in ds.keys], dtype=bool)
    keep = torch.from_numpy(val if split == "val" else ~val)
    images, binarize = ds.images[keep], ds.binarize
    if binarize and split == "val":  # one fixed draw, so every validation sees the same images
        images, binarize = bernoulli(images, torch.Generator().manual_seed(0)).to(torch.uint8), False
    return ds.subset(keep, images=images, split=split, binarize=binarize)
