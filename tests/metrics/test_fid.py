"""Fréchet distance against independent references: scipy's sqrtm formula and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from genvision.metrics import fid


def scipy_reference(mu1, s1, mu2, s2):
    """The pytorch-fid formula: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), real part."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def gaussian_features(rng, n, d, scale):
    a = rng.normal(size=(d, d)) * scale / np.sqrt(d)  # known covariance a a^T
    return rng.normal(size=(n, d)) @ a.T + rng.normal(size=d)


def test_frechet_distance_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    x, y = gaussian_features(rng, 2000, 32, 1.0), gaussian_features(rng, 1500, 32, 1.5)
    stats_x, stats_y = fid.statistics(x), fid.statistics(y)
    ours = fid.frechet_distance(*stats_x, *stats_y)
    assert ours == pytest.approx(scipy_reference(*stats_x, *stats_y), rel=1e-9)
    assert fid.fid_from_features(x, y) == ours


def test_fid_of_identical_sets_is_zero():
    x = gaussian_features(np.random.default_rng(1), 500, 16, 2.0)
    assert abs(fid.fid_from_features(x, x.copy())) < 1e-8


def test_diagonal_gaussians_match_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    s1, s2 = rng.uniform(0.1, 3, size=20), rng.uniform(0.1, 3, size=20)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    got = fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, abs=1e-6)


def test_singular_covariances_give_finite_nonnegative_distance():
    # fewer samples than features: both covariances are rank-deficient
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.5
    d = fid.fid_from_features(x, y)
    assert np.isfinite(d) and d > 0
    assert fid.fid_from_features(x, x) < 1e-8


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape mismatch"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_extract_batches_match_one_pass():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
    x = torch.randn(23, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = net(x).double().numpy()
    assert np.allclose(fid.extract(net, x, batch_size=7), full, atol=1e-6)
