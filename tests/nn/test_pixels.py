"""The shared pixel likelihood maths: the levels grid, discretised Gaussian / logistic, bits/dim."""

from __future__ import annotations

import math

import pytest
import torch

from genvision.nn import pixels

LEVELS = [2, 17, 256]
#: (mean, log_scale) pairs: ordinary, far outside [-1, 1], very narrow, very wide
EXTREMES = [
    (0.0, -3.0),
    (0.3, -1.0),
    (-1.0, -7.0),
    (1.0, -9.0),
    (0.51, -8.0),
    (-6.0, -2.0),
    (9.0, 0.0),
    (0.2, 6.0),
]


def every_level(levels: int) -> torch.Tensor:
    """(L, 1) float64: each value a pixel on the grid can take, one per row."""
    return pixels.to_float(torch.arange(levels), levels, dtype=torch.float64).view(levels, 1)


@pytest.mark.parametrize("fn", [pixels.discretized_gaussian_log_prob, pixels.discretized_logistic_log_prob])
@pytest.mark.parametrize("levels", LEVELS)
def test_bin_probabilities_sum_to_one_over_the_levels(fn, levels):
    x = every_level(levels)
    g = torch.Generator().manual_seed(0)
    pairs = EXTREMES + [
        (float(m), float(s)) for m, s in zip(torch.randn(8, generator=g), torch.randn(8, generator=g) * 3)
    ]
    mean = torch.tensor([m for m, _ in pairs], dtype=torch.float64).view(1, -1)  # one column per pair
    log_scale = torch.tensor([s for _, s in pairs], dtype=torch.float64).view(1, -1)
    logp = fn(x, mean, log_scale, levels)  # (L, pairs)
    assert logp.shape == (levels, len(pairs)) and torch.isfinite(logp).all() and (logp <= 0).all()
    torch.testing.assert_close(
        logp.exp().sum(0), torch.ones(len(pairs), dtype=torch.float64), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("fn", [pixels.discretized_gaussian_log_prob, pixels.discretized_logistic_log_prob])
def test_bin_probabilities_sum_to_one_in_float32(fn):
    x = every_level(256).float()
    mean, log_scale = torch.tensor([[0.3, -1.0, 4.0]]), torch.tensor([[-7.0, -2.0, 1.0]])
    logp = fn(x, mean, log_scale, 256)
    assert torch.isfinite(logp).all()
    torch.testing.assert_close(logp.exp().sum(0), torch.ones(3), rtol=0, atol=1e-5)


@pytest.mark.parametrize("levels", LEVELS)
def test_discretized_gaussian_is_the_normal_cdf_difference_with_open_end_bins(levels):
    """Against torch.distributions.Normal: bin v is [x_v - 1/(L-1), x_v + 1/(L-1)], ends to -+inf."""
    x = every_level(levels)
    half = 1 / (levels - 1)
    lower = (x - half).clone()
    upper = (x + half).clone()
    lower[0], upper[-1] = -math.inf, math.inf
    for mean, log_scale in [(0.1, -2.0), (-0.7, -4.0), (0.9, 0.5)]:
        normal = torch.distributions.Normal(torch.tensor(mean, dtype=torch.float64), math.exp(log_scale))
        want = normal.cdf(upper) - normal.cdf(lower)
        got = pixels.discretized_gaussian_log_prob(
            x, torch.tensor(mean, dtype=torch.float64), torch.tensor(log_scale, dtype=torch.float64), levels
        ).exp()
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_discretized_logistic_is_the_sigmoid_cdf_difference_with_open_end_bins():
    levels = 17
    x = every_level(levels)
    lower, upper = x - 1 / 16, x + 1 / 16
    lower[0], upper[-1] = -math.inf, math.inf
    mean, scale = 0.2, math.exp(-1.5)
    want = torch.sigmoid((upper - mean) / scale) - torch.sigmoid((lower - mean) / scale)
    got = pixels.discretized_logistic_log_prob(
        x, torch.tensor(mean, dtype=torch.float64), torch.tensor(-1.5, dtype=torch.float64), levels
    )
    torch.testing.assert_close(got.exp(), want, rtol=1e-9, atol=1e-12)


def test_far_off_bins_stay_finite_and_ordered():
    """Bins hundreds of scales from the mean: finite log-probabilities, falling away from the mean."""
    x = every_level(17)
    for fn in (pixels.discretized_gaussian_log_prob, pixels.discretized_logistic_log_prob):
        logp = fn(x.float(), torch.tensor(-0.9), torch.tensor(-7.0), 17).flatten()  # mean near level 0
        assert torch.isfinite(logp).all()
        assert (logp[1:].diff() < 0).all()  # the farther the bin, the less likely


def test_an_image_off_the_grid_gets_the_bin_of_its_nearest_level():
    x = every_level(17)
    nudged = x + 0.3 / 16  # less than half a level up
    for fn in (pixels.discretized_gaussian_log_prob, pixels.discretized_logistic_log_prob):
        args = (torch.tensor(0.1, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64), 17)
        assert torch.equal(fn(nudged, *args), fn(x, *args))


@pytest.mark.parametrize("levels", LEVELS)
def test_levels_round_trip_exactly(levels):
    v = torch.arange(levels)
    for dtype in (torch.float32, torch.float64):
        x = pixels.to_float(v, levels, dtype=dtype)
        assert x.dtype == dtype and x[0] == -1 and x[-1] == 1 and (x.diff() > 0).all()
        assert torch.equal(pixels.to_levels(x, levels), v)
        assert torch.equal(pixels.snap(x, levels), x)
        jitter = (
            (torch.rand(levels, generator=torch.Generator().manual_seed(0), dtype=dtype) - 0.5)
            * 0.9
            / (levels - 1)
        )
        assert torch.equal(pixels.to_levels(x + jitter, levels), v)  # the nearest level wins
    assert pixels.to_levels(torch.tensor([-3.0, 3.0]), levels).tolist() == [0, levels - 1]  # clamped
    assert pixels.to_levels(torch.zeros(1), levels, dtype=torch.uint8).dtype == torch.uint8


def test_level_value_is_the_continuous_inverse_of_to_float():
    u = torch.linspace(-0.5, 16.5, 35, dtype=torch.float64)
    torch.testing.assert_close(pixels.level_value(pixels.to_float(u, 17, dtype=torch.float64), 17), u)


def test_bits_per_dim_is_minus_nats_over_dims_ln2():
    ll = torch.tensor([-100.0, -44.3614195558365], dtype=torch.float64)
    torch.testing.assert_close(pixels.bits_per_dim(ll, 64), -ll / (64 * math.log(2)))
    assert pixels.bits_per_dim(-64 * math.log(2), 64) == pytest.approx(1.0)  # plain floats too
    # a uniform model over 17 levels costs log2(17) bits per dimension
    assert pixels.bits_per_dim(-64 * math.log(17), 64) == pytest.approx(math.log2(17))
