"""``pix2pix``: paired image-to-image translation as flow matching conditioned on the source image.

The restoration task models' pattern (``restoration.py``, after Palette, Saharia et al. 2022):
the UNet sees, beside its noisy input, the source image as extra input channels
(``nn.unet.Cond.image``), and learns the flow to the target image. It is named after pix2pix
(Isola et al., 2017, a conditional GAN) because it does the same job on the same data; the
conditional-GAN variant was not measured against it in this change.

It trains on ``pairs:SRC,DST`` data, whose items stack source and target along the channels
(``data/pairs.py``): ``config.channels`` is the stack's ``2C`` and the model's images have ``C``.
:meth:`Pix2Pix.translate` maps source images to target images (what ``apps/stylize.translate``
and ``genvision translate``-style use call); :meth:`Pix2Pix.sample` translates the sources of
the stored first training batch (the contract's, for training grids and the registry walk) and
returns each source with its translation, stacked on the channels as the data is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...data.pairs import split_pair
from .continuous import FlowMatching
from .restoration import PREVIEW, RestorationConfig, RestorationMixin


@dataclass
class Pix2PixConfig(RestorationConfig):
    channels: int = 6  # the pairs: stack (source, target) of two RGB images

    def __post_init__(self):
        if self.channels not in (2, 6):
            raise ValueError(
                f"pix2pix trains on paired data whose items stack source and target (2 or 6 channels, "
                f"got {self.channels}); use --data pairs:SRC_DIR,DST_DIR"
            )
        self.channels //= 2  # the base checks run on one image's channels
        try:
            super().__post_init__()
        finally:
            self.channels *= 2


class Pix2Pix(RestorationMixin, FlowMatching):
    """Flow matching of the target image conditioned on the source image; see the module docstring."""

    task = "translate"
    config_class = Pix2PixConfig
    start_note = "denoised by the sampler, conditioned on the source image"

    @property
    def image_channels(self) -> int:
        return self.config.channels // 2

    def net_io(self) -> tuple[int, int]:
        return self.image_channels, self.config.image_size

    def cond_channels(self) -> int:
        return self.image_channels

    def loss(self, x: torch.Tensor, y=None, phase: str = "main", generator=None) -> dict:
        """Flow-matching loss of the target half of ``x`` given its source half (labels unused)."""
        source, target = split_pair(x)
        with self.conditioned(source):
            return FlowMatching.loss(self, target, None, phase, generator)

    @torch.no_grad()
    def translate(self, images, *, seed: int | None = None, generator=None, **sample_options) -> torch.Tensor:
        """Source images (B, C, H, W) in [-1, 1] -> target-domain images (B, C, H, W) in [-1, 1]."""
        c = self.config
        images = torch.as_tensor(images).float()
        want = (self.image_channels, c.image_size, c.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(
                f"{self.registry_name} translates images of shape (B, {', '.join(map(str, want))}); "
                f"got {tuple(images.shape)}"
            )
        with self.conditioned(images.to(self.device)):
            x = FlowMatching.sample(self, len(images), seed=seed, generator=generator, **sample_options)
        return x.clamp(-1, 1)

    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        """Pairs (source, translation) of the stored first-batch sources, stacked like the data
        (image k: stored pair k mod 64): (n, 2C, H, W), the data's own layout."""
        self.check_labels(n, y)
        source, _ = split_pair(self.preview[(torch.arange(n) % PREVIEW).to(self.device)])
        out = self.translate(source, seed=seed, generator=generator, **options)
        return torch.cat([source.clamp(-1, 1), out], 1)
