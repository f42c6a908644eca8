"""Raster-order samplers: pure functions of a network's callables and pre-drawn uniforms.

Sub-pixel (c, i, j) is drawn by inverse CDF from its distribution over levels, tempered
(log-probs / T, renormalised), with one uniform ``u[b, c, i, j]`` drawn in advance from image b's
own generator. Image b's sample therefore depends only on its uniforms (its seed) and never on
the batch it shares; and two samplers that compute the same distributions draw the same image.

- ``raster_naive`` re-evaluates the whole network for every sub-pixel: C * H * W full passes.
- ``raster_cached`` asks the network for what can be computed once per row (``begin_row``) and
  then for one pixel given it (``pixel``): the Gated PixelCNN keeps its vertical stack and runs
  the horizontal one on the current row, the Row LSTM keeps its states and steps the current
  row, the PixelCNN evaluates the window of rows and columns that reaches the pixel.

``known`` (True = given) turns both into completion: given sub-pixels are kept, the others are
drawn in raster order conditioned on everything before them; sub-pixels given in every image
of the batch cost no network evaluation. ``sequence_naive`` / ``sequence_cached`` are the same pair for a token sequence
(transformer prior), the cached one with a key/value cache.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...nn import pixels
from . import losses


def draw(log_probs: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Inverse-CDF draw from tempered categoricals.

    Args:
        log_probs: (B, L) log-probabilities (or logits) over L outcomes.
        u: (B,) uniforms in [0, 1), float64.
        temperature: > 0; below 1 sharpens, above 1 flattens.
    Returns:
        (B,) int64 outcomes in 0..L-1.
    """
    probs = torch.softmax(log_probs.double() / temperature, dim=-1)
    cdf = probs.cumsum(dim=-1)
    return (cdf < u.to(cdf.dtype).unsqueeze(-1)).sum(dim=-1).clamp(max=log_probs.shape[-1] - 1)


def _fill(x, v_new, known, c, i, j, levels):
    """Write drawn levels ``v_new`` (B,) into sub-pixel (c, i, j) of ``x`` where not ``known``."""
    value = pixels.to_float(v_new, levels, dtype=x.dtype)
    x[:, c, i, j] = torch.where(known[:, c, i, j], x[:, c, i, j], value)


def raster_naive(
    network: Callable[[torch.Tensor], torch.Tensor],
    head: str,
    x: torch.Tensor,
    known: torch.Tensor,
    u: torch.Tensor,
    levels: int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Raster sampling by full re-evaluation (the reference the cached sampler must match).

    Args:
        network: (B, C, H, W) images -> (B, C, P, H, W) output parameters.
        head: "softmax" or "logistic" (``losses.HEADS``).
        x: (B, C, H, W) start in [-1, 1]; values where ``known`` is False are overwritten.
        known: (B, C, H, W) bool, True where the sub-pixel is given.
        u: (B, C, H, W) float64 uniforms, one per sub-pixel.
    Returns:
        (B, C, H, W) images on the ``levels`` grid (given sub-pixels unchanged).
    """
    x = x.clone()
    _, channels, height, width = x.shape
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                if known[:, c, i, j].all():
                    continue
                params = network(x)[:, c : c + 1, :, i, j]  # (B, 1, P)
                lp = losses.level_log_probs(head, params, levels)[:, 0]  # (B, L)
                _fill(x, draw(lp, u[:, c, i, j], temperature), known, c, i, j, levels)
    return x


def raster_cached(
    begin_row: Callable[[torch.Tensor, int, object], object],
    pixel: Callable[[torch.Tensor, int, int, object], torch.Tensor],
    head: str,
    x: torch.Tensor,
    known: torch.Tensor,
    u: torch.Tensor,
    levels: int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Raster sampling that recomputes only what can change per sub-pixel.

    Args:
        begin_row: (x, i, state) -> state for row i, computed once when rows < i are final
            (``state`` is the previous row's, None at row 0).
        pixel: (x, i, j, state) -> (B, C, P) output parameters of pixel (i, j), equal to the
            whole network's.
        head, x, known, u, levels, temperature: as :func:`raster_naive`.
    Returns:
        (B, C, H, W) images, equal to ``raster_naive``'s for the same network and uniforms.
    """
    x = x.clone()
    _, channels, height, width = x.shape
    state = None
    for i in range(height):
        state = begin_row(x, i, state)
        for j in range(width):
            for c in range(channels):
                if known[:, c, i, j].all():
                    continue
                params = pixel(x, i, j, state)[:, c : c + 1]  # (B, 1, P)
                lp = losses.level_log_probs(head, params, levels)[:, 0]
                _fill(x, draw(lp, u[:, c, i, j], temperature), known, c, i, j, levels)
    return x


def sequence_naive(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    u: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Left-to-right token sampling by full re-evaluation of the prefix.

    Args:
        logits_fn: (B, T') input tokens -> (B, T', V) next-token logits.
        start: (B, 1) int64 start tokens.
        u: (B, N) float64 uniforms, one per generated token.
    Returns:
        (B, N) int64 tokens.
    """
    tokens = start
    for t in range(u.shape[1]):
        nxt = draw(logits_fn(tokens)[:, -1], u[:, t], temperature)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
    return tokens[:, 1:]


def sequence_cached(
    step_fn: Callable[[torch.Tensor, int, list], torch.Tensor],
    start: torch.Tensor,
    u: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Left-to-right token sampling with a key/value cache: one token through the network per step.

    Args:
        step_fn: (B, 1) token at position t, t, cache (a list it appends to) -> (B, V) logits.
        start, u, temperature: as :func:`sequence_naive`.
    Returns:
        (B, N) int64 tokens, equal to ``sequence_naive``'s for the same network and uniforms.
    """
    cache: list = []
    token, out = start, []
    for t in range(u.shape[1]):
        token = draw(step_fn(token, t, cache), u[:, t], temperature)[:, None]
        out.append(token)
    return torch.cat(out, dim=1)
