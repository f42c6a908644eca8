"""PixelCNN family models: short training beats the independent-pixel baseline in bits/dim; cached
and naive sampling agree; per-image seeds; completion; conditional marginal likelihood; errors."""

from __future__ import annotations

import math

import pytest
import torch
from gvtest import one_thread

import genvision as gv
from genvision import data
from genvision.families.base import sample_in_batches
from genvision.metrics.baseline import independent_pixel_bpd

#: trained in the session fixture: 300 steps of batch 64 on digits (its cost: docs/notes/autoregressive.md)
TRAINED = {"head": "logistic", "lr": 5e-3}
SMALL = {"width": 16, "num_layers": 2, "head_width": 16, "levels": 17}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Raster sampling is thousands of tiny ops: one thread, since two fight over a busy CPU."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ar") / "pixelcnn"
    with one_thread():  # session fixtures run before the module's one-thread fixture
        gv.train(
            "pixelcnn",
            data="digits",
            out=out,
            steps=300,
            sample_every=0,
            progress=False,
            model_config=TRAINED,
        )
    return gv.load(out)


@pytest.fixture(scope="session")
def digits_test():
    return data.load("digits", "test")


def bits_per_dim(model, x) -> float:
    ll = model.log_likelihood(x)
    assert ll.dtype == torch.float64 and ll.shape == (x.shape[0],)
    return float(-ll.mean() / (x[0].numel() * math.log(2)))


def test_short_training_beats_independent_pixels_by_half_a_bit(trained, digits_test):
    x, _ = digits_test.batch(torch.arange(len(digits_test)))
    baseline = independent_pixel_bpd(data.load("digits", "train"), digits_test)  # about 2.44
    assert bits_per_dim(trained, x) < baseline - 0.5  # calibration: tests/calibration.json, "pixelcnn"


def test_loss_is_the_exact_negative_log_likelihood(trained, digits_test):
    x, _ = digits_test.batch(torch.arange(16))
    with torch.no_grad():
        per_dim = trained.loss(x)["loss"].item()
    assert per_dim * 64 == pytest.approx(-trained.log_likelihood(x).mean().item(), rel=1e-5)


def test_cached_and_naive_sampling_give_identical_images(trained):
    for t in (1.0, 0.7):
        cached = trained.sample(3, seed=5, temperature=t)
        assert torch.equal(cached, trained.sample(3, seed=5, temperature=t, cached=False))
    for name in ("gated-pixelcnn-cond", "pixelrnn"):
        model = gv.create(name, num_classes=10, **SMALL)
        y = torch.tensor([3, 7]) if name.endswith("cond") else None
        assert torch.equal(model.sample(2, y=y, seed=1), model.sample(2, y=y, seed=1, cached=False))


def test_image_k_is_the_same_whatever_the_batch_size(trained):
    one_batch = sample_in_batches(trained, 5, seed=2, batch_size=5)
    three_batches = sample_in_batches(trained, 5, seed=2, batch_size=2)
    assert torch.equal(one_batch, three_batches)
    levels = (one_batch + 1) * 16 / 2
    assert torch.equal(levels, levels.round())  # on the 17-level grid


def test_completion_keeps_the_given_half_and_fills_the_rest_plausibly(trained, digits_test):
    x, _ = digits_test.batch(torch.arange(8))
    mask = torch.zeros(8, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :4] = True  # top half given
    filled = trained.complete(x, mask, seed=0)
    assert torch.equal(filled[:, :, :4], x[:, :, :4])
    assert torch.equal(filled, trained.complete(x, mask, seed=0, cached=False))
    noise = x.clone()
    noise[:, :, 4:] = torch.randint(17, (8, 1, 4, 8), generator=torch.Generator().manual_seed(0)) / 8 - 1
    assert trained.log_likelihood(filled).mean() > trained.log_likelihood(noise).mean() + 20  # nats


def test_conditional_likelihood_without_labels_is_the_class_marginal():
    model = gv.create("gated-pixelcnn-cond", num_classes=3, **SMALL)
    x = torch.randint(17, (4, 1, 8, 8), generator=torch.Generator().manual_seed(0)) / 8 - 1
    per_class = torch.stack([model.log_likelihood(x, torch.full((4,), k)) for k in range(3)])
    expected = torch.logsumexp(per_class, dim=0) - math.log(3)
    torch.testing.assert_close(model.log_likelihood(x), expected)
    with pytest.raises(ValueError, match="labels must be in"):
        model.sample(2, y=5, seed=0)


def test_very_low_temperature_samples_the_most_likely_level():
    model = gv.create("pixelcnn", **SMALL)
    assert torch.equal(model.sample(2, seed=0, temperature=1e-4), model.sample(2, seed=9, temperature=1e-4))


def test_unknown_options_and_bad_configs_are_one_line_errors():
    model = gv.create("pixelcnn", **SMALL)
    with pytest.raises(ValueError, match="accepts: temperature, cached"):
        model.sample(2, seed=0, sampler="ddim")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.sample(2, seed=0, temperature=0.0)
    for bad in ({"head": "gauss"}, {"kernel": 4}, {"width": 7}, {"mixtures": 0}):
        with pytest.raises(ValueError) as err:
            gv.create("pixelcnn", **bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="num_classes"):
        gv.create("gated-pixelcnn-cond", num_classes=0)
