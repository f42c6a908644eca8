"""Between images on a grid of L grey levels and the flow's continuous input z0.

Images arrive in [-1, 1] with level v in 0..L-1 at x = -1 + 2v / (L - 1) (the genvision
contract). A flow is a density on R^D, so the discrete data are dequantised first
(Theis et al., 2016; Ho et al., 2019):

    u = (v + U) / L in [0, 1)^D,   U ~ q(U | x) on [0, 1)^D     (uniform: q = 1)

    log P(v) = log  integral_[0,1)^D  p_u((v + U) / L) L^-D dU
            >= E_q[ log p_u(u) - log q(U | x) ] - D log L          (Jensen)

and u is mapped to z0 by a fixed invertible preprocessing whose log-determinant enters p_u:

- ``"scale"`` (Glow's [-1, 1] scaling): z0 = 2u - 1, log|det| = D log 2;
- ``"logit"`` (RealNVP): z0 = logit(a + (1 - 2a) u), log|det| = sum(log(1 - 2a) - log y - log(1 - y))
  with y = a + (1 - 2a) u; ``a`` keeps y away from 0 and 1.

So log p_u(u) = log p_flow(z0) + log|det dz0/du|, and every quantity is in nats per image.

Encoding and decoding (no noise) use the bin centre u = (v + 1/2) / L, computed from the
continuous value of x, so decode(encode(x)) = x for any x in [-1, 1], not only grid points.
"""

from __future__ import annotations

import math

import torch

from ...nn import pixels

PREPROCESSING = ("scale", "logit")


def dequantize(x: torch.Tensor, levels: int, noise: torch.Tensor) -> torch.Tensor:
    """u = (v + noise) / L with v the image's nearest level and noise in [0, 1): (B, C, H, W) in [0, 1)."""
    return (pixels.to_levels(x, levels, dtype=x.dtype) + noise) / levels


def bin_centre(x: torch.Tensor, levels: int) -> torch.Tensor:
    """u = (v + 1/2) / L with v continuous: the deterministic counterpart of :func:`dequantize`."""
    return (pixels.level_value(x, levels) + 0.5) / levels


def image_from_unit(u: torch.Tensor, levels: int) -> torch.Tensor:
    """The inverse of :func:`bin_centre` (not clamped): u -> x = 2 (u L - 1/2) / (L - 1) - 1."""
    return pixels.to_float(u * levels - 0.5, levels, dtype=u.dtype)


def to_flow(u: torch.Tensor, kind: str, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """u in [0, 1)^D -> z0, and log|det dz0/du| per image, (B,) nats."""
    dims = u[0].numel()
    if kind == "scale":
        return 2 * u - 1, u.new_full((u.shape[0],), dims * math.log(2.0))
    y = alpha + (1 - 2 * alpha) * u
    z0 = torch.log(y) - torch.log1p(-y)
    logdet = dims * math.log(1 - 2 * alpha) - (torch.log(y) + torch.log1p(-y)).flatten(1).sum(1)
    return z0, logdet


def from_flow(z0: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """The inverse of :func:`to_flow`: z0 -> u."""
    if kind == "scale":
        return (z0 + 1) / 2
    return (torch.sigmoid(z0) - alpha) / (1 - 2 * alpha)
