"""Style transfer and trained-translation use: ``genvision stylize`` and ``gv.apps.stylize``.

    genvision stylize RUN --content IMG|npz:FILE|folder:DIR --style IMG --alpha A --out OUT.png|.npz

``gv.apps.style_transfer(model, content, style, alpha)`` calls a style-transfer model's own
``stylize`` (the registry's ``adain``). ``gv.apps.translate_trained(model, images)`` applies any trained translation model through its own
``translate(images)`` method (``pix2pix``, ``cyclegan``, ``adain``): the hook the
``genvision translate`` command (``apps/translation.py``, another module) can route trained
translation models to. :func:`run` reads the inputs, writes the output with its provenance stamp,
and a side-by-side ``<out>_compare.png`` (rows: content, style, output).
"""

from __future__ import annotations

import io as _io
import json
from pathlib import Path

import numpy as np
import torch

from .restore import read_inputs, resize


def style_transfer(model, content, style, alpha: float = 1.0) -> torch.Tensor:
    """``content`` (B, C, H, W) in [-1, 1] in the style of ``style`` (1 or B images); one-line errors."""
    if not callable(getattr(model, "stylize", None)):
        raise ValueError(
            f"{model.registry_name} is not a style-transfer model; train one with "
            "genvision train adain --data folder:DIR"
        )
    return model.stylize(content, style, alpha)


def translate_trained(model, images, **options) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] translated by a trained translation model's own ``translate``."""
    if not callable(getattr(model, "translate", None)):
        raise ValueError(
            f"{model.registry_name} has no translate method; train pix2pix (--data pairs:SRC,DST), "
            "cyclegan (--data unpaired:A,B) or adain"
        )
    return model.translate(images, **options)


def _read(source: str, size: int, channels: int, allow_resize: bool, what: str) -> torch.Tensor:
    x = read_inputs(source, channels)
    if x.shape[-2:] != (size, size):
        if not allow_resize:
            raise ValueError(
                f"the {what} image is {x.shape[-1]}x{x.shape[-2]}; the model works at {size}x{size}: "
                "add --resize to resize it"
            )
        x = resize(x, size)
    return x


def run(
    run_dir,
    content: str,
    style: str,
    out,
    *,
    alpha: float = 1.0,
    allow_resize: bool = False,
    device: str = "auto",
) -> dict:
    """The CLI's stylize: read content and style, stylize, write ``out`` and ``<out>_compare.png``."""
    from .. import io, sampling
    from ..provenance import stamp
    from ..viz import save_grid

    out = Path(out)
    if out.suffix not in (".png", ".npz"):
        raise ValueError(f"--out must end in .png or .npz (got {out.name})")
    model, _ = sampling._model(run_dir, device)
    c = model.config
    x = _read(content, c.image_size, c.channels, allow_resize, "content")
    s = _read(style, c.image_size, c.channels, allow_resize, "style")
    if len(s) not in (1, len(x)):
        raise ValueError(f"give one style image or one per content image (got {len(s)} for {len(x)})")
    y = style_transfer(model, x, s, alpha).cpu()
    record = stamp() | {
        "generator": "genvision",
        "task": "stylize",
        "model": str(run_dir),
        "alpha": float(alpha),
        "content": str(content),
        "style": str(style),
    }
    if out.suffix == ".npz":
        arr = ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        buf = _io.BytesIO()
        np.savez_compressed(buf, images=arr, metadata=np.array(json.dumps(record)))
        io.write_bytes(out, buf.getvalue())
    else:
        save_grid(y, out, metadata=record)
    compare = out.with_name(out.stem + "_compare.png")
    k = min(len(y), 16)
    rows = [x[:k], s.expand(len(x), -1, -1, -1)[:k], y[:k]]
    save_grid(torch.cat(rows), compare, nrow=k, metadata=record)
    return {"n": len(y), "out": str(out), "compare": str(compare), "alpha": float(alpha)}
