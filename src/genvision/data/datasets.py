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

import functools
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import folder, idx, pairs
from .transforms import bernoulli, resize, to_float

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
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# ----------------------------------------------------------------------------- the dataset
class ImageDataset(Dataset):
    """One split of a dataset, in memory.

    Attributes:
        images: uint8 (N, C, H, W) level indices 0..levels-1, or raw intensities 0..255 when
            ``binarize`` is True.
        labels: int64 (N,), class index or -1 for unlabeled images.
        levels: grey levels of what ``batch`` returns (17 digits, 256 8-bit, 2 binary).
        num_classes: number of classes, 0 if unlabeled.
        spec, split: the spec string given to :func:`load` and "train" / "test".
        binarize: draw x ~ Bernoulli(images / 255) at every ``batch`` (binary-mnist train).
        skipped: paths of files a folder scan could not read (the whole folder's, in both splits).
        files: relative paths of the images for ``folder:`` specs, else None.
        keys: train splits: each image's key for the validation rule (``folder.in_val_split``).
        class_names: the name of each class (digits' "zero".."nine", a folder's class folders), or
            None where the source names none.
    """

    def __init__(
        self,
        images,
        labels=None,
        *,
        levels,
        num_classes,
        spec,
        split,
        binarize=False,
        skipped=(),
        files=None,
        keys=None,
        class_names=None,
    ):
        if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.dim() == 4):
            raise ValueError("images must be a uint8 tensor (N, C, H, W)")
        n = len(images)
        labels = torch.full((n,), -1, dtype=torch.long) if labels is None else torch.as_tensor(labels).long()
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        if binarize and levels != 2:
            raise ValueError(f"binarize=True needs levels=2 (got {levels})")
        self.images, self.labels = images, labels
        self.levels, self.num_classes = int(levels), int(num_classes)
        self.spec, self.split, self.binarize = spec, split, bool(binarize)
        self.skipped, self.files, self.keys = list(skipped), files, keys
        self.class_names = list(class_names) if class_names else None

    @property
    def image_size(self) -> int:
        return self.images.shape[2]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def storage_levels(self) -> int:
        """Levels of the stored ``images`` (256 for a binarize split, else ``levels``)."""
        return 256 if self.binarize else self.levels

    @functools.cached_property
    def identity(self) -> str:
        """Stable hex id: sha1 of spec kind, split, shape facts, image bytes and labels (not the path)."""
        kind = self.spec.partition(":")[0]
        h = hashlib.sha1(
            f"{kind}|{self.split}|{self.image_size}|{self.channels}|{self.levels}|{self.binarize}".encode()
        )
        h.update(self.images.contiguous().numpy())
        h.update(self.labels.contiguous().numpy())
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """Image i as float32 (C, H, W) in [-1, 1] and its label (binarize: drawn from the global RNG)."""
        x, y = self.batch(torch.tensor([i]))
        return x[0], int(y[0])

    def batch(self, idx, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels at ``idx``.

        Args:
            idx: LongTensor (B,) of indices (a list or array works too).
            generator: randomness of the Bernoulli draw when ``binarize`` (global RNG if None);
                unused otherwise.

        Returns:
            x: float32 (B, C, H, W) in [-1, 1] (exactly -1 / 1 when binary).
            y: int64 (B,).
        """
        idx = torch.as_tensor(idx, dtype=torch.long)
        images = self.images[idx]
        if self.binarize:
            return bernoulli(images, generator).to(torch.float32) * 2 - 1, self.labels[idx]
        return to_float(images, self.levels), self.labels[idx]

    def describe(self) -> dict:
        """JSON-able summary, stored in run directories and metric reports."""
        return {
            "spec": self.spec,
            "split": self.split,
            "n": len(self),
            "image_size": self.image_size,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "levels": self.levels,
            "binarize": self.binarize,
            "identity": self.identity,
            "skipped": len(self.skipped),
        }

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.spec!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, levels={self.levels}, num_classes={self.num_classes})"
        )


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
        ds = _load_digits(spec, part, image_size)
    elif kind in ("mnist", "binary-mnist"):
        ds = _load_mnist(spec, arg, part, image_size, binary=kind == "binary-mnist")
    elif kind == "folder":
        ds = _load_folder(spec, arg, part, image_size, strict)
    elif kind == "pairs":
        ds = pairs.load_pairs(spec, arg, part, image_size, strict, ImageDataset)
    elif kind == "unpaired":
        ds = pairs.load_unpaired(spec, arg, part, image_size, strict, ImageDataset)
    elif kind == "npz":
        ds = _load_npz(spec, arg, part, image_size)
    else:
        ds = _load_torchvision(spec, arg, part, image_size)
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
    return ImageDataset(
        ds.images[keep],
        ds.labels[keep],
        levels=ds.levels,
        num_classes=ds.num_classes,
        spec=spec,
        split=ds.split,
        binarize=ds.binarize,
        skipped=ds.skipped,
        files=None if ds.files is None else [f for f, k in zip(ds.files, keep.tolist()) if k],
        keys=None if ds.keys is None else [key for key, k in zip(ds.keys, keep.tolist()) if k],
        class_names=ds.class_names,
    )


def _carve(ds: ImageDataset, split: str) -> ImageDataset:
    """The validation slice of a train split (``split="val"``), or train without it ("train")."""
    val = np.array([folder.in_val_split(k) for k in ds.keys], dtype=bool)
    keep = torch.from_numpy(val if split == "val" else ~val)
    images, binarize = ds.images[keep], ds.binarize
    if binarize and split == "val":  # one fixed draw, so every validation sees the same images
        images, binarize = bernoulli(images, torch.Generator().manual_seed(0)).to(torch.uint8), False
    return ImageDataset(
        images,
        ds.labels[keep],
        levels=ds.levels,
        num_classes=ds.num_classes,
        spec=ds.spec,
        split=split,
        binarize=binarize,
        skipped=ds.skipped,
        files=None if ds.files is None else [f for f, k in zip(ds.files, keep.tolist()) if k],
        keys=[key for key, k in zip(ds.keys, keep.tolist()) if k],
        class_names=ds.class_names,
    )


# ----------------------------------------------------------------------------- sources
def _nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) array -> uint8 (N, C, H, W) tensor (a copy)."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images, labels = d.images.astype(np.uint8), d.target.astype(np.int64)  # (1797, 8, 8) 0..16, (1797,)
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=0.25, random_state=0, stratify=labels)
    return images, labels, {"train": train, "test": test}


def _load_digits(spec, split, image_size):
    images, labels, index = _digits_arrays()
    i = index[split]
    x = resize(_nchw(images[i]), image_size, 16)
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


def _load_mnist(spec, arg, split, image_size, *, binary):
    try:
        images, labels = idx.load_mnist(arg, split)  # (N, 28, 28), (N,) uint8, cached per process
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(f"{spec}: {e}") from None
    x = resize(_nchw(images), image_size, 255)
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


def _load_folder(spec, arg, split, image_size, strict):
    scan = folder.scan_folder(arg, strict=strict, image_size=image_size)
    test = scan.test_mask()
    keep = test if split == "test" else ~test
    return ImageDataset(
        _nchw(scan.images[keep]),
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
    return _check_arrays(spec, images, labels)


def _load_npz(spec, arg, split, image_size):
    images, labels = read_npz(spec, arg)
    if image_size is None and images.shape[1] != images.shape[2]:
        image_size = min(images.shape[1:3])  # square crop at the native scale
    test = np.array([folder.in_test_split(str(i)) for i in range(len(images))], dtype=bool)
    keep = test if split == "test" else ~test
    num_classes = int(labels.max()) + 1 if labels is not None and labels.size and labels.max() >= 0 else 0
    labels = None if labels is None else labels[keep]
    x = resize(_nchw(images[keep]), image_size, 255)
    keys = [str(k) for k in np.nonzero(keep)[0]]
    return ImageDataset(x, labels, levels=256, num_classes=num_classes, spec=spec, split=split, keys=keys)


def _check_arrays(spec, images, labels):
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


def _load_torchvision(spec, arg, split, image_size):
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
    x = resize(_nchw(images), image_size, 255)
    keys = [str(k) for k in range(len(x))]
    return ImageDataset(x, labels, levels=256, num_classes=num_classes, spec=spec, split=split, keys=keys)
