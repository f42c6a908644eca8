"""Where each ``--data`` kind's images come from (``datasets.load`` picks one by the spec's kind):
scikit-learn's digits, the MNIST IDX files, a folder (``folder.py``), an npz file, torchvision.

Each loader returns one split ("train" or "test") as an :class:`ImageDataset`, resized by
``transforms.resize`` when ``image_size`` is given; errors are one line naming the spec.
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import folder, idx
from .image_dataset import ImageDataset, nchw
from .transforms import bernoulli, resize

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images, labels = d.images.astype(np.uint8), d.target.astype(np.int64)  # (1797, 8, 8) 0..16, (1797,)
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=0.25, random_state=0, stratify=labels)
    return images, labels, {"train": train, "test": test}


def load_digits(spec, split, image_size):
    images, labels, index = _digits_arrays()
    i = index[split]
    x = resize(nchw(images[i]), image_size, 16)
    keys = [str(k) for k in i]
    return ImageDataset(
        x,
        labels[i].copy(),
        levels=17,
        num_classes=10,
        spec=spec,
        split=split,
        keys=keys,
        class_names=DIGIT_NAMES,
    )


def load_mnist(spec, arg, split, image_size, *, binary):
    try:
        images, labels = idx.load_mnist(arg, split)  # (N, 28, 28), (N,) uint8, cached per process
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(f"{spec}: {e}") from None
    x = resize(nchw(images), image_size, 255)
    if binary and split == "test":  # one fixed draw, so every evaluation sees the same test set
        x = bernoulli(x, torch.Generator().manual_seed(0)).to(torch.uint8)
    return ImageDataset(
        x,
        labels.astype(np.int64),
        levels=2 if binary else 256,
        num_classes=10,
        spec=spec,
        split=split,
        binarize=binary and split == "train",
        keys=[str(k) for k in range(len(x))],
        class_names=DIGIT_NAMES,
    )


def load_folder(spec, arg, split, image_size, strict):
    scan = folder.scan_folder(arg, strict=strict, image_size=image_size)
    test = scan.test_mask()
    keep = test if split == "test" else ~test
    return ImageDataset(
        nchw(scan.images[keep]),
        scan.labels[keep],
        levels=256,
        num_classes=len(scan.classes),
        spec=spec,
        split=split,
        skipped=scan.skipped,
        files=[f for f, k in zip(scan.files, keep) if k],
        keys=[f for f, k in zip(scan.files, keep) if k],
        class_names=scan.classes,
    )


def read_npz(spec: str, arg: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` uint8 (N, H, W[, C]) and ``labels`` int64 (N,) or None of the npz file ``arg``.

    One-line errors (naming ``spec``) for a missing, corrupt or ``.npy`` file and bad arrays; the
    training loader and ``genvision evaluate npz:FILE`` both read through it.
    """
    path = Path(arg).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{spec}: no such file; give a .npz holding 'images' uint8 (N, H, W, C)")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # np.load reads a .npy as a bare array
            raise ValueError("a .npy array, not a .npz archive")
        with z:
            if "images" not in z:
                found = ", ".join(z.files) or "nothing"
                raise KeyError(f"no 'images' array (found: {found})")
            images = z["images"]
            labels = z["labels"] if "labels" in z else None
    except KeyError as e:
        raise ValueError(f"{spec}: {e.args[0]}; save with np.savez(FILE, images=..., labels=...)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{spec}: not a readable .npz ({e}); save with np.savez(FILE, images=...)") from None
    return check_arrays(spec, images, labels)


def load_npz(spec, arg, split, image_size):
    images, labels = read_npz(spec, arg)
    if image_size is None and images.shape[1] != images.shape[2]:
        image_size = min(images.shape[1:3])  # square crop at the native scale
    test = np.array([folder.in_test_split(str(i)) for i in range(len(images))], dtype=bool)
    keep = test if split == "test" else ~test
    num_classes = int(labels.max()) + 1 if labels is not None and labels.size and labels.max() >= 0 else 0
    labels = None if labels is None else labels[keep]
    x = resize(nchw(images[keep]), image_size, 255)
    keys = [str(k) for k in np.nonzero(keep)[0]]
    return ImageDataset(x, labels, levels=256, num_classes=num_classes, spec=spec, split=split, keys=keys)


def check_arrays(spec, images, labels):
    """Validate ``images`` uint8 (N, H, W[, C]) with C in {1, 3} and ``labels`` int (N,) >= -1."""
    if images.dtype != np.uint8:
        raise ValueError(f"{spec}: 'images' has dtype {images.dtype}; store uint8 0..255 (N, H, W, C)")
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            f"{spec}: 'images' has shape {images.shape}; store (N, H, W, C) with C = 1 or 3, or (N, H, W)"
        )
    if labels is not None:
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
            raise ValueError(
                f"{spec}: 'labels' must be integers of shape ({len(images)},), "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and labels.min() < -1:
            raise ValueError(f"{spec}: 'labels' must be class indices >= 0, or -1 for unlabeled")
        labels = labels.astype(np.int64)
    return images, labels


def load_torchvision(spec, arg, split, image_size):
    name, _, root = arg.partition(":")
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise ValueError(
            f"{spec} needs torchvision, which is not installed; pip install genvision[vision]"
        ) from None
    known = {n.lower(): n for n in dir(tvd) if isinstance(getattr(tvd, n), type) and not n.startswith("_")}
    if name.lower() not in known:
        raise ValueError(
            f"{spec}: torchvision has no dataset {name!r}; use a class of torchvision.datasets, e.g. CIFAR10"
        )
    cls = getattr(tvd, known[name.lower()])
    root = Path(
        root or Path(os.environ.get("GENVISION_CACHE", "~/.cache/genvision")) / "torchvision"
    ).expanduser()
    try:
        try:
            ds = cls(str(root), train=split == "train", download=False)
        except TypeError:  # datasets with split= (SVHN, STL10, ...)
            ds = cls(str(root), split=split, download=False)
    except RuntimeError:
        raise FileNotFoundError(
            f"{spec}: {cls.__name__} not found under {root}; fetch it once with "
            f"torchvision.datasets.{cls.__name__}({str(root)!r}, download=True)"
        ) from None
    data = np.asarray(getattr(ds, "data", np.zeros(0)))
    targets = getattr(ds, "targets", getattr(ds, "labels", None))
    if (
        data.dtype == np.uint8
        and (data.ndim == 3 or (data.ndim == 4 and data.shape[-1] in (1, 3)))
        and targets is not None
    ):
        images, labels = data, np.asarray(targets, dtype=np.int64)
    else:  # generic path: decode every item
        items = [ds[i] for i in range(len(ds))]
        images = np.stack(
            [np.asarray(im.convert("L" if im.mode in ("1", "L") else "RGB")) for im, _ in items]
        )
        labels = np.asarray([int(t) for _, t in items], dtype=np.int64)
    num_classes = len(getattr(ds, "classes", None) or []) or int(labels.max()) + 1
    x = resize(nchw(images), image_size, 255)
    keys = [str(k) for k in range(len(x))]
    return ImageDataset(x, labels, levels=256, num_classes=num_classes, spec=spec, split=split, keys=keys)
