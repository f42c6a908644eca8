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

import torch

from .files import check_out, read_sized, write_images


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
    from .. import sampling
    from ..provenance import stamp
    from ..viz import save_grid

    out = check_out(out)
    model, _ = sampling._model(run_dir, device)
    c = model.config
    x = read_sized(content, c.image_size, c.channels, allow_resize, "content image", model.registry_name)
    s = read_sized(style, c.image_size, c.channels, allow_resize, "style image", model.registry_name)
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
    write_images(y, out, record)
    compare = out.with_name(out.stem + "_compare.png")
    k = min(len(y), 16)
    rows = [x[:k], s.expand(len(x), -1, -1, -1)[:k], y[:k]]
    save_grid(torch.cat(rows), compare, nrow=k, metadata=record)
    return {"n": len(y), "out": str(out), "compare": str(compare), "alpha": float(alpha)}
