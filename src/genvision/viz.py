"""Pictures: image grids (PNG) and loss curves, written atomically.

Matplotlib is used through its object API with the Agg canvas (no pyplot, no global backend
switch), so plotting works headless and never changes the caller's matplotlib state.
"""

from __future__ import annotations

import io as _io
import json
import math
from pathlib import Path

import numpy as np
import torch

from . import io
from .provenance import stamp

MIN_TILE_PX = 32  # tiny images (8x8 digits) are upscaled so each tile is at least this wide
PAD_VALUE = 128  # mid-grey padding separates tiles on black and white backgrounds alike
PNG_TEXT_KEY = "genvision"  # the PNG text chunk that holds save_grid's metadata record (JSON)


def check_finite(images: torch.Tensor) -> None:
    """Refuse images holding NaN or infinity (they would be written as black pixels), in one line."""
    finite = torch.isfinite(images)
    if not finite.all():
        bad = int((~finite).reshape(len(images), -1).any(1).sum())
        raise ValueError(
            f"the model produced NaN or infinite values in {bad} of {len(images)} images; nothing written "
            "(its weights have probably diverged: check the training loss, or retrain)"
        )


def grid_array(images, nrow: int | None = None, levels: int | None = None, pad: int = 1, scale=None):
    """Tile images into one uint8 array (H', W', C) with C in {1, 3}.

    Args:
        images: float (N, C, H, W) in [-1, 1] (tensor or array), C = 1 or 3 (2 or 6: a pair, shown
            side by side); clamped.
        nrow: images per row; default ceil(sqrt(N)).
        levels: quantise to this many grey levels first (17 shows digits as the data has them).
        pad: pixels of grey between tiles and around the border (after scaling).
        scale: integer nearest-neighbour upscale; default the smallest with tiles >= 32 px.

    Returns:
        uint8 (rows * (H * scale + pad) + pad, nrow * (W * scale + pad) + pad, C).
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() == 4 and x.shape[1] in (2, 6):  # a pairs: stack (data/pairs.py): the two side by side
        x = torch.cat(x.chunk(2, dim=1), dim=3)
    if x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"need images (N >= 1, C in {{1, 3}}, H, W), got shape {tuple(x.shape)}")
    check_finite(x)
    n, c, h, w = x.shape
    v = (x.clamp(-1, 1) + 1) / 2  # [0, 1]
    if levels is not None:
        v = torch.round(v * (levels - 1)) / (levels - 1)
    tiles = torch.round(v * 255).to(torch.uint8)  # (N, C, H, W)
    if scale is None:
        scale = max(1, math.ceil(MIN_TILE_PX / max(h, w)))
    if scale > 1:
        tiles = tiles.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    th, tw = h * scale, w * scale
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = torch.full((c, rows * (th + pad) + pad, cols * (tw + pad) + pad), PAD_VALUE, dtype=torch.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = pad + r * (th + pad), pad + q * (tw + pad)
        out[:, top : top + th, left : left + tw] = tiles[k]
    return out.permute(1, 2, 0).numpy()


def save_grid(
    images,
    path,
    nrow: int | None = None,
    levels: int | None = None,
    pad: int = 1,
    scale=None,
    metadata: dict | None = None,
    watermark: bool | None = None,
) -> Path:
    """Write a PNG grid of images in [-1, 1] (N, C, H, W); see :func:`grid_array` for the options.

    ``metadata``: a JSON-able record stored as the PNG iTXt chunk ``genvision`` (JSON); read it
    back with ``genvision.sampling.read_record``. None stores the short record every PNG genvision
    writes carries (generator, version, command, UTC time).

    ``watermark``: add the invisible mark (:mod:`genvision.watermark`) when the images are at least
    28 pixels on a side (default: on, unless ``--no-watermark`` or ``GENVISION_NO_WATERMARK=1``);
    the record says whether and with which key kind it was added.
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    arr = grid_array(images, nrow=nrow, levels=levels, pad=pad, scale=scale)
    if metadata is None:
        metadata = {"generator": "genvision", "images": f"{len(images)} image(s) in a grid", **stamp()}
    arr, mark = _watermark(arr, images, watermark)
    metadata = {**metadata, "watermark": mark}
    img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    info = PngInfo()
    info.add_itxt(PNG_TEXT_KEY, json.dumps(metadata))
    buf = _io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return io.write_bytes(path, buf.getvalue())


def ema(values, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing)."""
    out, m = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        m = beta * m + (1 - beta) * v
        out[i] = m / (1 - beta ** (i + 1))
    return out


def plot_loss(records, path) -> Path:
    """Plot the loss terms of metrics.jsonl records, raw points and an EMA line; PNG, atomic.

    Args:
        records: dicts with "step" and numeric keys; every key containing "loss" is plotted
            (log-scale y when all its values are positive), "lr" on a second panel if present.
        path: the PNG to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = [r for r in records if isinstance(r, dict) and "step" in r]
    keys = sorted({k for r in records for k, v in r.items() if "loss" in k and _is_number(v)})
    keys.sort(key=lambda k: (k != "loss", k))  # the optimised loss first
    has_lr = any(_is_number(r.get("lr")) for r in records)
    fig = Figure(figsize=(7, 5.5 if has_lr else 4), dpi=100)
    FigureCanvasAgg(fig)
    if has_lr:
        ax, ax_lr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    else:
        ax, ax_lr = fig.subplots(1, 1), None
    positive = True
    for i, key in enumerate(keys):
        pts = [(r["step"], float(r[key])) for r in records if _is_number(r.get(key))]
        steps, vals = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        finite = np.isfinite(vals)
        steps, vals = steps[finite], vals[finite]
        if len(vals) == 0:
            continue
        positive &= bool((vals > 0).all())
        color = f"C{i}"
        ax.plot(steps, vals, ".", color=color, alpha=0.25, markersize=3)
        smooth = not key.startswith("val_")  # a validation loss is already a mean over its slice
        beta = 1 - min(1.0, 20 / len(vals)) if smooth else 0.0  # about 20 points' worth of smoothing
        ax.plot(steps, ema(vals, beta), "-", color=color, label=f"{key} (EMA)" if smooth else key)
    if keys:
        ax.set_yscale("log" if positive else "linear")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no loss records yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    if ax_lr is not None:
        pts = [(r["step"], float(r["lr"])) for r in records if _is_number(r.get("lr"))]
        ax_lr.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="k")
        ax_lr.set_ylabel("lr")
        ax_lr.grid(True, alpha=0.3)
    (ax_lr or ax).set_xlabel("step")
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return io.write_bytes(path, buf.getvalue())


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _watermark(arr: np.ndarray, images, wanted: bool | None) -> tuple[np.ndarray, dict | str]:
    """The grid with the mark (or not) and the record's ``watermark`` entry."""
    import os

    from . import provenance, watermark

    if wanted is None:
        wanted = provenance.WATERMARK and os.environ.get("GENVISION_NO_WATERMARK", "") not in ("1", "true")
    if not wanted:
        return arr, "off (--no-watermark)"
    h, w = np.asarray(images.shape if hasattr(images, "shape") else np.shape(images))[-2:]
    if not watermark.can_mark(int(h), int(w)):
        return arr, f"not marked: images smaller than {watermark.MIN_SIDE}x{watermark.MIN_SIDE}"
    key = watermark.key_of()
    marked, strength, z = watermark.mark(arr)
    return marked, {
        "scheme": "genvision spread-spectrum v1",
        "key": "public" if key == watermark.PUBLIC_KEY else "private",
        "strength": round(strength, 3),
        "z": round(z, 2),
    }
