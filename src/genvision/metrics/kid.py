"""Kernel Inception Distance (Bińkowski et al., 2018): unbiased MMD^2 with a cubic polynomial kernel.

    k(a, b) = (gamma a.b + coef)^degree,   gamma = 1 / D, coef = 1, degree = 3 by default
    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

Notation: x = real features, y = generated features, m = subset size, D = feature dimension.

KID is unbiased (unlike FID), so it can be compared across sample sizes; it is reported as the
mean and the (population) standard deviation over ``subsets`` random subsets of size m drawn
without replacement from each set, as torchmetrics and the original code do. Each subset draws
``randperm(n_real)`` then ``randperm(n_fake)`` from one ``torch.Generator``, in that order, so
with the same seed the subsets are exactly torchmetrics' (which draws the same calls from the
global generator). Kernels are computed in float64; for sets of at most 4,096 features the three
kernel matrices are computed once and a subset's sum is s^T K s with s its 0/1 indicator (all
subsets in one matrix product), instead of 100 kernel evaluations of 1,000 x 1,000.
"""

from __future__ import annotations

import torch

SUBSETS = 100
SUBSET_SIZE = 1000
DEGREE = 3
COEF = 1.0
PRECOMPUTE_MAX = 4096  # sets up to this size: whole kernel matrices once (at most ~400 MB float64)


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = DEGREE, gamma=None, coef=COEF):
    """(gamma a b^T + coef)^degree for features a (N, D), b (M, D) -> (N, M)."""
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (a @ b.T * gamma + coef) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, degree: int = DEGREE, gamma=None, coef=COEF) -> float:
    """Unbiased MMD^2 between equal-size feature sets x (m, D) and y (m, D)."""
    m = len(x)
    if len(y) != m or m < 2:
        raise ValueError(f"need two sets of equal size >= 2, got {len(x)} and {len(y)}")
    k_xx = polynomial_kernel(x, x, degree, gamma, coef)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def kid(
    real,
    fake,
    *,
    subsets: int = SUBSETS,
    subset_size: int = SUBSET_SIZE,
    degree: int = DEGREE,
    gamma=None,
    coef: float = COEF,
    seed: int = 0,
) -> dict:
    """KID of features ``fake`` (N2, D) against ``real`` (N1, D).

    ``subset_size`` is capped at min(N1, N2) (the card records the size used).

    Returns:
        {"value": mean MMD^2 over subsets, "std": population std, "subsets", "subset_size",
         "degree", "gamma", "coef", "seed"}.
    """
    real = torch.as_tensor(real).detach().cpu().double()
    fake = torch.as_tensor(fake).detach().cpu().double()
    size = min(subset_size, len(real), len(fake))
    g = torch.Generator().manual_seed(seed)
    draws = [
        (torch.randperm(len(real), generator=g)[:size], torch.randperm(len(fake), generator=g)[:size])
        for _ in range(subsets)
    ]
    if max(len(real), len(fake)) <= PRECOMPUTE_MAX:  # kernels once, then index sums per subset
        r = torch.zeros(len(real), subsets, dtype=torch.float64)  # subset indicators, one column each
        f = torch.zeros(len(fake), subsets, dtype=torch.float64)
        for s, (i, j) in enumerate(draws):
            r[i, s], f[j, s] = 1.0, 1.0
        k_rr = polynomial_kernel(real, real, degree, gamma, coef)
        k_ff = polynomial_kernel(fake, fake, degree, gamma, coef)
        k_rf = polynomial_kernel(real, fake, degree, gamma, coef)
        # sum over a subset's pairs = s^T K s; minus its diagonal for the i != j sums
        xx = (r * (k_rr @ r)).sum(0) - (k_rr.diagonal()[:, None] * r).sum(0)
        yy = (f * (k_ff @ f)).sum(0) - (k_ff.diagonal()[:, None] * f).sum(0)
        xy = (r * (k_rf @ f)).sum(0)
        values = ((xx + yy) / (size * (size - 1)) - 2 * xy / size**2).tolist()
    else:
        values = [mmd2_unbiased(real[i], fake[j], degree, gamma, coef) for i, j in draws]
    v = torch.tensor(values, dtype=torch.float64)
    return {
        "value": float(v.mean()),
        "std": float(v.std(unbiased=False)) if len(v) > 1 else 0.0,
        "subsets": subsets,
        "subset_size": size,
        "degree": degree,
        "gamma": gamma if gamma is not None else 1.0 / real.shape[1],
        "coef": coef,
        "seed": seed,
    }
