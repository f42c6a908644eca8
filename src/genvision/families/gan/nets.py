"""Generators and discriminators of the GAN family (modules only: no loss, no sampling).

Two architectures, picked by ``GANConfig.arch``:

- ``mlp``: the textbook GAN (Goodfellow et al., 2014) as usually reproduced: generator
  z (latent_dim) -> hidden -> C*H*W with tanh; discriminator C*H*W -> hidden -> 1 logit
  (the sigmoid D(x) = sigmoid(logit) lives in the loss, where it is numerically stable).
- ``dcgan``: convolutional (Radford et al., 2016). The generator maps z with a linear layer to a
  (width, s0, s0) map, then doubles the side with 4x4 transposed convolutions, batch norm and
  ReLU, and ends with a 3x3 convolution and tanh. The discriminator mirrors it with 4x4
  stride-2 convolutions and LeakyReLU(0.2), no batch norm (so the WGAN-GP penalty, which is per
  image, stays valid), then one linear logit.

Sizes: the side is halved while it stays even and its half is >= 4, at most 4 times (8 -> 4,
16 -> 4, 28 -> 7, 32 -> 4, 64 -> 4); channel widths double per halving, capped at 8 * base.

Class conditioning (``num_classes`` > 0): the generator takes the one-hot label beside z and
uses conditional batch norm (de Vries et al., 2017: a per-class gain and bias after a batch norm
without its own affine); the discriminator is a projection discriminator (Miyato & Koyama, 2018:
logit = psi(h) + <embed(y), h> on the final features h) that also sees the label as K one-hot
input planes. On 8x8 digits the input planes made the label learnt sooner (judge accuracy of
conditional samples: docs/notes/gan.md); the projection embedding starts at zero and is not
spectrally normalised (zero has no spectral norm to divide by), so the class term grows from
nothing.
Spectral normalisation (Miyato et al., 2018) wraps every other weight of the discriminator when
asked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def conv_plan(image_size: int, base: int) -> tuple[int, list[int]]:
    """Smallest side s0 and the channel widths from s0 up to the full side.

    Returns:
        (s0, widths): widths[0] is the width at s0, widths[-1] (= base) at ``image_size``;
        ``len(widths) - 1`` doublings of the side lead from s0 to ``image_size``.
    """
    side, halvings = image_size, 0
    while halvings < 4 and side % 2 == 0 and side // 2 >= 4:
        side //= 2
        halvings += 1
    widths = [base * min(2**i, 8) for i in range(halvings, -1, -1)]
    return side, widths


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class (identity at initialisation)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), y (B,) int64 -> (B, C, H, W)."""
        h = self.bn(x)
        return self.gain(y)[:, :, None, None] * h + self.bias(y)[:, :, None, None]


class _Norm(nn.Module):
    """Batch norm, class-conditional when ``num_classes`` > 0; one call signature (x, y)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = ConditionalBatchNorm2d(channels, num_classes) if num_classes else nn.BatchNorm2d(channels)
        self.conditional = num_classes > 0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.norm(x, y) if self.conditional else self.norm(x)


# ----------------------------------------------------------------------------- MLP
class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, C, H, W) in (-1, 1): one hidden layer, tanh output."""

    def __init__(self, latent_dim: int, hidden: int, channels: int, image_size: int):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """Images (B, C, H, W) -> logits (B,): one hidden layer; D(x) = sigmoid(logit)."""

    def __init__(self, hidden: int, channels: int, image_size: int, spectral: bool = False):
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        self.net = nn.Sequential(
            nn.Flatten(),
            wrap(nn.Linear(channels * image_size * image_size, hidden)),
            nn.LeakyReLU(0.2),
            wrap(nn.Linear(hidden, 1)),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)


# ----------------------------------------------------------------------------- DCGAN
class DCGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, C, H, W) in (-1, 1); batch norm throughout."""

    def __init__(self, latent_dim: int, base: int, channels: int, image_size: int, num_classes: int = 0):
        super().__init__()
        s0, widths = conv_plan(image_size, base)
        self.start = (widths[0], s0, s0)
        self.num_classes = num_classes
        self.project = nn.Linear(latent_dim + num_classes, widths[0] * s0 * s0)
        self.norms = nn.ModuleList([_Norm(widths[0], num_classes)])
        self.ups = nn.ModuleList()
        for cin, cout in zip(widths, widths[1:]):
            self.ups.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            self.norms.append(_Norm(cout, num_classes))
        self.out = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:  # the label also enters as a one-hot beside z
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        h = self.project(z).view(z.shape[0], *self.start)  # (B, w0, s0, s0)
        h = torch.relu(self.norms[0](h, y))
        for up, norm in zip(self.ups, self.norms[1:]):
            h = torch.relu(norm(up(h), y))  # side doubles
        return torch.tanh(self.out(h))


class DCDiscriminator(nn.Module):
    """Images (B, C, H, W) [+ labels (B,)] -> logits (B,); projection when conditional."""

    def __init__(
        self, base: int, channels: int, image_size: int, num_classes: int = 0, spectral: bool = False
    ):
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        s0, widths = conv_plan(image_size, base)
        widths = widths[::-1]  # base at full size, widest at s0
        self.num_classes = num_classes
        stem = nn.Conv2d(channels + num_classes, widths[0], 3, padding=1)  # label planes join the image
        layers: list[nn.Module] = [wrap(stem), nn.LeakyReLU(0.2)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [wrap(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        features = widths[-1] * s0 * s0
        self.linear = wrap(nn.Linear(features, 1))
        self.embed = nn.Embedding(num_classes, features) if num_classes else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:  # K one-hot planes (B, K, H, W) beside the image
            planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], dim=1)
        h = self.body(x)  # (B, F) final features
        logits = self.linear(h).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(y) * h).sum(dim=1)  # projection term <embed(y), h>
        return logits
