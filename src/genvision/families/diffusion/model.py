"""Denoising diffusion (Ho et al., 2020) with DDIM sampling (Song et al., 2021) and classifier-free
guidance (Ho & Salimans, 2022): config and model glue.

The pieces live beside this file: ``schedules.py`` (alpha_bar and the noise levels sigma),
``losses.py`` (objectives, conversions, likelihood bound), ``samplers.py`` (ddpm, ddim, dpm++2m on
a grid of noise levels, and the table ``sample`` dispatches through), ``guidance.py``, and
``distill.py`` (the few-step student, a subclass); the network is ``nn.unet.UNet``. Training draws ``t``, the noise and the label dropout from the per-image
generators the trainer passes (else the global RNG); sampling draws only from per-image
generators (``seed``) or the one given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ...nn.unet import UNet
from ..base import GenerativeModel, ModelConfig
from . import losses, samplers, schedules
from .guidance import with_guidance


def default_channel_mults(image_size: int) -> tuple[int, ...]:
    """UNet levels for a square image: halve while the side stays even and >= 4 (at most 4 levels).

    The first halving doubles the width; later levels keep it (8 -> (1, 2); 16, 28 -> (1, 2, 2);
    32, 64 -> (1, 2, 2, 2)).
    """
    mults = [1]
    side = image_size
    while len(mults) < 4 and side % 2 == 0 and side // 2 >= 4:
        mults.append(2)
        side //= 2
    return tuple(mults)


# The measurements behind these defaults: docs/notes/diffusion.md
@dataclass
class DiffusionConfig(ModelConfig):
    """Diffusion model settings; the defaults are tuned for 8x8 digits on a CPU.

    ``steps`` is the number of denoiser calls of the ``dpm++2m`` and ``ddim`` samplers; ``ddpm``
    always takes every one of the ``num_train_timesteps``.
    """

    supports_conditional: ClassVar[bool] = True
    caps: ClassVar[dict[str, int]] = {
        "num_train_timesteps": 10_000,
        "base_channels": 1024,
        "channel_mults": 16,
        "num_res_blocks": 32,
        "attention_heads": 64,
    }
    # the process and its training
    objective: str = "v"  # v | eps | x0: what the UNet predicts
    schedule: str = "cosine"  # linear | cosine
    num_train_timesteps: int = 1000
    lr: float = 1e-3
    cond_drop_prob: float = 0.1  # label dropout for classifier-free guidance (conditional only)
    # the network (nn.unet.UNet)
    base_channels: int = 32
    # () = by image size: 8 -> (1, 2), 16/28 -> (1, 2, 2), 32+ -> (1, 2, 2, 2)
    channel_mults: tuple[int, ...] = ()
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = ()
    attention_heads: int = 4
    dropout: float = 0.0
    # sampling defaults (``sample`` options override them)
    sampler: str = "dpm++2m"  # a name in samplers.SAMPLERS: dpm++2m | ddim | ddpm
    steps: int = 20  # denoiser calls of dpm++2m / ddim
    eta: float = 0.0  # ddim noise: 0 deterministic, 1 = ddpm's posterior noise
    guidance_scale: float = 1.0  # default for sampling a conditional model; 1 = no guidance
    clip_x0: bool = True  # clamp predicted x0 to [-1, 1] at every sampling step

    def __post_init__(self):
        super().__post_init__()
        self.channel_mults = tuple(self.channel_mults) or default_channel_mults(self.image_size)
        self.attention_resolutions = tuple(self.attention_resolutions)
        T = self.num_train_timesteps
        if self.objective not in losses.OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(losses.OBJECTIVES)} (got {self.objective!r})"
            )
        if self.schedule not in schedules.SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(schedules.SCHEDULES)} (got {self.schedule!r})"
            )
        if T < 2:
            raise ValueError(f"num_train_timesteps must be >= 2 (got {T}); 1000 is usual")
        if self.base_channels < 4:
            raise ValueError(f"base_channels must be >= 4 (got {self.base_channels}); try 32 or 64")
        if any(m < 1 for m in self.channel_mults):
            raise ValueError(
                f"channel_mults must be ints >= 1, or () for the size-based default (got {self.channel_mults})"
            )
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**(len(channel_mults)-1) = {factor}; "
                f"use fewer channel_mults or a size divisible by {factor}"
            )
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1 (got {self.num_res_blocks})")
        sides = [self.image_size // 2**i for i in range(len(self.channel_mults))]
        bad = [r for r in self.attention_resolutions if r not in sides]
        if bad:
            raise ValueError(
                f"attention_resolutions {bad} are not feature-map sides of this UNet; choose from {sides} or ()"
            )
        if self.attention_heads < 1:
            raise ValueError(f"attention_heads must be >= 1 (got {self.attention_heads})")
        for r in self.attention_resolutions:
            width = self.base_channels * self.channel_mults[sides.index(r)]
            if width % self.attention_heads:
                raise ValueError(
                    f"attention_heads ({self.attention_heads}) must divide the width {width} at side {r}; "
                    "change attention_heads or base_channels"
                )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.cond_drop_prob < 1:
            raise ValueError(f"cond_drop_prob must be in [0, 1) (got {self.cond_drop_prob}); 0.1 is usual")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0 (got {self.guidance_scale}); 1 means no guidance")
        if self.sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(samplers.SAMPLERS)} (got {self.sampler!r})")
        if not 1 <= self.steps <= T:
            raise ValueError(f"steps must be in 1..num_train_timesteps={T} (got {self.steps}); lower steps")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0 (got {self.eta}); 0 is deterministic DDIM")
        if self.eta > 0 and "eta" not in samplers.SAMPLERS[self.sampler].options:
            raise ValueError(
                f"eta applies to the ddim sampler only (sampler is {self.sampler!r}); set sampler=ddim"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 25000, "warmup": 100}


class Diffusion(GenerativeModel):
    """DDPM / DDIM over a UNet; class-conditional with classifier-free guidance when configured.

    The UNet is trained at integer timesteps; samplers see continuous noise levels
    ``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` (``samplers``' notation): the model builds their
    grid from its training levels (``self.sigmas``) and its denoiser maps a level back to the
    timestep it came from.
    """

    family = "diffusion"
    trains_on_unlabeled = True  # the null class of classifier-free guidance
    config_class = DiffusionConfig
    sample_options = ("sampler", "steps", "eta", "guidance_scale", "variance")
    start_note = "denoised by the sampler"

    def __init__(self, config: DiffusionConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        c = config
        self.net = UNet(
            c.channels,
            c.image_size,
            base_channels=c.base_channels,
            channel_mults=c.channel_mults,
            num_res_blocks=c.num_res_blocks,
            attention_resolutions=c.attention_resolutions,
            num_classes=c.num_classes if c.conditional else 0,
            dropout=c.dropout,
            heads=c.attention_heads,
        )
        # derived from the config, so not saved with the weights
        alpha_bar = schedules.alpha_bar(c.schedule, c.num_train_timesteps)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)  # (T,) float32
        self.register_buffer("sigmas", schedules.sigmas(alpha_bar), persistent=False)  # (T,) float64

    @property
    def noise_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.channels, c.image_size, c.image_size)

    # -- training -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Simple loss: MSE between the UNet output and the objective's target at a random t.

        Args:
            x: (B, C, H, W) clean images in [-1, 1].
            y: (B,) labels (conditional models; negative = unlabeled) or None.
            generator: None (global RNG) or a list of B per-image generators; each image draws
                its timestep, its noise and its label dropout from it, in that order.
        """
        c = self.config
        b, dev = x.shape[0], x.device
        u = seeding.rand((b,), generator, dev)  # (B,) uniform -> timestep
        t = (u * c.num_train_timesteps).long().clamp(max=c.num_train_timesteps - 1)
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        a = self.alpha_bar[t].view(b, 1, 1, 1)
        xt = losses.add_noise(x, eps, a)
        labels = self._labels(b, y, generator, dev)
        pred = self.net(xt, t, labels)
        mse = losses.mse_per_image(pred, losses.target(c.objective, x, eps, a))  # (B,)
        return {"loss": mse.mean(), "mse": mse.mean().detach()}

    def _labels(self, b: int, y, generator, dev) -> torch.Tensor | None:
        """Training labels: the null class where unlabelled or dropped (classifier-free guidance)."""
        c = self.config
        if not c.conditional:
            return None
        null = torch.full((b,), c.num_classes, dtype=torch.long, device=dev)
        labels = null if y is None else y.to(dev).long()
        drop = seeding.rand((b,), generator, dev) < c.cond_drop_prob
        return torch.where(drop | (labels < 0), null, labels)

    def train_defaults(self) -> dict:
        """Trainer settings the defaults were tuned with (docs/notes/diffusion.md)."""
        return dict(TRAIN_DEFAULTS)

    # -- sampling -------------------------------------------------------------------
    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """(B,) long training timestep of (B,) float64 levels: the one a level of ``self.sigmas``
        came from, else the one nearest in log sigma."""
        levels = self.sigmas
        i = torch.searchsorted(levels, sigma).clamp(1, len(levels) - 1)
        below = sigma.log() - levels[i - 1].log() <= levels[i].log() - sigma.log()
        return torch.where(below, i - 1, i)

    def denoise_x0(self, x: torch.Tensor, sigma, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted clean image at noise level ``sigma`` from the UNet, not clipped; y=None is the null class.

        ``sigma``: a float, or a (B,) tensor of per-image levels (distillation's teacher). The UNet
        runs at :meth:`timestep`; the conversion to x0 uses ``alpha_bar`` of ``sigma`` itself
        (on the training grid, exactly ``self.alpha_bar[t]``).
        """
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0]).contiguous()
        pred = self.net(x, self.timestep(sigma), y)
        a = schedules.alpha_bar_of(sigma).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return losses.to_x0(self.config.objective, pred, x, a)

    def _denoiser(self, labels: torch.Tensor | None, scale: float):
        """The sampler's (x, sigma) -> x0: guidance when labelled, then clipping to [-1, 1] if configured."""
        guided = with_guidance(self.denoise_x0, labels, scale) if labels is not None else self.denoise_x0
        if not self.config.clip_x0:
            return guided
        return lambda x, sigma: guided(x, sigma).clamp(-1, 1)

    def _sampler_options(self, sampler: str, steps: int | None, given: dict) -> dict:
        """Check ``steps`` and the per-sampler options against the table; the options to pass."""
        T = self.config.num_train_timesteps
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(samplers.SAMPLERS)}")
        spec = samplers.SAMPLERS[sampler]
        if steps is not None and not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T} (num_train_timesteps) (got {steps})")
        if spec.every_step and steps is not None and steps != T:
            few = [n for n, s in samplers.SAMPLERS.items() if not s.every_step]
            few.sort(key=lambda n: n != DiffusionConfig.sampler)  # the default first
            raise ValueError(
                f"the {sampler} sampler takes all {T} steps; "
                f"use sampler={' or '.join(map(repr, few))} for fewer steps"
            )
        samplers.check_options(sampler, given)
        options = {k: v for k, v in given.items() if v is not None}
        # options the config holds a default for (eta)
        options.update(
            {k: getattr(self.config, k) for k in spec.options if k not in options and hasattr(self.config, k)}
        )
        return options

    @torch.no_grad()
    def sample(
        self,
        n: int,
        y=None,
        seed: int | None = None,
        generator=None,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        variance: str | None = None,
        **options,
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1] on the model's device.

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image from
                its own generator (after its start noise), so image k stays fixed by (seed, k).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            sampler: a name in ``samplers.SAMPLERS``: "ddpm", "ddim" or "dpm++2m" (default:
                config.sampler).
            steps: denoiser calls of ddim / dpm++2m (default config.steps); ddpm always uses
                num_train_timesteps.
            eta: ddim noise level (default config.eta).
            guidance_scale: classifier-free guidance of a conditional model (default config.guidance_scale).
            variance: ddpm step variance, "posterior" (default) or "beta".
        """
        self.check_sample_options(options, steps=steps, eta=eta, guidance_scale=guidance_scale)
        c = self.config
        sampler = c.sampler if sampler is None else sampler
        opts = self._sampler_options(sampler, steps, {"eta": eta, "variance": variance})
        labels = self.check_labels(n, y)
        if guidance_scale is not None and not c.conditional:
            raise ValueError("guidance_scale applies to conditional models only (e.g. ddpm-cond); drop it")
        scale = c.guidance_scale if guidance_scale is None else guidance_scale

        with self.eval_mode():
            gens = seeding.resolve(n, seed, generator, self.device)
            x = seeding.randn((n, *self.noise_shape), gens, self.device)
            if c.conditional and labels is None:
                # no labels given: a uniform class per image, drawn from the image's own generator
                labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
            levels = samplers.grid(sampler, self.sigmas, steps or c.steps)
            x = samplers.SAMPLERS[sampler].fn(self._denoiser(labels, scale), x, levels, gens, **opts)
        return x.clamp(-1, 1)

    @property
    def likelihood_note(self) -> str:
        """How ``log_likelihood`` treats the discrete levels (copied onto bpd/nll metric cards)."""
        return (
            f"variational lower bound (Ho et al. 2020, eq. 5) with a discretised Gaussian decoder on "
            f"{self.config.levels} levels; each image draws its noise from its own generator"
        )

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """Variational lower bound on log p(x), nats per image (Ho et al., 2020, eq. 5).

        The model is the ``ddpm`` sampler's (posterior variance, predicted x0 clipped when
        ``clip_x0``) down to the step where the noise is a quarter of a grey level, then a
        discretised Gaussian decoder on ``config.levels`` levels (``losses.variational_bound``).
        About one UNet call per training step for each batch; each image draws its noise from its
        own generator (``seed``), so the value does not depend on the batch.

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            y: labels for a conditional model (None = the null class).

        Returns:
            (B,) float64 lower bound on log p(x) in nats (bits per dim = -value / (C*H*W*ln 2)).
        """
        x = x.to(self.device)
        labels = None if y is None else self.check_labels(x.shape[0], y)
        gens = generator if generator is not None else seeding.image_generators(x.shape[0], seed, self.device)
        denoise = self._denoiser(labels, 1.0)

        def at_timestep(xt, t):  # the bound walks the training steps
            return denoise(xt, self.sigmas[t])

        with self.eval_mode():
            return losses.variational_bound(
                at_timestep, x, self.alpha_bar, self.config.levels, generator=gens
            )
