"""The in-memory dataset every ``--data SPEC`` loads into (``datasets.load``), one per split.

Images are stored as uint8 (N, C, H, W) level indices 0..levels-1 and leave as float32 in [-1, 1]
through ``transforms.to_float`` (binary MNIST's train split: a fresh Bernoulli draw per batch).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import bernoulli, to_float


def nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) array -> uint8 (N, C, H, W) tensor (a copy)."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


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

    def subset(self, keep: torch.Tensor, **changes) -> ImageDataset:
        """The images where the bool mask ``keep`` (N,) is True, with their labels, files and keys;
        ``changes`` replace fields (``images``, ``split``, ``spec``, ``binarize``)."""
        mask = keep.tolist()
        fields = {
            "images": self.images[keep],
            "labels": self.labels[keep],
            "levels": self.levels,
            "num_classes": self.num_classes,
            "spec": self.spec,
            "split": self.split,
            "binarize": self.binarize,
            "skipped": self.skipped,
            "files": None if self.files is None else [f for f, k in zip(self.files, mask) if k],
            "keys": None if self.keys is None else [key for key, k in zip(self.keys, mask) if k],
            "class_names": self.class_names,
        }
        return ImageDataset(**{**fields, **changes})

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.spec!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, levels={self.levels}, num_classes={self.num_classes})"
        )
