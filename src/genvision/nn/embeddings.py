"""Timestep and class embeddings for conditional networks.

The sinusoidal timestep embedding follows Vaswani et al. (2017) as used by Ho et al. (2020):
half the features are ``sin(t * f_k)`` and half ``cos(t * f_k)`` with frequencies
``f_k = max_period ** (-k / half)`` spaced geometrically from 1 down to ``1 / max_period``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps.

    Args:
        t: (B,) timesteps, int or float, typically 0..T-1.
        dim: feature size; an odd ``dim`` gets one trailing zero.
        max_period: the slowest frequency's period.

    Returns:
        (B, dim) float32 features in [-1, 1].
    """
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=torch.float32)
    freqs = torch.exp(-math.log(max_period) * k / half)  # (half,)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, 2 * half)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class TimestepMLP(nn.Module):
    """Sinusoidal features -> Linear -> SiLU -> Linear: (B,) timesteps -> (B, out_dim)."""

    def __init__(self, sin_dim: int, out_dim: int):
        super().__init__()
        self.sin_dim = sin_dim
        self.mlp = nn.Sequential(nn.Linear(sin_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.sin_dim))


class ClassEmbedding(nn.Module):
    """Learned class vectors with one extra "null" class for classifier-free guidance.

    Labels 0..num_classes-1 are classes; ``num_classes`` (= :attr:`null`) means "no label" and is
    what guidance's unconditional branch and label dropout feed. Negative labels (unlabeled data,
    label -1) are mapped to the null class too.
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.null = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        """(B,) int labels or None (all null) -> (B, dim)."""
        if y is None:
            y = torch.full((batch,), self.null, dtype=torch.long, device=device)
        y = torch.where(y < 0, torch.full_like(y, self.null), y)
        return self.table(y)
