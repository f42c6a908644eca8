"""KL-regularised convolutional autoencoder: stage 1 of latent diffusion (Rombach et al., 2022).

    x (C, H, W) -> Encoder -> (mean, logvar) (L, h, w),  h = H / 2**downsample
    z = mean + exp(logvar / 2) eps -> Decoder -> x_hat (C, H, W)
    loss = mean |x_hat - x|  (or squared)  +  kl_weight * mean KL(q(z | x) || N(0, I))
           [+ disc_weight * -D(x_hat).mean()   once step >= disc_start]

Both means run over elements: the reconstruction over the C H W pixels, the KL over the L h w
latent elements, so ``kl_weight`` compares one latent element with one pixel. The KL weight is
tiny on purpose: it keeps the latents from drifting to huge values without pulling them towards
N(0, I), so the latents keep the detail the decoder needs, and their scale is not 1 (a latent
model standardises them by their measured spread). A prior over z is learned in stage 2
(``genvision train ldm``); this model has none, so ``sample`` (decoding z ~ N(0, I)) is only a
check of the decoder.

With ``disc_weight`` > 0 a small PatchGAN-style discriminator (Isola et al., 2017) scores
patches of real and reconstructed images with the hinge loss and trains in a second phase,
"disc"; from training step ``disc_start`` on, the autoencoder adds its adversarial term and the
discriminator trains (before, the disc phase is a zero loss that leaves it untouched). The step
counter is a buffer, saved with the weights, so a resumed run switches at the same step. Unlike
Rombach et al. there is no perceptual (LPIPS) term, whose weights genvision does not ship, and
the adversarial weight is fixed rather than balanced by gradient norms.

Networks (Encoder / Decoder / PatchDiscriminator) live here with the glue rather than in
``nets.py``: they serve this model only. Measurements behind the defaults: docs/notes/vae.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ... import seeding
from ...nn.attention import group_norm
from ...nn.unet import Downsample, Upsample
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase

RECON_LOSSES = ("l1", "mse")
#: range of the encoder's log-variance (as Rombach et al.): keeps exp(logvar) finite early on
LOGVAR_RANGE = (-30.0, 20.0)


# ----------------------------------------------------------------------------- config
def default_latent_channels(channels: int) -> int:
    """Latent maps per image channel count: 4 for grey, 8 for RGB (measured: docs/notes/vae.md)."""
    return 4 if channels == 1 else 8


def default_ae_fraction(channels: int) -> float:
    """Share of a two-stage run (``genvision train ldm``) spent on the autoencoder: a quarter for
    grey, 0.4 for colour, whose decoder needs the longer stage 1 (measured: docs/notes/diffusion.md)."""
    return 0.25 if channels == 1 else 0.4


@dataclass
class AutoencoderConfig(ModelConfig):
    """Autoencoder settings; the latent map is (latent_channels, H / 2**downsample, W / 2**downsample)."""

    latent_channels: int | None = None  # None = by the image's channels: 4 grey, 8 RGB
    downsample: int = 2  # stride-2 halvings: 28x28 -> 7x7, 32x32 -> 8x8
    base_channels: int = 16  # width at full resolution, doubling at each halving
    num_res_blocks: int = 1  # residual blocks per resolution
    kl_weight: float = 1e-6  # per latent element, against the per-pixel reconstruction loss
    recon_loss: str = "l1"  # l1 | mse
    disc_weight: float = 0.0  # patch discriminator's weight; 0 = no discriminator at all
    disc_start: int = 0  # training step from which the adversarial term is on
    lr: float = 1e-3
    caps: ClassVar[dict[str, int]] = {
        "latent_channels": 1024,
        "downsample": 8,
        "base_channels": 1024,
        "num_res_blocks": 64,
    }

    def __post_init__(self):
        super().__post_init__()
        if self.latent_channels is None:
            self.latent_channels = default_latent_channels(self.channels)
        if self.latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1 (got {self.latent_channels}); try 4")
        if self.downsample < 1:
            raise ValueError(f"downsample must be >= 1 (got {self.downsample}); 2 turns 28x28 into 7x7")
        if self.image_size % 2**self.downsample:
            fits = max(d for d in range(self.downsample) if self.image_size % 2**d == 0)
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**downsample = {2**self.downsample}; "
                f"use downsample <= {fits} or an image_size divisible by {2**self.downsample}"
            )
        if self.base_channels < 1:
            raise ValueError(f"base_channels must be >= 1 (got {self.base_channels}); try 16 or 64")
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1 (got {self.num_res_blocks}); try 1 or 2")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0 (got {self.kl_weight}); try 1e-6")
        if self.recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {', '.join(RECON_LOSSES)} (got {self.recon_loss!r})")
        if self.disc_weight < 0:
            raise ValueError(
                f"disc_weight must be >= 0 (got {self.disc_weight}); 0 turns the discriminator off"
            )
        if self.disc_start < 0:
            raise ValueError(f"disc_start must be >= 0 (got {self.disc_start}); it is a training step")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")


#: trainer settings (``model.train_defaults()``; user flags override); no EMA, as Rombach et al.'s
#: autoencoders: a reconstruction model is used at its last weights (why: docs/notes/vae.md)
TRAIN_DEFAULTS = {"batch_size": 64, "ema_half_life": 0.0, "warmup": 0}


# ----------------------------------------------------------------------------- networks
def widths(base_channels: int, downsample: int) -> list[int]:
    """Channel width at each resolution, full size first: base, 2 base, ..., 2**downsample base."""
    return [base_channels * 2**i for i in range(downsample + 1)]


class ResBlock(nn.Module):
    """GN -> SiLU -> conv -> GN -> SiLU -> conv, plus skip: (B, cin, H, W) -> (B, cout, H, W).

    The second convolution starts at zero, so a new block is its skip path.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            group_norm(cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            group_norm(cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """Images (B, C, H, W) -> (B, 2 L, h, w): the posterior's mean and log-variance, stacked.

    conv -> [ResBlocks at width w_i, stride-2 conv] x downsample -> ResBlocks (w_last) -> GN, SiLU, conv.
    """

    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        ws = widths(c.base_channels, c.downsample)
        layers: list[nn.Module] = [nn.Conv2d(c.channels, ws[0], 3, padding=1)]
        cin = ws[0]
        for i in range(c.downsample + 1):
            for _ in range(c.num_res_blocks):
                layers.append(ResBlock(cin, ws[i]))
                cin = ws[i]
            if i < c.downsample:
                layers.append(Downsample(cin))
        layers += [group_norm(cin), nn.SiLU(), nn.Conv2d(cin, 2 * c.latent_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """Latents (B, L, h, w) -> (B, C, H, W), no output activation (the loss sees the raw values).

    The encoder's mirror: conv -> ResBlocks (w_last) -> [nearest x2 + conv, ResBlocks at w_i] -> GN, SiLU, conv.
    """

    def __init__(self, c: AutoencoderConfig):
        super().__init__()
        ws = widths(c.base_channels, c.downsample)
        cin = ws[-1]
        layers: list[nn.Module] = [nn.Conv2d(c.latent_channels, cin, 3, padding=1)]
        for i in reversed(range(c.downsample + 1)):
            if i < c.downsample:
                layers.append(Upsample(cin))
            for _ in range(c.num_res_blocks):
                layers.append(ResBlock(cin, ws[i]))
                cin = ws[i]
        layers += [group_norm(cin), nn.SiLU(), nn.Conv2d(cin, c.channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


class PatchDiscriminator(nn.Module):
    """Images (B, C, H, W) -> patch logits (B, 1, H / 4, W / 4) (Isola et al., 2017, two strided layers).

    Each logit sees a patch of the image, so the adversarial term asks for locally sharp detail and
    leaves the global layout to the reconstruction loss.
    """

    def __init__(self, channels: int, base_channels: int):
        super().__init__()
        w = base_channels
        self.layers = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            group_norm(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def kl_per_element(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) of each latent element, in nats: same shape as ``mean``."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)


# ----------------------------------------------------------------------------- model
class Autoencoder(GenerativeModel):
    """KL-regularised conv autoencoder; the first stage of latent diffusion (see the module docstring)."""

    family = "vae"
    config_class = AutoencoderConfig
    sample_options = ()
    samples_the_data = False  # no learned prior (see ``sample``)
    noise_name = "Gaussian latent z"
    start_note = "decoded (no learned prior: a check of the decoder only)"

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.discriminator = (
            PatchDiscriminator(config.channels, config.base_channels) if config.disc_weight > 0 else None
        )
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # training steps taken

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(latent_channels, h, w) of one image's latent map."""
        c = self.config
        side = c.image_size // 2**c.downsample
        return (c.latent_channels, side, side)

    # -- training -------------------------------------------------------------------
    @property
    def phases(self) -> list[Phase]:
        """ "main" over the encoder and decoder; then "disc" over the discriminator where there is one."""
        lr = self.config.lr
        phases = [Phase("main", self.ema_parameters(), OptimizerSpec(kind="adam", lr=lr))]
        if self.discriminator is not None:  # Adam betas of GAN training, as Rombach et al.'s discriminator
            spec = OptimizerSpec(kind="adam", lr=lr, betas=(0.5, 0.9))
            phases.append(Phase("disc", list(self.discriminator.parameters()), spec))
        return phases

    def ema_parameters(self) -> list[nn.Parameter]:
        """The encoder's and decoder's weights (the discriminator is never used after training)."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    def after_step(self, phase: str) -> None:
        """Count a training step once its last phase has run (both phases of a step see one count)."""
        if phase == ("disc" if self.discriminator is not None else "main"):
            self.step += 1

    def adversarial_on(self) -> bool:
        """Whether the adversarial term is on at the current step."""
        return self.discriminator is not None and int(self.step) >= self.config.disc_start

    def loss(self, x: torch.Tensor, y=None, phase: str = "main", generator=None) -> dict:
        """One phase's loss and the terms worth logging.

        Args:
            x: (B, C, H, W) images in [-1, 1].
            phase: "main" (encoder and decoder) or "disc" (the discriminator, where there is one).
            generator: None or B per-image generators; image i draws its eps ~ N(0, I) from its own.

        Returns:
            main: {"loss", "recon" (mean per pixel), "kl" (mean nats per latent element)} and, with a
            discriminator, "g_adv" (-mean D(x_hat), 0 before ``disc_start``);
            disc: {"loss", "d_loss" (hinge), "d_real", "d_fake" (mean patch logits)}.
        """
        if phase == "main":
            return self._autoencoder_loss(x, generator)
        if phase == "disc" and self.discriminator is not None:
            return self._discriminator_loss(x, generator)
        names = ", ".join(p.name for p in self.phases)
        raise ValueError(f"unknown phase {phase!r}; {self.registry_name} phases: {names}")

    def _draw_reconstruction(self, x: torch.Tensor, generator) -> tuple[torch.Tensor, ...]:
        """x_hat from a reparameterised draw z = mean + std eps; returns (x_hat, mean, logvar)."""
        mean, logvar = self._posterior(x)  # (B, L, h, w) each
        eps = seeding.randn(mean.shape, generator, x.device, mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        return self.decoder(z), mean, logvar

    def _autoencoder_loss(self, x: torch.Tensor, generator) -> dict:
        c = self.config
        x_hat, mean, logvar = self._draw_reconstruction(x, generator)
        diff = x_hat - x
        recon = (diff.abs() if c.recon_loss == "l1" else diff.square()).mean()
        kl = kl_per_element(mean, logvar).mean()
        total = recon + c.kl_weight * kl
        terms = {"recon": recon.detach(), "kl": kl.detach()}
        if self.discriminator is not None:
            g_adv = self._generator_adversarial(x_hat) if self.adversarial_on() else x_hat.new_zeros(())
            total = total + c.disc_weight * g_adv
            terms["g_adv"] = g_adv.detach()
        return {"loss": total, **terms}

    def _generator_adversarial(self, x_hat: torch.Tensor) -> torch.Tensor:
        """-mean D(x_hat), with no gradient into D's weights (the main phase does not train D)."""
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        for p in d_params:
            p.requires_grad_(False)
        try:
            return -self.discriminator(x_hat).mean()
        finally:  # requires_grad is read when the graph is built, so restoring it here is safe
            for p in d_params:
                p.requires_grad_(True)

    def _discriminator_loss(self, x: torch.Tensor, generator) -> dict:
        """Hinge loss of D on real patches against reconstructed ones (Lim & Ye, 2017)."""
        params = list(self.discriminator.parameters())
        if not self.adversarial_on():  # a zero loss with a graph: no update, no forward pass
            zero = sum(p.sum() for p in params) * 0.0
            return {"loss": zero, "d_loss": zero.detach(), "d_real": zero.detach(), "d_fake": zero.detach()}
        with torch.no_grad():
            x_hat = self._draw_reconstruction(x, generator)[0]
        real = self.discriminator(x)  # (B, 1, h', w') patch logits
        fake = self.discriminator(x_hat)
        d_loss = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
        return {
            "loss": d_loss,
            "d_loss": d_loss.detach(),
            "d_real": real.detach().mean(),
            "d_fake": fake.detach().mean(),
        }

    # -- latent capabilities --------------------------------------------------------
    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def _check_images(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        want = (c.channels, c.image_size, c.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"{self.registry_name} encodes images of shape (B, {', '.join(map(str, want))})"
                f"; got {tuple(x.shape)}"
            )
        return x.to(self.device)

    @torch.no_grad()
    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z | x): mean and log-variance, (B, L, h, w) each, of images (B, C, H, W) in [-1, 1]."""
        return self._posterior(self._check_images(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means (B, L, h, w) of images (B, C, H, W) in [-1, 1] (deterministic)."""
        return self.encode_dist(x)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] (clamped) of latents (B, L, h, w)."""
        if z.dim() != 4 or tuple(z.shape[1:]) != self.latent_shape:
            shape = ", ".join(map(str, self.latent_shape))
            raise ValueError(
                f"{self.registry_name} decodes latents of shape (B, {shape}); got {tuple(z.shape)}"
            )
        return self.decoder(z.to(self.device)).clamp(-1, 1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): images (B, C, H, W) in [-1, 1] from the posterior mean."""
        return self.decode(self.encode(x))

    # -- sampling -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        """Decode z ~ N(0, I) of ``latent_shape``: (n, C, H, W) in [-1, 1].

        An autoencoder has no learned prior: its latents are not distributed as N(0, I) (the KL
        weight is tiny), so these images are only a check of the decoder, not samples of the data.
        ``genvision train ldm`` learns the prior over these latents.

        Args:
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
        """
        self.check_sample_options(options)
        self.check_labels(n, y)
        gens = seeding.resolve(n, seed, generator, self.device)
        z = seeding.randn((n, *self.latent_shape), gens, self.device)
        return self.decode(z)
