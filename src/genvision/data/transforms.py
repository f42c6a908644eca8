"""Pixel transforms: level indices <-> floats in [-1, 1], 8-bit for files, Bernoulli draws, resizing.

Inside genvision images are float32 (N, C, H, W) in [-1, 1]; datasets store uint8 level indices
0..L-1 and convert with ``to_float``: v -> v / (L - 1) * 2 - 1 (the levels grid of
:mod:`genvision.nn.pixels`, re-exported here). Files hold 0..255, with level v of an L-level
dataset written as round(v * 255 / (L - 1)) (INTERFACES.md, ``.npz`` samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import pixels
from ..nn.pixels import to_float

__all__ = ["to_float", "to_levels", "to_uint8_255", "bernoulli", "resize"]


def to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Quantise floats in [-1, 1] to the nearest level index, uint8 0..levels-1 (clamped), same shape.

    :func:`genvision.nn.pixels.to_levels` in the dtype datasets store.
    """
    return pixels.to_levels(x, levels, dtype=torch.uint8)


def to_uint8_255(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Floats in [-1, 1] to 0..255 for files: quantise to ``levels``, then v -> round(v * 255 / (levels - 1)).

    Args:
        x: float tensor of any shape, nominally in [-1, 1] (clamped).
        levels: the dataset's levels; 256 gives plain 8-bit.

    Returns:
        uint8 tensor of the same shape (INTERFACES.md ``.npz`` rule).
    """
    v = pixels.to_levels(x, levels, dtype=torch.int32)
    return torch.div(v * 510 + (levels - 1), 2 * (levels - 1), rounding_mode="floor").to(torch.uint8)


def bernoulli(intensities: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binarise: x ~ Bernoulli(intensity / 255), drawn as u < intensity / 255 with u ~ U[0, 1).

    Args:
        intensities: uint8 tensor of any shape, 0..255 (0 never fires, 255 always does).
        generator: source of u (its device is used for the draw); the global RNG if None.

    Returns:
        bool tensor of the same shape, on the device of ``intensities``.
    """
    device = generator.device if generator is not None else intensities.device
    u = torch.rand(intensities.shape, generator=generator, device=device).to(intensities.device)
    return u < intensities.to(torch.float32) / 255


def resize(x: torch.Tensor, size: int | None, top: int) -> torch.Tensor:
    """Resize the shorter side to ``size`` (bilinear, antialiased), then centre-crop to a square.

    Args:
        x: uint8 (N, C, H, W) level indices 0..top.
        size: target side, or None to return ``x`` unchanged.
        top: largest level index (16 for digits, 255 for 8-bit); results are rounded and clamped
            to 0..top, so level indices stay level indices.

    Returns:
        uint8 (N, C, size, size).
    """
    n, c, h, w = x.shape
    if size is None or h == w == size:
        return x
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t, l = (nh - size) // 2, (nw - size) // 2
    out = []
    for chunk in x.split(4096):
        y = F.interpolate(chunk.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        out.append(y[..., t : t + size, l : l + size].round().clamp(0, top).to(torch.uint8))
    return torch.cat(out) if out else x.new_zeros((0, c, size, size))


def perturb_pixels(x: torch.Tensor, fraction: float, levels: int, generator: torch.Generator) -> torch.Tensor:
    """Replace each value of ``x`` (float in [-1, 1]) with probability ``fraction`` by a uniform
    random level of the ``levels``-level grid (Ren et al., 2019: the background model of the
    likelihood ratio learns the population's pixel statistics, not its shapes).

    The draw is made on the CPU from ``generator`` and moved to ``x``'s device.
    """
    hit = torch.rand(x.shape, generator=generator) < fraction
    noise = torch.randint(0, levels, x.shape, generator=generator).float() * (2 / (levels - 1)) - 1
    return torch.where(hit.to(x.device), noise.to(x.device, x.dtype), x)
