"""Discrete likelihoods of the autoregressive family: pure functions of tensors.

Images in [-1, 1] lie on a grid of ``levels`` values: level v sits at -1 + 2v / (L - 1). A
network gives P parameters per sub-pixel, (B, C, P, H, W), read by one of two heads:

- ``softmax``: P = L logits of a categorical over the levels (PixelCNN, van den Oord et al. 2016).
- ``logistic``: P = 3K, a mixture of K logistics discretised to the grid (PixelCNN++, Salimans
  et al. 2017; the bin masses, end bins reaching to -inf / +inf, are :mod:`genvision.nn.pixels`).
  Unlike PixelCNN++ the sub-pixels of a colour pixel are not linearly coupled; the masked
  network already conditions G on R and B on R, G.

Every log-probability is in nats and exact on the grid, so log p(x) summed over sub-pixels is
the model's exact log-likelihood, and bits/dim = -log p(x) / (C * H * W * ln 2)
(``pixels.bits_per_dim``); images <-> level indices: ``pixels.to_levels`` / ``pixels.to_float``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...nn import pixels

HEADS = ("softmax", "logistic")


def num_params(head: str, levels: int, mixtures: int) -> int:
    """Parameters per sub-pixel of ``head``: L logits, or 3K mixture parameters."""
    return levels if head == "softmax" else 3 * mixtures


def _mixture(params: torch.Tensor):
    """Split (B, C, 3K, ...) into mixture log-weights, means and clamped log scales, (B, C, K, ...)."""
    logit, mean, log_scale = params.chunk(3, dim=2)
    return F.log_softmax(logit, dim=2), mean, log_scale.clamp(min=pixels.MIN_LOG_SCALE)


def log_prob_at(head: str, params: torch.Tensor, v: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(x_sub = v) of every sub-pixel under its parameters, nats.

    Args:
        params: (B, C, P, H, W) network output.
        v: (B, C, H, W) int64 levels.
    Returns:
        (B, C, H, W) log-probabilities.
    """
    if head == "softmax":
        return F.log_softmax(params, dim=2).gather(2, v.unsqueeze(2)).squeeze(2)
    log_w, mean, log_scale = _mixture(params)
    x = pixels.to_float(v, levels, dtype=mean.dtype).unsqueeze(2)  # (B, C, 1, H, W)
    per_component = pixels.discretized_logistic_log_prob(x, mean, log_scale, levels)  # (B, C, K, H, W)
    return torch.logsumexp(log_w + per_component, dim=2)


def level_log_probs(head: str, params: torch.Tensor, levels: int) -> torch.Tensor:
    """The whole distribution over levels of each sub-pixel: (B, C, P, ...) -> (B, C, L, ...) log-probs.

    Used for sampling and exact normalisation; ``log_prob_at`` is the cheaper training path.
    """
    if head == "softmax":
        return F.log_softmax(params, dim=2)
    log_w, mean, log_scale = _mixture(params)  # (B, C, K, ...)
    x = pixels.to_float(torch.arange(levels, device=params.device), levels, dtype=mean.dtype)  # (L,)
    x = x.view(1, 1, levels, 1, *[1] * (params.dim() - 3))
    per = pixels.discretized_logistic_log_prob(
        x, mean.unsqueeze(2), log_scale.unsqueeze(2), levels
    )  # (B, C, L, K, ...)
    return torch.logsumexp(log_w.unsqueeze(2) + per, dim=3)


def image_log_likelihood(head: str, params: torch.Tensor, x: torch.Tensor, levels: int) -> torch.Tensor:
    """log p(x) per image: (B, C, P, H, W) parameters, (B, C, H, W) images -> (B,) float64 nats."""
    return log_prob_at(head, params, pixels.to_levels(x, levels), levels).double().flatten(1).sum(dim=1)
