"""GAN networks and DiffAugment: shapes, spectral norm, per-image augmentation."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from genvision import seeding
from genvision.families.gan import augment, nets


@pytest.mark.parametrize(
    "size, s0, ups", [(8, 4, 1), (16, 4, 2), (28, 7, 2), (32, 4, 3), (12, 6, 1), (5, 5, 0)]
)
def test_conv_nets_map_latents_to_images_and_images_to_one_logit(size, s0, ups):
    start, widths = nets.conv_plan(size, 8)
    assert start == s0 and len(widths) == ups + 1 and widths[-1] == 8
    g = nets.DCGenerator(16, 8, 3, size, num_classes=4)
    d = nets.DCDiscriminator(8, 3, size, num_classes=4, spectral=True)
    y = torch.tensor([0, 3])
    x = g(torch.randn(2, 16), y)
    assert x.shape == (2, 3, size, size) and x.abs().max() < 1
    assert d(x, y).shape == (2,)


def test_mlp_nets_follow_the_textbook_shapes():
    g, d = nets.MLPGenerator(100, 256, 1, 8), nets.MLPDiscriminator(256, 1, 8)
    assert [tuple(m.weight.shape) for m in g.net if hasattr(m, "weight")] == [(256, 100), (64, 256)]
    assert isinstance(g.net[-1], torch.nn.Tanh)
    assert g(torch.randn(3, 100)).shape == (3, 1, 8, 8) and d(torch.zeros(3, 1, 8, 8)).shape == (3,)


def test_spectral_norm_keeps_the_largest_singular_value_of_every_d_weight_near_1():
    torch.manual_seed(0)
    d = nets.DCDiscriminator(8, 1, 8, num_classes=10, spectral=True).train()
    wrapped = [m for m in d.modules() if parametrize.is_parametrized(m, "weight")]
    with torch.no_grad():
        for m in wrapped:  # push every raw weight far from unit spectral norm
            m.parametrizations.weight.original.mul_(5)
        for _ in range(30):  # each training-mode forward runs one power iteration per weight
            d(torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))
    assert len(wrapped) == 3  # stem conv, stride-2 conv, linear head
    d.eval()  # read the normalised weights without another power iteration
    for m in wrapped:
        w = m.weight.detach()  # (out, ...): torch normalises the (out, rest) matrix
        top = torch.linalg.svdvals(w.reshape(w.shape[0], -1))[0]
        raw = torch.linalg.svdvals(m.parametrizations.weight.original.detach().reshape(w.shape[0], -1))[0]
        assert top.item() == pytest.approx(1.0, abs=0.05) and raw.item() > 1.5, type(m).__name__


def test_conditional_batch_norm_starts_as_plain_batch_norm_and_uses_the_label():
    cbn = nets.ConditionalBatchNorm2d(3, 5)
    x = torch.randn(8, 3, 4, 4)
    plain = torch.nn.BatchNorm2d(3, affine=False)
    assert torch.allclose(cbn(x, torch.zeros(8, dtype=torch.long)), plain(x), atol=1e-6)
    with torch.no_grad():
        cbn.gain.weight[2] = 2.0
    y = torch.tensor([2] * 4 + [0] * 4)
    out = cbn(x, y)
    assert torch.allclose(out[:4], 2 * plain(x)[:4], atol=1e-5) and torch.allclose(
        out[4:], plain(x)[4:], atol=1e-5
    )


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diff_augment_is_per_image_and_differentiable(policy):
    names = augment.parse_policy(policy)
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    gens = seeding.image_generators(3, 7)
    out = augment.diff_augment(x, names, gens)
    alone = augment.diff_augment(x[1:2], names, seeding.image_generators(1, 7, start=1))
    assert out.shape == x.shape and torch.allclose(out[1:2], alone)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_pixels_and_cutout_blanks_a_half_side_square():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    moved = augment.diff_augment(x, ("translation",), seeding.image_generators(1, 0))
    kept = moved[moved != 0]
    assert set(kept.tolist()) <= set(x.flatten().tolist()) and len(kept) >= 49  # shift of at most 1 px
    ones = torch.ones(64, 1, 8, 8)
    cut = augment.diff_augment(ones, ("cutout",), seeding.image_generators(64, 0))
    zeros = (cut == 0).flatten(1).sum(dim=1)
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4x4 square, clipped at the borders


def test_unknown_augmentation_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation flip"):
        augment.parse_policy("color,flip")
