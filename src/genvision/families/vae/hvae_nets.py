"""Networks of the hierarchical VAE (``hierarchical.py``): residual cells, the bottom-up encoder and
the top-down path (no losses, no sampling decisions beyond z = mean + std * eps).

Latent layers are indexed top first (layer 0 is the coarsest, drawn first). Their sides come from
halving the image side, starting two halvings down for images of 16 and more, one below
(:func:`latent_sides`): 28x28 -> 2, 4, 7; 8x8 -> 1, 2, 4; a side of 1 repeats when the layers
outnumber the halvings. Every convolution keeps the width ``width``; no normalisation layer, so
each image's result depends on that image alone (the IWAE bound runs K copies of an image in
one batch). Residual cells run only at the latent sides: between the image and the finest latent
layer there are strided convolutions only (3x3 stride 2 down, 4x4 transposed up), since on a CPU
a cell at 14x14 costs more than all the latent sides together (docs/notes/vae.md, "hvae").

    bottom-up   x -> [stride-2 conv] ... -> cells -> h_{L-1} (finest) -> [down, cells] ... -> h_0 (top)
    top-down    c (learned constant at side 0)
                layer l: [up, cells] (l > 0)
                         prior      (mu_p, logvar_p) = conv(h)
                         posterior  (mu_p + d_mu, logvar_p + d_logvar), (d_mu, d_logvar) = conv([h, h_l])
                         h = h + conv(z_l)
                then cells -> [4x4 transposed conv] ... -> decoder output at the image side
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: soft bound on every log-variance (|logvar| < LOGVAR_BOUND): std in about [0.018, 55]
LOGVAR_BOUND = 8.0


def latent_sides(image_size: int, num_layers: int) -> list[int]:
    """Side of each latent layer, top (coarsest) first."""
    side = image_size
    for _ in range(2 if image_size >= 16 else 1):
        side = math.ceil(side / 2)
    sides = []
    for _ in range(num_layers):
        sides.append(side)
        side = max(1, math.ceil(side / 2))
    return sides[::-1]


def ascent_sides(image_size: int, finest: int) -> list[int]:
    """Sides between the finest latent layer and the image, excluding the former: 7 -> [14, 28]."""
    chain = [image_size]
    while chain[-1] > finest:
        chain.append(math.ceil(chain[-1] / 2))
    return chain[-2::-1]


def soft_clamp(x: torch.Tensor, bound: float = LOGVAR_BOUND) -> torch.Tensor:
    """bound * tanh(x / bound): the identity near 0, smoothly held inside (-bound, bound)."""
    return bound * torch.tanh(x / bound)


def conv3(cin: int, cout: int, stride: int = 1, *, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
    if zero:  # a residual branch or head that starts as nothing (identity cell, N(0, I) prior)
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


class Cell(nn.Module):
    """Residual cell h + conv(silu(conv(silu(h)))), (B, w, s, s) -> same; starts as the identity."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1, self.conv2 = conv3(width, width), conv3(width, width, zero=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv2(F.silu(self.conv1(F.silu(h))))


class Up(nn.Module):
    """(B, w, s, s) -> (B, w, side, side): nearest upsampling to ``side`` then a convolution."""

    def __init__(self, width: int, side: int):
        super().__init__()
        self.side, self.conv = side, conv3(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, size=(self.side, self.side), mode="nearest"))


def _stage(first: nn.Module | None, width: int, cells: int) -> nn.Sequential:
    return nn.Sequential(*([first] if first is not None else []), *(Cell(width) for _ in range(cells)))


class BottomUp(nn.Module):
    """Images (B, C, H, W) in [-1, 1] -> one feature map per latent layer, top first: (B, w, s_l, s_l)."""

    def __init__(self, channels: int, image_size: int, width: int, sides: list[int], cells: int):
        super().__init__()
        descent, side, cin = [], image_size, channels
        while side > sides[-1]:  # strided convolutions down to the finest latent side
            descent += [conv3(cin, width, stride=2), nn.SiLU()]
            side, cin = math.ceil(side / 2), width
        self.descent = nn.Sequential(*descent)
        stages = []
        for target in reversed(sides):  # finest first
            ops: list[nn.Module] = []
            while side > target:
                side = math.ceil(side / 2)
                ops.append(conv3(width, width, stride=2))
            stages.append(nn.Sequential(*ops, *(Cell(width) for _ in range(cells))))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, feats = self.descent(x), []
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats[::-1]


class Ascent(nn.Module):
    """(B, w, s, s) at the finest latent side -> (B, out_channels, H, W): 4x4 transposed convolutions,
    each doubling the side, cropped where the halving rounded up (an odd side)."""

    def __init__(self, width: int, out_channels: int, sides: list[int]):
        super().__init__()
        self.sides = sides
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(width, out_channels if i == len(sides) - 1 else width, 4, stride=2, padding=1)
            for i in range(len(sides))
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for conv, side in zip(self.convs, self.sides):
            h = conv(F.silu(h))[:, :, :side, :side]
        return h


class LatentLayer(nn.Module):
    """One stochastic layer of the top-down path: prior and posterior heads, and the z merge."""

    def __init__(self, width: int, latent_channels: int):
        super().__init__()
        self.prior = conv3(width, 2 * latent_channels, zero=True)  # starts as N(0, I)
        self.posterior = conv3(2 * width, 2 * latent_channels)
        self.merge = conv3(latent_channels, width)

    def forward(self, h, eps, feat=None, temperature: float = 1.0):
        """z of this layer and the updated state.

        Args:
            h: (B, w, s, s) top-down state.
            eps: (B, c, s, s) standard normal noise (zeros: the mean of whichever distribution).
            feat: (B, w, s, s) bottom-up features: z from the posterior; None: from the prior with
                its standard deviation scaled by ``temperature``.

        Returns:
            (h + merge(z), stats): stats holds z, mean_p, logvar_p and, with ``feat``, mean_q, logvar_q.
        """
        mean_p, raw_p = self.prior(h).chunk(2, dim=1)
        logvar_p = soft_clamp(raw_p)
        stats = {"mean_p": mean_p, "logvar_p": logvar_p}
        if feat is None:
            z = mean_p + temperature * torch.exp(0.5 * logvar_p) * eps
        else:  # residual posterior (NVAE): a shift and a scale of the prior
            d_mean, d_logvar = self.posterior(torch.cat([h, feat], dim=1)).chunk(2, dim=1)
            mean_q, logvar_q = mean_p + d_mean, soft_clamp(logvar_p + d_logvar)
            z = mean_q + torch.exp(0.5 * logvar_q) * eps
            stats.update(mean_q=mean_q, logvar_q=logvar_q)
        stats["z"] = z
        return h + self.merge(z), stats


class TopDown(nn.Module):
    """The generative path: latent layers top first, then up to the image; decoder output per image."""

    def __init__(self, out_channels: int, image_size: int, width: int, latent_channels: int, sides, cells):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, width, sides[0], sides[0]))
        self.layers = nn.ModuleList(LatentLayer(width, latent_channels) for _ in sides)
        between = []  # stage before layer l (l > 0): up to its side, or cells at a repeated side
        for prev, side in zip(sides, sides[1:]):
            between.append(_stage(Up(width, side) if side > prev else None, width, cells))
        self.between = nn.ModuleList(between)
        self.post = _stage(None, width, cells)  # after the finest layer's z joins
        self.ascent = Ascent(width, out_channels, ascent_sides(image_size, sides[-1]))

    def forward(self, n: int, eps: list, feats: list | None = None, temperature: list | None = None):
        """Decoder output (n, out_channels, H, W) and the layers' stats (top first).

        Args:
            eps: one (n, c, s_l, s_l) noise tensor per layer, top first.
            feats: the bottom-up features (posterior), or None (prior at ``temperature``).
            temperature: one scale of the prior standard deviation per layer (None: all 1).
        """
        temperature = temperature or [1.0] * len(self.layers)
        h = self.start.expand(n, -1, -1, -1)
        stats = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                h = self.between[i - 1](h)
            h, s = layer(h, eps[i], None if feats is None else feats[i], temperature[i])
            stats.append(s)
        return self.ascent(self.post(h)), stats
