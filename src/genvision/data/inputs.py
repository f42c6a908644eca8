"""Reading the images a user hands over (an application's inputs, a controlnet's structure maps).

:func:`read_inputs` takes an image file (through the guarded decoder of ``folder:`` datasets:
size limits before decoding, decompression bombs refused), ``npz:FILE`` (``images`` uint8
(N, H, W[, C]), through the reader of ``npz:`` datasets) or ``folder:DIR`` (its image files,
sorted by name) and returns float (N, C, H, W) in [-1, 1] at their own size; :func:`resize`
squares them to a model's size. Every failure is a one-line ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_inputs(source: str, channels: int) -> torch.Tensor:
    """Images of an image file, ``npz:FILE`` (``images`` uint8 (N, H, W[, C])) or ``folder:DIR``
    (its image files, sorted by name) as float (N, channels, H, W) in [-1, 1], at their own size."""
    text = str(source)
    if text.startswith("npz:"):  # the reader of npz: datasets, with its checks and one-line errors
        from .datasets import read_npz

        arr, _ = read_npz(text, text[4:])
        x = torch.from_numpy(arr.copy()).float()
        x = (x.unsqueeze(-1) if x.dim() == 3 else x).permute(0, 3, 1, 2)
        return to_channels(x, channels) / 127.5 - 1
    if text.startswith("folder:"):
        folder = Path(text[7:])
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        images = [read_inputs(str(p), channels) for p in files]
        sizes = {tuple(t.shape[-2:]) for t in images}
        if len(sizes) > 1:
            raise ValueError(
                f"the images of {folder} differ in size ({sorted(sizes)}); give one size or --resize"
            )
        return torch.cat(images)
    from .folder import DECODE_ERRORS, decode_image, unreadable_reason

    if not Path(text).is_file():
        raise ValueError(f"cannot read image {text}: no such file")
    try:  # the guarded decoder of folder: datasets (size limits before decoding, bombs refused)
        im = decode_image(text).convert("RGB" if channels == 3 else "L")
        arr = np.asarray(im, dtype=np.uint8).copy()
    except DECODE_ERRORS as e:
        raise ValueError(f"cannot read image {text}: {unreadable_reason(Path(text), e)}") from None
    x = torch.from_numpy(arr).float()
    x = (x.unsqueeze(-1) if x.dim() == 2 else x).permute(2, 0, 1).unsqueeze(0)
    return to_channels(x, channels) / 127.5 - 1


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) images with ``channels`` channels: colour averaged to grey, grey repeated to RGB."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    return x.expand(-1, 3, -1, -1)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square-resize (bilinear, antialiased) images to ``size``."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(
        -1, 1
    )
