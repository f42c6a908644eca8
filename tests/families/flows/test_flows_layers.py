"""Flow layers against mathematics: exact inverses, log-determinants from autograd Jacobians,
a density that integrates to one, and a clear error for a non-finite log-determinant."""

from __future__ import annotations

import math

import pytest
import torch

from genvision.families.flows import layers, nets, preprocessing
from genvision.families.flows.model import GlowConfig, RealNVPConfig


def randomize(module, seed=0, scale=0.3):
    """Random weights everywhere (zero-initialised last convolutions included), float64."""
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


LAYERS = {
    "actnorm": lambda: layers.ActNorm(4),
    "invconv": lambda: layers.InvConv1x1(4, lu=False),
    "invconv-lu": lambda: layers.InvConv1x1(4, lu=True),
    "coupling-checkerboard": lambda: layers.AffineCoupling(4, "checkerboard", 8),
    "coupling-checkerboard-flip": lambda: layers.AffineCoupling(4, "checkerboard", 8, flip=True),
    "coupling-channel": lambda: layers.AffineCoupling(4, "channel", 8),
    "coupling-channel-flip": lambda: layers.AffineCoupling(4, "channel", 8, flip=True),
    "squeeze": layers.Squeeze,
}


def jacobian_logdet(fn, x):
    """log|det d fn(x) / dx| for one image x (1, C, H, W), from the full autograd Jacobian."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x)).flatten(), x.flatten())
    return torch.linalg.slogdet(jac)[1]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_inverts_to_1e_5_in_float64(name):
    layer = randomize(LAYERS[name]())
    x = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, logdet = layer(x)
    assert y.shape[0] == 3 and y.numel() == x.numel() and logdet.shape == (3,)
    assert not torch.allclose(y.reshape(x.shape), x)  # the layer does something
    assert torch.allclose(layer.inverse(y), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_logdet_equals_the_autograd_jacobian(name):
    layer = randomize(LAYERS[name](), seed=2)
    x = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    _, logdet = layer(x)
    for i in range(2):
        brute = jacobian_logdet(lambda v: layer(v)[0], x[i : i + 1])
        assert torch.allclose(logdet[i], brute, atol=1e-8), (logdet[i], brute)


@pytest.mark.parametrize("kind", preprocessing.PREPROCESSING)
def test_preprocessing_inverts_and_its_logdet_equals_the_jacobian(kind):
    u = torch.rand(2, 1, 2, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    z0, logdet = preprocessing.to_flow(u, kind, 0.05)
    assert torch.allclose(preprocessing.from_flow(z0, kind, 0.05), u, atol=1e-12)
    for i in range(2):
        brute = jacobian_logdet(lambda v: preprocessing.to_flow(v, kind, 0.05)[0], u[i : i + 1])
        assert torch.allclose(logdet[i], brute, atol=1e-10)


def test_image_grid_maps_to_bin_centres_and_back():
    levels = 17
    x = torch.arange(levels, dtype=torch.float64) / (levels - 1) * 2 - 1  # every grey level
    u = preprocessing.bin_centre(x, levels)
    assert torch.allclose(u, (torch.arange(levels) + 0.5).double() / levels)
    assert torch.allclose(preprocessing.image_from_unit(u, levels), x, atol=1e-12)
    noise = torch.rand(levels, dtype=torch.float64)
    assert torch.equal(
        torch.floor(preprocessing.dequantize(x, levels, noise) * levels), torch.arange(levels).double()
    )


@pytest.mark.parametrize("arch", ["glow", "realnvp"])
def test_whole_flow_inverts_and_log_density_is_prior_plus_jacobian(arch):
    cfg = (GlowConfig if arch == "glow" else RealNVPConfig)(
        image_size=4, steps_per_level=2, hidden_channels=8, learned_prior=True, num_levels=2
    )
    flow = randomize(getattr(nets, arch)(cfg), seed=5, scale=0.2)
    z0 = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    eps, log_p = flow(z0)
    assert eps.shape == z0.shape
    assert torch.allclose(flow.inverse(eps), z0, atol=1e-10)
    assert torch.equal(flow.pack(flow.unpack(eps)), eps)
    for i in range(2):
        brute = jacobian_logdet(lambda v: flow(v)[0], z0[i : i + 1])
        prior = layers.standard_normal_log_prob(eps[i : i + 1])[0]
        assert torch.allclose(log_p[i], prior + brute, atol=1e-8)


def test_a_2d_flow_density_integrates_to_one():
    # a 2-D flow: two channels at one pixel, every layer type that works at 1x1, learned prior
    torch.manual_seed(0)  # the 1x1 convolutions start from random rotations
    steps = [
        layers.ActNorm(2),
        layers.InvConv1x1(2),
        layers.AffineCoupling(2, "channel", 16),
        layers.InvConv1x1(2, lu=False),
        layers.AffineCoupling(2, "channel", 16, flip=True),
    ]
    flow = randomize(nets.MultiScaleFlow((2, 1, 1), [steps], learned_prior=True), seed=7, scale=0.4)
    with torch.no_grad():  # where the mass is: a box around 20,000 samples, with margin
        draws = flow.inverse(torch.randn(20000, 2, 1, 1, generator=torch.Generator().manual_seed(8)).double())
    lo, hi = draws.amin(dim=0).flatten(), draws.amax(dim=0).flatten()
    lo, hi = lo - (hi - lo) / 2, hi + (hi - lo) / 2
    axes = [torch.linspace(lo[k].item(), hi[k].item(), 301, dtype=torch.float64) for k in (0, 1)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).view(-1, 2, 1, 1)
    with torch.no_grad():
        density = flow(grid)[1].exp().view(301, 301)
    mass = torch.trapezoid(torch.trapezoid(density, axes[1]), axes[0]).item()
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_non_finite_logdet_names_the_layer():
    flow = nets.glow(GlowConfig(image_size=8, steps_per_level=2, hidden_channels=8))
    with torch.no_grad():
        flow.levels[1][5].log_s[0] = math.inf  # level 1: squeeze, (actnorm, invconv, coupling) x 2
    with pytest.raises(nets.NonFiniteLogDetError, match=r"level 1 layer 5 \(InvConv1x1\)") as err:
        flow(torch.randn(2, 1, 8, 8))
    assert "\n" not in str(err.value)


def test_actnorm_initialises_once_from_data():
    norm = layers.ActNorm(3)
    x = torch.randn(64, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.2]).view(1, 3, 1, 1) + 3
    norm.initialize(x)
    y, _ = norm(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    before = norm.state_dict()["log_scale"].clone()
    norm.initialize(x * 10)  # already initialised: a second batch changes nothing
    assert torch.equal(norm.log_scale, before) and bool(norm.initialized)
    assert "initialized" in norm.state_dict()
