"""``adain``: arbitrary style transfer by adaptive instance normalisation (after Huang & Belongie,
2017, "Arbitrary style transfer in real-time with adaptive instance normalization").

AdaIN(c, s) = std(s) * (c - mean(c)) / std(c) + mean(s), per image and channel over the
spatial positions: the content's features take the style's channel statistics, and a decoder
turns them back into an image.

The paper's encoder is an ImageNet VGG-19; nothing may be downloaded here, so the encoder is
trained inside genvision, as the encoder of an autoencoder on the training images (reconstruction
loss |D(E(x)) - x|): three conv stages (full, 1/2 and 1/4 size; 16/32/64 channels at the default
width) whose ReLU outputs are the features. The style loss compares the channel means and stds of
all three stages (colour and fine strokes live in the early ones, shapes in the last); the content
loss uses the last stage, where AdaIN acts. Those two losses train the decoder only (the
encoder's weights are read detached there), so the style objective cannot reshape the features.
Training pairs: each content image of a batch takes the next image of the batch as its style, so
``--data folder:DIR`` of content and style images is all it needs.

:meth:`AdaIN.stylize` (content, style, alpha) is what ``apps/stylize.py`` calls; ``alpha`` blends
the AdaIN features with the content's own (0: reconstruction, 1: full style).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..base import GenerativeModel, ModelConfig

PREVIEW = 64
EPS = 1e-5


def channel_stats(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel mean and std over the positions of (B, C, H, W): each (B, C, 1, 1)."""
    mean = f.mean(dim=(2, 3), keepdim=True)
    std = (f.var(dim=(2, 3), keepdim=True, unbiased=False) + EPS).sqrt()
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The content features with the style features' channel means and stds."""
    cm, cs = channel_stats(content)
    sm, ss = channel_stats(style)
    return ss * (content - cm) / cs + sm


@dataclass
class AdaINConfig(ModelConfig):
    caps: ClassVar[dict[str, int]] = {"base_channels": 1024}  # widths beyond this are typos, not models
    channels: int = 3
    base_channels: int = 16
    style_weight: float = 2.0
    content_weight: float = 1.0
    lr: float = 1e-3

    def __post_init__(self):
        super().__post_init__()
        if self.image_size % 4:
            raise ValueError(
                f"adain needs image_size divisible by 4 (got {self.image_size}); use --set image_size=64"
            )
        if self.base_channels < 1:
            raise ValueError("base_channels must be >= 1; use e.g. --set base_channels=16")


class Encoder(nn.Module):
    def __init__(self, channels: int, base: int):
        super().__init__()
        self.stages = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(channels, base, 3, padding=1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(base, 2 * base, 4, 2, 1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(2 * base, 4 * base, 4, 2, 1), nn.ReLU()),
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    def __init__(self, channels: int, base: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4 * base, 4 * base, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(4 * base, 2 * base, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(2 * base, base, 3, padding=1), nn.ReLU(),
            nn.Conv2d(base, channels, 3, padding=1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class AdaIN(GenerativeModel):
    """Encoder (trained as an autoencoder's), AdaIN, decoder; see the module docstring."""

    family = "vae"
    config_class = AdaINConfig
    samples_the_data = False

    def __init__(self, config: AdaINConfig):
        super().__init__(config)
        c = config
        self.encoder = Encoder(c.channels, c.base_channels)
        self.decoder = Decoder(c.channels, c.base_channels)
        self.register_buffer("preview", torch.full((PREVIEW, c.channels, c.image_size, c.image_size), -1.0))

    def _frozen_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features of ``x`` with its weights detached (gradients reach ``x`` only)."""
        params = {k: v.detach() for k, v in self.encoder.named_parameters()}
        return functional_call(self.encoder, params, (x,))

    def loss(self, x, y=None, phase: str = "main", generator=None) -> dict:
        c = self.config
        feats = self.encoder(x)
        rec = (self.decoder(feats[-1]) - x).abs().mean()
        style_img = x.roll(1, dims=0)
        with torch.no_grad():
            style_feats = self._frozen_features(style_img)
        target = adain(feats[-1].detach(), style_feats[-1])
        out = self.decoder(target)
        out_feats = self._frozen_features(out)
        content = F.mse_loss(out_feats[-1], target)
        style = x.new_zeros(())
        for fo, fs in zip(out_feats, style_feats):
            (mo, so), (ms, ss) = channel_stats(fo), channel_stats(fs)
            style = style + F.mse_loss(mo, ms) + F.mse_loss(so, ss)
        total = rec + c.content_weight * content + c.style_weight * style
        return {
            "loss": total,
            "reconstruction": rec.detach(),
            "content": content.detach(),
            "style": style.detach(),
        }

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Keep the first training batch (cycled to 64 images) for :meth:`sample`."""
        self.preview.copy_(batch[torch.arange(PREVIEW) % len(batch)].to(self.preview))

    def _check(self, images, what: str) -> torch.Tensor:
        c = self.config
        images = torch.as_tensor(images).float()
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4 or tuple(images.shape[1:]) != (c.channels, c.image_size, c.image_size):
            raise ValueError(
                f"adain takes {what} images of shape (B, {c.channels}, {c.image_size}, {c.image_size}); "
                f"got {tuple(images.shape)}"
            )
        return images.to(self.device)

    @torch.no_grad()
    def stylize(self, content, style, alpha: float = 1.0) -> torch.Tensor:
        """Content images (B, C, H, W) in the style of ``style`` (B or 1 images); (B, C, H, W) in [-1, 1]."""
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (got {alpha}); 0 keeps the content, 1 is full style")
        content, style = self._check(content, "content"), self._check(style, "style")
        if len(style) not in (1, len(content)):
            raise ValueError(
                f"give one style image or one per content image (got {len(style)} for {len(content)})"
            )
        fc = self.encoder(content)[-1]
        fs = self.encoder(style.expand(len(content), -1, -1, -1))[-1]
        t = alpha * adain(fc, fs) + (1 - alpha) * fc
        return self.decoder(t).clamp(-1, 1)

    def translate(self, images, style=None, alpha: float = 1.0) -> torch.Tensor:
        """``stylize`` under the translation models' name (style: the stored first training image)."""
        style = self.preview[:1] if style is None else style
        return self.stylize(images, style, alpha)

    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        """Stored first-batch image k in the style of stored image k + 1 (mod 64)."""
        self.check_labels(n, y)
        idx = torch.arange(n) % PREVIEW
        return self.stylize(
            self.preview[idx.to(self.device)], self.preview[((idx + 1) % PREVIEW).to(self.device)]
        )
