"""Normalizing flows: RealNVP (Dinh et al., 2017) and Glow (Kingma & Dhariwal, 2018): configs and glue.

The pieces live beside this file: ``layers.py`` (actnorm, invertible 1x1 convolution, affine
coupling, squeeze, Gaussian priors), ``nets.py`` (the multi-scale flow, both architectures,
variational dequantisation) and ``preprocessing.py`` (dequantisation, logit / [-1, 1]
preprocessing and the discrete likelihood bound, with their log-determinants).

A flow is the one family with an exact likelihood and an exact encoder at once:

    image x --(bin centre | dequantisation)--> u --(scale | logit)--> z0 --flow--> eps ~ N(0, I)

``encode`` / ``decode`` map images to the packed standard-normal noise ``eps`` (the image's own
shape, ``latent_shape``) and back exactly; ``sample(temperature=T)`` decodes T * N(0, I), which
scales every prior's standard deviation by T (Glow's reduced-temperature sampling);
``log_likelihood`` is the dequantisation bound on log P(x) on the data's ``levels`` grey levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ...nn import pixels
from ..base import GenerativeModel, ModelConfig
from . import nets, preprocessing


def default_num_levels(image_size: int) -> int:
    """Scales of the multi-scale flow: halve while the side is even and >= 4, at most 3 times.

    8 -> 2 (4x4, 2x2); 28 -> 2 (14x14, 7x7); 32 and 64 -> 3.
    """
    levels, side = 0, image_size
    while levels < 3 and side % 2 == 0 and side >= 4:
        levels += 1
        side //= 2
    return levels


# Defaults (logit a=0.01, variational dequantisation, temperature 1), why, and larger images: docs/notes/flows.md
@dataclass
class FlowConfig(ModelConfig):
    """Settings shared by RealNVP and Glow (each subclass sets its own defaults)."""

    supports_conditional: ClassVar[bool] = True
    caps: ClassVar[dict[str, int]] = {"num_levels": 8, "steps_per_level": 256, "hidden_channels": 4096}
    num_levels: int = 0  # scales (squeezes); 0 = by image size (default_num_levels)
    steps_per_level: int = 4
    hidden_channels: int = 64  # width of every coupling's conditioner (the dequantiser's: a quarter)
    learned_prior: bool = True  # Glow's learned split and top priors; False: N(0, I)
    # logit: z0 = logit(a + (1 - 2a) u) | scale: z0 = 2u - 1 (Glow's)
    preprocessing: str = "logit"
    logit_alpha: float = 0.01  # a of the logit preprocessing
    dequantization: str = "variational"  # variational (a learned q(U | x)) | uniform
    temperature: float = 1.0  # default sampling temperature
    lr: float = 2e-3

    def __post_init__(self):
        super().__post_init__()
        if self.num_levels == 0:
            self.num_levels = default_num_levels(self.image_size)
        if self.num_levels < 1:
            raise ValueError(
                f"num_levels must be >= 1, or 0 for the size-based default (got {self.num_levels})"
            )
        if self.image_size % 2**self.num_levels:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**num_levels = {2**self.num_levels}; "
                "use fewer num_levels (or 0 for the size-based default)"
            )
        if self.steps_per_level < 1:
            raise ValueError(f"steps_per_level must be >= 1 (got {self.steps_per_level})")
        if self.hidden_channels < 4:
            raise ValueError(f"hidden_channels must be >= 4 (got {self.hidden_channels}); try 64")
        if self.preprocessing not in preprocessing.PREPROCESSING:
            raise ValueError(
                f"preprocessing must be one of {', '.join(preprocessing.PREPROCESSING)} "
                f"(got {self.preprocessing!r})"
            )
        if not 0 < self.logit_alpha < 0.5:
            raise ValueError(f"logit_alpha must be in (0, 0.5) (got {self.logit_alpha}); try 0.01")
        if self.dequantization not in ("uniform", "variational"):
            raise ValueError(
                f"dequantization must be 'uniform' or 'variational' (got {self.dequantization!r})"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {self.temperature}); 0.7 is usual for flows")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 2e-3")


@dataclass
class GlowConfig(FlowConfig):
    """Glow: steps of (actnorm, invertible 1x1 convolution, channel coupling), learned priors."""

    lu_decomposed: bool = True  # LU-parametrised 1x1 convolution: log|det| is a sum


@dataclass
class RealNVPConfig(FlowConfig):
    """RealNVP: checkerboard and channel couplings, N(0, I) priors."""

    steps_per_level: int = 3  # couplings per mask type and scale (the paper's 3; 4 at the last scale)
    learned_prior: bool = False


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 64, "warmup": 50, "ema_half_life": 3000}


class Flow(GenerativeModel):
    """A multi-scale normalizing flow over dequantised images; subclasses pick the architecture."""

    family = "flows"
    trains_on_unlabeled = True  # the prior without a class offset
    validates = True
    config_class = FlowConfig
    sample_options = ("temperature",)
    #: config -> nets.MultiScaleFlow; set by each architecture below
    build: staticmethod

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        c = config
        self.flow = self.build(c)
        self.dequantizer = (
            nets.VariationalDequantizer(c.channels, max(4, c.hidden_channels // 4))
            if c.dequantization == "variational"
            else None
        )

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Shape of one latent (no batch dimension): the image's (C, H, W)."""
        c = self.config
        return (c.channels, c.image_size, c.image_size)

    @property
    def dims(self) -> int:
        """D = C * H * W, the dimensions per image (bits/dim divide by D ln 2)."""
        return math.prod(self.latent_shape)

    @property
    def likelihood_note(self) -> str:
        """How ``log_likelihood`` treats the discrete levels (copied onto bpd/nll metric cards)."""
        c = self.config
        return (
            f"exact flow density; log P(x) on {c.levels} levels via the {c.dequantization} dequantisation "
            f"lower bound (one draw per image), {c.preprocessing} preprocessing log-det included"
        )

    # -- likelihood -------------------------------------------------------------------
    def _labels(self, n: int, y) -> torch.Tensor | None:
        """Labels the prior uses: (n,) int64 for a conditional model (negative = unlabeled), else None."""
        if not self.config.conditional or y is None:
            return None
        return torch.as_tensor(y, dtype=torch.long, device=self.device).expand(n)

    def _dequantised_input(
        self, x: torch.Tensor, generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x -> (z0, log|det dz0/du|, log q(U | x)): one dequantisation draw per image, (B,) terms in nats."""
        c = self.config
        if self.dequantizer is None:
            noise = seeding.rand(x.shape, generator, x.device, x.dtype)
            log_q = x.new_zeros(x.shape[0])
        else:
            noise, log_q = self.dequantizer(x, seeding.randn(x.shape, generator, x.device, x.dtype))
        z0, pre_logdet = preprocessing.to_flow(
            preprocessing.dequantize(x, c.levels, noise), c.preprocessing, c.logit_alpha
        )
        return z0, pre_logdet, log_q

    def _bound(self, x: torch.Tensor, y, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Dequantisation bound on log P(x) and log q(U | x), each (B,) nats.

        log P(x) >= log N(eps) + log|det flow| + log|det preprocessing| - log q(U|x) - D log L
        """
        z0, pre_logdet, log_q = self._dequantised_input(x, generator)
        _, log_p = self.flow(z0, self._labels(x.shape[0], y))
        return log_p + pre_logdet - log_q - self.dims * math.log(self.config.levels), log_q

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Negative dequantisation bound in bits per dimension (the quantity reported as bpd).

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            y: (B,) labels (used by a conditional prior; negative = unlabeled) or None.
            generator: None (global RNG) or B per-image generators: image i's dequantisation
                noise comes from its own.
        """
        ll, log_q = self._bound(x, y, generator)
        bpd = pixels.bits_per_dim(ll, self.dims).mean()
        out = {"loss": bpd, "bpd": bpd.detach()}
        if self.dequantizer is not None:  # the entropy of q(U | x), in bits/dim: how much noise it adds
            out["log_q_bpd"] = pixels.bits_per_dim(-log_q, self.dims).mean().detach()
        return out

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    @torch.no_grad()
    def init_from_data(self, batch: torch.Tensor) -> None:
        """Actnorm's data-dependent initialisation on one batch (the trainer calls it before step 1).

        Runs once: each actnorm's "initialised" buffer is saved with the weights, so a loaded or
        resumed model is never initialised again. Uses fixed noise (seed 0), not the global RNG.
        """
        x = batch.to(self.device)
        z0, _, _ = self._dequantised_input(x, torch.Generator(x.device).manual_seed(0))
        self.flow(z0, None, initialize=True)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """Lower bound on log P(x) on the data's grid of ``config.levels`` levels, nats per image.

        One dequantisation draw per image, from its own generator (``seed``; image k of the batch
        uses ``seeding.image_seed(seed, k)``), so the value does not depend on the batch. The bound
        (``preprocessing`` module docstring) is

            log P(x) >= log N(eps; 0, I) + log|det d eps / d z0|          (the flow, exact)
                        + log|det d z0 / d u|                             (preprocessing:
                              D log 2 for "scale"; sum(log(1 - 2a) - log y - log(1 - y)) for "logit")
                        - log q(U | x)                                   (0 for uniform noise)
                        - D log L                                        (u = (v + U) / L)

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            y: labels for a conditional model (None: the prior without class offset).

        Returns:
            (B,) float64 nats; bits/dim = -value / (C*H*W*ln 2).
        """
        x = x.to(self.device)
        gens = generator if generator is not None else seeding.image_generators(x.shape[0], seed, self.device)
        with self.eval_mode():
            ll, _ = self._bound(x, y, gens)
        return ll.double()

    # -- latent tools -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> standard-normal latents (B, C, H, W), no noise added.

        The bin centre of every value (``preprocessing.bin_centre``) goes through the
        preprocessing and the flow; the factored-out blocks are packed back to the image's shape.
        """
        c = self.config
        x = x.to(self.device)
        z0, _ = preprocessing.to_flow(preprocessing.bin_centre(x, c.levels), c.preprocessing, c.logit_alpha)
        eps, _ = self.flow(z0, self._labels(x.shape[0], y))
        return eps

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Latents (B, C, H, W) -> images (B, C, H, W), clamped to [-1, 1]; the inverse of ``encode``."""
        c = self.config
        z = z.to(self.device)
        z0 = self.flow.inverse(z, self._labels(z.shape[0], y))
        u = preprocessing.from_flow(z0, c.preprocessing, c.logit_alpha)
        return preprocessing.image_from_unit(u, c.levels).clamp(-1, 1)

    # -- sampling -------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        y=None,
        seed: int | None = None,
        generator=None,
        *,
        temperature: float | None = None,
        **options,
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1]: ``decode(temperature * N(0, I))``.

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image
                from its own generator (after its noise), so image k stays fixed by (seed, k).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            temperature: scales every prior's standard deviation (default config.temperature);
                below 1 trades diversity for cleaner images (Glow uses 0.7).
        """
        self.check_sample_options(options, temperature=temperature)
        c = self.config
        labels = self.check_labels(n, y)
        temperature = c.temperature if temperature is None else temperature
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}); 0.7 is usual for flows")
        gens = seeding.resolve(n, seed, generator, self.device)
        with self.eval_mode():
            eps = seeding.randn((n, *self.latent_shape), gens, self.device) * temperature
            if c.conditional and labels is None:
                labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
            return self.decode(eps, labels)

    noise_name = "Gaussian latent"
    noise_scaling = " times the temperature"


class Glow(Flow):
    """Glow (Kingma & Dhariwal, 2018): actnorm, LU 1x1 convolutions, channel couplings, learned priors."""

    config_class = GlowConfig
    build = staticmethod(nets.glow)


class RealNVP(Flow):
    """RealNVP (Dinh et al., 2017): checkerboard and channel affine couplings, logit preprocessing."""

    config_class = RealNVPConfig
    build = staticmethod(nets.realnvp)
