"""The denoising UNet and its embeddings: shapes, conditioning, attention."""

from __future__ import annotations

import pytest
import torch

from genvision.nn.attention import SelfAttention2d, norm_groups
from genvision.nn.embeddings import timestep_embedding
from genvision.nn.unet import UNet, adaptive_group_norm


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Replace the zero-initialised output layers, so every input can reach the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize(
    "size, channels, mults, attn",
    [(8, 1, (1, 2), (4,)), (16, 3, (1, 2, 2), (8,)), (28, 1, (1, 2, 2), (7,)), (32, 3, (1, 2, 2), (8,)),
     (64, 3, (1, 1, 2, 2), (8,)), (8, 3, (1,), ())],
)  # fmt: skip
def test_unet_output_has_the_input_shape(size, channels, mults, attn):
    net = UNet(
        channels, size, base_channels=8, channel_mults=mults, num_res_blocks=1, attention_resolutions=attn
    )
    x = torch.randn(2, channels, size, size)
    out = net(x, torch.tensor([0, 999]))
    assert out.shape == x.shape


def test_new_unet_outputs_zeros():
    net = UNet(1, 8, base_channels=8)
    assert torch.equal(net(torch.randn(3, 1, 8, 8), torch.tensor([1, 2, 3])), torch.zeros(3, 1, 8, 8))


def test_unet_refuses_a_size_its_levels_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 2"):
        UNet(1, 12, base_channels=8, channel_mults=(1, 2, 2, 2))


def test_class_embedding_changes_the_output_and_null_is_the_default():
    net = UNet(1, 8, base_channels=8, num_res_blocks=1, num_classes=10)
    _randomise(net)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([10, 10])
    a, b = net(x, t, torch.tensor([0, 0])), net(x, t, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    null = torch.full((2,), 10)
    assert torch.equal(net(x, t, None), net(x, t, null))
    assert torch.equal(net(x, t, torch.tensor([-1, -1])), net(x, t, null))  # unlabeled = null


def test_unconditional_unet_refuses_labels():
    net = UNet(1, 8, base_channels=8)
    with pytest.raises(ValueError, match="no class embedding"):
        net(torch.randn(1, 1, 8, 8), torch.tensor([0]), torch.tensor([3]))


def test_time_embedding_shapes_and_range():
    t = torch.tensor([0, 1, 500, 999])
    for dim in (32, 33):
        emb = timestep_embedding(t, dim)
        assert emb.shape == (4, dim) and emb.abs().max() <= 1
    assert torch.equal(timestep_embedding(torch.zeros(1), 8), torch.tensor([[0.0] * 4 + [1.0] * 4]))
    net = UNet(1, 8, base_channels=8)
    assert net.embed(t, None).shape == (4, 32)  # 4 * base_channels


def test_time_changes_the_output():
    net = UNet(1, 8, base_channels=8, num_res_blocks=1)
    _randomise(net)
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([0])), net(x, torch.tensor([700])))


def test_attention_lets_every_pixel_see_every_other():
    attn = SelfAttention2d(8, heads=2)
    _randomise(attn)
    x = torch.randn(1, 8, 4, 4, requires_grad=True)
    attn(x)[0, :, 0, 0].sum().backward()
    assert (x.grad[0].abs().sum(0) > 0).all()  # (4, 4): every position reached (0, 0)


def test_attention_starts_as_identity():
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(SelfAttention2d(16)(x), x)


def test_norm_groups_divide_the_channels():
    for c in (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 3):
        g = norm_groups(c)
        assert c % g == 0 and 1 <= g <= 32


@pytest.mark.parametrize("channels, groups, size", [(32, 8, 8), (12, 3, 7), (6, 1, 4)])
def test_adaptive_group_norm_is_groupnorm_then_scale_and_shift(channels, groups, size):
    """The one-kernel form equals norm(h) * (1 + scale) + shift, values and every gradient."""
    g = torch.Generator().manual_seed(0)
    norm = torch.nn.GroupNorm(groups, channels)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(channels, generator=g))
        norm.bias.copy_(torch.randn(channels, generator=g))
    h = (torch.randn(3, channels, size, size, generator=g) * 2 + 1).requires_grad_()
    scale = torch.randn(3, channels, generator=g).requires_grad_()
    shift = torch.randn(3, channels, generator=g).requires_grad_()
    up = torch.randn(3, channels, size, size, generator=g)

    def grads(out):
        inputs = (h, scale, shift, norm.weight, norm.bias)
        return torch.autograd.grad((out * up).sum(), inputs)

    fused = adaptive_group_norm(h, norm, scale, shift)
    plain = norm(h) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(fused), grads(plain)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # one image's scale reaches only that image
    torch.testing.assert_close(adaptive_group_norm(h[:1], norm, scale[:1], shift[:1]), fused[:1])
