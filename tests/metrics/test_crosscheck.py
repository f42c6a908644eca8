"""FID, KID, IS and precision/recall/density/coverage against independent implementations.

torchmetrics' FrechetInceptionDistance, KernelInceptionDistance and InceptionScore accept any
feature module; given an identity module on the same features they must agree with ours to
1e-4 relative (KID and IS draw the same random subsets / shuffle from the same seed). PRDC
must equal the ``prdc`` package. Then the behaviour FID must have on real features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gvtest import import_or_fail

from genvision.metrics import fid, inception_score, kid, manifold

tm_fid = import_or_fail("torchmetrics.image.fid")
tm_kid = import_or_fail("torchmetrics.image.kid")
tm_inception = import_or_fail("torchmetrics.image.inception")
prdc_package = import_or_fail("prdc")


class Identity(torch.nn.Module):
    """Feature module for torchmetrics: the 'images' are already features."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


@pytest.fixture(scope="module")
def features():
    """Real (600, 24) and fake (500, 24) features with different means and covariances."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(24, 24, generator=g) / 24**0.5
    real = torch.randn(600, 24, generator=g, dtype=torch.float64) @ a.double().T + 0.3
    fake = 1.3 * torch.randn(500, 24, generator=g, dtype=torch.float64) @ a.double().T
    return real, fake


def _torchmetrics(make, real, fake):
    """Build a torchmetrics metric with ``make()``, feed it the features, return ``compute()``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer"
        m = make()
        if real is not None:
            m.update(real, real=True)
            m.update(fake, real=False)
        else:
            m.update(fake)
        return m.compute()


def test_fid_matches_torchmetrics_and_streams(features):
    real, fake = features

    def make():
        return tm_fid.FrechetInceptionDistance(feature=Identity(24)).set_dtype(torch.float64)

    reference = float(_torchmetrics(make, real, fake))
    ours = fid.fid_from_features(fake, real)
    assert ours == pytest.approx(reference, rel=1e-4)
    stream = fid.RunningStats()
    for chunk in (fake + 1000).split(37):  # a large common offset must not cost precision
        stream.update(chunk)
    mu, sigma = stream.result()
    mu_ref, sigma_ref = fid.statistics(fake + 1000)
    assert np.allclose(mu, mu_ref, rtol=1e-12) and np.allclose(sigma, sigma_ref, rtol=1e-9, atol=1e-12)


def test_kid_matches_torchmetrics_with_the_same_seed(features, monkeypatch):
    real, fake = features
    torch.manual_seed(5)
    mean, std = _torchmetrics(
        lambda: tm_kid.KernelInceptionDistance(feature=Identity(24), subsets=7, subset_size=200), real, fake
    )
    ours = kid.kid(real, fake, subsets=7, subset_size=200, seed=5)  # kernels precomputed once
    assert ours["value"] == pytest.approx(float(mean), rel=1e-4)
    assert ours["std"] == pytest.approx(float(std), rel=1e-4)
    monkeypatch.setattr(kid, "PRECOMPUTE_MAX", 0)  # the per-subset path of large sets
    per_subset = kid.kid(real, fake, subsets=7, subset_size=200, seed=5)
    assert per_subset["value"] == pytest.approx(float(mean), rel=1e-4)
    same = kid.kid(real[:250], real[250:500], subsets=20, subset_size=250)["value"]
    assert abs(same) < 0.2 * ours["value"]  # unbiased: ~0 for two halves of one set


def test_inception_score_matches_torchmetrics_with_the_same_seed():
    logits = 3 * torch.randn(400, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.manual_seed(9)
    mean, std = _torchmetrics(
        lambda: tm_inception.InceptionScore(feature=Identity(12), splits=6), None, logits
    )
    ours = inception_score.inception_score(logits, splits=6, seed=9)
    assert ours["value"] == pytest.approx(float(mean), rel=1e-4)
    assert ours["std"] == pytest.approx(float(std), rel=1e-4)
    confident = torch.eye(12).repeat(20, 1) * 50  # each class predicted with certainty, evenly
    assert inception_score.inception_score(confident, splits=1)["value"] == pytest.approx(12, rel=1e-6)


def test_prdc_matches_the_prdc_package_with_small_chunks(features, capsys):
    real, fake = features
    ours = manifold.prdc(real, fake, k=5, chunk=64)  # chunks smaller than both sets
    theirs = prdc_package.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-12), name
    same = manifold.prdc(real[:300], real[300:], k=5)
    assert same["precision"] > ours["precision"] and same["coverage"] > ours["coverage"]


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_added_noise(digits, judge):
    _, test = digits
    x, _ = test.batch(torch.arange(len(test)))
    clean = fid.extract(judge, x)
    g = torch.Generator().manual_seed(0)
    values = [fid.fid_from_features(clean, clean)]
    for sigma in (0.05, 0.1, 0.2, 0.4, 0.8):
        noisy = x + sigma * torch.randn(x.shape, generator=g)
        values.append(fid.fid_from_features(fid.extract(judge, noisy), clean))
    assert values[0] < 1e-8
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_reported_kid_is_torchmetrics_x1000_on_standardised_domain_features(features):
    """evaluate's KID: x 10^3, and on domain features after standardising by the reference half."""
    from types import SimpleNamespace

    from genvision.metrics import sample_metrics
    from genvision.metrics.inputs import Settings

    real, fake = features
    mu, sigma = fid.statistics(real)
    inputs = SimpleNamespace(
        settings=Settings(kid_subsets=7, kid_subset_size=200, bootstrap=0, seed=5),
        train_ref=SimpleNamespace(reference_features=real.float(), mu=mu, sigma=sigma),
        gen_features=fake.float(),
        extractor=SimpleNamespace(name="domain"),
        card={},
    )
    ours = sample_metrics.kid_metric(inputs)
    sd = torch.from_numpy(sigma.diagonal().copy()).sqrt()
    z_real = (real.float().double() - torch.from_numpy(mu)) / sd
    z_fake = (fake.float().double() - torch.from_numpy(mu)) / sd
    torch.manual_seed(5)
    mean, _ = _torchmetrics(
        lambda: tm_kid.KernelInceptionDistance(feature=Identity(24), subsets=7, subset_size=200),
        z_real,
        z_fake,
    )
    assert ours["value"] == pytest.approx(1000 * float(mean), rel=1e-4)
    assert "x 10^3" in ours["scale"] and "standardised" in ours["card"]["features"]
