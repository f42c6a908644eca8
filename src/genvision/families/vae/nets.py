"""Encoder and decoder networks of the VAE family (no losses, no sampling).

One convolutional body serves every image size: stride-2 4x4 convolutions halve the side while
it stays even and at least 4 after halving (8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4), the
width doubling at each halving from ``base_channels`` (odd sides: one 3x3 convolution instead).
No convolution at the bottom: the dense layers there do that work, and on a CPU they are
cheaper (a 3x3 at 7x7x64 would cost as much as all the rest of a 28x28 encoder; throughput with
and without it: docs/notes/vae.md). The decoder mirrors it with 4x4 transposed convolutions,
which double the side exactly.

    VAE:    x -> body -> flatten -> linear(hidden) -> linear(2 D) = (mean, logvar)
            z -> linear(hidden) -> linear(width * s * s) -> unflatten -> mirror body -> out
    VQ-VAE: x -> body -> 1x1 conv (D) = z_e (D, s, s)        z_q -> 1x1 conv -> mirror body -> out
"""

from __future__ import annotations

import torch
from torch import nn


def halvings(image_size: int) -> int:
    """Number of stride-2 stages for a square image (at least 1, at most 4)."""
    count, side = 0, image_size
    while count < 4 and side % 2 == 0 and side // 2 >= 4:
        count, side = count + 1, side // 2
    return max(count, 1) if image_size % 2 == 0 else 0


def bottom_side(image_size: int) -> int:
    """Side of the feature map at the bottom of the body."""
    return image_size // 2 ** halvings(image_size)


def widths(base_channels: int, image_size: int) -> list[int]:
    """Channel width after each stride-2 stage (the first stage gives ``base_channels``)."""
    return [base_channels * 2**i for i in range(halvings(image_size))] or [base_channels]


class ConvBody(nn.Module):
    """(B, C, H, W) -> (B, widths[-1], s, s): the strided convolutions described above."""

    def __init__(self, channels: int, image_size: int, base_channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        stages = halvings(image_size)
        ws = widths(base_channels, image_size)
        for w in ws[:stages]:
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1), nn.SiLU()]
            cin = w
        if stages == 0:  # odd sides: one 3x3 convolution, no halving
            layers += [nn.Conv2d(cin, ws[-1], 3, padding=1), nn.SiLU()]
        self.layers = nn.Sequential(*layers)
        self.out_channels, self.side = ws[-1], bottom_side(image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ConvHead(nn.Module):
    """(B, widths[-1], s, s) -> (B, out_channels, H, W): the body's mirror image."""

    def __init__(self, out_channels: int, image_size: int, base_channels: int):
        super().__init__()
        ws = widths(base_channels, image_size)
        stages = halvings(image_size)
        layers: list[nn.Module] = []
        rev = list(reversed(ws[:stages]))
        for i, w in enumerate(rev):
            last = i == len(rev) - 1
            cout = out_channels if last else rev[i + 1]
            layers.append(nn.ConvTranspose2d(w, cout, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.SiLU())
        if stages == 0:
            layers.append(nn.Conv2d(ws[-1], out_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.in_channels = ws[-1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)


class GaussianEncoder(nn.Module):
    """Images (B, C, H, W) in [-1, 1] -> posterior mean and log-variance, (B, D) each."""

    def __init__(self, channels: int, image_size: int, base_channels: int, hidden: int, latent_dim: int):
        super().__init__()
        self.body = ConvBody(channels, image_size, base_channels)
        flat = self.body.out_channels * self.body.side**2
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.SiLU(), nn.Linear(hidden, 2 * latent_dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.mlp(self.body(x)).chunk(2, dim=1)
        return mean, logvar


class Decoder(nn.Module):
    """Latents (B, D) -> decoder output (B, out_channels, H, W) (logits or means and log-scales)."""

    def __init__(self, out_channels: int, image_size: int, base_channels: int, hidden: int, latent_dim: int):
        super().__init__()
        self.head = ConvHead(out_channels, image_size, base_channels)
        self.side = bottom_side(image_size)
        self.mlp = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, self.head.in_channels * self.side**2),
            nn.SiLU(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mlp(z).view(z.shape[0], self.head.in_channels, self.side, self.side)
        return self.head(h)


class CodeEncoder(nn.Module):
    """Images (B, C, H, W) -> continuous code vectors z_e (B, D, s, s) for the quantiser."""

    def __init__(self, channels: int, image_size: int, base_channels: int, embedding_dim: int):
        super().__init__()
        self.body = ConvBody(channels, image_size, base_channels)
        self.proj = nn.Conv2d(self.body.out_channels, embedding_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.body(x))


class CodeDecoder(nn.Module):
    """Quantised code vectors z_q (B, D, s, s) -> decoder output (B, out_channels, H, W)."""

    def __init__(self, out_channels: int, image_size: int, base_channels: int, embedding_dim: int):
        super().__init__()
        self.head = ConvHead(out_channels, image_size, base_channels)
        self.proj = nn.Sequential(nn.Conv2d(embedding_dim, self.head.in_channels, 1), nn.SiLU())

    def forward(self, zq: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(zq))
