"""GAN objectives against their formulas, and the penalties against finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from genvision.families.gan import losses

R = [0.0, 1.5, -2.0]  # discriminator logits on real images
F = [0.5, -1.0, 3.0]  # ... and on generated ones


def sigmoid(a: float) -> float:
    return 1 / (1 + math.exp(-a))


def mean(values) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize(
    "kind, d_expected, g_expected",
    [
        (
            "minimax",
            -mean([math.log(sigmoid(r)) for r in R]) - mean([math.log(1 - sigmoid(f)) for f in F]),
            mean([math.log(1 - sigmoid(f)) for f in F]),
        ),
        (
            "ns",
            -mean([math.log(sigmoid(r)) for r in R]) - mean([math.log(1 - sigmoid(f)) for f in F]),
            -mean([math.log(sigmoid(f)) for f in F]),
        ),
        ("wgan", mean(F) - mean(R), -mean(F)),
        ("wgan-gp", mean(F) - mean(R), -mean(F)),
        ("hinge", mean([max(0, 1 - r) for r in R]) + mean([max(0, 1 + f) for f in F]), -mean(F)),
    ],
)
def test_losses_match_their_formulas_on_hand_computed_logits(kind, d_expected, g_expected):
    r, f = torch.tensor(R, dtype=torch.float64), torch.tensor(F, dtype=torch.float64)
    assert losses.discriminator_loss(kind, r, f).item() == pytest.approx(d_expected, rel=1e-12)
    assert losses.generator_loss(kind, f).item() == pytest.approx(g_expected, rel=1e-12)


def test_one_sided_label_smoothing_targets_1_minus_s_on_real_only():
    r, f = torch.tensor(R, dtype=torch.float64), torch.tensor(F, dtype=torch.float64)
    s = 0.1
    real = mean([-(1 - s) * math.log(sigmoid(x)) - s * math.log(1 - sigmoid(x)) for x in R])
    fake = -mean([math.log(1 - sigmoid(x)) for x in F])
    assert losses.discriminator_loss("ns", r, f, label_smoothing=s).item() == pytest.approx(real + fake)


def test_minimax_generator_gradient_vanishes_where_the_non_saturating_one_does_not():
    """The lesson of gan-minimax: when D confidently rejects fakes (f << 0), log(1 - D) is flat."""
    f = torch.tensor([-8.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(losses.generator_loss("minimax", f), f)
    (g_ns,) = torch.autograd.grad(losses.generator_loss("ns", f), f)
    assert abs(g_minimax.item()) < 1e-3 < 0.99 < abs(g_ns.item())


def _critic():
    """A fixed smooth nonlinear critic on (B, 1, 2, 2) images, float64."""
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(4, 6, generator=g, dtype=torch.float64)
    w2 = torch.randn(6, generator=g, dtype=torch.float64)
    return lambda x: torch.tanh(x.flatten(1) @ w1) @ w2


def _fd_grad(fn, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central finite differences of sum(fn(x)) with respect to every entry of x."""
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        keep = flat[i].item()
        flat[i] = keep + h
        up = fn(x).sum().item()
        flat[i] = keep - h
        down = fn(x).sum().item()
        flat[i] = keep
        gflat[i] = (up - down) / (2 * h)
    return grad


def test_gradient_penalty_equals_a_finite_difference_estimate():
    critic = _critic()
    g = torch.Generator().manual_seed(1)
    real = torch.randn(5, 1, 2, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 1, 2, 2, generator=g, dtype=torch.float64)
    eps = torch.rand(5, 1, 1, 1, generator=g, dtype=torch.float64)
    gp = losses.gradient_penalty(critic, real, fake, eps)
    x_hat = eps * real + (1 - eps) * fake
    norms = _fd_grad(critic, x_hat.clone()).flatten(1).norm(dim=1)
    assert gp.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-6)


def test_r1_penalty_equals_a_finite_difference_estimate():
    critic = _critic()
    real = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = real.clone().requires_grad_(True)
    r1 = losses.r1_penalty(critic(x), x)
    expected = _fd_grad(critic, real.clone()).flatten(1).pow(2).sum(dim=1).mean()
    assert r1.item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    w = torch.ones(4, dtype=torch.float64, requires_grad=True)
    real, fake = torch.ones(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    gp = losses.gradient_penalty(lambda x: x.flatten(1) @ w * 2, real, fake, torch.full((2, 1, 1, 1), 0.5))
    (grad,) = torch.autograd.grad(gp, w)
    # linear critic: grad_x = 2w, ||2w|| = 4, gp = (4 - 1)^2 = 9, d gp / dw = 2 (4 - 1) 2 w / ||w|| = 6
    assert gp.item() == pytest.approx(9.0) and torch.allclose(
        grad, torch.full((4,), 6.0, dtype=torch.float64)
    )
