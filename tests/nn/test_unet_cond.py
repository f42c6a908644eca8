"""The UNet's one conditioning structure (``nn.unet.Cond``): labels, image channels, residuals."""

from __future__ import annotations

import pytest
import torch

from genvision.nn.unet import Cond, UNet


def unet(**kw):
    torch.manual_seed(0)
    net = UNet(1, 8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, **kw)
    for m in net.modules():  # a new UNet's blocks start as their skips and it outputs zeros
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    return net


def test_labels_as_a_tensor_or_in_cond_are_the_same():
    net = unet(num_classes=3)
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 7]), torch.tensor([0, 2])
    assert torch.equal(net(x, t, y), net(x, t, Cond(labels=y)))
    assert not torch.equal(net(x, t, y), net(x, t, None))  # None is the null class


def test_image_channels_are_an_extra_input():
    net = unet(cond_channels=2)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    a = net(x, t, Cond(image=torch.zeros(2, 2, 8, 8)))
    b = net(x, t, Cond(image=torch.ones(2, 2, 8, 8)))
    assert a.shape == (2, 1, 8, 8) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="takes 2 conditioning image channels; got none"):
        net(x, t)
    with pytest.raises(ValueError, match=r"must be \(B, 2, 8, 8\)"):
        net(x, t, Cond(image=torch.zeros(2, 2, 4, 4)))


def test_residuals_add_to_every_skip_and_the_middle():
    net = unet()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    shapes = net.residual_shapes(8)
    assert len(shapes) == len(net.down) + 2
    zeros = [torch.zeros(2, *s) for s in shapes]
    assert torch.allclose(net(x, t, Cond(residuals=zeros)), net(x, t), atol=1e-6)
    for i in range(len(shapes)):  # each residual reaches the output
        bumped = [z.clone() for z in zeros]
        bumped[i] += 0.5
        assert not torch.allclose(net(x, t, Cond(residuals=bumped)), net(x, t), atol=1e-6), i
    with pytest.raises(ValueError, match="residuals must hold"):
        net(x, t, Cond(residuals=zeros[:-1]))


def test_context_tokens_are_refused_until_cross_attention_exists():
    net = unet()
    with pytest.raises(ValueError, match="no cross-attention"):
        net(torch.randn(1, 1, 8, 8), torch.tensor([1]), Cond(context=torch.randn(1, 4, 16)))
