"""Generative adversarial networks: config and model glue.

One class covers the registry's GANs (presets in ``registry.py``): the textbook MLP GAN with
the minimax or non-saturating loss (Goodfellow et al., 2014), DCGAN (Radford et al., 2016),
the textbook WGAN with weight clipping and RMSprop (Arjovsky et al., 2017), WGAN-GP (Gulrajani et al., 2017), SNGAN with the hinge loss (Miyato et al., 2018) and its
class-conditional form with a projection discriminator (Miyato & Koyama, 2018). Networks live
in ``nets.py``, objectives in ``losses.py``, DiffAugment in ``augment.py``.

Training is two phases the generic trainer runs in order each step:

    discriminator x critic_steps:  z ~ N(0, I); fake = G(z) (no gradient to G)
                                   loss = D-loss(D(aug(real)), D(aug(fake))) [+ GP] [+ R1]
                                   [WGAN: after each update every critic weight is clipped to
                                    [-weight_clip, weight_clip]]
    generator x 1:                 loss = G-loss(D(aug(G(z))))  (D's weights get no gradient)

Each phase draws its own real batch (the generator phase uses only its labels), so "images
seen" counts (critic_steps + 1) batches per step. Every random draw (z, labels of fakes,
GP mixing weights, augmentation) comes from the per-image generators the trainer passes.
Sampling uses the generator only (its EMA weights in a run directory) in eval mode, so batch
norm uses its running statistics and image k depends only on (seed, k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import augment, losses, nets

ARCHS = ("mlp", "dcgan")


@dataclass
class GANConfig(ModelConfig):
    """GAN settings; the registry presets pick the architecture, loss and optimiser per variant.

    ``lr_g`` / ``lr_d`` and ``betas_g`` / ``betas_d`` are the generator's and discriminator's
    Adam settings (two time-scale update rule when they differ); ``--lr X`` sets the
    discriminator's rate (the first phase's) to X and scales the generator's by the same factor.
    ``optimizer`` is "adam" (both phases) or "rmsprop" (the textbook WGAN's; its smoothing
    alpha is ``betas[1]``). ``weight_clip`` c > 0 clamps every discriminator weight into [-c, c]
    after each of its updates (the textbook WGAN; 0 = off).
    ``truncation`` is the default psi of sampling: z is scaled by psi, pulling every latent
    towards the mean latent 0 (fewer odd samples, less variety; 1 = off).
    """

    archs: ClassVar[tuple[str, ...]] = ARCHS  # the networks this config's class builds
    arch: str = "dcgan"  # mlp | dcgan
    loss: str = "ns"  # minimax | ns | wgan | wgan-gp | hinge (losses.py)
    supports_conditional: ClassVar[bool] = True
    caps: ClassVar[dict[str, int]] = {
        "latent_dim": 4096,
        "hidden": 16_384,
        "base_channels": 1024,
        "critic_steps": 100,
    }
    latent_dim: int = 100
    hidden: int = 256  # width of the MLP's hidden layer (arch=mlp)
    # conv width at full resolution, doubling per halving (arch=dcgan); 0 = by image size:
    # 64 up to 16 px, 16 above (why: docs/notes/gan.md)
    base_channels: int = 0
    spectral_norm: bool = False  # spectral normalisation of every discriminator weight
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas_g: tuple[float, float] = (0.5, 0.999)
    betas_d: tuple[float, float] = (0.5, 0.999)
    optimizer: str = "adam"  # adam | rmsprop
    weight_clip: float = 0.0  # c: discriminator weights clamped to [-c, c] after each update; 0 = off
    critic_steps: int = 1  # discriminator updates per generator update
    gp_weight: float = 10.0  # WGAN-GP penalty weight (loss=wgan-gp)
    r1_weight: float = 0.0  # R1 gamma on real images; 0 = off
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (minimax / ns only)
    augment: str = ""  # DiffAugment policies, e.g. "color,translation,cutout"; "" = off
    truncation: float = 1.0  # default psi at sampling

    def __post_init__(self):
        super().__post_init__()
        self.betas_g, self.betas_d = tuple(self.betas_g), tuple(self.betas_d)
        self.base_channels = self.base_channels or (64 if self.image_size <= 16 else 16)
        if self.arch not in self.archs:
            raise ValueError(f"arch must be one of {', '.join(self.archs)} (got {self.arch!r})")
        if self.loss not in losses.LOSSES:
            raise ValueError(f"loss must be one of {', '.join(losses.LOSSES)} (got {self.loss!r})")
        for name in ("latent_dim", "hidden", "base_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(self, name)}); try 2e-4")
        for name in ("betas_g", "betas_d"):
            betas = getattr(self, name)
            if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
                raise ValueError(f"{name} must be two numbers in [0, 1) (got {betas}); try 0.5,0.999")
        if self.critic_steps < 1:
            raise ValueError(
                f"critic_steps must be >= 1 (got {self.critic_steps}); 1 for GANs, 5 for WGAN-GP"
            )
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop' (got {self.optimizer!r})")
        if self.weight_clip < 0:
            raise ValueError(f"weight_clip must be >= 0 (got {self.weight_clip}); 0.01 for WGAN, 0 = off")
        if self.gp_weight < 0 or self.r1_weight < 0:
            raise ValueError(f"gp_weight and r1_weight must be >= 0 (got {self.gp_weight}, {self.r1_weight})")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(
                f"label_smoothing must be in [0, 0.5) (got {self.label_smoothing}); 0.1 is usual"
            )
        if self.label_smoothing and self.loss not in losses.SIGMOID_LOSSES:
            raise ValueError(
                f"label_smoothing applies to the minimax and ns losses, not {self.loss}; set it to 0"
            )
        augment.parse_policy(self.augment)
        if not 0 <= self.truncation <= 1:
            raise ValueError(f"truncation must be in [0, 1] (got {self.truncation}); 1 = off")
        if self.conditional and self.arch == "mlp":
            raise ValueError("conditional=True needs arch='dcgan' (conditional batch norm, projection D)")


# Defaults: batch 64, EMA half-life 10k images, no gradient clipping; measurements: docs/notes/gan.md
TRAIN_DEFAULTS = {"batch_size": 64, "ema_half_life": 10000, "grad_clip": 0.0, "monitor_every": 250}


class GAN(GenerativeModel):
    """A generator G(z) and a discriminator D(x); see the module docstring for the training loop."""

    family = "gan"
    config_class = GANConfig
    sample_options = ("truncation",)

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        k = c.num_classes if c.conditional else 0
        if c.arch == "mlp":
            self.generator = nets.MLPGenerator(c.latent_dim, c.hidden, c.channels, c.image_size)
            self.discriminator = nets.MLPDiscriminator(c.hidden, c.channels, c.image_size, c.spectral_norm)
        else:
            self.generator = nets.DCGenerator(c.latent_dim, c.base_channels, c.channels, c.image_size, k)
            self.discriminator = nets.DCDiscriminator(
                c.base_channels, c.channels, c.image_size, k, c.spectral_norm
            )
        self.policy = augment.parse_policy(c.augment)

    # -- training -------------------------------------------------------------------
    @property
    def phases(self) -> list[Phase]:
        """Discriminator (``critic_steps`` repeats), then generator; Adam or RMSprop per config."""
        c = self.config
        return [
            Phase(
                "discriminator",
                list(self.discriminator.parameters()),
                OptimizerSpec(c.optimizer, c.lr_d, c.betas_d),
                repeats=c.critic_steps,
            ),
            Phase(
                "generator", list(self.generator.parameters()), OptimizerSpec(c.optimizer, c.lr_g, c.betas_g)
            ),
        ]

    def after_step(self, phase: str) -> None:
        """WGAN: clip the critic's weights after each of its updates (``weight_clip`` > 0)."""
        if phase == "discriminator" and self.config.weight_clip:
            losses.clip_weights(self.discriminator.parameters(), self.config.weight_clip)

    def ema_parameters(self) -> list:
        """The generator's weights: only G is sampled from."""
        return list(self.generator.parameters())

    def train_defaults(self) -> dict:
        """``TRAIN_DEFAULTS`` with the monitor interval per critic step (docs/notes/gan.md)."""
        return {**TRAIN_DEFAULTS, "monitor_every": max(50, 250 // self.config.critic_steps)}

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "discriminator", generator=None
    ) -> dict:
        """One phase's loss and diagnostics.

        Args:
            x: (B, C, H, W) real images in [-1, 1] (the generator phase uses only their count).
            y: (B,) labels of the real images (conditional models: the fakes get the same labels).
            phase: "discriminator" or "generator".
            generator: None or B per-image generators; each draws z, then the GP weight, then
                the augmentation of its real and its fake image.

        Returns:
            {"loss", "d_real", "d_fake", ...}: d_real / d_fake are mean D(x) = sigmoid(logit)
            for the sigmoid losses and mean critic scores otherwise; "wasserstein" (E r - E f)
            for WGAN and WGAN-GP, "gp" for WGAN-GP, "r1" when on.
        """
        c = self.config
        b, dev = x.shape[0], x.device
        labels = self._training_labels(y)
        z = seeding.randn((b, c.latent_dim), generator, dev, x.dtype)
        if phase == "discriminator":
            return self._discriminator_loss(x, z, labels, generator)
        if phase == "generator":
            return self._generator_loss(z, labels, generator)
        raise ValueError(f"unknown phase {phase!r}; GAN phases: discriminator, generator")

    def _training_labels(self, y) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        if y is None:
            raise ValueError(f"{self.registry_name} is class-conditional: training needs labels")
        return y.to(self.device).long()

    def _discriminator_loss(self, x, z, labels, generator) -> dict:
        c = self.config
        with torch.no_grad():
            fake = self.generator(z, labels)
        real_in = augment.diff_augment(x, self.policy, generator)
        fake_in = augment.diff_augment(fake, self.policy, generator)
        if c.r1_weight:
            real_in = real_in.detach().requires_grad_(True)
        r = self.discriminator(real_in, labels)  # (B,) logits
        f = self.discriminator(fake_in, labels)
        loss = losses.discriminator_loss(c.loss, r, f, c.label_smoothing)
        out = self._scores(r, f)
        if c.loss in losses.WASSERSTEIN_LOSSES:
            out["wasserstein"] = (r.mean() - f.mean()).detach()
        if c.loss == "wgan-gp":
            eps = seeding.rand((x.shape[0], 1, 1, 1), generator, x.device, x.dtype)
            gp = losses.gradient_penalty(lambda v: self.discriminator(v, labels), real_in, fake_in, eps)
            loss = loss + c.gp_weight * gp
            out["gp"] = gp.detach()
        if c.r1_weight:
            r1 = losses.r1_penalty(r, real_in)
            loss = loss + 0.5 * c.r1_weight * r1
            out["r1"] = r1.detach()
        return {"loss": loss, **out}

    def _generator_loss(self, z, labels, generator) -> dict:
        # D's weights need no gradient here: building the graph without them saves a third of
        # the backward pass. requires_grad is read when the graph is built, so restoring it
        # before returning is safe.
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        for p in d_params:
            p.requires_grad_(False)
        try:
            fake = augment.diff_augment(self.generator(z, labels), self.policy, generator)
            f = self.discriminator(fake, labels)
        finally:
            for p in d_params:
                p.requires_grad_(True)
        loss = losses.generator_loss(self.config.loss, f)
        return {"loss": loss, "d_fake": self._scores(None, f)["d_fake"]}

    def _scores(self, r, f) -> dict:
        """Mean D(x) (sigmoid losses) or mean critic score on real and fake logits."""
        squash = torch.sigmoid if self.config.loss in losses.SIGMOID_LOSSES else (lambda t: t)
        out = {"d_fake": squash(f.detach()).mean()}
        if r is not None:
            out["d_real"] = squash(r.detach()).mean()
        return out

    # -- sampling -------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent z: (latent_dim,), standard normal."""
        return (self.config.latent_dim,)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Images G(z), (B, C, H, W) in [-1, 1], for latents z (B, latent_dim); y labels if conditional."""
        c = self.config
        labels = self.check_labels(z.shape[0], y)
        if c.conditional and labels is None:
            raise ValueError(f"{self.registry_name} is class-conditional: decode(z, y) needs labels")
        with self.eval_mode():
            return self.generator(z.to(self.device), labels).clamp(-1, 1)

    @torch.no_grad()
    def sample(
        self, n: int, y=None, seed: int | None = None, generator=None, *, truncation=None, **options
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1] on the model's device.

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image
                from its own generator (after its latent), so image k stays fixed by (seed, k).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            truncation: psi in [0, 1]: z is scaled by psi (default config.truncation; 1 = off).
        """
        self.check_sample_options(options, truncation=truncation)
        c = self.config
        psi = c.truncation if truncation is None else truncation
        if not 0 <= psi <= 1:
            raise ValueError(f"truncation must be in [0, 1] (got {psi}); 1 = off")
        labels = self.check_labels(n, y)
        gens = seeding.resolve(n, seed, generator, self.device)
        z = self.latents(n, psi, gens)
        if c.conditional and labels is None:
            labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
        return self.decode(z, labels)

    def latents(self, n: int, psi: float, generator) -> torch.Tensor:
        """(n, latent_dim) latents for sampling at truncation psi: z ~ N(0, I) scaled by psi."""
        return seeding.randn((n, self.config.latent_dim), generator, self.device) * psi

    noise_name = "Gaussian latent z"
    start_note = "through the generator"

    @property
    def noise_scaling(self) -> str:
        t = self.config.truncation
        return f" scaled by truncation {t}" if t != 1 else ""
