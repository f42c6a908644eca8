"""Restoration: inpainting, super-resolution and colourisation with any model that can do them.

    genvision inpaint  RUN --input IMG|npz:FILE|folder:DIR --mask MASK.png|center|random|box:x,y,w,h --out OUT
    genvision upscale  RUN --input ... [--scale 4] --out OUT
    genvision colorize RUN --input ... --out OUT

Routes, picked per model (``route="auto"``) from what it can do, never from its family name:

- **task model** (``model.task`` is the task: the registry's ``inpaint``, ``sr``, ``colorize``):
  its own ``restore(y, mask)``, a diffusion model conditioned on the degraded image.
- **zero-shot, diffusion family** (a ``sample`` that takes a ``constraint``): the degradations are
  linear (:mod:`genvision.data.degrade`), so every clean-image estimate of the sampler is
  projected onto the images consistent with the input, ``x0 - A+(A x0 - y)`` (the range /
  null-space split of DDNM, Wang et al. 2023), with the model's own sampler and steps; latent
  models decode, project and encode at each step. ``resample`` R (inpainting) switches to
  RePaint's resampling (``samplers.repaint``): ancestral steps, each repeated R more times after
  diffusing back, which brings the filled pixels much nearer the true conditional (a test
  measures it on a Gaussian) at R + 1 times the cost.
- **zero-shot, latent search** (VAEs, normalizing flows and GANs without labels: a ``decode``
  from a standard-normal latent): the MAP latent for the input under the model's prior,
  found by gradient descent from a few starts (:mod:`genvision.apps.latent_fit`); options
  ``steps``, ``starts``, ``lr``, ``noise``.
- **zero-shot, autoregressive** (inpainting only, a ``complete`` method): pixels are drawn in
  raster order given everything before them; given pixels *after* a missing one (below the hole,
  right of it on its rows) are not looked at while drawing it, only restored after.

Every route ends with the exact projection inside [-1, 1] (:func:`genvision.data.degrade.fit`),
so inpainting keeps every known pixel, the downsample of an upscaled image equals its input, and
colourisation keeps the input's luma (up to float rounding; 8-bit outputs round once more).

Baselines (the benchmark's yardsticks, and the tests'): :func:`harmonic_fill` (the hole solves
Laplace's equation with the known pixels as boundary), :func:`bicubic` (enlargement), and
:class:`MeanChroma` (the training set's mean colour offset per luma bin). :func:`feature_distance`
is a learned perceptual distance: the L2 distance between the domain judge's penultimate
features of two images (LPIPS-style, with the judge of :mod:`genvision.metrics.judges`).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import seeding
from ..data import degrade
from ..data.inputs import read_inputs, resize
from . import latent_fit
from .files import check_out, fit_size, write_images

TASKS = degrade.TASKS
ROUTES = ("auto", "task", "zero-shot")
BATCH_SIZE = 64
#: harmonic fill: Jacobi sweeps per pixel of the image side (converges well before on 8-64 px)
HARMONIC_SWEEPS_PER_PIXEL = 40


# ----------------------------------------------------------------------------- routes
def route_of(model, task: str) -> str:
    """The route ``model`` restores ``task`` by: "task", "zero-shot", "zero-shot-ar" or
    "zero-shot-latent" (or an error)."""
    if task not in TASKS:
        raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(TASKS)}")
    if getattr(model, "task", None) == task:
        return "task"
    if getattr(model, "task", None) in TASKS:
        raise ValueError(f"{model.registry_name} is the {model.task} task model; it cannot {task}")
    if "constraint" in inspect.signature(model.sample).parameters:
        return "zero-shot"
    if task == "inpaint" and hasattr(model, "complete"):
        return "zero-shot-ar"
    if latent_fit.can_fit(model):
        return "zero-shot-latent"
    raise ValueError(
        f"{model.registry_name} cannot {task}: diffusion-family models (ddpm, flow-matching, edm, ldm, ...) "
        f"restore zero-shot, autoregressive ones inpaint, unconditional VAEs, flows and GANs by a latent "
        f"search, or train the task model "
        f"(genvision train {'sr' if task == 'sr' else task} --data ...)"
    )


def restore(
    model,
    task: str,
    y: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    scale: int | None = None,
    seed: int = 0,
    resample: int = 0,
    route: str = "auto",
    batch_size: int = BATCH_SIZE,
    **sample_options,
) -> tuple[torch.Tensor, str]:
    """Restore measurements ``y`` of ``task`` with ``model``; returns (images, route used).

    Args:
        y: inpaint: (B, C, H, W) images in [-1, 1] (values under the mask are ignored); sr: the
            low-res (B, C, H/s, W/s); colorize: (B, 1, H, W) luma in [-1, 1].
        mask: inpaint: (B or 1, 1, H, W), 1 where the pixel is missing.
        scale: sr: the factor (default: the model's side / the input's side).
        seed: image k draws from ``seeding.image_seed(seed, k)`` whatever the batch.
        resample: zero-shot inpainting with a diffusion model: extra passes (see the module docstring).
        route: "auto" (the task model if it is one, else zero-shot), "task" or "zero-shot".
        sample_options: the model's sampling options (sampler, steps, ...).

    Returns:
        ((B, C, H, W) images in [-1, 1] on the CPU, that satisfy the measurement exactly; route).
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {', '.join(ROUTES)} (got {route!r})")
    found = route_of(model, task)
    if route == "task" and found != "task":
        raise ValueError(
            f"{model.registry_name} is not a {task} task model; use route='zero-shot' or train one"
        )
    if route == "zero-shot" and found == "task":
        raise ValueError(
            f"{model.registry_name} is a task model; it restores by its own route (route='task')"
        )
    if resample and not (found == "zero-shot" and task == "inpaint"):
        raise ValueError("resample applies to zero-shot inpainting with a diffusion-family model only")
    if found == "zero-shot-latent" and set(sample_options) - set(latent_fit.OPTIONS):
        raise ValueError(
            f"the latent search ({model.registry_name}) takes the options {', '.join(latent_fit.OPTIONS)}; "
            f"not {', '.join(sorted(set(sample_options) - set(latent_fit.OPTIONS)))}"
        )
    if resample < 0:
        raise ValueError(f"resample must be >= 0 (got {resample})")
    c = model.config
    y = torch.as_tensor(y).float().cpu()
    if y.dim() != 4:
        raise ValueError(f"the input must be a batch of images (B, C, H, W); got shape {tuple(y.shape)}")
    size, channels = c.image_size, c.channels
    if task == "sr":
        if scale is None:
            scale = size // y.shape[-1] if y.shape[-1] and size % y.shape[-1] == 0 else 0
        degrade.check_scale(size, scale)
        want = (channels, size // scale, size // scale)
    elif task == "colorize":
        if channels != 3:
            raise ValueError(
                f"colourisation needs a model of RGB images; {model.registry_name} makes {channels}-channel ones"
            )
        want = (1, size, size)
    else:
        want = (channels, size, size)
    if tuple(y.shape[1:]) != want:
        raise ValueError(
            f"{task}: {model.registry_name} takes inputs of shape {want} (channels, height, width), "
            f"got {tuple(y.shape[1:])}; resize them (--resize) or use a model of their size"
        )
    if task == "inpaint":
        mask = check_mask(mask, y)
    meas_all = degrade.degrade(task, y, mask=mask, scale=scale or 4) if task == "inpaint" else y
    outs = []
    for start in range(0, len(y), batch_size):
        sl = slice(start, start + batch_size)
        gens = seeding.image_generators(len(y[sl]), seed, model.device, start=start)
        m = mask[sl].to(model.device) if mask is not None else None
        meas = meas_all[sl].to(model.device)
        if found == "task":
            x = model.restore(
                y[sl].to(model.device) if task != "inpaint" else meas, m, generator=gens, **sample_options
            )
        elif found == "zero-shot":

            def constraint(x0, meas=meas, m=m):
                return degrade.project(task, x0, meas, mask=m, scale=scale or 4)

            labels = None
            x = model.sample(
                len(meas),
                y=labels,
                generator=gens,
                constraint=constraint,
                resample=resample,
                **sample_options,
            )
        elif found == "zero-shot-latent":
            x = latent_fit.fit_latent(
                model, task, meas, mask=m, scale=scale or 4, generator=gens, **sample_options
            )
        else:  # autoregressive completion: known = not missing
            x = model.complete(meas, (m < 0.5).expand_as(meas), generator=gens, **sample_options)
        x = degrade.fit(task, x.float(), meas, mask=m, scale=scale or 4)  # exactness, inside [-1, 1]
        outs.append(x.cpu())
    return torch.cat(outs), found


def inpaint(model, images, masks, *, seed: int = 0, resample: int = 0, **options) -> torch.Tensor:
    """Fill the pixels where ``masks`` is 1 (missing), keeping the others exactly; (B, C, H, W)."""
    return restore(model, "inpaint", images, mask=masks, seed=seed, resample=resample, **options)[0]


def upscale(model, images, *, scale: int | None = None, seed: int = 0, **options) -> torch.Tensor:
    """Enlarge low-res images to the model's size; their s x s box average equals the input."""
    return restore(model, "sr", images, scale=scale, seed=seed, **options)[0]


def colorize(model, images, *, seed: int = 0, **options) -> torch.Tensor:
    """Colour images given as luma (B, 1, H, W) or RGB (their luma is kept, their colour ignored)."""
    images = torch.as_tensor(images).float()
    luma = degrade.luminance(images) if images.dim() == 4 and images.shape[1] == 3 else images
    return restore(model, "colorize", luma, seed=seed, **options)[0]


def check_mask(mask, images: torch.Tensor) -> torch.Tensor:
    """A (B, 1, H, W) float mask of 0/1 for ``images`` (one mask for all is expanded)."""
    if mask is None:
        raise ValueError(
            "inpainting needs a mask (1 where a pixel is missing): --mask MASK.png|center|random|box:x,y,w,h"
        )
    mask = torch.as_tensor(mask).float().cpu()
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != images.shape[-2:]:
        raise ValueError(
            f"the mask must be (B, 1, H, W) with the images' size {tuple(images.shape[-2:])}; "
            f"got {tuple(mask.shape)}"
        )
    if mask.shape[0] == 1:
        mask = mask.expand(len(images), -1, -1, -1)
    if mask.shape[0] != len(images):
        raise ValueError(f"{mask.shape[0]} masks for {len(images)} images: give one, or one per image")
    return (mask > 0.5).float()


# ----------------------------------------------------------------------------- baselines
def harmonic_fill(images: torch.Tensor, mask: torch.Tensor, sweeps: int | None = None) -> torch.Tensor:
    """Fill the hole (mask 1) with the solution of Laplace's equation bounded by the known pixels.

    Jacobi iterations of the 4-neighbour average from the known pixels' mean (image borders:
    replicated, so no-flux); exact for a constant border (a constant fill) and converged to
    1e-4 well within the default sweeps on images up to 64 px.
    """
    images, mask = images.double(), check_mask(mask, images).double()
    known = 1 - mask
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    x = known * images + mask * mean
    for _ in range(sweeps or HARMONIC_SWEEPS_PER_PIXEL * images.shape[-1]):
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        avg = (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) / 4
        x = known * images + mask * avg
    return x.float()


def bicubic(low: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic enlargement by ``scale`` (clamped to [-1, 1]); no consistency projection."""
    return F.interpolate(low.float(), scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


class MeanChroma:
    """Colourisation baseline: each pixel gets the training set's mean colour offset (x - Y) of its
    luma bin, so its luma is kept exactly (the offsets have zero luma)."""

    def __init__(self, train_images: torch.Tensor, bins: int = 32):
        x = train_images.double()
        luma = degrade.luminance(x)  # (N, 1, H, W)
        offset = (x - luma).permute(0, 2, 3, 1).reshape(-1, 3)  # (N H W, 3)
        idx = self._bin(luma.reshape(-1), bins)
        sums = torch.zeros(bins, 3, dtype=torch.float64).index_add_(0, idx, offset)
        counts = torch.bincount(idx, minlength=bins).double().clamp(min=1)
        self.bins, self.table = bins, sums / counts[:, None]  # (bins, 3)

    @staticmethod
    def _bin(luma: torch.Tensor, bins: int) -> torch.Tensor:
        return ((luma.clamp(-1, 1) + 1) / 2 * bins).long().clamp(max=bins - 1)

    def __call__(self, luma: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) luma -> (B, 3, H, W) colour images."""
        idx = self._bin(luma.double(), self.bins)[:, 0]  # (B, H, W)
        return (luma.double() + self.table[idx].permute(0, 3, 1, 2)).float()


def feature_distance(a: torch.Tensor, b: torch.Tensor, judge) -> torch.Tensor:
    """(B,) L2 distances between the judge's penultimate features of images a[k] and b[k]."""
    return (judge.features(a) - judge.features(b)).norm(dim=1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(dim=1).clamp(min=1e-12)
    return 10 * torch.log10(4 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) mean SSIM (Wang et al. 2004; 7x7 uniform window, images mapped to [0, 1]) per image."""
    a, b = (a.double() + 1) / 2, (b.double() + 1) / 2
    k = min(7, a.shape[-1])
    pool = lambda t: F.avg_pool2d(t, k, stride=1)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a, var_b = pool(a * a) - mu_a**2, pool(b * b) - mu_b**2
    cov = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(dim=1)


def colourfulness(x: torch.Tensor) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of a set of RGB images in [-1, 1] (0-255 scale)."""
    x = (x.double() + 1) * 127.5
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    rg, yb = r - g, (r + g) / 2 - b
    return float((rg.std() ** 2 + yb.std() ** 2).sqrt() + 0.3 * (rg.mean() ** 2 + yb.mean() ** 2).sqrt())


# ----------------------------------------------------------------------------- inputs and masks
def parse_mask(spec: str, n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``center`` | ``random`` | ``box:x,y,w,h`` | a mask image (white = missing), as (n, 1, size, size)."""
    if spec == "center":
        return degrade.center_mask(n, size)
    if spec == "random":
        return degrade.random_masks(n, size, seeding.image_generators(n, seed))
    if spec.startswith("box:"):
        try:
            x, y, w, h = (int(v) for v in spec[4:].split(","))
        except ValueError:
            raise ValueError(f"--mask box:x,y,w,h takes four integers (got {spec!r})") from None
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > size or y + h > size:
            raise ValueError(f"--mask {spec}: the box must lie inside the {size}x{size} image")
        m = torch.zeros(n, 1, size, size)
        m[:, :, y : y + h, x : x + w] = 1
        return m
    if not Path(spec).is_file():
        raise ValueError(f"--mask {spec!r}: not center, random, box:x,y,w,h or an existing mask image")
    m = (read_inputs(spec, 1) > 0).float()  # white (> mid-grey) = missing
    if m.shape[-1] != size or m.shape[-2] != size:
        raise ValueError(f"the mask {spec} is {m.shape[-1]}x{m.shape[-2]}; the images are {size}x{size}")
    return m[:1].expand(n, -1, -1, -1)


def run(
    task: str,
    run_dir,
    source: str,
    out,
    *,
    mask: str | None = None,
    scale: int | None = None,
    allow_resize: bool = False,
    seed: int = 0,
    resample: int = 0,
    device: str = "auto",
    **sample_options,
) -> dict:
    """The CLI's restoration: read, degrade where the input is the original, restore, write.

    The input is the original (full size; degraded here: masked, box-downsampled, or its luma
    taken) when it has the model's size; for ``sr`` an input of 1/scale of the model's size is the
    low-res measurement itself (no original then). Writes ``out`` (.png grid or .npz) and
    ``<out>_compare.png`` (rows: input, mask, output, original when known).
    """
    from .. import sampling
    from ..provenance import stamp
    from ..viz import save_grid

    check_out(out)  # before any work
    model, _ = sampling._model(run_dir, device)
    c = model.config
    size = c.image_size
    if task == "colorize" and c.channels != 3:
        raise ValueError(
            f"colourisation needs a model of RGB images; {model.registry_name} makes {c.channels}-channel ones"
        )
    route_of(model, task)  # a model that cannot do the task says so before any file is read
    x = read_inputs(source, c.channels)
    original = None
    if task == "sr":
        s = scale or 4
        degrade.check_scale(size, s)
        if x.shape[-1] == size // s and x.shape[-2] == size // s:
            y = x
        elif x.shape[-2:] == (size, size) or allow_resize:
            original = resize(x, size)
            y = degrade.downsample(original, s)
        else:
            raise ValueError(
                f"the input is {x.shape[-1]}x{x.shape[-2]}; {model.registry_name} upscales {size // s}x{size // s} "
                f"to {size}x{size} (or give {size}x{size} originals, or --resize)"
            )
        scale = s
    else:
        x = fit_size(x, size, allow_resize, "input", model.registry_name)
        original = x
        y = degrade.luminance(x) if task == "colorize" else x
    m = parse_mask(mask, len(x), size, seed) if task == "inpaint" else None
    if task != "inpaint" and mask is not None:
        raise ValueError(f"--mask is for inpaint, not {task}")
    restored, route = restore(
        model, task, y, mask=m, scale=scale, seed=seed, resample=resample, **sample_options
    )
    record = stamp() | {"generator": "genvision", "task": task, "route": route, "model": str(run_dir)}
    out = write_images(restored, out, record)
    compare = out.with_name(out.stem + "_compare.png")
    k = min(len(restored), 16)
    shown = degrade.enlarge(y[:k], scale) if task == "sr" else y[:k]
    rows = [shown.expand(-1, c.channels, -1, -1) if c.channels == 3 else shown]
    if m is not None:
        rows.append((m[:k] * 2 - 1).expand(-1, c.channels, -1, -1))
        rows[0] = degrade.keep_known(torch.zeros_like(y[:k]), y[:k], m[:k])
    rows.append(restored[:k])
    if original is not None:
        rows.append(original[:k])
    save_grid(torch.cat(rows), compare, nrow=k, metadata=record)
    summary = {"task": task, "route": route, "n": len(restored), "out": str(out), "compare": str(compare)}
    if original is not None:
        summary["psnr_db"] = float(psnr(restored, original).mean())
        summary["ssim"] = float(ssim(restored, original).mean())
    return summary
