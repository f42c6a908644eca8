"""Two-folder specs for translation: ``pairs:SRC_DIR,DST_DIR`` and ``unpaired:A_DIR,B_DIR``.

Both folders are scanned by :func:`folder.scan_folder` (same layout rules, guarded decoder, size
limits), the second at the size the first chose, so the two domains share one image size.
A greyscale folder next to a colour one is copied to three channels.

``pairs:SRC,DST``: files with the same relative path in both folders form a pair. One dataset item
holds both images stacked along the channels: channels ``[0, C)`` the source, ``[C, 2C)`` the
target (so the dataset has ``2C`` channels; :func:`split_pair` undoes it). Labels are the source
folder's classes. Files present in only one folder are counted and named in one warning; no common
file at all is refused with one line. The test split is the pair's relative path (as ``folder:``).

``unpaired:A,B``: the images of A (label 0) followed by those of B (label 1), ``num_classes`` 2,
class names the two folder names; each folder keeps its own split (its relative paths), and
nothing of a pairing is used. Both folders being the same folder is refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from . import folder
from .image_dataset import ImageDataset, nchw


def parse_two(spec: str, kind: str, arg: str) -> tuple[str, str]:
    """``"A,B"`` -> ``("A", "B")``; one-line error otherwise."""
    parts = [p.strip() for p in arg.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"dataset spec {spec!r}: {kind} takes two folders separated by a comma; use {kind}:DIR_A,DIR_B"
        )
    return parts[0], parts[1]


def _scan_both(spec: str, a: str, b: str, strict: bool, image_size: int | None):
    sa = folder.scan_folder(a, strict=strict, image_size=image_size)
    size = sa.images.shape[1] if image_size is None else image_size
    sb = folder.scan_folder(b, strict=strict, image_size=size)
    ia, ib = sa.images, sb.images
    if ia.shape[-1] != ib.shape[-1]:  # one greyscale folder: copy it to RGB
        ia = np.repeat(ia, 3, axis=-1) if ia.shape[-1] == 1 else ia
        ib = np.repeat(ib, 3, axis=-1) if ib.shape[-1] == 1 else ib
    return sa, sb, ia, ib


def load_pairs(spec: str, arg: str, split: str, image_size: int | None, strict: bool) -> ImageDataset:
    """One split of ``pairs:SRC,DST`` (module docstring)."""
    a, b = parse_two(spec, "pairs", arg)
    if Path(a).expanduser().resolve() == Path(b).expanduser().resolve():
        raise ValueError(
            f"dataset spec {spec!r}: the source and target are the same folder; give two folders"
        )
    sa, sb, ia, ib = _scan_both(spec, a, b, strict, image_size)
    index_b = {f: i for i, f in enumerate(sb.files)}
    common = [f for f in sa.files if f in index_b]
    only_a = [f for f in sa.files if f not in index_b]
    only_b = sorted(set(sb.files) - set(sa.files))
    if not common:
        raise ValueError(
            f"dataset spec {spec!r}: no file has the same relative path in both folders "
            f"({len(sa.files)} vs {len(sb.files)} images); name each pair's two files alike"
        )
    if only_a or only_b:
        named = [f"{a}/{f}" for f in only_a] + [f"{b}/{f}" for f in only_b]
        warnings.warn(
            f"{spec}: {len(named)} file(s) without a partner left out ({folder._names(named)}); "
            f"{len(common)} pairs kept",
            stacklevel=3,
        )
    index_a = {f: i for i, f in enumerate(sa.files)}
    keep = [f for f in common if folder.in_test_split(f) == (split == "test")]
    ka = np.array([index_a[f] for f in keep], dtype=np.int64)
    kb = np.array([index_b[f] for f in keep], dtype=np.int64)
    images = np.concatenate([ia[ka], ib[kb]], axis=-1)
    return ImageDataset(
        nchw(images),
        sa.labels[ka],
        levels=256,
        num_classes=len(sa.classes),
        spec=spec,
        split=split,
        skipped=sa.skipped + sb.skipped,
        files=keep,
        keys=keep,
        class_names=sa.classes,
    )


def load_unpaired(spec: str, arg: str, split: str, image_size: int | None, strict: bool) -> ImageDataset:
    """One split of ``unpaired:A,B`` (module docstring)."""
    a, b = parse_two(spec, "unpaired", arg)
    if Path(a).expanduser().resolve() == Path(b).expanduser().resolve():
        raise ValueError(f"dataset spec {spec!r}: A and B are the same folder; give one folder per domain")
    sa, sb, ia, ib = _scan_both(spec, a, b, strict, image_size)
    ma = sa.test_mask() if split == "test" else ~sa.test_mask()
    mb = sb.test_mask() if split == "test" else ~sb.test_mask()
    images = np.concatenate([ia[ma], ib[mb]])
    labels = np.concatenate([np.zeros(int(ma.sum()), np.int64), np.ones(int(mb.sum()), np.int64)])
    files = [f"A/{f}" for f, k in zip(sa.files, ma) if k] + [f"B/{f}" for f, k in zip(sb.files, mb) if k]
    names = [Path(a).name or "A", Path(b).name or "B"]
    if names[0] == names[1]:
        names = ["A", "B"]
    return ImageDataset(
        nchw(images),
        labels,
        levels=256,
        num_classes=2,
        spec=spec,
        split=split,
        skipped=sa.skipped + sb.skipped,
        files=files,
        keys=files,
        class_names=names,
    )


def split_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``pairs:`` batch (B, 2C, H, W) -> (source, target), each (B, C, H, W)."""
    c = x.shape[1] // 2
    return x[:, :c], x[:, c:]
