"""A Glow trained a few hundred steps on digits beats the per-pixel independent model.

Bars: test bits/dim at least 0.25 below the independent model's, and samples at temperature 0.7
with a domain FID under ``FID_BAR``; both set from this config trained with five seeds
(``tests/calibration.json``, "glow"). Training is counted in steps.
"""

from __future__ import annotations

import math

import pytest
import torch
from gvtest import one_thread

import genvision as gv
from genvision import data
from genvision.families.base import sample_in_batches
from genvision.metrics.baseline import independent_pixel_bpd, independent_pixel_samples
from genvision.metrics.evaluate import domain_fid

STEPS = 250
N = 500
BPD_MARGIN = 0.25
FID_BAR = 150.0


@pytest.fixture(scope="session")
def trained_digits_glow(tmp_path_factory):
    out = tmp_path_factory.mktemp("flows") / "glow"
    with one_thread():  # session fixtures run before conftest's per-test one thread
        gv.train("glow", data="digits", out=out, steps=STEPS, sample_every=0, save_every=0, progress=False)
    return gv.load(out)


@pytest.fixture(scope="session")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


def test_test_bits_per_dim_beat_the_independent_model_by_a_quarter_bit(trained_digits_glow, digits):
    train, test = digits
    x, _ = test.batch(torch.arange(len(test)))
    ll = trained_digits_glow.log_likelihood(x, seed=0)  # (450,) nats, a lower bound
    bpd = (-ll.mean() / (x[0].numel() * math.log(2))).item()
    assert bpd <= independent_pixel_bpd(train, test) - BPD_MARGIN, bpd


def test_samples_at_temperature_0_7_are_far_below_the_independent_models_fid(trained_digits_glow, digits):
    train, test = digits
    base_fid, _ = domain_fid(independent_pixel_samples(train, N, seed=0), train, test)
    samples = sample_in_batches(trained_digits_glow, N, seed=0, options={"temperature": 0.7})
    fid, _ = domain_fid(samples, train, test)
    assert fid <= FID_BAR < base_fid / 1.7, (fid, base_fid)


def test_trained_model_encodes_and_decodes_real_digits_exactly(trained_digits_glow, digits):
    x, _ = digits[1].batch(torch.arange(64))
    z = trained_digits_glow.encode(x)
    assert torch.allclose(trained_digits_glow.decode(z), x, atol=1e-4)
    assert abs(z.std().item() - 1) < 0.3  # the data land near the N(0, I) the prior expects
