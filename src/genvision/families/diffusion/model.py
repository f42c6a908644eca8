"""Denoising diffusion (Ho et al., 2020) with DDIM sampling (Song et al., 2021) and classifier-free
guidance (Ho & Salimans, 2022): config and model glue.

The pieces live beside this file: ``schedules.py`` (alpha_bar and the noise levels sigma),
``losses.py`` (objectives, conversions, likelihood bound), ``samplers.py`` (the samplers on a grid
of noise levels, and the table ``sample`` dispatches through), ``guidance.py``, ``denoiser.py``
(what every model of the family shares: the UNet, labels, sampling), ``distill.py`` (the few-step
student, a subclass), ``continuous.py`` (flow matching and EDM), ``consistency.py`` and
``latent.py``. Training draws ``t``, the noise and the label dropout from the per-image
generators the trainer passes (else the global RNG); sampling draws only from per-image
generators (``seed``) or the one given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel
from . import losses, samplers, schedules
from .denoiser import Denoiser, DenoiserConfig, default_channel_mults  # noqa: F401 (re-exported)


# The measurements behind these defaults: docs/notes/diffusion.md
@dataclass
class DiffusionConfig(DenoiserConfig):
    """Discrete-time diffusion settings; the defaults are tuned for 8x8 digits on a CPU."""

    caps: ClassVar[dict[str, int]] = {"num_train_timesteps": 10_000}
    # the process and its training
    objective: str = "v"  # v | eps | x0: what the UNet predicts
    schedule: str = "cosine"  # linear | cosine
    num_train_timesteps: int = 1000

    def __post_init__(self):
        super().__post_init__()
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
        if not 1 <= self.steps <= T:
            raise ValueError(f"steps must be in 1..num_train_timesteps={T} (got {self.steps}); lower steps")


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 25000, "warmup": 100}


class Diffusion(Denoiser):
    """DDPM / DDIM over a UNet; class-conditional with classifier-free guidance when configured.

    The UNet is trained at integer timesteps; samplers see continuous noise levels
    ``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` (``samplers``' notation): the model builds their
    grid from its training levels (``self.sigmas``) and its denoiser maps a level back to the
    timestep it came from.
    """

    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        c = config
        # derived from the config, so not saved with the weights
        alpha_bar = schedules.alpha_bar(c.schedule, c.num_train_timesteps)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)  # (T,) float32
        self.register_buffer("sigmas", schedules.sigmas(alpha_bar), persistent=False)  # (T,) float64

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

    def sigma_range(self) -> tuple[float, float]:
        return float(self.sigmas[0]), float(self.sigmas[-1])

    def check_steps(self, sampler: str, steps: int | None) -> None:
        T = self.config.num_train_timesteps
        if steps is not None and not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T} (num_train_timesteps) (got {steps})")
        if samplers.SAMPLERS[sampler].every_step and steps is not None and steps != T:
            few = [n for n, s in samplers.SAMPLERS.items() if not (s.every_step or s.consistency)]
            few.sort(key=lambda n: n != DiffusionConfig.sampler)  # the default first
            raise ValueError(
                f"the {sampler} sampler takes all {T} steps; "
                f"use sampler={' or '.join(map(repr, few))} for fewer steps"
            )

    def sampling_levels(self, sampler: str, steps: int) -> torch.Tensor:
        """Training levels evenly spaced in timestep (``samplers.grid``); the EDM grid for ``edm``."""
        if samplers.SAMPLERS[sampler].spacing == "karras":
            return self.karras_levels(steps, sampler)
        return samplers.grid(sampler, self.sigmas, steps)

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
        denoise = self.denoiser(labels, 1.0)

        def at_timestep(xt, t):  # the bound walks the training steps
            return denoise(xt, self.sigmas[t])

        with self.eval_mode():
            return losses.variational_bound(
                at_timestep, x, self.alpha_bar, self.config.levels, generator=gens
            )
