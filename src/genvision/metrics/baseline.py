"""The weak baseline every quality test must beat: the per-pixel independent model.

Each pixel (and channel) is drawn independently from its own marginal histogram of grey levels
over the train split (INTERFACES.md, "Tests, CI and benchmarks"). It knows where ink tends to be
and nothing about strokes, so its samples are speckled blobs: a generative model whose FID or
bits/dim does not beat it clearly has learned nothing about shape.

- Samples use the empirical histogram (the maximum-likelihood fit).
- Bits/dim uses add-one (Laplace) smoothing, p = (count + 1) / (N + L), so a level never seen
  at a pixel in training costs finitely many bits on test (its value on digits:
  docs/notes/metrics.md; the uniform model gives log2(17) = 4.09).

Binarised datasets (``binarize``: images hold intensities and each use draws x ~ Bernoulli)
use the expected histogram, p(1) = mean(intensity / 255), with the same smoothing on N.
"""

from __future__ import annotations

import torch

from .. import seeding
from ..nn import pixels


def pixel_counts(ds) -> torch.Tensor:
    """Counts of each level at each pixel over ``ds``: float64 (C, H, W, L), L = ``ds.levels``."""
    images = torch.as_tensor(ds.images)
    if getattr(ds, "binarize", False):  # stored intensities; expected Bernoulli counts
        p1 = (images.double() / 255).sum(dim=0)  # (C, H, W)
        return torch.stack([len(images) - p1, p1], dim=-1)
    levels = ds.levels
    pixels = images[0].numel()
    flat = images.reshape(len(images), pixels).long() + torch.arange(pixels) * levels  # (N, P) bin ids
    counts = torch.bincount(flat.reshape(-1), minlength=pixels * levels)  # (P * L,)
    return counts.reshape(*images.shape[1:], levels).double()


def pixel_probabilities(ds, smoothing: float = 0.0) -> torch.Tensor:
    """Per-pixel level probabilities, float64 (C, H, W, L): (count + smoothing) / (N + L smoothing)."""
    counts = pixel_counts(ds) + smoothing
    return counts / counts.sum(dim=-1, keepdim=True)


def independent_pixel_samples(train_ds, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of the per-pixel independent model fitted to ``train_ds``.

    Image k uses its own generator (``seeding.image_seed(seed, k)``), like every genvision sampler.

    Returns:
        float32 (n, C, H, W) in [-1, 1], on ``train_ds.levels`` levels.
    """
    probs = pixel_probabilities(train_ds)  # (C, H, W, L)
    levels, shape = probs.shape[-1], probs.shape[:3]
    cdf = probs.reshape(-1, levels).cumsum(dim=-1)  # (P, L), P = C * H * W
    cdf[:, -1] = 1.0  # guard the top bin against round-off
    u = seeding.rand((n, *shape), seeding.image_generators(n, seed), dtype=torch.float64)  # (n, C, H, W)
    level = torch.searchsorted(cdf, u.reshape(n, -1).T.contiguous(), right=True)  # (P, n), inverse CDF
    level = level.clamp(max=levels - 1).T.reshape(n, *shape)
    return pixels.to_float(level, levels)


def independent_pixel_bpd(train_ds, test_ds) -> float:
    """Bits per dimension of the Laplace-smoothed per-pixel model on ``test_ds`` (lower is better)."""
    log_p = pixel_probabilities(train_ds, smoothing=1.0).log()  # (C, H, W, L)
    test = torch.as_tensor(test_ds.images).long()  # (N, C, H, W) level indices
    if getattr(test_ds, "binarize", False):
        raise ValueError("bits/dim needs a fixed test draw; use the test split of a binarised dataset")
    nats = log_p.unsqueeze(0).expand(len(test), *log_p.shape).gather(-1, test.unsqueeze(-1)).squeeze(-1)
    return float(pixels.bits_per_dim(nats.flatten(1).sum(1), nats[0].numel()).mean())
