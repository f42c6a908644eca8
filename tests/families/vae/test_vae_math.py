"""The VAE family's pure functions and configs: likelihoods, KL, free bits, IWAE, quantiser."""

from __future__ import annotations

import math

import pytest
import torch

from genvision.families.vae import losses
from genvision.families.vae.model import VAEConfig
from genvision.families.vae.quantizer import VectorQuantizer
from genvision.families.vae.vqvae import VQVAEConfig
from genvision.nn import pixels


# ----------------------------------------------------------------------------- likelihoods
@pytest.mark.parametrize("fn", [pixels.discretized_logistic_log_prob, pixels.discretized_gaussian_log_prob])
@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_likelihood_sums_to_one_over_the_levels(fn, levels):
    grid = torch.linspace(-1, 1, levels).view(levels, 1, 1, 1)  # every level of one pixel
    g = torch.Generator().manual_seed(0)
    for mean, log_scale in [(0.0, -6.0), (0.3, -2.0), (-1.7, 0.5), (0.99, 3.0)] + [
        (float(torch.randn(1, generator=g)), float(torch.randn(1, generator=g) * 2 - 2)) for _ in range(5)
    ]:
        m, s = torch.full_like(grid, mean), torch.full_like(grid, log_scale)
        logp = fn(grid.double(), m.double(), s.double(), levels)  # (L,) log P(level)
        assert torch.isfinite(logp).all()
        assert abs(torch.logsumexp(logp, 0).item()) < 1e-6, (mean, log_scale)


def test_discretized_logistic_matches_the_cdf_difference_in_float64():
    levels = 17
    x = torch.linspace(-1, 1, levels).double().view(1, levels, 1, 1)
    mean, log_scale = torch.full_like(x, 0.2), torch.full_like(x, -1.5)
    per_level = torch.stack(
        [pixels.discretized_logistic_log_prob(x[:, i : i + 1], mean[:, i : i + 1], log_scale[:, i : i + 1], levels)
         for i in range(levels)]
    ).flatten()  # fmt: skip
    s, half = math.exp(-1.5), 1 / (levels - 1)
    edges = torch.cat(
        [
            torch.tensor([-math.inf]),
            torch.linspace(-1, 1, levels)[1:].double() - half,
            torch.tensor([math.inf]),
        ]
    )
    cdf = torch.sigmoid((edges - 0.2) / s)
    assert torch.allclose(per_level.exp(), cdf[1:] - cdf[:-1], atol=1e-12)


def test_bernoulli_log_prob_is_the_log_of_the_pixel_probabilities():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    x = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
    p = torch.sigmoid(logits)
    want = torch.log(torch.where(x > 0, p, 1 - p)).sum()
    assert torch.allclose(losses.bernoulli_log_prob(logits, x), want.view(1))


def test_pixel_sample_inverts_the_cdf_onto_the_grid():
    levels = 17
    out = torch.cat([torch.full((4000, 1, 1, 1), 0.25), torch.full((4000, 1, 1, 1), -2.0)], dim=1)
    u = torch.rand(4000, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    x = losses.pixel_sample("logistic", out, levels, u)
    v = (x + 1) * (levels - 1) / 2
    assert torch.allclose(v, v.round(), atol=1e-5)  # on the grid
    # empirical frequency of each level ~ the model's probability of it
    grid = torch.linspace(-1, 1, levels).view(levels, 1, 1, 1)
    logp = losses.pixel_log_prob("logistic", out[:levels], grid, levels)  # (L,): one pixel per level
    freq = torch.bincount(v.round().long().flatten(), minlength=levels) / 4000
    assert (freq - logp.exp()).abs().max() < 0.03


# ----------------------------------------------------------------------------- KL, free bits, IWAE
def test_kl_term_equals_a_monte_carlo_estimate_within_its_error():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(1, 6, generator=g), torch.randn(1, 6, generator=g)
    analytic = losses.kl_to_standard_normal(mean, logvar).sum().item()
    z = mean + torch.exp(0.5 * logvar) * torch.randn(200000, 6, generator=g)  # z ~ q
    log_ratio = losses.log_normal(z, mean, logvar) - losses.log_standard_normal(z)  # (N,)
    mc, err = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(len(z))
    assert abs(mc - analytic) < 4 * err, (mc, analytic, err)


def test_free_bits_stops_the_gradient_of_dimensions_under_the_floor():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)  # batch means 0.2 and 3.0
    out = losses.free_bits_kl(kl, free_bits=0.5)
    assert torch.allclose(out, torch.tensor([0.5 + 2.0, 0.5 + 4.0]))
    out.sum().backward()
    assert torch.equal(kl.grad, torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert torch.equal(losses.free_bits_kl(kl, 0.0), kl.sum(-1))


def test_iwae_bound_is_the_log_mean_of_the_weights():
    log_w = torch.tensor([[0.0, math.log(3.0)], [-1.0, -1.0]], dtype=torch.float64)
    assert torch.allclose(losses.iwae_bound(log_w), torch.tensor([math.log(2.0), -1.0], dtype=torch.float64))
    assert torch.equal(losses.iwae_bound(log_w[:, :1]), log_w[:, 0])  # K = 1: the single weight


# ----------------------------------------------------------------------------- quantiser
def test_quantizer_picks_the_nearest_code_and_passes_gradients_straight_through():
    q = VectorQuantizer(4, 2, decay=0.9, restart_threshold=0.0)
    q.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    ze = torch.tensor([[0.9, 0.2], [0.1, 0.8], [4.0, 4.5], [0.1, -0.1]]).T.reshape(1, 2, 2, 2)
    ze.requires_grad_(True)
    zq, codes, commit = q(ze)
    assert codes.flatten().tolist() == [1, 2, 3, 0]
    assert torch.allclose(zq, q.lookup(codes))
    zq.sum().backward()
    assert torch.equal(ze.grad, torch.ones_like(ze))  # straight-through
    expected = ((ze.detach() - q.lookup(codes)) ** 2).sum()
    assert torch.allclose(commit, expected.view(1))


def test_ema_update_moves_codes_to_their_assigned_means_and_restarts_dead_codes():
    q = VectorQuantizer(3, 2, decay=0.0, restart_threshold=0.5)  # decay 0: the batch statistics
    q.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]))
    ze = torch.tensor([[0.1, 0.1], [-0.1, 0.3], [1.2, 1.0], [0.8, 1.2]]).T.reshape(1, 2, 2, 2)
    q.train()
    q(ze)
    restarted = q.update(step=0)
    assert torch.allclose(q.embed[0], torch.tensor([0.0, 0.2]), atol=1e-4)
    assert torch.allclose(q.embed[1], torch.tensor([1.0, 1.1]), atol=1e-4)
    assert restarted == 1  # code 2 was never used: it now sits on one of the batch's vectors
    flat = ze.permute(0, 2, 3, 1).reshape(-1, 2)
    assert (flat - q.embed[2]).abs().sum(1).min() < 1e-6
    q.eval()
    q(ze)
    assert q.update(step=1) == 0  # nothing recorded outside training: no update


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "cls, overrides, field",
    [
        (VAEConfig, {"latent_dim": 0}, "latent_dim"),
        (VAEConfig, {"latent_dim": -3}, "latent_dim"),
        (VAEConfig, {"beta": 0.0}, "beta"),
        (VAEConfig, {"beta": -1.0}, "beta"),
        (VAEConfig, {"likelihood": "poisson"}, "likelihood"),
        (VAEConfig, {"likelihood": "bernoulli", "levels": 17}, "bernoulli"),
        (VAEConfig, {"kl_warmup_steps": -1}, "kl_warmup_steps"),
        (VAEConfig, {"free_bits": -0.5}, "free_bits"),
        (VAEConfig, {"iwae_samples": 0}, "iwae_samples"),
        (VQVAEConfig, {"codebook_size": 1}, "codebook_size"),
        (VQVAEConfig, {"likelihood": "poisson"}, "likelihood"),
        (VQVAEConfig, {"codebook_decay": 1.0}, "codebook_decay"),
        (VQVAEConfig, {"restart_threshold": -1.0}, "restart_threshold"),
    ],
)
def test_bad_config_values_raise_one_line_naming_the_field(cls, overrides, field):
    with pytest.raises(ValueError, match=field) as err:
        cls(**overrides)
    assert "\n" not in str(err.value)


def test_auto_likelihood_and_latent_size_follow_the_data_and_are_stored():
    assert VAEConfig(levels=2).likelihood == "bernoulli"
    assert VAEConfig(levels=17).likelihood == "logistic"
    assert VAEConfig(image_size=8).latent_dim == 16 and VAEConfig(image_size=28).latent_dim == 32
    again = VAEConfig.from_dict(VAEConfig(levels=2, image_size=28).to_dict())
    assert again.likelihood == "bernoulli" and again.latent_dim == 32
