"""The continuous-time samplers (Euler / Heun in flow time, EDM's Heun in sigma, consistency) against
an analytic target, and the level grids they run on.

Data x0 ~ N(mu, s^2) has an exact denoiser at every level, and its probability-flow ODE maps the
start noise z at level sigma_max to ``mu + s z sqrt(1 + sigma_max^2) / sqrt(s^2 + sigma_max^2)``
(the VE form ``x = x0 + sigma eps`` is Gaussian with standard deviation ``sqrt(s^2 + sigma^2)``).
"""

from __future__ import annotations

import math

import pytest
import torch

from genvision.families.diffusion import samplers, schedules

MU, S = 0.3, 0.6


def exact(sigma, x):
    """E[x0 | x] for the VP-scaled ``x`` at level ``sigma``."""
    a = schedules.alpha_bar_of(torch.as_tensor(sigma, dtype=torch.float64))
    return (MU + a.sqrt() * S**2 / (a * S**2 + 1 - a) * (x.double() - a.sqrt() * MU)).float()


def denoise(x, sigma):
    return exact(sigma, x)


def start(n=4000, seed=0):
    return torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(seed))


def ode_end(z, sigma_max):
    """Where the exact probability-flow ODE takes the VP start ``z`` at ``sigma_max``."""
    return MU + S * z.double() * math.sqrt(1 + sigma_max**2) / math.sqrt(S**2 + sigma_max**2)


def error(sampler, levels, calls=None, n=200):
    z = start(n)
    opts = {"calls": calls} if calls is not None else {}
    out = samplers.SAMPLERS[sampler].fn(denoise, z, levels, None, **opts)
    return (out.double() - ode_end(z, float(levels[0]))).abs().max().item()


def test_euler_in_flow_time_is_ddim():
    levels = samplers.flow_levels(0.99, 12)
    z = start(100)
    a = samplers.euler(denoise, z, levels)
    b = samplers.ddim(denoise, z, levels)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("sampler", ["heun", "edm"])
def test_heun_converges_at_second_order_where_euler_is_first(sampler):
    # doubling the steps: Euler's error halves, Heun's quarters
    def grid(k):
        if sampler == "edm":
            return samplers.karras_levels(0.002, 80.0, k)
        return samplers.flow_levels(0.999, k)

    euler = [error("euler", grid(k)) for k in (8, 16, 32)]
    heun = [error(sampler, grid(k)) for k in (8, 16, 32)]
    assert all(1.6 < a / b < 2.6 for a, b in zip(euler, euler[1:])), euler
    assert all(a / b > 3.2 for a, b in zip(heun, heun[1:])), heun
    assert heun[-1] < euler[-1] / 4, (euler, heun)


def test_heun_samplers_reach_the_gaussian_target():
    for sampler, levels in [
        ("heun", samplers.flow_levels(0.999, 20)),
        ("edm", samplers.karras_levels(0.002, 80.0, 20)),
    ]:
        x = samplers.SAMPLERS[sampler].fn(denoise, start(), levels, None)
        assert abs(x.mean().item() - MU) < 4 * S / math.sqrt(4000) + 0.01, sampler
        assert abs(x.std().item() - S) < 0.03, (sampler, x.std().item())


def test_heun_plan_spends_exactly_the_calls_asked_for():
    for calls in range(1, 30):
        intervals = samplers.heun_intervals(calls)
        plan = samplers.heun_plan(intervals, calls)
        spent = sum(2 if second else 1 for second in plan)
        assert spent == calls, (calls, plan)
        assert plan[-1] is False  # the step to the clean end is an Euler step

        seen = []
        samplers.heun(
            lambda x, sigma, seen=seen: seen.append(sigma) or denoise(x, sigma),
            start(4),
            samplers.flow_levels(0.99, intervals),
            None,
            calls=calls,
        )
        assert len(seen) == calls
    with pytest.raises(ValueError, match="calls"):
        samplers.heun_plan(3, 7)


def test_consistency_sampler_with_an_exact_map_returns_its_target_and_renoises():
    # a "consistency function" that always returns the point 0.25: every step returns it
    calls = []

    def point(x, sigma):
        calls.append(sigma)
        return torch.full_like(x, 0.25)

    levels = torch.tensor([80.0, 2.0, 0.5, 0.0], dtype=torch.float64)
    out = samplers.consistency(point, start(10), levels, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.full_like(out, 0.25))
    assert calls == [80.0, 2.0, 0.5]


def test_level_grids():
    k = samplers.karras_levels(0.002, 80.0, 10)
    assert len(k) == 11 and k[-1] == 0 and k[0] == pytest.approx(80.0) and k[-2] == pytest.approx(0.002)
    assert bool((k[1:] < k[:-1]).all())
    f = samplers.flow_levels(0.999, 10)
    t = f / (1 + f)
    assert len(f) == 11 and f[-1] == 0
    assert torch.allclose(t[:-1] - t[1:], torch.full((10,), 0.0999, dtype=torch.float64))
    with pytest.raises(ValueError, match="t_max"):
        samplers.flow_levels(1.0, 4)
    # the time shift keeps both ends, stays strictly decreasing and moves every inner level noisier:
    # u -> s u / (1 + (s - 1) u), so u = 1/2 lands at t_max * 2/3 for s = 2
    g = samplers.flow_levels(0.999, 10, shift=2.0)
    tg = g / (1 + g)
    assert len(g) == 11 and g[-1] == 0 and tg[0] == pytest.approx(0.999)
    assert bool((g[1:] < g[:-1]).all()) and bool((tg[1:-1] > t[1:-1]).all())
    assert tg[5] == pytest.approx(0.999 * 2 / 3)
    even = torch.linspace(0.999, 0, 11, dtype=torch.float64)
    assert torch.allclose(samplers.flow_levels(0.999, 10, shift=1.0), even / (1 - even))
    with pytest.raises(ValueError, match="shift"):
        samplers.flow_levels(0.999, 4, shift=0.0)
    with pytest.raises(ValueError, match="sigma_min"):
        samplers.karras_levels(1.0, 0.5, 4)


def test_coordinates_round_trip_a_flow_point():
    # x_t = (1 - t) x0 + t eps is the VP-scaled x times the flow scale, at sigma = t / (1 - t)
    t, x0, eps = 0.3, torch.tensor(0.7), torch.tensor(-1.2)
    sigma = t / (1 - t)
    vp = (x0 + sigma * eps) / math.sqrt(1 + sigma**2)
    scale, tau = samplers.to_coordinates("flow", sigma)
    assert tau == pytest.approx(t)
    assert float(vp * scale) == pytest.approx(float((1 - t) * x0 + t * eps), abs=1e-6)
