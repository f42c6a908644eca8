"""What every application's CLI run shares: reading its input images, and writing its output.

- :func:`read_sized`: the input images (``data/inputs.py``: :func:`read_inputs`) at the
  model's size, refusing another size unless the user asked for ``--resize``.
- :func:`check_out` / :func:`write_images`: ``.png`` (a grid with its record) or ``.npz``
  (``images`` uint8 (N, H, W, C) and the record as ``metadata``), written atomically.
"""

from __future__ import annotations

import io as _io
import json
from pathlib import Path

import numpy as np
import torch

from ..data.inputs import read_inputs, resize

SUFFIXES = (".png", ".npz")


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
