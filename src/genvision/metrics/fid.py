"""Fréchet distance between Gaussians fitted to features (FID; Heusel et al., 2017).

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

Notation: mu = feature mean (D,), S = feature covariance (D, D), both float64.

The trace term is computed from eigenvalues, not from a general matrix square root:
S1 S2 is similar to the symmetric positive semi-definite M = S1^{1/2} S2 S1^{1/2}, so
tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M)). Both steps use the symmetric eigensolver
(``numpy.linalg.eigh``), whose eigenvalues are real by construction; round-off can only make tiny
eigenvalues slightly negative, and those are clipped at 0. ``scipy.linalg.sqrtm`` (what
pytorch-fid uses) works on the non-symmetric product, returns complex results with round-off
imaginary parts, and needs an ``eps * I`` retry when a covariance is singular (fewer samples
than features, dead features); the eigenvalue form needs neither, agrees with ``sqrtm`` and is
faster (the comparison: docs/notes/metrics.md). The shortcut ``eigvals(S1 @ S2)``
(non-symmetric) also returns small negative and imaginary round-off on rank-deficient
covariances, so it too would need clipping; the symmetric form avoids that.

Known limit: FID is biased upwards at finite sample size (roughly by O(D / N)); compare values
only at the same N, which is why every result records its N.
"""

from __future__ import annotations

import numpy as np
import torch


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative round-off clipped)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for PSD S1, S2, as sum sqrt(eig(S1^{1/2} S2 S1^{1/2}))."""
    root1 = _sqrt_psd(sigma1)
    m = root1 @ sigma2 @ root1
    m = (m + m.T) / 2  # exact symmetry, so eigh sees a symmetric matrix despite round-off
    w = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Args:
        mu1, mu2: means, (D,).
        sigma1, sigma2: covariances, (D, D), positive semi-definite.
    Returns:
        The squared Fréchet (2-Wasserstein) distance, a float >= 0 up to round-off.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    trace = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(max(diff @ diff + trace, 0.0))  # round-off can give -1e-12 for identical sets


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64, of features (N, D)."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


class RunningStats:
    """Mean and covariance of features streamed in batches, in float64, in O(D^2) memory.

    Sums are taken around a shift K (the first batch's mean), so the covariance
    (sum (f - K)(f - K)^T - n d d^T) / (n - 1), d = mean - K, does not lose digits to the
    cancellation of the one-pass formula when features have a large common offset (Inception
    pool features are all positive, mean ~0.3). 60,000 x 2048 features never sit in memory.
    """

    def __init__(self):
        self.n = 0
        self.shift: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.outer: torch.Tensor | None = None

    def update(self, features) -> None:
        """Add a batch of features (B, D)."""
        f = torch.as_tensor(features).detach().to("cpu", torch.float64)
        if f.dim() != 2 or len(f) == 0:
            raise ValueError(f"need features of shape (B >= 1, D), got {tuple(f.shape)}")
        if self.shift is None:
            self.shift = f.mean(dim=0)
            self.total = torch.zeros_like(self.shift)
            self.outer = torch.zeros(len(self.shift), len(self.shift), dtype=torch.float64)
        c = f - self.shift
        self.total += c.sum(dim=0)
        self.outer += c.T @ c
        self.n += len(f)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D,) and unbiased covariance (D, D), float64 numpy, as :func:`statistics`."""
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors, got {self.n}")
        d = self.total / self.n
        sigma = (self.outer - self.n * torch.outer(d, d)) / (self.n - 1)
        return (self.shift + d).numpy(), ((sigma + sigma.T) / 2).numpy()


def fid_from_features(a, b) -> float:
    """FID between two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*statistics(a), *statistics(b))


@torch.no_grad()
def extract(judge_or_module, images, batch_size: int = 500) -> np.ndarray:
    """Features of ``images`` in batches, as float64 numpy (N, D).

    Args:
        judge_or_module: an object with ``.features(x)`` (a :class:`~genvision.metrics.judges.Judge`)
            or a callable module mapping (B, C, H, W) -> (B, D).
        images: float tensor (N, C, H, W) in [-1, 1].
    """
    fn = getattr(judge_or_module, "features", judge_or_module)
    images = torch.as_tensor(images)
    out = [fn(images[i : i + batch_size]).double().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0))
