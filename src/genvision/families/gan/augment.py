"""Differentiable augmentation for GANs on small data (DiffAugment; Zhao et al., 2020).

The same random transformations are applied to every image the discriminator sees, real and
generated, in both phases, and gradients flow through them to the generator, so D cannot
memorise the few training images while G is never taught to produce augmented ones.

Policies (comma-separated in ``GANConfig.augment``), each image drawing its parameters from its
own generator (``genvision.seeding``), in the order listed:

- ``color``: brightness shift in [-0.5, 0.5) and contrast factor in [0.5, 1.5) (on [-1, 1]
  images, so the ranges are the paper's doubled); saturation in [0, 2) when there are 3 channels.
- ``translation``: integer shift of up to 1/8 of the side in each direction, zero-filled.
- ``cutout``: a square of half the side set to zero at a random centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import seeding

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); "" -> (); unknown names raise."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {', '.join(bad)}; choose from {', '.join(POLICIES)} or ''")
    return names


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator=None) -> torch.Tensor:
    """Apply ``policy`` to x (B, C, H, W) in [-1, 1]; differentiable in x. Same shape out."""
    for name in policy:
        x = _AUGMENTS[name](x, generator)
    return x


def _color(x: torch.Tensor, generator) -> torch.Tensor:
    b, dev = x.shape[0], x.device
    x = x + (seeding.rand((b, 1, 1, 1), generator, dev, x.dtype) - 0.5)  # brightness
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (seeding.rand((b, 1, 1, 1), generator, dev, x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (seeding.rand((b, 1, 1, 1), generator, dev, x.dtype) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, generator) -> torch.Tensor:
    b, _, h, w = x.shape
    r = max(1, h // 8)
    shift = (seeding.rand((b, 2), generator, x.device) * (2 * r + 1)).long() - r  # (B, 2) in -r..r
    padded = F.pad(x, (r, r, r, r))  # zeros outside the image
    rows = torch.arange(h, device=x.device)[None] + r - shift[:, :1]  # (B, H) source rows
    cols = torch.arange(w, device=x.device)[None] + r - shift[:, 1:]  # (B, W) source columns
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, generator) -> torch.Tensor:
    b, _, h, w = x.shape
    centre = seeding.rand((b, 2), generator, x.device)  # (B, 2) in [0, 1)
    cy, cx = (centre[:, 0] * h).long(), (centre[:, 1] * w).long()
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    top, left = cy - h // 4, cx - w // 4  # the square spans h // 2 rows and w // 2 columns
    inside_y = (ys[None] >= top[:, None]) & (ys[None] < top[:, None] + h // 2)  # (B, H)
    inside_x = (xs[None] >= left[:, None]) & (xs[None] < left[:, None] + w // 2)  # (B, W)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # (B, H, W)
    return x * keep[:, None].to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
