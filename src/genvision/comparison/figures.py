"""The pictures of a compare: sample rows side by side, FID against training time, FID against speed.

Matplotlib through its object API and the Agg canvas (as ``viz.py``: no pyplot, no global backend),
written atomically.
"""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np

from .. import io
from ..viz import grid_array

MARKERS = "osD^vPX*<>"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return io.write_bytes(path, buf.getvalue())


def _style(i: int) -> dict:
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)]}


def grids(rows: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """One row of samples per model, labelled with its name, at one tile size.

    Args:
        rows: (model name, uint8 images (N, H, W, C) 0..255), every row the same N and shape.
    """
    tiles = []
    for _, images in rows:
        x = np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) / 127.5 - 1  # (N, C, H, W) in [-1, 1]
        tiles.append(grid_array(x, nrow=len(x)))  # (h, w, C) uint8
    h, w = tiles[0].shape[:2]
    width = 8.0
    fig = _figure(width + 1.6, len(rows) * (width * h / w + 0.1) + 0.2)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (name, _), tile in zip(axes, rows, tiles):
        grey = tile.shape[-1] == 1
        ax.imshow(
            tile[..., 0] if grey else tile,
            cmap="gray" if grey else None,
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    fig.subplots_adjust(left=1.5 / (width + 1.6), right=0.99, top=0.99, bottom=0.01, hspace=0.08)
    return _save(fig, path)


def fid_vs_time(series: dict, floor: float | None, path: Path) -> Path:
    """FID against seconds of training, one line per run, one colour per model.

    Args:
        series: model name -> list (one per seed) of [(seconds on the trainer clock, FID), ...].
        floor: real-vs-real FID at the same N, drawn as a dashed line (None: not drawn).
    """
    fig = _figure(7.5, 4.8)
    ax = fig.subplots(1, 1)
    values = []
    for i, (model, runs) in enumerate(series.items()):
        for j, points in enumerate(runs):
            if not points:
                continue
            t, fid = zip(*sorted(points))
            values += fid
            ax.plot(t, fid, "-", label=model if j == 0 else None, alpha=0.9 if j == 0 else 0.5, **_style(i))
    if floor is not None:
        ax.axhline(floor, linestyle="--", color="gray", label="floor (real vs real)")
        values.append(floor)
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("training time (s, trainer clock)")
    ax.set_ylabel("domain FID (lower is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(series) > 6 else 1)
    fig.tight_layout()
    return _save(fig, path)


def quality_vs_speed(points: dict, floor: float | None, path: Path) -> Path:
    """FID against sampling images/s, one point per model (error bars: std over seeds).

    Args:
        points: model name -> (images/s, FID, images/s std or None, FID std or None).
    """
    fig = _figure(7.5, 4.8)
    ax = fig.subplots(1, 1)
    for i, (model, (speed, fid, speed_std, fid_std)) in enumerate(points.items()):
        style = _style(i)
        ax.errorbar([speed], [fid], xerr=speed_std, yerr=fid_std, linestyle="none", capsize=3, **style)
        ax.annotate(
            model, (speed, fid), textcoords="offset points", xytext=(5, 4), fontsize=8, color=style["color"]
        )
    if floor is not None:
        ax.axhline(floor, linestyle="--", color="gray", label="FID floor (real vs real)")
        ax.legend(fontsize=8)
    speeds = [p[0] for p in points.values()]
    fids = [p[1] for p in points.values()] + ([floor] if floor is not None else [])
    if min(speeds) > 0:
        ax.set_xscale("log")
    if min(fids) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("sampling speed (images/s, higher is better)")
    ax.set_ylabel("domain FID (lower is better)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
