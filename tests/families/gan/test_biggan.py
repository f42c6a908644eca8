"""BigGAN's pieces against what they must be: class-conditional batch norm, the orthogonal
penalty's formula, truncation by resampling (the truncated normal, exactly), per-image seeds."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_configs import TINY

from genvision import registry, seeding
from genvision.families.gan.biggan import BigGAN, orthogonal_penalty, truncated_normal


def tiny(**overrides) -> BigGAN:
    torch.manual_seed(0)
    return registry.create("biggan", **{**TINY["biggan"], "num_classes": 10, **overrides})


def test_the_class_steers_every_block_through_conditional_batch_norm():
    model = tiny(image_size=16, latent_dim=12).eval()  # two up-blocks: 4 -> 8 -> 16
    z = torch.randn(1, 12).expand(2, -1)
    a, b = model.generator(z, torch.tensor([3, 7]))
    assert (a - b).abs().max() > 1e-3  # same z, two classes: two images
    assert len(model.generator.chunks) == 3 and sum(model.generator.chunks) == 12
    # each block's chunk of z matters too (hierarchical latents): change only the last chunk
    z2 = z[:1].clone()
    z2[:, -model.generator.chunks[-1] :] += 1.0
    y = torch.tensor([3])
    assert (model.generator(z[:1], y) - model.generator(z2, y)).abs().max() > 1e-3


def test_orthogonal_penalty_is_the_squared_off_diagonal_of_w_wt():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert orthogonal_penalty([q[:4]]).item() == pytest.approx(0.0, abs=1e-20)  # orthonormal rows
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)  # W W^T off-diagonal: 11
    conv = torch.ones(2, 1, 1, 2, dtype=torch.float64)  # rows (1, 1) and (1, 1): off-diagonal 2
    assert orthogonal_penalty([w, conv]).item() == pytest.approx(2 * 11**2 + 2 * 2**2)
    model = tiny()
    names = {id(p) for p in model.generator.ortho_weights()}
    assert id(model.generator.shared.weight) not in names and len(names) >= 5
    out = model.loss(torch.rand(4, 1, 8, 8) * 2 - 1, torch.arange(4), phase="generator")
    assert out["ortho"] > 0


@pytest.mark.parametrize("psi", [0.3, 0.7])
def test_truncation_draws_the_truncated_normal(psi):
    tau = torch.special.ndtri(torch.tensor((1 + psi) / 2, dtype=torch.float64)).item()
    z = truncated_normal((20000, 4), psi, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert z.abs().max().item() <= tau + 1e-12 and z.abs().max().item() > 0.98 * tau
    phi = math.exp(-(tau**2) / 2) / math.sqrt(2 * math.pi)
    variance = 1 - 2 * tau * phi / psi  # of N(0, 1) truncated to [-tau, tau] (mass psi)
    assert z.var().item() == pytest.approx(variance, rel=0.03) and abs(z.mean().item()) < 0.02
    full = truncated_normal((20000,), 1.0, torch.Generator().manual_seed(1))
    assert full.std().item() == pytest.approx(1.0, rel=0.03) and torch.isfinite(full).all()
    assert not truncated_normal((5, 3), 0.0, torch.Generator().manual_seed(2)).any()


def test_image_k_depends_only_on_seed_and_k_at_any_truncation():
    model = tiny().eval()
    a = model.sample(4, y=3, seed=5, truncation=0.7)
    b = model.sample(2, y=3, seed=5, truncation=0.7)
    assert torch.allclose(a[:2], b, atol=1e-6)  # batch-size rounding only
    gens = seeding.image_generators(3, 5)
    assert not model.latents(3, 0.0, gens).any()  # psi = 0: every image from the mean latent
    assert (model.sample(2, y=3, seed=5, truncation=0.2) - b).abs().max() > 1e-3
