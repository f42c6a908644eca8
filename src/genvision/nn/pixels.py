"""Discrete-pixel likelihood maths every family shares: the levels grid, bin probabilities, bits/dim.

Conventions (the genvision data contract). Images are float tensors in [-1, 1]; a dataset with
L grey levels stores level indices v in 0..L-1 and puts level v at

    x = v / (L - 1) * 2 - 1             (17 levels: -1, -0.875, ..., 1; 2 levels: -1, 1)

so each level owns a bin of width 2 / (L - 1) centred on it, with edges

    lower_v = (2v - 1) / (L - 1) - 1    upper_v = (2v + 1) / (L - 1) - 1

(neighbouring bins share an edge exactly, since both come from the integer v). The outermost bins
are stretched to -inf and +inf, so the bin masses of a continuous density over all L levels sum to
one: they are true probabilities of the discrete pixels, and the likelihoods of every family built
on them (VAE and diffusion bounds, PixelCNN, flows) are in the same units.

- ``discretized_gaussian_log_prob``: bin mass of N(mean, scale^2) (Ho et al., 2020, eq. 13, the
  DDPM decoder; the VAE's ``gaussian`` likelihood).
- ``discretized_logistic_log_prob``: bin mass of Logistic(mean, scale) (Salimans et al., 2017,
  PixelCNN++; the VAE's ``logistic`` likelihood and the autoregressive mixture head).
- ``bits_per_dim``: -log p(x) / (D ln 2) for log p(x) in nats per image over D sub-pixels.

Every log-probability here is elementwise (one value per sub-pixel, in nats) and computed in the
dtype of its inputs; callers sum over pixels and pick float64 where they need it. Scales are not
clamped here: a network that predicts its log-scale floors it first (``MIN_LOG_SCALE``, the
VAE decoder and the PixelCNN++ head); the diffusion bound's scale is fixed and not floored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: floor on a predicted log-scale (PixelCNN++): a bin of 2/255 is still ~100 scales wide at exp(-7)
MIN_LOG_SCALE = -7.0


# ----------------------------------------------------------------------------- the levels grid
def _float_dtype(x: torch.Tensor) -> torch.dtype:
    """x's dtype if it is float32 or wider, else float32 (integers, halves)."""
    return torch.promote_types(x.dtype, torch.float32) if x.is_floating_point() else torch.float32


def level_value(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Continuous level coordinate of images: x in [-1, 1] -> (x + 1) / 2 * (L - 1) in [0, L - 1].

    Not rounded or clamped (flows need the continuous value); :func:`to_levels` rounds it.

    Args:
        x: float tensor of any shape, nominally in [-1, 1].
        levels: L, the number of grey levels (>= 2).

    Returns:
        Tensor of x's shape and dtype.
    """
    return (x + 1) / 2 * (levels - 1)


def to_levels(x: torch.Tensor, levels: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Quantise images in [-1, 1] to the index of the nearest level (clamped to 0..L-1).

    Args:
        x: float tensor of any shape (values outside [-1, 1] go to the end levels).
        levels: L, the number of grey levels (2 for binary, 17 for digits, 256 for 8-bit).
        dtype: of the result; int64 by default (uint8 holds any L <= 256).

    Returns:
        Level indices 0..L-1, x's shape. Rounded in x's precision (at least float32).
    """
    x = x.to(_float_dtype(x)).clamp(-1, 1)
    return torch.round(level_value(x, levels)).to(dtype)


def to_float(v: torch.Tensor, levels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Level indices to images: v -> v / (L - 1) * 2 - 1; the inverse of :func:`to_levels` on the grid.

    Also takes continuous level coordinates (the inverse of :func:`level_value`).

    Args:
        v: tensor of any shape, values 0..L-1 (integer or float).
        levels: L, the number of grey levels.
        dtype: of the result (float32 by default).

    Returns:
        Tensor of v's shape in [-1, 1] (for v in 0..L-1).
    """
    return v.to(dtype) / (levels - 1) * 2 - 1


def snap(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images moved to their nearest grid value: ``to_float(to_levels(x))`` in x's float dtype."""
    return to_float(to_levels(x, levels), levels, dtype=_float_dtype(x))


def bin_edges(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bin of each image value's nearest level: lower and upper edge, and end-bin masks.

    Args:
        x: float tensor of any shape in [-1, 1] (snapped to the nearest level).
        levels: L.

    Returns:
        (lower, upper, first, last): edges (2v -+ 1) / (L - 1) - 1 in x's float dtype, and bool
        masks of the lowest (v = 0) and highest (v = L - 1) levels, whose bins reach -inf / +inf.
    """
    v = to_levels(x, levels, dtype=_float_dtype(x))
    lower = (2 * v - 1) / (levels - 1) - 1
    upper = (2 * v + 1) / (levels - 1) - 1
    return lower, upper, v <= 0, v >= levels - 1


# ----------------------------------------------------------------------------- bin probabilities
def _log_normal_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for lo < hi, evaluated on the tail where it does not cancel.

    When both ends are in the upper tail (lo + hi > 0) the mirror image Phi(-lo) - Phi(-hi) is
    used; then log(Phi(u) - Phi(v)) = log Phi(u) + log(1 - exp(log Phi(v) - log Phi(u))). The
    difference of logs is held below -1e-12, so a bin too narrow to resolve stays finite.
    """
    flip = (lo + hi) > 0
    u, v = torch.where(flip, -lo, hi), torch.where(flip, -hi, lo)
    log_u, log_v = torch.special.log_ndtr(u), torch.special.log_ndtr(v)
    return log_u + _log1mexp((log_v - log_u).clamp(max=-1e-12))


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - e^d) for d < 0, accurate at both ends (Maechler, 2012): expm1 near 0, log1p far off."""
    return torch.where(d > -math.log(2), torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _standardised_edges(x, mean, log_scale, levels: int):
    """(a, b, first, last): the bin edges of x in units of the scale around ``mean``, and the end-bin masks."""
    inv = torch.exp(-log_scale)
    lower, upper, first, last = bin_edges(x, levels)
    return (lower - mean) * inv, (upper - mean) * inv, first, last


def discretized_gaussian_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, levels: int
) -> torch.Tensor:
    """log P(bin of x) under Normal(mean, exp(log_scale)^2), elementwise, in nats.

    The end bins are log Phi(b) and log Phi(-a) (a, b the standardised lower / upper edge); the
    others are the stable log-CDF difference of :func:`_log_normal_mass`, finite even for bins
    hundreds of scales away from the mean.

    Args:
        x: images in [-1, 1] on the grid of ``levels`` levels (snapped to the nearest level).
        mean: broadcastable to x, in [-1, 1] units.
        log_scale: broadcastable to x; natural log of the standard deviation (not clamped here).
        levels: L >= 2.

    Returns:
        Broadcast shape of the inputs, values <= 0; exp sums to 1 over the L levels.
    """
    a, b, first, last = _standardised_edges(x, mean, log_scale, levels)
    middle = _log_normal_mass(a, b)
    return torch.where(
        first, torch.special.log_ndtr(b), torch.where(last, torch.special.log_ndtr(-a), middle)
    )


def discretized_logistic_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, levels: int
) -> torch.Tensor:
    """log P(bin of x) under Logistic(mean, exp(log_scale)), elementwise, in nats.

    With a, b the standardised lower / upper edge (b - a = w, the bin width over the scale),
    sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^-w), whose log
    logsigmoid(b) + logsigmoid(-a) + log(1 - e^-w) is stable for every a < b; the end bins are
    logsigmoid(b) and logsigmoid(-a).

    Args:
        x: images in [-1, 1] on the grid of ``levels`` levels (snapped to the nearest level).
        mean: broadcastable to x, in [-1, 1] units.
        log_scale: broadcastable to x; natural log of the logistic's scale (not clamped here).
        levels: L >= 2.

    Returns:
        Broadcast shape of the inputs, values <= 0; exp sums to 1 over the L levels.
    """
    a, b, first, last = _standardised_edges(x, mean, log_scale, levels)
    width = (2 / (levels - 1)) * torch.exp(-log_scale)  # b - a > 0
    middle = F.logsigmoid(b) + F.logsigmoid(-a) + _log1mexp(-width)
    return torch.where(first, F.logsigmoid(b), torch.where(last, F.logsigmoid(-a), middle))


# ----------------------------------------------------------------------------- units
def bits_per_dim(log_likelihood, dims: int):
    """Bits per dimension of log-likelihoods in nats: -log p / (dims ln 2).

    Args:
        log_likelihood: log p(x) per image in nats, a tensor of any shape (usually (B,)) or a float.
        dims: D, the sub-pixels per image (C * H * W).

    Returns:
        Same type and shape as ``log_likelihood``.
    """
    return -log_likelihood / (dims * math.log(2))
