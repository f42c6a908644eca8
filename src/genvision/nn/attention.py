"""Self-attention over the pixels of a feature map (Vaswani et al., 2017; as in Ho et al., 2020).

Each of the H*W positions attends to every other one. Cost grows with (H*W)^2, so UNets use it
only at low resolutions (16x16 and below). The output projection starts at zero, so a freshly
built block is the identity. The GroupNorm helper the UNet's blocks share lives here too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm_groups(channels: int, max_groups: int = 32, min_group_size: int = 4) -> int:
    """Largest group count <= ``max_groups`` dividing ``channels`` with >= ``min_group_size`` channels each.

    32 groups is the usual choice (Wu & He, 2018); narrow layers get fewer groups so each group
    still pools several channels. Falls back to 1 group (LayerNorm over C, H, W).
    """
    for g in range(min(max_groups, channels // min_group_size), 0, -1):
        if channels % g == 0:
            return g
    return 1


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with :func:`norm_groups` groups (shared by the UNet's blocks)."""
    return nn.GroupNorm(norm_groups(channels), channels)


class SelfAttention2d(nn.Module):
    """Pre-norm multi-head self-attention with a residual connection: (B, C, H, W) -> same."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))  # (B, 3C, H, W)
        qkv = qkv.reshape(b, 3, self.heads, c // self.heads, h * w)  # (B, 3, heads, d, HW)
        q, k, v = qkv.permute(1, 0, 2, 4, 3).unbind(0)  # each (B, heads, HW, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, d)
        out = out.permute(0, 1, 3, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.proj(out)


class CrossAttention2d(nn.Module):
    """Pre-norm multi-head attention from a feature map's pixels to context tokens, with a residual.

    (B, C, H, W) queries, (B, L, D) context tokens and their (B, L) bool mask (True = a real token;
    padding is never attended to) -> (B, C, H, W). The output projection starts at zero, so a new
    block is the identity (Rombach et al., 2022, text conditioning of a UNet).
    """

    def __init__(self, channels: int, context_dim: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, c, h, w = x.shape
        d = c // self.heads
        q = self.q(self.norm(x)).reshape(b, self.heads, d, h * w).transpose(-1, -2)  # (B, heads, HW, d)
        k, v = self.kv(context.to(x.dtype)).chunk(2, dim=-1)  # (B, L, C) each
        k = k.reshape(b, -1, self.heads, d).transpose(1, 2)  # (B, heads, L, d)
        v = v.reshape(b, -1, self.heads, d).transpose(1, 2)
        attend = None if mask is None else mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)  # (B, heads, HW, d)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)
