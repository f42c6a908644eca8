"""``cyclegan``: unpaired two-domain translation (after Zhu et al., 2017, "Unpaired image-to-image
translation using cycle-consistent adversarial networks").

Two generators G: A -> B and F: B -> A (small residual conv nets that keep the image size), two
patch discriminators D_A and D_B, least-squares adversarial losses, the cycle loss
|x - F(G(x))| + |y - G(F(y))| (weight ``cycle_weight``) and the identity loss |y - G(y)| + |x - F(x)|
(weight ``identity_weight``). It trains on ``unpaired:A,B`` data: label 0 is domain A, label 1
domain B; the pairing of files, if any, is never used (each batch mixes the two domains at random).
Phases: "discriminator" (both D), then "generator" (both G), as the GAN family runs them.

:meth:`CycleGAN.translate` maps images A -> B (``direction="ba"``: B -> A). :meth:`sample` (the
contract's) translates the stored images of the first training batch (a mix of A and B) A -> B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import losses

PREVIEW = 64


@dataclass
class CycleGANConfig(ModelConfig):
    caps: ClassVar[dict[str, int]] = {"base_channels": 1024, "res_blocks": 64}  # beyond: typos, not models
    channels: int = 3
    base_channels: int = 32
    res_blocks: int = 3
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    lr: float = 2e-4

    def __post_init__(self):
        super().__post_init__()
        if self.base_channels < 1 or self.res_blocks < 0:
            raise ValueError(
                "base_channels must be >= 1 and res_blocks >= 0; use e.g. --set base_channels=32"
            )


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c, affine=True),
        )  # fmt: skip

    def forward(self, x):
        return x + self.body(x)


class Translator(nn.Module):
    """Image -> image of the same size: conv in, one stride-2 down, residual blocks, one up, conv out."""

    def __init__(self, channels: int, base: int, blocks: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, base, 5, padding=2), nn.InstanceNorm2d(base, affine=True), nn.ReLU(),
            nn.Conv2d(base, 2 * base, 4, 2, 1), nn.InstanceNorm2d(2 * base, affine=True), nn.ReLU(),
            *[_Res(2 * base) for _ in range(blocks)],
            nn.ConvTranspose2d(2 * base, base, 4, 2, 1), nn.InstanceNorm2d(base, affine=True), nn.ReLU(),
            nn.Conv2d(base, channels, 5, padding=2), nn.Tanh(),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """A score per patch (B, 1, H/4, W/4) rather than per image (pix2pix's PatchGAN idea)."""

    def __init__(self, channels: int, base: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(base, 2 * base, 4, 2, 1), nn.InstanceNorm2d(2 * base, affine=True), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * base, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class CycleGAN(GenerativeModel):
    """Two generators and two discriminators; see the module docstring."""

    family = "gan"
    config_class = CycleGANConfig
    samples_the_data = False

    def __init__(self, config: CycleGANConfig):
        super().__init__(config)
        c = config
        self.g_ab = Translator(c.channels, c.base_channels, c.res_blocks)
        self.g_ba = Translator(c.channels, c.base_channels, c.res_blocks)
        self.d_a = PatchDiscriminator(c.channels, c.base_channels)
        self.d_b = PatchDiscriminator(c.channels, c.base_channels)
        self.register_buffer("preview", torch.full((PREVIEW, c.channels, c.image_size, c.image_size), -1.0))

    @property
    def phases(self) -> list[Phase]:
        c = self.config
        opt = OptimizerSpec("adam", c.lr, (0.5, 0.999))
        d = list(self.d_a.parameters()) + list(self.d_b.parameters())
        g = list(self.g_ab.parameters()) + list(self.g_ba.parameters())
        return [Phase("discriminator", d, opt), Phase("generator", g, opt)]

    def ema_parameters(self) -> list:
        return list(self.g_ab.parameters()) + list(self.g_ba.parameters())

    def _domains(self, x, y):
        if y is None or not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(
                f"{self.registry_name} needs two domains labelled 0 and 1; use --data unpaired:A_DIR,B_DIR"
            )
        return x[y == 0], x[y == 1]

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Keep the first training batch (cycled to 64 images) for :meth:`sample`."""
        self.preview.copy_(batch[torch.arange(PREVIEW) % len(batch)].to(self.preview))

    def loss(self, x, y=None, phase: str = "discriminator", generator=None) -> dict:
        a, b = self._domains(x, y)
        zero = x.new_zeros(())
        if phase == "discriminator":
            total = zero
            with torch.no_grad():
                fake_b = self.g_ab(a) if len(a) else None
                fake_a = self.g_ba(b) if len(b) else None
            for d, real, fake in ((self.d_b, b, fake_b), (self.d_a, a, fake_a)):
                if len(real):
                    total = total + 0.5 * (d(real) - 1).pow(2).mean()
                if fake is not None:
                    total = total + 0.5 * d(fake).pow(2).mean()
            return {"loss": total}
        if phase == "generator":
            c = self.config
            adv = cyc = idt = zero
            if len(a):
                fb = self.g_ab(a)
                adv = adv + (self.d_b(fb) - 1).pow(2).mean()
                cyc = cyc + losses.cycle_loss(a, self.g_ba(fb))
                idt = idt + (self.g_ba(a) - a).abs().mean()
            if len(b):
                fa = self.g_ba(b)
                adv = adv + (self.d_a(fa) - 1).pow(2).mean()
                cyc = cyc + losses.cycle_loss(b, self.g_ab(fa))
                idt = idt + (self.g_ab(b) - b).abs().mean()
            total = adv + c.cycle_weight * cyc + c.identity_weight * idt
            return {"loss": total, "adv": adv.detach(), "cycle": cyc.detach(), "identity": idt.detach()}
        raise ValueError(f"unknown phase {phase!r}; cyclegan phases: discriminator, generator")

    @torch.no_grad()
    def translate(self, images, direction: str = "ab") -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] of domain A -> domain B (``direction="ba"``: B -> A)."""
        if direction not in ("ab", "ba"):
            raise ValueError(f"direction must be 'ab' or 'ba' (got {direction!r})")
        c = self.config
        images = torch.as_tensor(images).float()
        if images.dim() != 4 or tuple(images.shape[1:]) != (c.channels, c.image_size, c.image_size):
            raise ValueError(
                f"cyclegan translates images of shape (B, {c.channels}, {c.image_size}, {c.image_size}); "
                f"got {tuple(images.shape)}"
            )
        net = self.g_ab if direction == "ab" else self.g_ba
        return net(images.to(self.device)).clamp(-1, 1)

    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        """A -> B translations of the stored first-batch images (of either domain; no noise)."""
        self.check_labels(n, y)
        return self.translate(self.preview[(torch.arange(n) % PREVIEW).to(self.device)])
