"""Schedules, objectives and guidance: small pure functions checked against their definitions."""

from __future__ import annotations

import pytest
import torch

from genvision.families.diffusion import losses, schedules
from genvision.families.diffusion.guidance import with_guidance
from genvision.nn import pixels


# ----------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("name", schedules.SCHEDULES)
@pytest.mark.parametrize("T", [10, 50, 1000])
def test_alpha_bar_decreases_inside_0_1_and_ends_near_noise(name, T):
    ab = schedules.alpha_bar(name, T)
    assert ab.shape == (T,) and ab.dtype == torch.float32
    assert (ab > 0).all() and (ab < 1).all()
    assert (ab[1:] < ab[:-1]).all()
    assert ab[-1] < 1e-3  # the last step is (almost) pure noise
    assert ab[0] > 0.9  # the first step barely noises


def test_cosine_schedule_follows_its_formula_and_ends_near_zero():
    T, s = 1000, 0.008
    ab = schedules.alpha_bar("cosine", T).double()
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    f = (
        torch.cos((t + s) / (1 + s) * torch.pi / 2) ** 2
        / torch.cos(torch.tensor(s / (1 + s) * torch.pi / 2)) ** 2
    )
    assert torch.allclose(ab[:-20], f[:-20], rtol=1e-5)  # before the beta cap bites
    assert ab[-1] < 1e-6


def test_betas_round_trip_and_unknown_schedule():
    ab = schedules.alpha_bar("linear", 1000)
    betas = schedules.betas_from_alpha_bar(ab.double())
    assert torch.allclose(betas, schedules.linear_betas(1000), atol=1e-5)
    with pytest.raises(ValueError, match="linear, cosine"):
        schedules.alpha_bar("sigmoid", 10)


# ----------------------------------------------------------------------------- objectives
def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(6, 1, 4, 4, generator=g) * 2 - 1
    eps = torch.randn(6, 1, 4, 4, generator=g)
    a = torch.tensor([0.999, 0.9, 0.5, 0.1, 0.01, 1e-4]).view(6, 1, 1, 1)
    return x0, eps, a


@pytest.mark.parametrize("objective", losses.OBJECTIVES)
def test_true_target_converts_back_to_the_clean_image(objective):
    x0, eps, a = _batch()
    xt = losses.add_noise(x0, eps, a)
    pred = losses.target(objective, x0, eps, a)
    assert torch.allclose(losses.to_x0(objective, pred, xt, a), x0, atol=1e-3 if objective == "eps" else 1e-5)
    assert torch.allclose(losses.eps_from_x0(x0, xt, a), eps, atol=1e-4)


@pytest.mark.parametrize("objective", losses.OBJECTIVES)
def test_from_x0_inverts_to_x0(objective):
    x0, eps, a = _batch(1)
    xt = losses.add_noise(x0, eps, a)
    guess = torch.rand_like(x0)  # any prediction, not only the true one
    back = losses.to_x0(objective, losses.from_x0(objective, guess, xt, a), xt, a)
    assert torch.allclose(back.double(), guess.double(), atol=1e-3)


def test_v_is_the_rotation_of_eps_and_x0():
    x0, eps, a = _batch(2)
    v = losses.target("v", x0, eps, a)
    # (x_t, v) is (x0, eps) rotated by the angle phi with cos(phi) = sqrt(a): norms agree
    xt = losses.add_noise(x0, eps, a)
    assert torch.allclose(xt**2 + v**2, x0**2 + eps**2, atol=1e-5)


def test_unknown_objective_is_refused():
    x0, eps, a = _batch()
    for fn in (losses.target, losses.to_x0):
        with pytest.raises(ValueError, match="eps, v, x0"):
            fn("score", x0, eps, a)


# ----------------------------------------------------------------------------- guidance
def _labelled_denoiser(calls):
    def denoise(x, t, y):
        calls.append(y is None)
        shift = torch.zeros(x.shape[0]) if y is None else y.float() + 1
        return x + shift.view(-1, 1, 1, 1) + t

    return denoise


def test_guidance_extrapolates_from_unconditional_to_conditional():
    x, y = torch.randn(3, 1, 2, 2), torch.tensor([0, 1, 4])
    calls = []
    guided = with_guidance(_labelled_denoiser(calls), y, 3.0)
    uncond, cond = x + 5, x + 5 + (y.float() + 1).view(-1, 1, 1, 1)
    assert torch.allclose(guided(x, 5), uncond + 3.0 * (cond - uncond))
    assert sorted(calls) == [False, True]


def test_guidance_scale_1_is_conditional_and_0_unconditional_with_one_call_each():
    x, y = torch.randn(2, 1, 2, 2), torch.tensor([2, 3])
    calls = []
    assert torch.allclose(
        with_guidance(_labelled_denoiser(calls), y, 1.0)(x, 0), x + torch.tensor([3.0, 4.0]).view(-1, 1, 1, 1)
    )
    assert torch.allclose(with_guidance(_labelled_denoiser(calls), y, 0.0)(x, 0), x)
    assert calls == [False, True]
    with pytest.raises(ValueError, match="scale"):
        with_guidance(_labelled_denoiser(calls), y, -1.0)


# ----------------------------------------------------------------------------- likelihood bound
ATOMS = torch.tensor([[-1, 1, 0.5, -0.25], [1, 1, -1, -1], [0, 0.25, 0.5, 1], [-1, -1, -1, -1.0]]).view(
    4, 1, 2, 2
)


def _mixture_denoiser(alpha_bar):
    """Exact E[x0 | x_t] when x0 is uniform over the four ATOMS."""
    ab = alpha_bar.double()

    def denoise(x, t):
        a = ab[t]
        d2 = ((x.double()[:, None] - a.sqrt() * ATOMS.double()[None]) ** 2).flatten(2).sum(-1)  # (B, K)
        w = torch.softmax(-d2 / (2 * (1 - a)), dim=1)
        return torch.einsum("bk,kchw->bchw", w, ATOMS.double()).float()

    return denoise


def test_variational_bound_is_below_and_close_to_the_true_log_likelihood():
    # data uniform over 4 images: log p_data = -log 4; any model's mean bound is <= that (Gibbs),
    # and the exact denoiser's bound closes the gap as T grows
    ab = schedules.alpha_bar("cosine", 1000)
    x = ATOMS.repeat(64, 1, 1, 1)
    bound = losses.variational_bound(
        _mixture_denoiser(ab), x, ab, 17, generator=torch.Generator().manual_seed(0)
    )
    se = bound.std().item() / len(bound) ** 0.5
    target = -torch.log(torch.tensor(4.0)).item()
    assert bound.shape == (256,) and target - 0.05 < bound.mean().item() < target + 3 * se
    poor = losses.variational_bound(lambda x, t: torch.zeros_like(x), x, ab, 17, generator=torch.Generator())
    assert poor.mean() < bound.mean() - 5


def test_discretized_gaussian_bins_sum_to_one():
    levels = 17
    grid = torch.linspace(-1, 1, levels)  # every value a pixel can take
    for mean, std in [(0.1, 0.05), (-0.97, 0.3), (3.0, 0.01), (0.0, 1e-3)]:
        logp = pixels.discretized_gaussian_log_prob(
            grid.double(), torch.full_like(grid, mean).double(), torch.tensor(std).double().log(), levels
        )
        assert torch.isfinite(logp).all()
        assert abs(logp.exp().sum().item() - 1) < 1e-9
