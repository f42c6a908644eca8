"""Translation by a diffusion-family model of the target domain: SDEdit, and exact-enough inversion.

    genvision translate RUN --input IMG|npz:FILE|folder:DIR --strength S --out OUT
    genvision translate RUN --input ... --invert --out noise.npz

- **SDEdit** (Meng et al., 2022): the input is noised to the level at flow time ``S`` times the
  top of the model's grid and denoised by the model's own sampler from there
  (``Denoiser.sample(init=, strength=)``). The model knows only its training domain, so what it
  restores from the noised input looks like that domain: ``S`` trades faithfulness to the input
  (0: the input itself) for realism in the model's domain (1: a fresh sample that ignores it).
  Latent models noise and denoise the input's latent.
- **Inversion** (``Denoiser.invert``): the start noise from which the deterministic Euler sampler
  (the flow ODE, which is DDIM) returns the input, with clipping of the clean estimate off; each
  step is solved backwards by a few fixed-point iterations. The reconstruction from that noise and
  its PSNR against the input say how exact it was; the noise is the basis of edits.

Any model with a ``sample`` that takes ``init`` (the diffusion family: ``ddpm``,
``flow-matching``, ``edm``, ``ldm``, conditional and text variants) can translate; others get a
one-line error naming those that can.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from .. import seeding
from .files import check_out, read_sized, write_images
from .restore import psnr

BATCH_SIZE = 64
#: Euler steps of an inversion and its reconstruction (issue 22 measures at 50)
INVERT_STEPS = 50


def check_model(model) -> None:
    if "init" not in inspect.signature(model.sample).parameters:
        raise ValueError(
            f"{model.registry_name} cannot translate: diffusion-family models do (ddpm, flow-matching, edm, "
            "ldm and their conditional and text variants); train one on the target domain"
        )


def translate(
    model,
    images: torch.Tensor,
    strength: float,
    *,
    seed: int = 0,
    y=None,
    batch_size: int = BATCH_SIZE,
    **options,
) -> torch.Tensor:
    """SDEdit: ``images`` (B, C, H, W) in [-1, 1] into ``model``'s domain at ``strength`` in [0, 1].

    Image k draws its noise from ``seeding.image_seed(seed, k)`` whatever the batch. ``options``:
    the model's sampling options (sampler, steps, guidance_scale, prompts). Returns CPU images.
    """
    check_model(model)
    _check_images(model, images)
    outs = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        gens = seeding.image_generators(len(x), seed, model.device, start=start)
        labels = _slice(y, start, len(x))
        outs.append(
            model.sample(len(x), y=labels, generator=gens, init=x, strength=strength, **options).cpu()
        )
    return torch.cat(outs)


def invert(
    model,
    images: torch.Tensor,
    *,
    steps: int = INVERT_STEPS,
    iterations: int = 3,
    y=None,
    batch_size: int = BATCH_SIZE,
) -> dict:
    """Noise for ``images`` (``Denoiser.invert``), its reconstruction and the reconstruction PSNR.

    Returns {"noise": (B, *noise_shape), "reconstruction": (B, C, H, W), "psnr_db": (B,)} on the CPU.
    """
    check_model(model)
    _check_images(model, images)
    if getattr(model.config, "conditional", False) and y is None:
        raise ValueError(
            f"{model.registry_name} is class-conditional: its inversion needs the images' labels (y=); "
            "or invert with an unconditional model"
        )
    noises, recons = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        labels = _slice(y, start, len(x))
        z = model.invert(x, labels, steps=steps, iterations=iterations)
        r = model.sample(len(x), y=labels, seed=0, noise=z, sampler="euler", steps=steps, clip_x0=False)
        noises.append(z.cpu())
        recons.append(r.cpu())
    recon = torch.cat(recons)
    return {"noise": torch.cat(noises), "reconstruction": recon, "psnr_db": psnr(recon, images.cpu())}


def _slice(y, start: int, n: int):
    if y is None or isinstance(y, int):
        return y
    return torch.as_tensor(y)[start : start + n]


def _check_images(model, images: torch.Tensor) -> None:
    c = model.config
    want = (c.channels, c.image_size, c.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(
            f"{model.registry_name} translates images of shape {want} (channels, height, width); "
            f"got {tuple(images.shape)[1:]}: resize them (--resize) or use a model of their size"
        )


def run(
    run_dir,
    source: str,
    out,
    *,
    strength: float | None = None,
    do_invert: bool = False,
    steps: int | None = None,
    allow_resize: bool = False,
    seed: int = 0,
    device: str = "auto",
    **options,
) -> dict:
    """The CLI's translation: read, translate (or invert), write ``out`` and ``<out>_compare.png``."""
    from .. import sampling
    from ..provenance import stamp
    from ..viz import save_grid

    out = check_out(out)
    if do_invert and out.suffix != ".npz":
        raise ValueError("--invert writes the noise: give --out NAME.npz")
    if do_invert == (strength is not None):
        raise ValueError("give --strength S (SDEdit) or --invert, one of them")
    model, _ = sampling._model(run_dir, device)
    check_model(model)
    c = model.config
    x = read_sized(source, c.image_size, c.channels, allow_resize, "input", model.registry_name)
    record = stamp() | {"generator": "genvision", "model": str(run_dir), "seed": seed}
    if do_invert:
        found = invert(model, x, steps=steps or INVERT_STEPS)
        outs = found["reconstruction"]
        record |= {"task": "invert", "steps": steps or INVERT_STEPS, "sampler": "euler", "clip_x0": False}
        extra = {
            "key": "reconstruction",
            "noise": found["noise"].numpy().astype(np.float32),
            "psnr_db": found["psnr_db"].numpy(),
        }
    else:
        outs = translate(model, x, strength, seed=seed, steps=steps, **options)
        record |= {
            "task": "translate",
            "strength": strength,
            **({"steps": steps} if steps else {}),
            **options,
        }
        extra = {}
    write_images(outs, out, record, **extra)
    compare = out.with_name(out.stem + "_compare.png")
    k = min(len(outs), 16)
    save_grid(torch.cat([x[:k], outs[:k]]), compare, nrow=k, metadata=record)
    summary = {"n": len(outs), "out": str(out), "compare": str(compare)}
    if do_invert:
        summary["psnr_db"] = float(found["psnr_db"].mean())
    else:
        summary["psnr_to_input_db"] = float(psnr(outs, x).mean())
    return summary
