"""What the web app's routes share: reading request fields, running model work on the worker
thread, and turning images into PNG bytes and data URLs for the page."""

from __future__ import annotations

import asyncio
import base64
import io as _io
from typing import TYPE_CHECKING

import numpy as np
import torch
from fastapi import Request

if TYPE_CHECKING:
    from .server import UI


def png_bytes(arr: np.ndarray) -> bytes:
    """uint8 (H, W, C) or (C, H, W) tensor/array -> PNG bytes (no record, no mark: for showing)."""
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] == a.shape[1]:
        a = a.transpose(1, 2, 0)
    a = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    buf = _io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a data: URL an <img> shows."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def to_u8(x: torch.Tensor, levels: int) -> np.ndarray:
    """Float images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C) at the model's levels."""
    from ..data.transforms import to_uint8_255

    return to_uint8_255(x.detach().float().cpu().clamp(-1, 1), levels).permute(0, 2, 3, 1).numpy()


def from_u8(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (1, C, H, W) in [-1, 1]."""
    return torch.from_numpy(a.copy()).float().permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def int_field(body: dict, key: str, default=None, low: int | None = None, high: int | None = None):
    """``body[key]`` as a whole number in [low, high]; ``default`` when absent or empty."""
    v = body.get(key, default)
    if v in (None, ""):
        return default
    try:
        v = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number (got {body.get(key)!r})") from None
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{key} must be between {low} and {high} (got {v})")
    return v


def float_field(body: dict, key: str, default=None):
    """``body[key]`` as a finite number; ``default`` when absent or empty."""
    v = body.get(key, default)
    if v in (None, ""):
        return default
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number (got {body.get(key)!r})") from None
    if v != v or abs(v) == float("inf"):
        raise ValueError(f"{key} must be a finite number")
    return v


async def in_worker(ui: UI, fn):
    """Run ``fn`` on the one model-computation thread and wait for it without blocking the loop."""

    def work():
        ui.jobs.set_threads()
        return fn()

    return await asyncio.wrap_future(ui.jobs.pool.submit(work))


async def json_body(request: Request) -> dict:
    """The request's JSON object; a one-line ValueError (HTTP 400) for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body
