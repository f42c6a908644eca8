"""Pure functions of the VAE family: pixel likelihoods, Gaussian log-densities, KL, bounds.

Every pixel likelihood returns log p(x | decoder output) in nats per image, shape (B,), summed
over channels and pixels. ``x`` is on the data's grid of L levels in [-1, 1]; the discretised
likelihoods are the masses of each level's bin (:mod:`genvision.nn.pixels`, PixelCNN++'s end bins
to -inf / +inf), true probabilities of the discrete pixels, so the bounds built on them are in
the same units as the exact likelihoods of PixelCNN and the flows.

- ``bernoulli``: 2 levels; the decoder gives one logit per pixel.
- ``logistic`` / ``gaussian``: any number of levels; the decoder gives a mean and a log-scale
  per pixel (floored at ``pixels.MIN_LOG_SCALE``), and the pixel's probability is the mass of
  its bin.
- ``mse``: squared error, a fixed-variance Gaussian *density*: not a probability of the discrete
  pixels, so no bound is computed from it (models trained with it refuse ``log_likelihood``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...nn import pixels

LIKELIHOODS = ("bernoulli", "logistic", "gaussian", "mse")
#: the Gaussian of the ``mse`` reconstruction: std 0.1 in [-1, 1] units (5% of the pixel range)
MSE_SIGMA = 0.1


def params_per_channel(likelihood: str) -> int:
    """Decoder outputs per image channel: 1 (logits or a mean) or 2 (mean and log-scale)."""
    return 2 if likelihood in ("logistic", "gaussian") else 1


def _sum_pixels(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(dim=1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x) of binary pixels (x in {-1, 1}) under Bernoulli(sigmoid(logits)); (B,) nats."""
    return -_sum_pixels(F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none"))


def mse_log_density(mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Gaussian log-density of x with std MSE_SIGMA, up to its constant; (B,). Not a likelihood."""
    return -_sum_pixels((mean - x) ** 2) / (2 * MSE_SIGMA**2)


def pixel_log_prob(likelihood: str, out: torch.Tensor, x: torch.Tensor, levels: int) -> torch.Tensor:
    """log p(x | z) in nats per image, (B,), from the decoder output ``out``.

    Args:
        likelihood: one of :data:`LIKELIHOODS`.
        out: (B, C * params_per_channel, H, W) decoder output (means first, then log-scales).
        x: (B, C, H, W) images on the grid of ``levels`` levels in [-1, 1].
    """
    if likelihood == "bernoulli":
        return bernoulli_log_prob(out, x)
    if likelihood == "mse":
        return mse_log_density(out, x)
    mean, log_scale = out.chunk(2, dim=1)
    log_scale = log_scale.clamp(min=pixels.MIN_LOG_SCALE)
    if likelihood == "logistic":
        return _sum_pixels(pixels.discretized_logistic_log_prob(x, mean, log_scale, levels))
    return _sum_pixels(pixels.discretized_gaussian_log_prob(x, mean, log_scale, levels))


def pixel_mean(likelihood: str, out: torch.Tensor) -> torch.Tensor:
    """The decoder's mean image in [-1, 1], (B, C, H, W) (a probability map for Bernoulli)."""
    if likelihood == "bernoulli":
        return torch.sigmoid(out) * 2 - 1
    mean = out if likelihood == "mse" else out.chunk(2, dim=1)[0]
    return mean.clamp(-1, 1)


def pixel_sample(likelihood: str, out: torch.Tensor, levels: int, u: torch.Tensor) -> torch.Tensor:
    """Pixels drawn from the decoder's distribution by inverting its CDF at uniforms ``u``.

    Args:
        u: (B, C, H, W) uniforms in [0, 1) (one per pixel, from the images' own generators).

    Returns:
        (B, C, H, W) on the ``levels`` grid in [-1, 1] (``mse``: the mean, it has no grid).
    """
    if likelihood == "bernoulli":
        return torch.where(u < torch.sigmoid(out), 1.0, -1.0)
    if likelihood == "mse":
        return out.clamp(-1, 1)
    mean, log_scale = out.chunk(2, dim=1)
    scale = log_scale.clamp(min=pixels.MIN_LOG_SCALE).exp()
    u = u.clamp(1e-6, 1 - 1e-6)
    if likelihood == "logistic":
        value = mean + scale * (torch.log(u) - torch.log1p(-u))
    else:
        value = mean + scale * math.sqrt(2) * torch.erfinv(2 * u - 1)
    return pixels.snap(value, levels)


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per latent dimension, (B, D) nats (sum for the total)."""
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar)


def kl_normal(
    mean_q: torch.Tensor, logvar_q: torch.Tensor, mean_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean_q, exp(logvar_q)) || N(mean_p, exp(logvar_p))) elementwise, nats (sum for the total).

    The KL of a hierarchical VAE's posterior to its learned prior at one latent layer;
    :func:`kl_to_standard_normal` is the case mean_p = 0, logvar_p = 0.
    """
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mean_q - mean_p) ** 2) * torch.exp(-logvar_p) - 1)


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) summed over the last dimension; shape z.shape[:-1]."""
    return -0.5 * (((z - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension; shape z.shape[:-1]."""
    return -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """KL to optimise with free bits (Kingma et al., 2016): each dimension's batch-mean KL is
    held at >= ``free_bits`` nats, so dimensions under the floor get no gradient; (B,) per image.
    """
    if free_bits <= 0:
        return kl_per_dim.sum(-1)
    floor = kl_per_dim.mean(0, keepdim=True).clamp(min=free_bits)  # (1, D)
    # value: the floored batch means; gradient: only through dimensions above the floor
    above = (kl_per_dim.mean(0, keepdim=True) > free_bits).to(kl_per_dim.dtype)
    return (kl_per_dim * above + (floor * (1 - above)).detach()).sum(-1)


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound (Burda et al., 2016): logsumexp_k log w_k - log K.

    Args:
        log_w: (B, K) float64 log importance weights log p(x, z_k) - log q(z_k | x).
    Returns:
        (B,) float64 lower bound on log p(x); the ELBO when K = 1, rising with K.
    """
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])
