"""The degradations restoration undoes, as linear operators with their pseudo-inverses.

Images are (B, C, H, W) in [-1, 1]. Each degradation ``A`` is linear, and ``A A+ = I`` for the
pseudo-inverse ``A+`` given here, so ``project(x, y) = x - A+(A x - y)`` is the image nearest
``x`` (in the sense of ``A+``'s range / null-space split; DDNM, Wang et al. 2023) whose
degradation is exactly ``y``:

- **inpainting** (``mask``: (B, 1, H, W), 1 where the pixel is missing, 0 where it is known):
  ``A x`` keeps the known pixels; ``project`` puts the known pixels back.
- **super-resolution** by ``scale`` s: ``A x`` = s x s box average (what the task pairs and the
  benchmark degrade with); ``A+ y`` = nearest-neighbour enlargement (each low-res pixel copied
  s x s times), and ``A A+ y = y``.
- **colourisation**: ``A x`` = luminance Y = w . (R, G, B) with ITU-R BT.601 weights w
  (0.299, 0.587, 0.114; they sum to 1, so the [-1, 1] scale is kept); ``A+ y = w y / |w|^2``.

Masks for training and tests: :func:`center_mask` (a centred square of half the image's side)
and :func:`random_masks` (a documented mix: a third boxes, a third brush strokes, a third
random pixels), drawn from per-image generators (:mod:`genvision.seeding`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights of (R, G, B)
LUMA = (0.299, 0.587, 0.114)
TASKS = ("inpaint", "sr", "colorize")


# ----------------------------------------------------------------------------- inpainting
def keep_known(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` where the pixel is missing (mask 1), ``y`` where it is known (mask 0)."""
    return mask * x + (1 - mask) * y


def center_mask(n: int, size: int, device=None) -> torch.Tensor:
    """(n, 1, size, size) masks with a centred square of side size // 2 missing (1)."""
    m = torch.zeros(n, 1, size, size, device=device)
    a = size // 4
    m[:, :, a : a + size // 2, a : a + size // 2] = 1
    return m


def random_masks(n: int, size: int, generator=None, device=None) -> torch.Tensor:
    """(n, 1, size, size) training masks: image k's kind from its generator (boxes, strokes, pixels).

    - box: one axis-aligned box of side 1/4 .. 3/4 of the image at a random place;
    - strokes: 1-3 straight brush strokes of width about size / 8 between random points;
    - pixels: each pixel missing with probability 0.3 .. 0.8.
    """
    gens = generator if isinstance(generator, (list, tuple)) else [generator] * n
    if len(gens) != n:
        raise ValueError(f"{len(gens)} per-image generators for {n} masks")
    out = torch.zeros(n, 1, size, size, device=device)
    for k, g in enumerate(gens):
        u = torch.rand(8, generator=g).tolist()
        kind = int(u[0] * 3)
        if kind == 0:
            h = max(1, int(size * (0.25 + 0.5 * u[1])))
            w = max(1, int(size * (0.25 + 0.5 * u[2])))
            top, left = int(u[3] * (size - h + 1)), int(u[4] * (size - w + 1))
            out[k, :, top : top + h, left : left + w] = 1
        elif kind == 1:
            width = max(1.0, size / 8)
            yy, xx = torch.meshgrid(
                torch.arange(size, dtype=torch.float32),
                torch.arange(size, dtype=torch.float32),
                indexing="ij",
            )
            for _ in range(1 + int(u[5] * 3)):
                p = torch.rand(4, generator=g) * (size - 1)
                a, b = p[:2], p[2:]
                d = b - a
                t = (((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / d.pow(2).sum().clamp(min=1e-6)).clamp(0, 1)
                dist = ((yy - a[0] - t * d[0]) ** 2 + (xx - a[1] - t * d[1]) ** 2).sqrt()
                out[k, 0][dist <= width / 2] = 1
        else:
            p = 0.3 + 0.5 * u[6]
            out[k, 0] = (torch.rand(size, size, generator=g) < p).float()
    return out


# ----------------------------------------------------------------------------- super-resolution
def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """s x s box average: (B, C, H, W) -> (B, C, H / s, W / s); H and W must divide by s."""
    check_scale(x.shape[-1], scale)
    return F.avg_pool2d(x, scale)


def enlarge(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour enlargement by s, the pseudo-inverse of :func:`downsample`."""
    return F.interpolate(y, scale_factor=scale, mode="nearest")


def check_scale(size: int, scale: int) -> None:
    if scale < 2 or size % scale:
        raise ValueError(f"scale must be >= 2 and divide the image side {size} (got {scale}); try 2 or 4")


# ----------------------------------------------------------------------------- colourisation
def luminance(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): BT.601 luma, on the images' own [-1, 1] scale."""
    if x.shape[1] != 3:
        raise ValueError(f"colourisation needs RGB images (3 channels, got {x.shape[1]})")
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def luminance_pinv(y: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 3, H, W): w y / |w|^2, the pseudo-inverse of :func:`luminance`."""
    w = torch.tensor(LUMA, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
    return w * y / w.pow(2).sum()


# ----------------------------------------------------------------------------- one interface
def degrade(task: str, x: torch.Tensor, *, mask=None, scale: int = 4) -> torch.Tensor:
    """The measurement ``y = A x`` of ``task``: known pixels (missing ones set to 0), low-res, or luma."""
    if task == "inpaint":
        return (1 - mask) * x
    if task == "sr":
        return downsample(x, scale)
    if task == "colorize":
        return luminance(x)
    raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(TASKS)}")


def project(task: str, x: torch.Tensor, y: torch.Tensor, *, mask=None, scale: int = 4) -> torch.Tensor:
    """``x - A+(A x - y)``: the image nearest ``x`` whose degradation is exactly ``y``."""
    if task == "inpaint":
        return keep_known(x, y, mask)
    if task == "sr":
        return x - enlarge(downsample(x, scale) - y, scale)
    if task == "colorize":
        return x - luminance_pinv(luminance(x) - y)
    raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(TASKS)}")


def fit(
    task: str, x: torch.Tensor, y: torch.Tensor, *, mask=None, scale: int = 4, iters: int = 50
) -> torch.Tensor:
    """Like :func:`project` but inside [-1, 1]: the measurement is met by images that are valid.

    :func:`project` can leave pixels outside [-1, 1] (a black low-res pixel forces its whole block
    to -1), and clamping them breaks the measurement. Here each s x s block (sr), or each pixel's
    colour (colorize), is shifted by the one constant ``c`` that makes the clamped result meet the
    measurement, ``mean(clamp(x + c)) = y`` (monotone in c; bisection to 2^-iters * 4); the luma
    weights sum to 1, so a grey shift moves the luma by c. Inpainting is :func:`project` clamped.
    """
    if task == "inpaint":
        return keep_known(x.clamp(-1, 1), y, mask)
    if task not in ("sr", "colorize"):
        raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(TASKS)}")
    x = project(task, x, y, mask=mask, scale=scale).clamp(-1, 1)
    measure = (lambda t: downsample(t, scale)) if task == "sr" else luminance
    spread = (lambda c: enlarge(c, scale)) if task == "sr" else (lambda c: c)
    lo, hi = torch.full_like(y, -2.0), torch.full_like(y, 2.0)
    for _ in range(iters):
        mid = (lo + hi) / 2
        above = measure((x + spread(mid)).clamp(-1, 1)) > y
        hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
    return (x + spread((lo + hi) / 2)).clamp(-1, 1)


def condition_image(task: str, y: torch.Tensor, *, mask=None, scale: int = 4) -> torch.Tensor:
    """What a task model sees beside its noisy image, at full size: ``A+ y`` (the known pixels with
    zeros in the hole and the mask as one more channel for inpainting; the enlarged low-res image;
    the luma copied to the three channels)."""
    if task == "inpaint":
        return torch.cat([y, mask * 2 - 1], dim=1)
    if task == "sr":
        return enlarge(y, scale)
    if task == "colorize":
        return y.expand(-1, 3, -1, -1)
    raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(TASKS)}")
