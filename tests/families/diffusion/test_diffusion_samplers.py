"""Samplers against an analytic target: data x0 ~ N(mu, s^2), where E[x0 | x_t] is known exactly.

With ``x_t = sqrt(a) x0 + sqrt(1 - a) eps`` the posterior mean is
``E[x0 | x_t] = mu + sqrt(a) s^2 / (a s^2 + 1 - a) * (x_t - sqrt(a) mu)``, so a sampler driven by
this denoiser should return N(mu, s^2) up to its discretisation error (small at T = 1000).
"""

from __future__ import annotations

import math

import pytest
import torch

from genvision import seeding
from genvision.families.diffusion import samplers, schedules

N = 20000  # scalars, shaped as (5000, 1, 2, 2) images


def exact_denoiser(alpha_bar, mu, s):
    """E[x0 | x] at noise level sigma (``alpha_bar`` unused: the level carries its own)."""

    def denoise(x, sigma):
        a = schedules.alpha_bar_of(torch.as_tensor(sigma, dtype=torch.float64))
        return (mu + a.sqrt() * s**2 / (a * s**2 + 1 - a) * (x.double() - a.sqrt() * mu)).float()

    return denoise


def grid(ab, steps, sampler="ddim"):
    """The (steps + 1,) noise-level grid a model trained on ``ab`` samples ``sampler`` on."""
    return samplers.grid(sampler, schedules.sigmas(ab), steps)


def start_noise(seed=0):
    return torch.randn(N // 4, 1, 2, 2, generator=torch.Generator().manual_seed(seed))


def assert_gaussian(x, mu, s, bias=0.0):
    """Mean and variance within 4 standard errors (plus ``bias`` relative, the discretisation's)."""
    assert abs(x.mean().item() - mu) < 4 * s / math.sqrt(N), x.mean().item()
    var_tol = 4 * s**2 * math.sqrt(2 / N) + bias * s**2
    assert abs(x.var().item() - s**2) < var_tol, (x.var().item(), s**2)


def test_ddim_eta1_with_every_step_is_ddpm_with_posterior_variance():
    T, mu, s = 50, 0.3, 0.6
    ab = schedules.alpha_bar("linear", T)
    denoise = exact_denoiser(ab, mu, s)
    x = start_noise()
    a = samplers.ddpm(denoise, x, grid(ab, T), torch.Generator().manual_seed(1), variance="posterior")
    b = samplers.ddim(denoise, x, grid(ab, T), torch.Generator().manual_seed(1), eta=1.0)
    assert torch.allclose(a, b, atol=1e-5)  # same algorithm, same noise draws
    # a different noise stream: the same distribution, within sampling error
    c = samplers.ddim(denoise, x, grid(ab, T), torch.Generator().manual_seed(2), eta=1.0)
    assert abs(a.mean() - c.mean()) < 6 * s / math.sqrt(N)
    assert abs(a.var() - c.var()) < 6 * s**2 * math.sqrt(2 / N)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim-eta1", "ddim-eta0"])
def test_samplers_reach_the_gaussian_target_at_1000_steps(sampler):
    T, mu, s = 1000, 0.3, 0.6
    ab = schedules.alpha_bar("cosine", T)
    denoise, x, g = exact_denoiser(ab, mu, s), start_noise(), torch.Generator().manual_seed(1)
    if sampler == "ddpm":
        out = samplers.ddpm(denoise, x, grid(ab, T), g)
    else:
        out = samplers.ddim(denoise, x, grid(ab, T), g, eta=1.0 if sampler == "ddim-eta1" else 0.0)
    assert_gaussian(out, mu, s, bias=0.01)


def test_ddpm_with_beta_variance_is_exact_for_unit_variance_data():
    # for s = 1 the true reverse step q(x_{t-1} | x_t) has variance beta_t exactly, at any T
    T, mu, s = 50, -0.5, 1.0
    ab = schedules.alpha_bar("linear", T)
    out = samplers.ddpm(exact_denoiser(ab, mu, s), start_noise(), grid(ab, T),
                        torch.Generator().manual_seed(3), variance="beta")  # fmt: skip
    assert_gaussian(out, mu, s, bias=0.003)  # only the last, noiseless step's beta_0


def test_ddim_with_a_point_mass_target_lands_on_it_in_any_step_count():
    # data = the single image c: E[x0 | x_t] = c exactly, and DDIM returns c (eta = 0 or not)
    ab = schedules.alpha_bar("cosine", 100)
    c = torch.linspace(-1, 1, 4).view(1, 1, 2, 2)
    for steps in (1, 7, 100):
        for eta in (0.0, 1.0):
            out = samplers.ddim(lambda x, t: c.expand_as(x), start_noise()[:10], grid(ab, steps), eta=eta)
            assert torch.allclose(out, c.expand(10, 1, 2, 2), atol=1e-5)


def test_dpm_solver_pp_2m_with_two_calls_is_ddim():
    # its first step has no earlier x0 to extrapolate from (first order: DDIM's update), and the
    # last call returns x0 as DDIM's does; from the third call on the two differ
    T, mu, s = 1000, 0.3, 0.6
    ab = schedules.alpha_bar("cosine", T)
    denoise, x = exact_denoiser(ab, mu, s), start_noise()
    assert torch.allclose(
        samplers.dpm_solver_pp_2m(denoise, x, grid(ab, 2)), samplers.ddim(denoise, x, grid(ab, 2)), atol=1e-5
    )
    assert not torch.allclose(
        samplers.dpm_solver_pp_2m(denoise, x, grid(ab, 3)), samplers.ddim(denoise, x, grid(ab, 3)), atol=1e-3
    )


def test_dpm_solver_pp_2m_lands_on_a_point_mass_target_in_any_step_count():
    ab = schedules.alpha_bar("cosine", 100)
    c = torch.linspace(-1, 1, 4).view(1, 1, 2, 2)
    for steps in (1, 2, 7, 100):
        out = samplers.dpm_solver_pp_2m(lambda x, t: c.expand_as(x), start_noise()[:10], grid(ab, steps))
        assert torch.allclose(out, c.expand(10, 1, 2, 2), atol=1e-5)


def test_dpm_solver_pp_2m_converges_at_second_order_where_ddim_is_first_order():
    # Gaussian data: the probability-flow ODE maps x_T to mu + s * (x_T - sqrt(a_T) mu) / sd_T exactly
    T, mu, s = 1000, 0.3, 0.6
    ab = schedules.alpha_bar("cosine", T)
    denoise, x = exact_denoiser(ab, mu, s), start_noise()
    a_T = ab[-1].double()
    exact = mu + s * (x.double() - a_T.sqrt() * mu) / (a_T * s**2 + 1 - a_T).sqrt()

    def error(sampler, steps):
        return (sampler(denoise, x, grid(ab, steps)).double() - exact).abs().max().item()

    ddim = [error(samplers.ddim, k) for k in (20, 40, 80)]
    dpm = [error(samplers.dpm_solver_pp_2m, k) for k in (20, 40, 80)]
    # doubling the steps: DDIM's error halves (first order), DPM-Solver++(2M)'s quarters (second)
    assert all(1.7 < a / b < 2.5 for a, b in zip(ddim, ddim[1:])), ddim
    assert all(a / b > 3.5 for a, b in zip(dpm, dpm[1:])), dpm
    assert dpm[1] < ddim[1] / 1.5 and dpm[2] < ddim[2] / 3, (ddim, dpm)


def test_ddim_timesteps_are_distinct_and_descend_to_zero():
    for T, steps in [(1000, 50), (1000, 1000), (50, 49), (10, 1)]:
        ts = schedules.timesteps(T, steps)
        assert len(ts) == steps == len(set(ts)) and ts[0] == T - 1 and ts[-1] == (0 if steps > 1 else T - 1)
        assert ts == sorted(ts, reverse=True)
    with pytest.raises(ValueError, match="steps"):
        schedules.timesteps(50, 51)


def test_samplers_with_per_image_generators_do_not_depend_on_the_batch():
    ab = schedules.alpha_bar("linear", 20)
    denoise = exact_denoiser(ab, 0.2, 0.5)
    gens = seeding.image_generators(5, seed=7)
    x = seeding.randn((5, 1, 2, 2), gens)
    full = samplers.ddpm(denoise, x, grid(ab, 20), gens)
    for k in (0, 3):
        g = seeding.image_generators(1, seed=7, start=k)
        alone = samplers.ddpm(denoise, seeding.randn((1, 1, 2, 2), g), grid(ab, 20), g)
        assert torch.allclose(alone[0], full[k], atol=1e-6)


def test_bad_sampler_arguments_are_refused():
    ab = schedules.alpha_bar("linear", 10)
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="variance"):
        samplers.ddpm(lambda x, t: x, x, grid(ab, 10), variance="large")
    with pytest.raises(ValueError, match="eta"):
        samplers.ddim(lambda x, t: x, x, grid(ab, 5), eta=-1.0)
