"""A small causal transformer (decoder only, pre-norm; Vaswani et al. 2017, Radford et al. 2019)
over token sequences, with a key/value cache for one-token-at-a-time sampling.

Used as the learned prior over VQ-VAE code maps (van den Oord et al. 2017; Esser et al. 2021):
the codes of an (h, w) map in raster order, preceded by a start token. ``forward`` scores a
whole sequence in parallel (training, naive sampling); ``step`` feeds one token and appends its
keys and values to the cache, so sampling N tokens costs N single-token passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions <= t."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D). With ``cache`` (a dict, empty at the first call), the keys and
        values of earlier calls are prepended and this call's are stored; then T is usually 1."""
        b, t, d = x.shape
        q, k, v = (
            self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )  # (B, h, T, dh)
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        if t == 1:  # one new token sees every cached position
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            allowed = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


class CausalTransformer(nn.Module):
    """Next-token model over ``vocab`` tokens plus ``starts`` start tokens, sequences up to ``length``.

    Input tokens: 0..vocab-1 are data, vocab..vocab+starts-1 start tokens (one per class for a
    class-conditional prior, else one). Outputs are logits over the ``vocab`` data tokens.
    """

    def __init__(self, vocab: int, length: int, width: int, heads: int, num_layers: int, starts: int = 1):
        super().__init__()
        self.token = nn.Embedding(vocab + starts, width)
        self.position = nn.Parameter(torch.zeros(length, width))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 tokens from position 0 -> (B, T, vocab) logits of the token after each."""
        h = self.token(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.out(self.norm(h))

    def step(self, token: torch.Tensor, t: int, cache: list) -> torch.Tensor:
        """Feed the token at position ``t``, (B, 1) int64; returns (B, vocab) next-token logits.

        ``cache`` is a list (empty before position 0) that keeps one key/value dict per block.
        """
        if not cache:
            cache.extend({} for _ in self.blocks)
        h = self.token(token) + self.position[t : t + 1]
        for block, kv in zip(self.blocks, cache):
            h = block(h, kv)
        return self.out(self.norm(h))[:, -1]
