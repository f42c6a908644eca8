"""bpd / nll / elbo / reconstruction through model capabilities, for any family, without sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genvision as gv
from genvision import data
from genvision.families.base import GenerativeModel, ModelConfig
from genvision.metrics import baseline
from genvision.metrics import evaluate as ev

TINY_DDPM_8 = {
    "base_channels": 8,
    "channel_mults": (1,),
    "num_res_blocks": 1,
    "attention_resolutions": (),
    "num_train_timesteps": 10,
    "steps": 2,
}


class IndependentPixels(GenerativeModel):
    """The per-pixel independent model as a GenerativeModel: its exact bpd is known.

    log p(x) = sum over pixels of log p_pixel(level of x), Laplace-smoothed histograms of train.
    ``elbo`` is log p(x) - 1 nat (a bound 1 nat loose) and ``reconstruct`` adds 0.1 (MSE 0.01):
    both known exactly. ``sample`` refuses to run: likelihood metrics must not sample.
    """

    family = "test"
    likelihood_note = "exact: per-pixel categorical over the data's levels, no dequantisation"

    def __init__(self, train):
        super().__init__(ModelConfig(image_size=8, channels=1, num_classes=10, levels=17))
        self.register_buffer(
            "log_p", baseline.pixel_probabilities(train, smoothing=1.0).log()
        )  # (C, H, W, L)
        self.seeds_seen = []

    def log_likelihood(self, x, y=None, *, seed=0, generator=None):
        self.seeds_seen.append(generator)
        levels = data.to_levels(x, self.config.levels).long()  # (B, C, H, W)
        nats = self.log_p.unsqueeze(0).expand(len(x), *self.log_p.shape).gather(-1, levels.unsqueeze(-1))
        return nats.flatten(1).sum(dim=1)  # (B,) float64

    def elbo(self, x, y=None, *, seed=0):
        return self.log_likelihood(x) - 1.0

    def reconstruct(self, x):
        return x + 0.1

    def sample(self, n, y=None, seed=None, generator=None, **options):
        raise AssertionError("likelihood metrics must not sample the model")


def test_bpd_of_the_independent_model_is_its_exact_bpd_and_nothing_is_sampled(digits, tmp_path):
    train, test = digits
    model = IndependentPixels(train)
    result = ev.evaluate(
        model, data="digits", metrics="bpd,nll,elbo,reconstruction", out=tmp_path, batch_size=128
    )
    m = result["metrics"]
    expected = baseline.independent_pixel_bpd(train, test)
    assert m["bpd"]["value"] == pytest.approx(expected, rel=1e-9)
    assert m["nll"]["value"] == pytest.approx(expected * 64 * math.log(2), rel=1e-9)
    assert m["elbo"]["value"] == pytest.approx(-m["nll"]["value"] - 1.0, rel=1e-9)
    assert m["reconstruction"]["value"] == pytest.approx(0.01, rel=1e-4)
    assert m["bpd"]["card"]["n"] == len(test) and "no dequantisation" in m["bpd"]["card"]["likelihood_note"]
    assert (tmp_path / "reconstructions.png").is_file() and m["reconstruction"][
        "picture"
    ] == "reconstructions.png"
    assert set(m) == {"bpd", "nll", "elbo", "reconstruction"}


def test_likelihood_noise_is_per_image_so_batch_size_does_not_matter(digits):
    model = gv.create("ddpm", image_size=8, channels=1, levels=17, **TINY_DDPM_8)
    a = ev.evaluate(model, data="digits", metrics=["bpd"], likelihood_n=6, batch_size=4)["metrics"]["bpd"]
    b = ev.evaluate(model, data="digits", metrics=["bpd"], likelihood_n=6, batch_size=6)["metrics"]["bpd"]
    assert a["value"] == pytest.approx(b["value"], rel=1e-6) and a["card"]["n"] == 6
    assert math.isfinite(a["value"]) and a["value"] > 0


def test_explicit_likelihood_metric_without_the_capability_is_an_error_naming_models(digits, tmp_path):
    _, test = digits
    images = data.to_uint8_255(data.to_float(test.images, 17), 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "t.npz", images=images)
    with pytest.raises(
        ValueError, match=r"bpd needs a model with log_likelihood\(\).*models that have it: .*ddpm"
    ):
        ev.evaluate(f"npz:{tmp_path / 't.npz'}", data="digits", metrics=["bpd"])
    with pytest.raises(ValueError, match=r"elbo needs elbo\(\), which noelbo \(test\) does not have"):
        ev.evaluate(NoElbo(digits[0]), data="digits", metrics=["elbo"])


class NoElbo(IndependentPixels):
    """The same model without the elbo capability."""

    elbo = None
