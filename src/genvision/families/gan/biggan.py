"""A BigGAN-like class-conditional GAN (Brock et al., 2019), sized for 8-32 px images on a CPU.

Notation (paper -> code): z -> ``z`` (latent_dim), split into 1 + B chunks z_0 .. z_B for B
up-blocks ("hierarchical latents"); e(y) -> ``shared(y)``, one class embedding shared by every
block; c_b = [e(y), z_b] the block's conditioning vector.

Generator (every convolution and linear layer spectrally normalised when ``g_spectral_norm``):

    h = linear(z_0) -> (w_0, s0, s0)
    for b in 1..B:  h = ResUp_b(h, c_b)            side doubles, width halves
                    [self-attention when the side is ``attention_side``]
    x = tanh(conv3(relu(BN(h))))

    ResUp(h, c) = conv3(relu(CBN_2(conv3(up(relu(CBN_1(h, c)))), c))) + conv1(up(h))
    CBN(h, c)   = BN(h) * (1 + gain(c)) + bias(c)  (batch norm without its own affine; gain and
                  bias are linear in c, so the class and the block's chunk of z steer every block)

Discriminator (spectral norm on every weight): ResDown blocks from the image side to s0
(pre-activation; average pooling), self-attention at ``attention_side``, ReLU, a sum over space
giving features h, then logit = linear(h) + <embed(y), h> (projection, Miyato & Koyama 2018).
With ``label_planes`` the label also enters as K one-hot input planes, as in the SNGAN here:
on 8x8 digits that made the class learnt much sooner (docs/notes/gan.md).

Losses are the GAN room's (hinge in the preset); the generator adds BigGAN's orthogonal
regularisation ``ortho_weight`` * sum_W ||W W^T * (1 - I)||_F^2 over its weights (W reshaped to
(out, in*k*k); the shared embedding and norm gains excluded).

Truncation with resampling: psi in [0, 1] (1 = off) is the central mass of the standard normal
kept: every entry of z comes from N(0, 1) truncated to |z| <= Phi^-1((1 + psi) / 2), which is what
resampling each entry beyond that threshold gives, drawn in one go by the inverse CDF from the
image's own generator (so image k still depends only on (seed, k)); psi = 0 gives z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ... import seeding
from ...nn.attention import SelfAttention2d
from . import augment
from .model import GAN, GANConfig
from .nets import conv_plan


@dataclass
class BigGANConfig(GANConfig):
    """BigGAN settings on top of the GAN's (optimiser, loss, critic steps, R1, augmentation...)."""

    archs: ClassVar[tuple[str, ...]] = ("biggan",)
    caps: ClassVar[dict[str, int]] = {**GANConfig.caps, "shared_dim": 1024}
    arch: str = "biggan"
    loss: str = "hinge"
    conditional: bool = True
    shared_dim: int = 32  # width of the shared class embedding e(y)
    attention: bool = True  # one self-attention block in G and D (side: attention_side)
    g_spectral_norm: bool = True  # spectral norm on G's weights too, as BigGAN does
    label_planes: bool = True  # D also sees the label as one-hot input planes
    ortho_weight: float = 1e-4  # beta of the orthogonal regularisation of G; 0 = off

    def __post_init__(self):
        super().__post_init__()
        if self.shared_dim < 1:
            raise ValueError(f"shared_dim must be >= 1 (got {self.shared_dim})")
        if self.ortho_weight < 0:
            raise ValueError(f"ortho_weight must be >= 0 (got {self.ortho_weight}); 1e-4 is BigGAN's")
        blocks = len(conv_plan(self.image_size, self.base_channels)[1]) - 1
        if self.latent_dim < blocks + 1:
            raise ValueError(
                f"latent_dim must be >= {blocks + 1} (one chunk per block and one for the input; "
                f"got {self.latent_dim})"
            )

    @property
    def attention_side(self) -> int:
        """Side of the feature map that gets self-attention: half the image side, else the smallest."""
        s0, widths = conv_plan(self.image_size, self.base_channels)
        sides = [s0 * 2**i for i in range(len(widths))]
        return self.image_size // 2 if self.image_size // 2 in sides else s0


# ----------------------------------------------------------------------------- penalties, latents
def orthogonal_penalty(weights) -> torch.Tensor:
    """sum over W of ||W W^T * (1 - I)||_F^2, each W reshaped to (out, -1) (Brock et al., 2019)."""
    total = torch.zeros(())
    for w in weights:
        w = w.reshape(w.shape[0], -1)  # (out, in*k*k)
        gram = w @ w.T  # (out, out)
        off = gram - torch.diag_embed(torch.diagonal(gram))
        total = total + off.pow(2).sum()
    return total


def truncated_normal(shape, psi: float, generator, device=None, dtype=torch.float32) -> torch.Tensor:
    """N(0, 1) truncated to its central mass psi (|z| <= Phi^-1((1 + psi) / 2)); psi = 1: plain normal.

    One uniform per entry through the inverse CDF (row k from generator k, as :mod:`seeding`).
    """
    u = seeding.rand(shape, generator, device, torch.float64)
    tiny = torch.finfo(torch.float64).tiny  # ndtri(0) is -inf
    u = (0.5 + (u - 0.5) * psi).clamp(tiny, 1 - 2**-53)
    return torch.special.ndtri(u).to(dtype)


# ----------------------------------------------------------------------------- networks
def _wrap(on: bool):
    return spectral_norm if on else (lambda m: m)


class ClassBatchNorm2d(nn.Module):
    """BN(x) * (1 + gain(c)) + bias(c): batch norm whose gain and bias are linear in a vector c."""

    def __init__(self, channels: int, cond_dim: int, wrap):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = wrap(nn.Linear(cond_dim, channels))
        self.bias = wrap(nn.Linear(cond_dim, channels))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), c (B, cond_dim) -> (B, C, H, W)."""
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class ResUp(nn.Module):
    """Residual up-block: two 3x3 convolutions after class-conditional batch norms; side doubles."""

    def __init__(self, cin: int, cout: int, cond_dim: int, wrap):
        super().__init__()
        self.norm1, self.norm2 = ClassBatchNorm2d(cin, cond_dim, wrap), ClassBatchNorm2d(cout, cond_dim, wrap)
        self.conv1 = wrap(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = wrap(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = wrap(nn.Conv2d(cin, cout, 1))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(torch.relu(self.norm1(h, c)), scale_factor=2.0, mode="nearest")
        out = self.conv2(torch.relu(self.norm2(self.conv1(up), c)))  # (B, cout, 2H, 2W)
        return out + self.skip(F.interpolate(h, scale_factor=2.0, mode="nearest"))


class ResDown(nn.Module):
    """Pre-activation residual block of D; halves the side when ``down`` (average pooling)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool, wrap):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = wrap(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = wrap(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = wrap(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else torch.relu(x)  # the image itself is not activated
        h = self.conv2(torch.relu(self.conv1(h)))
        s = self.skip(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class BigGenerator(nn.Module):
    """z (B, latent_dim) + labels (B,) -> images (B, C, H, W) in (-1, 1); see the module docstring."""

    def __init__(self, c: BigGANConfig):
        super().__init__()
        wrap = _wrap(c.g_spectral_norm)
        s0, widths = conv_plan(c.image_size, c.base_channels)
        self.start = (widths[0], s0, s0)
        blocks = len(widths) - 1
        self.chunks = [len(t) for t in torch.arange(c.latent_dim).tensor_split(blocks + 1)]
        k = c.num_classes if c.conditional else 0
        self.shared = nn.Embedding(k, c.shared_dim) if k else None
        cond_dims = [n + (c.shared_dim if k else 0) for n in self.chunks[1:]]
        self.project = wrap(nn.Linear(self.chunks[0], widths[0] * s0 * s0))
        self.blocks = nn.ModuleList(
            ResUp(cin, cout, cd, wrap) for cin, cout, cd in zip(widths, widths[1:], cond_dims)
        )
        sides = [s0 * 2**i for i in range(len(widths))]
        self.attend_after = sides.index(c.attention_side) if c.attention else -1  # 0 = the input map
        width = widths[self.attend_after] if c.attention else 0
        self.attention = SelfAttention2d(width) if c.attention else None
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out = wrap(nn.Conv2d(widths[-1], c.channels, 3, padding=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        zs = z.split(self.chunks, dim=1)  # z_0 .. z_B
        e = self.shared(y) if self.shared is not None else None  # (B, shared_dim)
        h = self.project(zs[0]).view(z.shape[0], *self.start)  # (B, w_0, s0, s0)
        if self.attend_after == 0:
            h = self.attention(h)
        for i, (block, zb) in enumerate(zip(self.blocks, zs[1:]), start=1):
            h = block(h, zb if e is None else torch.cat([e, zb], dim=1))
            if self.attend_after == i:
                h = self.attention(h)
        return torch.tanh(self.out(torch.relu(self.out_norm(h))))

    def ortho_weights(self) -> list[torch.Tensor]:
        """The weights orthogonal regularisation acts on: every conv / linear weight but the embedding's."""
        out = []
        for name, p in self.named_parameters():
            if name.startswith("shared") or p.ndim < 2:
                continue
            if name.endswith(("weight", "weight.original")):
                out.append(p)
        return out


class BigDiscriminator(nn.Module):
    """Images (B, C, H, W) + labels (B,) -> logits (B,); residual, projection, optional label planes."""

    def __init__(self, c: BigGANConfig):
        super().__init__()
        wrap = _wrap(c.spectral_norm)
        s0, widths = conv_plan(c.image_size, c.base_channels)
        widths = widths[::-1]  # base at full size, widest at s0
        self.num_classes = c.num_classes if c.conditional else 0
        planes = self.num_classes if c.label_planes else 0
        self.label_planes = planes > 0
        blocks = [ResDown(c.channels + planes, widths[0], down=False, first=True, wrap=wrap)]
        blocks += [ResDown(a, b, down=True, first=False, wrap=wrap) for a, b in zip(widths, widths[1:])]
        self.blocks = nn.ModuleList(blocks)
        sides = [c.image_size // 2**i for i in range(len(widths))]
        self.attend_after = sides.index(c.attention_side) if c.attention else -1
        self.attention = SelfAttention2d(widths[self.attend_after]) if c.attention else None
        self.linear = wrap(nn.Linear(widths[-1], 1))
        self.embed = nn.Embedding(self.num_classes, widths[-1]) if self.num_classes else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)  # the class term grows from nothing (as in nets.py)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_planes:  # K one-hot planes (B, K, H, W) beside the image
            planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], dim=1)
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attend_after:
                h = self.attention(h)
        h = torch.relu(h).sum(dim=(2, 3))  # (B, F) sum pooling
        logits = self.linear(h).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(y) * h).sum(dim=1)  # projection term <embed(y), h>
        return logits


# ----------------------------------------------------------------------------- model
class BigGAN(GAN):
    """The GAN room's two-phase training with BigGAN's networks, orthogonal regularisation and
    truncation by resampling (module docstring)."""

    config_class = BigGANConfig

    def __init__(self, config: BigGANConfig):
        super(GAN, self).__init__(config)  # the networks are BigGAN's, not the GAN's archs
        self.generator = BigGenerator(config)
        self.discriminator = BigDiscriminator(config)
        self.policy = augment.parse_policy(config.augment)

    def _generator_loss(self, z, labels, generator) -> dict:
        out = super()._generator_loss(z, labels, generator)
        if self.config.ortho_weight:
            ortho = orthogonal_penalty(self.generator.ortho_weights())
            out["loss"] = out["loss"] + self.config.ortho_weight * ortho
            out["ortho"] = ortho.detach()
        return out

    def latents(self, n: int, psi: float, generator) -> torch.Tensor:
        """(n, latent_dim) latents from the normal truncated to its central mass psi (1 = plain)."""
        return truncated_normal((n, self.config.latent_dim), psi, generator, self.device)

    @property
    def noise_scaling(self) -> str:
        t = self.config.truncation
        return f" truncated to its central {t:g} mass (resampled)" if t != 1 else ""
