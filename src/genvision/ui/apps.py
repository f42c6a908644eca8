"""The applications page's glue: which applications a model can run, and each run on one image.

Each entry calls the library's application API (``genvision.apps``), the same functions the CLI's
verbs call; an application a model cannot run is left out of its list (the page shows only what
works), and one that fails says the CLI's one line.
"""

from __future__ import annotations

import inspect

import torch

from ..families.base import has

#: the page's order; each name's inputs are in :func:`available`
APPS = ("inpaint", "upscale", "colorize", "translate", "edit", "interpolate")


def available(model) -> dict[str, dict]:
    """App name -> what its form needs, for the apps ``model`` can run."""
    from ..apps import restore
    from ..apps.editing import latent_space

    c = model.config
    out: dict[str, dict] = {}
    for app, task in (("inpaint", "inpaint"), ("upscale", "sr"), ("colorize", "colorize")):
        if task == "colorize" and c.channels != 3:
            continue
        try:
            restore.route_of(model, task)
        except ValueError:
            continue
        if task == "sr":
            scales = [s for s in (2, 4) if c.image_size % s == 0 and c.image_size // s >= 2]
            if getattr(model, "task", None) == "sr":
                scales = [model.config.scale] if hasattr(model.config, "scale") else scales
            if not scales:
                continue
            out[app] = {"scales": scales}
        else:
            out[app] = {}
    if "init" in inspect.signature(model.sample).parameters and getattr(model, "task", None) is None:
        out["translate"] = {}
    try:
        if getattr(model, "task", None) is not None:  # a restoration or translation model edits nothing
            raise ValueError
        latent_space(model)
        out["edit"] = {"attributes": ["thickness"] if c.channels == 1 else []}  # + the data's classes
    except ValueError:
        pass
    if has(model, "encode") and has(model, "decode") and getattr(model, "latent_shape", None) is not None:
        out["interpolate"] = {}
    return out


def run(app: str, model, dataset, images: list[torch.Tensor], params: dict, cache: dict) -> dict:
    """``app`` on ``images`` (float (1, C, H, W) at the model's size); returns the pictures to show.

    Returns ``{"input": ..., "degraded": ... or None, "output": (N, C, H, W), "note": str}``.
    """
    from .. import apps
    from ..data import degrade

    seed = int(params.get("seed", 0))
    steps = params.get("steps")
    options = {"steps": int(steps)} if steps not in (None, "") else {}
    x = images[0]
    if app == "inpaint":
        mask = params["mask"]  # (1, 1, H, W) float, 1 = missing
        if float(mask.sum()) == 0:
            raise ValueError("the mask is empty: paint the pixels to fill on the image first")
        out = apps.inpaint(model, x, mask, seed=seed, **options)
        red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # the missing pixels, shown red
        shown = x.expand(-1, 3, -1, -1) * (1 - mask) + red * mask
        return {"input": x, "degraded": shown, "output": out, "note": f"{int(mask.sum())} pixels filled"}
    if app == "upscale":
        s = int(params.get("scale", 4))
        degrade.check_scale(model.config.image_size, s)
        low = degrade.downsample(x, s)
        out = apps.upscale(model, low, scale=s, seed=seed, **options)
        shown = torch.nn.functional.interpolate(low, scale_factor=s, mode="nearest")
        return {"input": x, "degraded": shown, "output": out, "note": f"{s}x from {x.shape[-1] // s} px"}
    if app == "colorize":
        luma = degrade.luminance(x)
        out = apps.colorize(model, luma, seed=seed, **options)
        return {"input": x, "degraded": luma.expand(-1, 3, -1, -1), "output": out, "note": "colour from luma"}
    if app == "translate":
        strength = float(params.get("strength", 0.5))
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1] (got {strength})")
        out = apps.translate(model, x, strength, seed=seed, **options)
        return {"input": x, "degraded": None, "output": out, "note": f"strength {strength:g}"}
    if app == "edit":
        from ..apps.editing import direction, edit, latent_space

        attribute = str(params.get("attribute") or "").strip()
        amount = float(params.get("amount", 1.0))
        if not (amount == amount and abs(amount) <= 10):
            raise ValueError(f"amount must be between -10 and 10 (got {amount})")
        key = ("edit", attribute)
        if key not in cache:
            space = latent_space(model)
            cache[key] = (space, direction(space, attribute, dataset)[0])
        space, d = cache[key]
        out = edit(space, x, d, [amount])
        return {
            "input": x,
            "degraded": None,
            "output": out.reshape(-1, *x.shape[1:]),
            "note": f"{attribute} {amount:+g}",
        }
    if app == "interpolate":
        if len(images) < 2:
            raise ValueError("interpolation needs two images: pick a second one")
        frames = int(params.get("frames", 8))
        if not 2 <= frames <= 32:
            raise ValueError(f"frames must be 2..32 (got {frames})")
        out = apps_interpolate(model, images[0], images[1], frames)
        return {"input": torch.cat(images[:2]), "degraded": None, "output": out, "note": f"{frames} frames"}
    raise ValueError(f"unknown application {app!r}; known: {', '.join(APPS)}")


def apps_interpolate(model, x0, x1, frames):
    from ..apps.interpolate import interpolate

    return interpolate(model, x0, x1, frames=frames)
