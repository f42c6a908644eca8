"""The per-pixel independent baseline: its bits/dim and how the judge sees its samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genvision.metrics import baseline
from genvision.metrics.sample_metrics import domain_fid, domain_fid_card


def test_baseline_bpd_on_digits_is_about_2_4_and_matches_direct_count(digits):
    train, test = digits
    bpd = baseline.independent_pixel_bpd(train, test)
    assert 2.2 < bpd < 2.6
    # independent reference: count in numpy, pixel by pixel
    tr, te = train.images.numpy().reshape(len(train), -1), test.images.numpy().reshape(len(test), -1)
    bits = 0.0
    for j in range(tr.shape[1]):
        counts = np.bincount(tr[:, j], minlength=17) + 1.0
        bits -= np.log2(counts[te[:, j]] / counts.sum()).sum()
    assert bpd == pytest.approx(bits / te.size, rel=1e-9)
    assert bpd < np.log2(17)  # beats the uniform model


def test_baseline_samples_follow_the_pixel_marginals(digits):
    train, _ = digits
    x = baseline.independent_pixel_samples(train, 4000, seed=0)
    assert x.shape == (4000, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    levels = torch.round((x + 1) / 2 * 16)
    assert torch.allclose(levels, (x + 1) / 2 * 16, atol=1e-5)  # on the data's 17 levels
    data_mean = train.images.double().mean(dim=0)
    assert (levels.double().mean(dim=0) - data_mean).abs().max() < 0.5  # levels; std error ~0.1
    # image k is fixed by (seed, k), whatever n
    assert torch.equal(baseline.independent_pixel_samples(train, 5, seed=0), x[:5])


def test_baseline_fid_is_far_above_the_floor(digits, judge):
    train, _ = digits
    x = baseline.independent_pixel_samples(train, 1000, seed=0)
    value, floor = domain_fid(x, *digits)
    assert floor < 0.05 * value  # the held half is close to the reference half, the baseline is not
    conf_samples = judge.logits(x).softmax(1).max(1).values.mean()
    assert conf_samples < judge.meta["test_confidence"] - 0.05


def test_domain_fid_card_carries_the_interval_and_the_floor_at_equal_n(digits, judge):
    train, _ = digits
    x = baseline.independent_pixel_samples(train, 400, seed=0)
    card = domain_fid_card(x, *digits, seed=1)
    value, floor = domain_fid(x, *digits)
    assert card["fid"] == pytest.approx(value) and card["floor"] == pytest.approx(floor)
    lo, hi = card["ci"]
    assert lo < card["fid"] < hi and hi - lo < card["fid"]  # a real interval, narrower than the value
    assert card["n"] == card["n_floor"] == 400 and card["equal_n"] and card["floor_std"] > 0
    # more samples than the held half allows: the floor says it is not at the samples' N
    big = domain_fid_card(baseline.independent_pixel_samples(train, 900, seed=0), *digits, bootstrap=False)
    assert not big["equal_n"] and big["n_floor"] < 900 and "ci" not in big
