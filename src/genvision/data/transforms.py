"""Pixel transforms: level indices <-> floats in [-1, 1], 8-bit for files, Bernoulli draws, resizing.

Inside genvision images are float32 (N, C, H, W) in [-1, 1]; datasets store uint8 level indices
0..L-1 and convert with ``to_float``: v -> v / (L - 1) * 2 - 1. Files hold 0..255, with level v of
an L-level dataset written as round(v * 255 / (L - 1)) (INTERFACES.md, ``.npz`` samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_float(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices to floats: v -> v / (levels - 1) * 2 - 1.

    Args:
        images: integer tensor of any shape, values 0..levels-1 (uint8 (N, C, H, W) usually).
        levels: number of grey levels (17 for digits, 256 for 8-bit, 2 for binary).

    Returns:
        float32 tensor of the same shape in [-1, 1].
    """
    return images.to(torch.float32) / (levels - 1) * 2 - 1


def to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Quantise floats in [-1, 1] to the nearest level index, uint8 0..levels-1 (clamped), same shape."""
    v = torch.round((x.to(torch.float32).clamp(-1, 1) + 1) / 2 * (levels - 1))
    return v.to(torch.uint8)


def to_uint8_255(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Floats in [-1, 1] to 0..255 for files: quantise to ``levels``, then v -> round(v * 255 / (levels - 1)).

    Args:
        x: float tensor of any shape, nominally in [-1, 1] (clamped).
        levels: the dataset's levels; 256 gives plain 8-bit.

    Returns:
        uint8 tensor of the same shape (INTERFACES.md ``.npz`` rule).
    """
    v = to_levels(x, levels).to(torch.int32)
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
