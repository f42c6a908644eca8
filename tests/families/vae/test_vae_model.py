"""The VAE family's models after short training on digits: bounds, reconstructions, codes, seeds.

Two runs are shared by the whole session (counted in steps): a VAE (400 steps) and a VQ-VAE with
dead-code restarts off (300 steps), each a few seconds of CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
from gvtest import one_thread

import genvision as gv
from genvision import data, seeding
from genvision.metrics.baseline import independent_pixel_bpd
from genvision.metrics.judges import get_judge
from genvision.model_dir import save_model_dir

VAE_STEPS, VQ_STEPS = 400, 300


@pytest.fixture(autouse=True)
def _one_thread_here():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    x, y = test.batch(torch.arange(len(test)))
    return {"train": train, "test": test, "x": x, "y": y}


@pytest.fixture(scope="session")
def vae(tmp_path_factory):
    with one_thread():
        out = tmp_path_factory.mktemp("vae") / "run"
        gv.train("vae", data="digits", out=out, steps=VAE_STEPS, progress=False, sample_every=0)
    return gv.load(out)


@pytest.fixture(scope="session")
def vqvae(tmp_path_factory):
    with one_thread():
        out = tmp_path_factory.mktemp("vq") / "run"
        options = {"progress": False, "sample_every": 0, "model_config": {"restart_threshold": 0.0}}
        gv.train("vqvae", data="digits", out=out, steps=VQ_STEPS, **options)
    return gv.load(out)


def bpd(log_p: torch.Tensor, dims: int) -> float:
    return float(-log_p.mean() / (dims * math.log(2)))


# ----------------------------------------------------------------------------- VAE
def test_trained_vae_test_bpd_beats_the_independent_pixel_model_by_0_3(vae, digits):
    ll = vae.log_likelihood(digits["x"], k=100)  # IWAE bound, nats per image
    assert ll.dtype == torch.float64 and ll.shape == (len(digits["x"]),)
    baseline = independent_pixel_bpd(digits["train"], digits["test"])
    assert bpd(ll, 64) <= baseline - 0.3, (bpd(ll, 64), baseline)  # calibration: tests/calibration.json


def test_reconstructions_of_held_out_digits_keep_their_label(vae, digits):
    judge = get_judge(digits["train"], digits["test"])
    r = vae.reconstruct(digits["x"])
    assert r.shape == digits["x"].shape and r.min() >= -1 and r.max() <= 1
    accuracy = (judge.logits(r).argmax(1) == digits["y"]).float().mean().item()
    assert accuracy >= 0.85, accuracy  # the bar's calibration: tests/calibration.json, "vae"


def test_iwae_bound_is_above_the_elbo_and_rises_with_k(vae, digits):
    x = digits["x"][:200]
    elbo = vae.elbo(x).mean().item()
    k1 = vae.log_likelihood(x, k=1).mean().item()
    k10 = vae.log_likelihood(x, k=10).mean().item()
    k100 = vae.log_likelihood(x, k=100).mean().item()
    assert abs(k1 - elbo) < 1.0  # K = 1 is an ELBO estimate (analytic KL vs sampled: same mean)
    assert elbo < k10 < k100, (elbo, k10, k100)


def test_likelihood_and_samples_do_not_depend_on_the_batch(vae, digits):
    x = digits["x"][:8]
    whole = vae.log_likelihood(x, k=20, seed=4)
    assert torch.allclose(vae.log_likelihood(x[:3], k=20, seed=4), whole[:3], atol=1e-6)
    part = vae.log_likelihood(x[5:], k=20, generator=seeding.image_generators(3, 4, start=5))
    assert torch.allclose(part, whole[5:], atol=1e-6)
    batch = vae.sample(6, seed=2)
    for k in (0, 4):
        alone = vae.sample(1, generator=seeding.image_generators(1, 2, start=k))
        assert torch.allclose(alone[0], batch[k], atol=1e-6)
    assert torch.equal(vae.sample(6, seed=2, pixels="sample"), vae.sample(6, seed=2, pixels="sample"))


def test_latent_capabilities_have_the_declared_shapes(vae, digits):
    z = vae.encode(digits["x"][:5])
    assert z.shape == (5, *vae.latent_shape) and z.dtype == torch.float32
    assert torch.allclose(vae.decode(z), vae.reconstruct(digits["x"][:5]))
    drawn = vae.sample(4, seed=0, pixels="sample")
    levels = (drawn + 1) * 8
    assert torch.allclose(levels, levels.round(), atol=1e-5)  # on the 17-level grid
    with pytest.raises(ValueError, match="accepts: temperature, pixels"):
        vae.sample(2, seed=0, sampler="ddim")


def test_the_step_counter_is_saved_and_drives_kl_annealing(vae, tmp_path):
    assert int(vae.step) == VAE_STEPS  # advanced by after_step, saved with the weights
    model = gv.create("beta-vae", base_channels=8, hidden=16, kl_warmup_steps=10)
    assert model.kl_weight() == pytest.approx(0.4)  # beta 4 x 1/10 at the first step
    for _ in range(4):
        model.after_step("main")
    assert model.kl_weight() == pytest.approx(2.0)
    save_model_dir(model, tmp_path / "m")
    assert gv.load(tmp_path / "m").kl_weight() == pytest.approx(2.0)


def test_mse_vae_refuses_likelihoods():
    model = gv.create("vae", likelihood="mse", base_channels=8, hidden=16)
    x = torch.zeros(2, 1, 8, 8)
    assert "elbo" not in model.loss(x)
    with pytest.raises(ValueError, match="not a likelihood"):
        model.log_likelihood(x)


# ----------------------------------------------------------------------------- VQ-VAE
def test_without_restarts_at_least_half_the_codebook_is_used(vqvae, digits):
    codes = vqvae.encode(digits["x"])
    used = torch.unique(codes).numel()
    assert vqvae.config.codebook_size == 64 and used >= 32, used


def test_vqvae_codes_round_trip_and_reconstruct_the_digit(vqvae, digits):
    codes = vqvae.encode(digits["x"])
    assert codes.dtype == torch.int64 and codes.shape == (len(digits["x"]), *vqvae.code_shape)
    assert vqvae.code_shape == (4, 4)
    images = vqvae.decode(codes)
    assert images.shape == digits["x"].shape and images.min() >= -1 and images.max() <= 1
    judge = get_judge(digits["train"], digits["test"])
    assert (judge.logits(images).argmax(1) == digits["y"]).float().mean().item() >= 0.8
    with pytest.raises(ValueError, match="codes must be in 0..63"):
        vqvae.decode(torch.full((1, 4, 4), 64))


def test_vqvae_prior_is_fitted_to_the_training_codes_and_saved(vqvae, digits, tmp_path):
    assert vqvae.code_counts.sum() > 0
    save_model_dir(vqvae, tmp_path / "vq")
    again = gv.load(tmp_path / "vq")
    assert torch.equal(again.code_counts, vqvae.code_counts)
    sampled = again.sample_codes(2000, seed=0)  # (n, h, w) from the per-position prior
    freq = (
        torch.stack([torch.bincount(sampled[:, i, j], minlength=64) for i in range(4) for j in range(4)])
        / 2000
    )
    prior = again.code_log_prior().exp().reshape(16, 64)
    assert (freq - prior).abs().max() < 0.05
    assert torch.allclose(again.sample(3, seed=1), again.sample(3, seed=1))
    # the bound log p(x | c) + log P(c) with the fitted prior beats the same with a uniform prior
    x = digits["x"][:100]
    codes = again.encode(x).reshape(100, 16)
    log_prior = again.code_log_prior().reshape(16, 64)[torch.arange(16), codes].sum(1).double()  # (B,)
    fitted = again.log_likelihood(x)
    assert torch.allclose(fitted, again.elbo(x))
    assert fitted.mean() > (fitted - log_prior + 16 * math.log(1 / 64)).mean()
