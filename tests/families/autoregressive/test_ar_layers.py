"""Autoregressive networks and likelihoods: causality by gradient, no blind spot, exact normalisation,
cached rows equal to full evaluation. Untrained tiny networks; no training here."""

from __future__ import annotations

import itertools

import pytest
import torch
from gvtest import one_thread

from genvision.families.autoregressive import layers, losses, samplers
from genvision.nn import pixels

ARCHS = ("pixelcnn", "gated", "rowlstm")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Raster sampling is thousands of tiny ops: one thread, since two fight over a busy CPU."""
    with one_thread():
        yield


def build(
    arch: str, channels: int, params: int, *, width: int = 12, num_layers: int = 2, num_classes: int = 0
):
    torch.manual_seed(0)
    if arch == "pixelcnn":
        return layers.PixelCNNNet(channels, params, width, num_layers, 3, 12)
    if arch == "gated":
        return layers.GatedPixelCNNNet(channels, params, width, num_layers, 3, 12, num_classes)
    return layers.PixelRNNNet(channels, params, width, num_layers, 3, 12)


def influence(net, channels: int, side: int, c: int, i: int, j: int) -> torch.Tensor:
    """(C, H, W) bool: which input sub-pixels have a non-zero gradient on output (c, i, j).

    Summed over a batch of random images, so a ReLU that happens to be off in one image does not
    hide a connection."""
    x = torch.randn(8, channels, side, side, generator=torch.Generator().manual_seed(1), requires_grad=True)
    net(x)[:, c, :, i, j].sum().backward()
    return x.grad.abs().sum(0) != 0


def raster_index(channels: int, side: int) -> torch.Tensor:
    """(C, H, W) position of each sub-pixel in raster order (rows, columns, then channels)."""
    pixel = torch.arange(side * side).view(1, side, side)
    return pixel * channels + torch.arange(channels).view(channels, 1, 1)


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("channels", [1, 3])
def test_masked_conv_sees_only_earlier_subpixels(mask_type, channels):
    conv = layers.MaskedConv2d(channels, 6 * channels, 5, mask_type, image_channels=channels)
    order = raster_index(channels, 7)
    groups = layers.channel_groups(6 * channels, channels)
    for o in range(6 * channels):
        x = torch.randn(1, channels, 7, 7, requires_grad=True)
        conv(x)[0, o, 3, 3].backward()
        seen = x.grad[0] != 0
        me = order[groups[o], 3, 3]
        assert not seen[order > me].any()
        assert seen[order == me].any() == (mask_type == "B")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_output_has_zero_gradient_from_every_later_subpixel(arch, channels):
    net = build(arch, channels, params=4)
    order = raster_index(channels, 6)
    for c, i, j in [(0, 0, 0), (channels - 1, 2, 3), (0, 4, 1), (channels - 1, 5, 5)]:
        seen = influence(net, channels, 6, c, i, j)
        assert not seen[order >= order[c, i, j]].any(), (c, i, j)


@pytest.mark.parametrize("channels", [1, 3])
def test_gated_stacks_have_no_blind_spot(channels):
    """After enough layers every earlier sub-pixel influences the output (6x6: 4 layers reach)."""
    net = build("gated", channels, params=4, num_layers=4)
    order = raster_index(channels, 6)
    for c, i, j in [(0, 3, 2), (channels - 1, 5, 0), (0, 5, 5), (channels - 1, 2, 4)]:
        seen = influence(net, channels, 6, c, i, j)
        earlier = order < order[c, i, j]
        assert seen[earlier].all(), (c, i, j, int((~seen[earlier]).sum()))


def test_plain_pixelcnn_has_the_blind_spot_the_gated_stacks_remove():
    """Stacked masked 3x3 convolutions never see far above-right (van den Oord et al. 2016b, fig. 1)."""
    seen_plain = influence(build("pixelcnn", 1, params=4, num_layers=4), 1, 8, 0, 7, 0)[0]
    seen_gated = influence(build("gated", 1, params=4, num_layers=5), 1, 8, 0, 7, 0)[0]
    assert not seen_plain[6, 7]  # one row up, seven columns right: hidden from the plain stack
    assert seen_gated[:7].all()  # every pixel of every row above


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_cached_pixels_equal_full_evaluation(arch, channels):
    net = build(arch, channels, params=5, num_classes=3 if arch == "gated" else 0).eval()
    side = 13  # wider than the PixelCNN's window (reach 5 each side), so windows cut inside
    x = torch.rand(3, channels, side, side, generator=torch.Generator().manual_seed(2)) * 2 - 1
    y = torch.tensor([0, 2, 1]) if arch == "gated" else None
    with torch.no_grad():
        full = net(x, y)
        state = None
        for i in range(side):
            state = net.begin_row(x, i, state, y=y)
            for j in range(side):
                torch.testing.assert_close(
                    net.pixel(x, i, j, state, y=y), full[..., i, j], atol=1e-5, rtol=1e-5
                )


@pytest.mark.parametrize(
    "arch,channels,head,levels",
    [
        ("pixelcnn", 1, "softmax", 2),
        ("gated", 1, "softmax", 2),
        ("rowlstm", 1, "softmax", 2),
        ("gated", 3, "softmax", 2),
        ("pixelcnn", 1, "logistic", 3),
        ("gated", 1, "logistic", 3),
    ],
)
def test_probabilities_sum_to_one_over_every_tiny_image(arch, channels, head, levels):
    """Exact normalisation: sum of p(x) over all images of a 2x2 space is 1 (float64)."""
    net = build(arch, channels, losses.num_params(head, levels, 2)).double().eval()
    dims = channels * 4
    grid = torch.tensor(list(itertools.product(range(levels), repeat=dims)))  # (L**dims, dims)
    x = pixels.to_float(grid, levels).double().view(-1, channels, 2, 2)
    with torch.no_grad():
        log_p = losses.image_log_likelihood(head, net(x), x, levels)
    assert log_p.dtype == torch.float64 and (log_p < 0).all()
    assert abs(log_p.exp().sum().item() - 1) < 1e-9


def test_logistic_mixture_levels_are_a_distribution_and_match_the_training_path():
    params = torch.randn(2, 3, 9, 4, 4, dtype=torch.float64) * 2  # 3 mixtures
    for levels in (2, 17, 256):
        full = losses.level_log_probs("logistic", params, levels)  # (2, 3, L, 4, 4)
        torch.testing.assert_close(full.exp().sum(2), torch.ones(2, 3, 4, 4, dtype=torch.float64))
        v = torch.randint(levels, (2, 3, 4, 4))
        at = losses.log_prob_at("logistic", params, v, levels)
        torch.testing.assert_close(at, full.gather(2, v.unsqueeze(2)).squeeze(2))


def test_inverse_cdf_draw_and_temperature():
    lp = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    picks = [samplers.draw(lp, torch.tensor([u]))[0].item() for u in (0.1, 0.3, 0.69, 0.71, 0.999)]
    assert picks == [0, 1, 1, 2, 2]
    assert samplers.draw(lp, torch.tensor([0.05]), temperature=1e-3).item() == 1  # near argmax


def test_levels_round_trip():
    v = torch.arange(17)
    assert torch.equal(pixels.to_levels(pixels.to_float(v, 17), 17), v)


def test_dropout_mask_of_image_k_comes_from_generator_k_and_eval_mode_is_identity():
    drop, x = layers.Dropout(0.5).train(), torch.ones(3, 2, 4, 4)

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    with layers.dropout_generators(drop, gens((1, 2, 3))):
        whole = drop(x)
    with layers.dropout_generators(drop, gens((2, 3))):
        part = drop(x[1:])
    assert torch.equal(whole[1:], part) and set(whole.unique().tolist()) == {0.0, 2.0}  # kept: x / (1 - p)
    assert drop.generators is None and torch.equal(drop.eval()(x), x)
