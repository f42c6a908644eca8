"""What every application's CLI run shares: reading its input images, and writing its output.

- :func:`read_inputs`: an image file (through the guarded decoder of ``folder:`` datasets),
  ``npz:FILE`` or ``folder:DIR`` as float images in [-1, 1]; :func:`read_sized` also refuses
  another size unless the user asked for ``--resize``.
- :func:`check_out` / :func:`write_images`: ``.png`` (a grid with its record) or ``.npz``
  (``images`` uint8 (N, H, W, C) and the record as ``metadata``), written atomically.
"""

from __future__ import annotations

import io as _io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SUFFIXES = (".png", ".npz")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_inputs(source: str, channels: int) -> torch.Tensor:
    """Images of an image file, ``npz:FILE`` (``images`` uint8 (N, H, W[, C])) or ``folder:DIR``
    (its image files, sorted by name) as float (N, channels, H, W) in [-1, 1], at their own size."""
    text = str(source)
    if text.startswith("npz:"):  # the reader of npz: datasets, with its checks and one-line errors
        from ..data.datasets import read_npz

        arr, _ = read_npz(text, text[4:])
        x = torch.from_numpy(arr.copy()).float()
        x = (x.unsqueeze(-1) if x.dim() == 3 else x).permute(0, 3, 1, 2)
        return _channels(x, channels) / 127.5 - 1
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
    from ..data.folder import DECODE_ERRORS, _reason, decode_image

    if not Path(text).is_file():
        raise ValueError(f"cannot read image {text}: no such file")
    try:  # the guarded decoder of folder: datasets (size limits before decoding, bombs refused)
        im = decode_image(text).convert("RGB" if channels == 3 else "L")
        arr = np.asarray(im, dtype=np.uint8).copy()
    except DECODE_ERRORS as e:
        raise ValueError(f"cannot read image {text}: {_reason(Path(text), e)}") from None
    x = torch.from_numpy(arr).float()
    x = (x.unsqueeze(-1) if x.dim() == 2 else x).permute(2, 0, 1).unsqueeze(0)
    return _channels(x, channels) / 127.5 - 1


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
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


def read_sized(
    source: str, size: int, channels: int, allow_resize: bool, what: str, model: str
) -> torch.Tensor:
    """:func:`read_inputs` at ``size`` x ``size`` (:func:`fit_size`)."""
    return fit_size(read_inputs(source, channels), size, allow_resize, what, model)


def fit_size(x: torch.Tensor, size: int, allow_resize: bool, what: str, model: str) -> torch.Tensor:
    """Images at ``size`` x ``size``: another size is an error naming ``--resize``, or resized when
    ``allow_resize``."""
    if x.shape[-2:] != (size, size):
        if not allow_resize:
            raise ValueError(
                f"the {what} is {x.shape[-1]}x{x.shape[-2]}; {model} works at {size}x{size}: "
                "add --resize to resize it"
            )
        x = resize(x, size)
    return x


def check_out(out) -> Path:
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise ValueError(f"--out must end in .png or .npz (got {out.name})")
    return out


def uint8(x: torch.Tensor) -> np.ndarray:
    """Float images (N, C, H, W) in [-1, 1] as uint8 (N, H, W, C)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_images(images: torch.Tensor, out, record: dict, *, key: str = "images", **arrays) -> Path:
    """``images`` to ``out``: a .png grid carrying ``record``, or an .npz of the images (uint8,
    under ``key``) and the record as ``metadata`` (``arrays``: more arrays for the npz, e.g. an
    inversion's noise)."""
    from .. import io
    from ..viz import save_grid

    out = check_out(out)
    if out.suffix == ".png":
        return save_grid(images, out, metadata=record)
    buf = _io.BytesIO()
    np.savez_compressed(buf, **{key: uint8(images)}, **arrays, metadata=np.array(json.dumps(record)))
    return io.write_bytes(out, buf.getvalue())
