"""Discrete likelihoods of the autoregressive family: pure functions of tensors.

Images in [-1, 1] lie on a grid of ``levels`` values: level v sits at -1 + 2v / (L - 1). A
network gives P parameters per sub-pixel, (B, C, P, H, W), read by one of two heads:

- ``softmax``: P = L logits of a categorical over the levels (PixelCNN, van den Oord et al. 2016).
- ``logistic``: P = 3K, a mixture of K logistics discretised to the grid (PixelCNN++, Salimans
  et al. 2017): bin v covers [c_v - d, c_v + d] with d = 1 / (L - 1), the end bins reach to
  -inf / +inf. Unlike PixelCNN++ the sub-pixels of a colour pixel are not linearly coupled; the
  masked network already conditions G on R and B on R, G.

Every log-probability is in nats and exact on the grid, so log p(x) summed over sub-pixels is
the model's exact log-likelihood, and bits/dim = -log p(x) / (C * H * W * ln 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HEADS = ("softmax", "logistic")
LOG_SCALE_MIN = -7.0  # smallest log scale of a logistic (PixelCNN++), keeps bins from vanishing


def to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images in [-1, 1] -> int64 level indices 0..levels-1 (nearest grid value)."""
    return ((x.clamp(-1, 1) + 1) * (levels - 1) / 2).round().long()


def from_levels(v: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices -> float32 values -1 + 2v / (levels - 1) in [-1, 1]."""
    return v.float() * (2 / (levels - 1)) - 1


def num_params(head: str, levels: int, mixtures: int) -> int:
    """Parameters per sub-pixel of ``head``: L logits, or 3K mixture parameters."""
    return levels if head == "softmax" else 3 * mixtures


def _mixture(params: torch.Tensor):
    """Split (B, C, 3K, ...) into mixture log-weights, means and clamped log scales, (B, C, K, ...)."""
    logit, mean, log_scale = params.chunk(3, dim=2)
    return F.log_softmax(logit, dim=2), mean, log_scale.clamp(min=LOG_SCALE_MIN)


def _logistic_bin_log_prob(v: torch.Tensor, mean, log_scale, levels: int) -> torch.Tensor:
    """log P(level v) of each discretised logistic; ``v`` broadcasts against ``mean``.

    With a = (c + d - mean) / s and b = (c - d - mean) / s:
    sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(b - a)), stable in logs because
    a - b = 2d / s > 0; the first bin is sigmoid(a), the last 1 - sigmoid(b).
    """
    d = 1.0 / (levels - 1)
    centre = v.to(mean.dtype) * (2 * d) - 1
    inv_s = torch.exp(-log_scale)
    a = (centre + d - mean) * inv_s
    b = (centre - d - mean) * inv_s
    inner = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(-2 * d * inv_s))
    return torch.where(v == 0, F.logsigmoid(a), torch.where(v == levels - 1, F.logsigmoid(-b), inner))


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
    per_component = _logistic_bin_log_prob(v.unsqueeze(2), mean, log_scale, levels)  # (B, C, K, H, W)
    return torch.logsumexp(log_w + per_component, dim=2)


def level_log_probs(head: str, params: torch.Tensor, levels: int) -> torch.Tensor:
    """The whole distribution over levels of each sub-pixel: (B, C, P, ...) -> (B, C, L, ...) log-probs.

    Used for sampling and exact normalisation; ``log_prob_at`` is the cheaper training path.
    """
    if head == "softmax":
        return F.log_softmax(params, dim=2)
    log_w, mean, log_scale = _mixture(params)  # (B, C, K, ...)
    v = torch.arange(levels, device=params.device).view(1, 1, levels, 1, *[1] * (params.dim() - 3))
    per = _logistic_bin_log_prob(v, mean.unsqueeze(2), log_scale.unsqueeze(2), levels)  # (B, C, L, K, ...)
    return torch.logsumexp(log_w.unsqueeze(2) + per, dim=3)


def image_log_likelihood(head: str, params: torch.Tensor, x: torch.Tensor, levels: int) -> torch.Tensor:
    """log p(x) per image: (B, C, P, H, W) parameters, (B, C, H, W) images -> (B,) float64 nats."""
    return log_prob_at(head, params, to_levels(x, levels), levels).double().flatten(1).sum(dim=1)


def bits_per_dim(log_likelihood: torch.Tensor, dims: int) -> torch.Tensor:
    """Bits per dimension of per-image log-likelihoods in nats: -log p / (dims * ln 2)."""
    return -log_likelihood / (dims * torch.log(torch.tensor(2.0, dtype=log_likelihood.dtype)))
