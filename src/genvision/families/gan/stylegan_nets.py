"""StyleGAN2's networks, sized for small images (modules only: no loss, no sampling).

Karras et al. 2019 (StyleGAN: mapping network, styles, noise inputs, style mixing) and 2020
(StyleGAN2: modulated and demodulated convolutions, skip generator, residual discriminator).

Generator = mapping + synthesis:

    z (B, D) -- pixel norm -- [equalised linear, lrelu] x mapping_layers --> w (B, D)
    w broadcast to ws (B, num_ws, D): one w per style input; style mixing swaps the tail

    const (C0, s0, s0)
      conv(ws[0])                                   ToRGB(ws[1])          -> rgb at s0
      [up 2x, conv(ws[2i+1]), conv(ws[2i+2])]       ToRGB(ws[2i+3])       -> rgb = up(rgb) + that
      ... once per doubling, until image_size

Every conv is a :class:`SynthesisLayer`: a 3x3 convolution whose input channels are scaled by a
style s = A(w) (modulation), whose output channels are rescaled to unit norm (demodulation),
then per-pixel noise times a learned strength, bias and leaky ReLU. ``num_ws`` = 2 * doublings
+ 2, so a crossover index k in 0..num_ws splits the styles into coarse (ws[:k]) and fine (ws[k:]).

Sizes follow the DCGAN plan (``nets.conv_plan``): s0 is the side after halving the image side
while it stays even and its half is >= 4 (at most 4 times): 8 -> 4, 32 -> 4, 28 -> 7. So a 28 px
image grows from a 7x7 constant (7, 14, 28) rather than being synthesised at 32 and cropped:
no generated pixels are thrown away, and the discriminator, which follows the same plan, mirrors
the generator layer for layer. Upsampling is bilinear (StyleGAN2's FIR filter is left out).

Equalised learning rate (Karras et al. 2018): weights are stored N(0, 1) / lr_mul and scaled at
run time by lr_mul / sqrt(fan_in), so Adam's per-parameter steps move every layer alike; the
mapping network uses lr_mul = 0.01.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .nets import conv_plan

LRELU_GAIN = math.sqrt(2)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2), which keeps unit-variance activations near unit variance."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    padding: int = 0,
    fused: bool = True,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution: one grouped convolution for the whole batch.

    Image b is convolved with its own weight W_b[o, i] = W[o, i] * s_b[i], divided, when
    ``demodulate``, by sigma_b[o] = sqrt(sum_{i,k} W_b[o, i, k]^2 + 1e-8) so every output channel
    has unit expected variance for unit-variance inputs (StyleGAN2, eq. 1-3).

    ``fused=False`` computes the same thing as StyleGAN2 does while training: scale the input
    channels by s_b, convolve with the shared W, scale the output channels by 1 / sigma_b. On a
    CPU it is faster for small maps and a training batch (docs/notes/gan.md); equal to round-off.

    Args:
        x: (B, I, H, W) input.
        weight: (O, I, k, k) the shared weight (any equalised-lr gain already applied).
        styles: (B, I) per-image input-channel scales s_b.
        padding: of the convolution (k // 2 keeps the size).

    Returns:
        (B, O, H', W').
    """
    b, i, h, w = x.shape
    o, _, k, _ = weight.shape
    wb = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)
    sigma_inv = (wb.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt() if demodulate else None  # (B, O)
    if not fused:
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
        return out * sigma_inv[:, :, None, None] if demodulate else out
    if demodulate:
        wb = wb * sigma_inv[:, :, None, None, None]
    # the batch becomes the groups of one convolution: input (1, B*I, H, W), weight (B*O, I, k, k)
    out = F.conv2d(x.reshape(1, b * i, h, w), wb.reshape(b * o, i, k, k), padding=padding, groups=b)
    return out.reshape(b, o, *out.shape[2:])


# ----------------------------------------------------------------------------- equalised layers
class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: y = x (W lr_mul / sqrt(in))^T + b lr_mul."""

    def __init__(self, cin: int, cout: int, *, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.gain, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """k x k convolution (same padding) with equalised learning rate; optional bias."""

    def __init__(self, cin: int, cout: int, k: int, *, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain = 1 / math.sqrt(cin * k * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)


# ----------------------------------------------------------------------------- generator
class MappingNetwork(nn.Module):
    """z (B, D) -> w (B, D): pixel norm of z, then ``layers`` equalised linear + lrelu layers."""

    def __init__(self, dim: int, layers: int, lr_mul: float):
        super().__init__()
        self.layers = nn.ModuleList([EqualLinear(dim, dim, lr_mul=lr_mul) for _ in range(layers)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # pixel norm: |z| = sqrt(D)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


class SynthesisLayer(nn.Module):
    """[2x bilinear upsampling], modulated demodulated 3x3 conv, noise * strength, bias, lrelu."""

    def __init__(self, cin: int, cout: int, w_dim: int, *, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros(()))  # learned; 0 = no noise at first
        self.up = up

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """x (B, cin, s, s), w (B, w_dim), noise (B, 1, s', s') or None -> (B, cout, s', s')."""
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        # demodulated, so the equalised-lr gain would cancel; grouped (fused) when sampling
        x = modulated_conv2d(x, self.weight, self.affine(w), padding=1, fused=not self.training)
        if noise is not None:
            x = x + noise * self.noise_strength
        return lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels (no demodulation, no activation)."""

    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.gain = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = modulated_conv2d(
            x, self.weight, self.affine(w) * self.gain, demodulate=False, fused=not self.training
        )
        return y + self.bias[None, :, None, None]


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) and per-layer noise -> images (B, C, H, W).

    Layer j of ``self.convs`` takes style ws[:, j] and one noise map of its output size;
    ToRGB after conv j takes ws[:, j + 1] (as StyleGAN2's skip generator does). The summed RGB
    passes through tanh when ``tanh`` (StyleGAN2 leaves it linear; why here: docs/notes/gan.md),
    else it is returned as is (not clamped).
    """

    def __init__(self, w_dim: int, base: int, channels: int, image_size: int, tanh: bool = True):
        super().__init__()
        self.tanh = tanh
        s0, widths = conv_plan(image_size, base)
        self.const = nn.Parameter(torch.randn(widths[0], s0, s0))
        convs = [SynthesisLayer(widths[0], widths[0], w_dim)]
        torgbs = [ToRGB(widths[0], channels, w_dim)]
        sides = [s0]
        for cin, cout in zip(widths, widths[1:]):
            convs += [SynthesisLayer(cin, cout, w_dim, up=True), SynthesisLayer(cout, cout, w_dim)]
            torgbs.append(ToRGB(cout, channels, w_dim))
            sides += [sides[-1] * 2] * 2
        self.convs, self.torgbs = nn.ModuleList(convs), nn.ModuleList(torgbs)
        #: output side of each conv layer (the shape of its noise map)
        self.noise_sides = sides
        self.num_ws = len(convs) + 1

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """(1, side, side) per conv layer, in the order :meth:`forward` takes them."""
        return [(1, s, s) for s in self.noise_sides]

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor | None]) -> torch.Tensor:
        """ws (B, num_ws, w_dim); noise: one (B, 1, s, s) map or None per conv layer."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise[0])
        rgb = self.torgbs[0](x, ws[:, 1])
        for i, torgb in enumerate(self.torgbs[1:]):
            j = 2 * i + 1  # the block's first conv: upsampling
            x = self.convs[j](x, ws[:, j], noise[j])
            x = self.convs[j + 1](x, ws[:, j + 1], noise[j + 1])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = rgb + torgb(x, ws[:, j + 2])
        return torch.tanh(rgb) if self.tanh else rgb


# ----------------------------------------------------------------------------- discriminator
class ResidualBlock(nn.Module):
    """conv3x3, lrelu, conv3x3, lrelu, 2x average pool; skip: pool, 1x1 conv; sum / sqrt(2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0, self.conv1 = EqualConv2d(cin, cin, 3), EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class ResidualDiscriminator(nn.Module):
    """Images (B, C, H, W) -> logits (B,): StyleGAN2's residual D, mirroring the synthesis plan.

    fromRGB 1x1 at full size, one :class:`ResidualBlock` per halving, then at s0: minibatch
    standard deviation (one extra feature plane: the mean over features of the std over groups of
    up to 4 images, Karras et al. 2018), conv3x3, a linear layer and the logit.
    """

    def __init__(self, base: int, channels: int, image_size: int):
        super().__init__()
        s0, widths = conv_plan(image_size, base)
        widths = widths[::-1]  # base at full size, widest at s0
        self.from_rgb = EqualConv2d(channels, widths[0], 1)
        self.blocks = nn.ModuleList([ResidualBlock(a, b) for a, b in zip(widths, widths[1:])])
        c = widths[-1]
        self.conv = EqualConv2d(c + 1, c, 3)
        self.fc = EqualLinear(c * s0 * s0, c)
        self.out = EqualLinear(c, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = lrelu(self.from_rgb(x))
        for block in self.blocks:
            h = block(h)
        h = lrelu(self.conv(minibatch_std(h)))
        return self.out(lrelu(self.fc(h.flatten(1)))).squeeze(1)


def minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """x (B, C, H, W) -> (B, C + 1, H, W): append the mean std over groups of ``g`` images.

    g = gcd(group, B), so any batch size works; image b's group is the images b mod (B / g).
    """
    b, c, h, w = x.shape
    g = math.gcd(group, b)
    y = x.reshape(g, b // g, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / g,)
    plane = std.repeat(g)[:, None, None, None].expand(b, 1, h, w)
    return torch.cat([x, plane], dim=1)
