"""Invertible layers of RealNVP (Dinh et al., 2017) and Glow (Kingma & Dhariwal, 2018).

Every layer maps a tensor ``x`` (B, C, H, W) to ``y`` of the same number of elements and back:

    y, logdet = layer(x)        # logdet: (B,) log|det dy/dx| per image, in nats
    x = layer.inverse(y)

Layers here hold no loss and do no sampling. ``ActNorm`` also has ``initialize(x)``, its
data-dependent initialisation (the flow calls it when the model's ``init_from_data`` runs).

- :class:`ActNorm`: per-channel affine, initialised so its first batch leaves with zero mean
  and unit variance per channel; the "initialised" flag is a buffer, so saving, loading and
  resuming keep it (Glow, section 3.1).
- :class:`InvConv1x1`: a learned channel mixing, optionally LU-decomposed so its
  log-determinant is a sum instead of a determinant (Glow, section 3.2).
- :class:`AffineCoupling`: half of the values pass unchanged and condition an affine map of
  the other half; a checkerboard (spatial) or channel mask (RealNVP, section 3.4).
- :class:`Squeeze`: 2x2 space-to-depth, (C, H, W) -> (4C, H/2, W/2), log-determinant 0.

Numerics: scales are soft-clamped (``log s = 2 tanh(h / 2)``) so one coupling changes a value by
at most a factor e^2 either way; inverses are exact up to round-off (the tests check float64
round trips to 1e-5 per layer and 1e-10 for whole flows, float32 models to 1e-4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: soft clamp of the coupling log-scales: |log s| < SCALE_CLAMP
SCALE_CLAMP = 2.0


class ActNorm(nn.Module):
    """y = (x + bias) * exp(log_scale), one (bias, scale) per channel.

    Args:
        channels: C of the (B, C, H, W) input.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        # a buffer, so save/load and resume keep it: a loaded model is never initialised twice
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set bias and scale so ``x`` leaves with zero mean and unit variance per channel (once)."""
        if bool(self.initialized):
            return
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = x.shape[2] * x.shape[3]
        logdet = self.log_scale.sum() * pixels
        return (x + self.bias) * self.log_scale.exp(), logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution y = W x at every pixel, W a learned (C, C) matrix.

    With ``lu=True`` W = P L (U + diag(sign * exp(log_s))), P a fixed permutation, L unit lower
    and U strictly upper triangular: log|det W| = sum(log_s), no determinant per step.
    Initialised to a random rotation (from the global RNG, like every weight).
    """

    def __init__(self, channels: int, lu: bool = True):
        super().__init__()
        self.lu = lu
        w = torch.linalg.qr(torch.randn(channels, channels))[0]  # random rotation, det = +-1
        if not lu:
            self.weight = nn.Parameter(w)
            return
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def matrix(self) -> torch.Tensor:
        """W, (C, C)."""
        if not self.lu:
            return self.weight
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def log_abs_det(self) -> torch.Tensor:
        """log|det W|, a scalar."""
        return self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight)[1]

    # a 1x1 convolution as a matrix product: faster than conv2d for the few channels flows have
    # (docs/notes/flows.md)
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.einsum("oc,bchw->bohw", self.matrix(), x)
        logdet = self.log_abs_det() * (x.shape[2] * x.shape[3])
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bchw->bohw", torch.linalg.inv(self.matrix()), y)


class CouplingNet(nn.Sequential):
    """The coupling's conditioner: conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 (Glow's NN()).

    The last convolution starts at zero, so a fresh coupling is the identity. Runs channels-last
    (NHWC) inside: on CPU the oneDNN convolutions are faster so (docs/notes/flows.md), and the
    conversions touch only the few input and output channels. The weights stay in the default
    layout, so saving is unaffected.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()

    def __init__(self, in_channels: int, out_channels: int, hidden: int):
        last = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            last,
        )


class AffineCoupling(nn.Module):
    """Affine coupling: y_b = x_b * exp(log s(x_a)) + t(x_a), y_a = x_a.

    Args:
        channels: C of the input.
        mask: "checkerboard" (x_a = pixels with (i + j) % 2 == parity, all channels) or
            "channel" (x_a = one half of the channels; C must be even).
        hidden: width of the conditioner network.
        flip: checkerboard: use the other parity; channel: condition on the second half.
    """

    def __init__(self, channels: int, mask: str, hidden: int, flip: bool = False):
        super().__init__()
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"coupling mask must be 'checkerboard' or 'channel' (got {mask!r})")
        if mask == "channel" and channels % 2:
            raise ValueError(f"a channel coupling needs an even channel count (got {channels})")
        self.mask, self.flip, self.channels = mask, flip, channels
        if mask == "checkerboard":
            # input: the masked image plus the mask itself, so the net knows which pixels are given
            self.net = CouplingNet(channels + 1, 2 * channels, hidden)
        else:
            half = channels // 2
            self.net = CouplingNet(half, 2 * half, hidden)

    def _checkerboard(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 1, H, W) mask, 1 where x_a (the conditioning pixels) sits."""
        h, w = x.shape[2], x.shape[3]
        i = torch.arange(h, device=x.device).view(h, 1)
        j = torch.arange(w, device=x.device).view(1, w)
        return ((i + j + int(self.flip)) % 2 == 0).to(x.dtype).view(1, 1, h, w)

    def _scale_shift(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(xa)
        log_s, t = h.chunk(2, dim=1)
        return SCALE_CLAMP * torch.tanh(log_s / SCALE_CLAMP), t

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.chunk(2, dim=1)
        return (b, a) if self.flip else (a, b)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat((b, a) if self.flip else (a, b), dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask == "checkerboard":
            m = self._checkerboard(x)
            log_s, t = self._scale_shift(torch.cat([x * m, m.expand(x.shape[0], 1, -1, -1)], dim=1))
            log_s, t = log_s * (1 - m), t * (1 - m)  # only x_b changes
            return x * log_s.exp() + t, log_s.flatten(1).sum(1)
        xa, xb = self._split(x)
        log_s, t = self._scale_shift(xa)
        return self._join(xa, xb * log_s.exp() + t), log_s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.mask == "checkerboard":
            m = self._checkerboard(y)
            log_s, t = self._scale_shift(torch.cat([y * m, m.expand(y.shape[0], 1, -1, -1)], dim=1))
            log_s, t = log_s * (1 - m), t * (1 - m)
            return (y - t) * torch.exp(-log_s)
        ya, yb = self._split(y)
        log_s, t = self._scale_shift(ya)
        return self._join(ya, (yb - t) * torch.exp(-log_s))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2); channel c*4 + 2*di + dj holds x[c, 2i+di, 2j+dj]."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """Depth-to-space, the inverse of :func:`squeeze`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


class Squeeze(nn.Module):
    """:func:`squeeze` as a layer (log-determinant 0: a permutation of the values)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return unsqueeze(y)

    @staticmethod
    def out_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
        c, h, w = shape
        return (4 * c, h // 2, w // 2)


class GaussianPrior(nn.Module):
    """Diagonal Gaussian p(z | kept, y) of a latent block: mean and log-std per value.

    Any of three terms, each zero-initialised (so a fresh prior is N(0, I)):
    - Glow's learned split prior: a 3x3 convolution of the kept half (``cond_channels`` > 0);
    - a learned constant per channel (``learned`` and no ``cond_channels``: Glow's learned top);
    - a per-class offset of every value of the block (``num_classes`` > 0: the class-conditional
      prior). Per value, not per channel as in Glow's code: per value, samples on digits showed
      the asked class far more often, at a slightly better likelihood (docs/notes/flows.md).
    Labels < 0 (unlabeled) get no class offset.

    Args:
        shape: (C, H, W) of the block this prior models.
    """

    def __init__(self, shape, cond_channels: int = 0, learned: bool = True, num_classes: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        channels = self.shape[0]
        self.conv = self.const = self.embed = None
        if learned and cond_channels:
            self.conv = nn.Conv2d(cond_channels, 2 * channels, 3, padding=1)
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
        elif learned:
            self.const = nn.Parameter(torch.zeros(1, 2 * channels, 1, 1))
        if num_classes:
            self.embed = nn.Embedding(num_classes, 2 * math.prod(self.shape))
            nn.init.zeros_(self.embed.weight)

    def forward(self, like: torch.Tensor, kept: torch.Tensor | None, y: torch.Tensor | None):
        """(mean, log_std), each broadcastable to ``like`` (B, C, H, W), the latent modelled."""
        h = like.new_zeros(1, 2 * like.shape[1], 1, 1)
        if self.conv is not None:
            h = h + self.conv(kept)
        if self.const is not None:
            h = h + self.const
        if self.embed is not None and y is not None:
            known = (y >= 0).to(like.dtype).view(-1, 1)
            c, height, width = self.shape
            h = h + (self.embed(y.clamp(min=0)) * known).view(-1, 2 * c, height, width)
        mean, log_std = h.chunk(2, dim=1)
        return mean, log_std


def standard_normal_log_prob(eps: torch.Tensor) -> torch.Tensor:
    """log N(eps; 0, I) summed per image: (B, ...) -> (B,) nats."""
    return (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
