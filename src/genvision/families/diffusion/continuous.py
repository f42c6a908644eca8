"""Continuous-time members of the diffusion family: flow matching and EDM.

**Flow matching / rectified flow** (Lipman et al., 2023; Liu et al., 2023; the logit-normal time
of Esser et al., 2024): images travel on straight lines ``x_t = (1 - t) x_0 + t eps`` from the
data (t = 0) to noise (t = 1); the UNet predicts the velocity ``v = eps - x_0`` and sampling
integrates ``dx/dt = v`` backwards (Euler or Heun). In ``samplers``' notation the level of time
``t`` is ``sigma = t / (1 - t)`` and the clean-image prediction is ``x_0 = x_t - t v``.

**EDM** (Karras et al., 2022): ``x = x_0 + sigma eps`` with log-normal training levels, and the
network wrapped in the preconditioning ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` that
keeps the network's inputs and targets at unit variance at every level; the loss weighting makes
the effective target of ``F`` unit-weighted too. Sampling is Heun's method on the EDM grid
(``samplers.edm_heun``).

Both reach every sampler of the table through :meth:`denoise_x0`, as DDPM does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import seeding
from . import losses, samplers
from .denoiser import Denoiser, DenoiserConfig

#: the UNet's time embedding is sinusoidal over about 0..1000 (as for DDPM's timesteps)
TIME_SCALE = 1000.0
TIME_SAMPLING = ("logit-normal", "uniform")


# ----------------------------------------------------------------------------- flow matching
@dataclass
class FlowMatchingConfig(DenoiserConfig):
    """Flow-matching settings; the sampling defaults are Heun in 20 calls on the uniform-t grid."""

    time_sampling: str = "logit-normal"  # logit-normal | uniform: the training times t
    logit_mean: float = 0.0  # logit-normal location: t = sigmoid(N(logit_mean, logit_std^2))
    logit_std: float = 1.0
    t_max: float = 0.999  # the sampler's start time (t = 1 is pure noise, an infinite level)
    sampler: str = "heun"
    steps: int = 20

    def __post_init__(self):
        super().__post_init__()
        if self.time_sampling not in TIME_SAMPLING:
            raise ValueError(
                f"time_sampling must be one of {', '.join(TIME_SAMPLING)} (got {self.time_sampling!r})"
            )
        if not self.logit_std > 0:
            raise ValueError(f"logit_std must be > 0 (got {self.logit_std}); 1 is usual")
        if not 0.5 <= self.t_max < 1:
            raise ValueError(f"t_max must be in [0.5, 1) (got {self.t_max}); 0.999 is usual")


#: trainer settings flow matching trains with (``model.train_defaults()``; user flags override)
FLOW_TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 25000, "warmup": 100}


class FlowMatching(Denoiser):
    """Flow matching (rectified flow) over a UNet: velocity prediction on straight paths."""

    config_class = FlowMatchingConfig

    def draw_times(self, b: int, generator, dev) -> torch.Tensor:
        """(B,) float training times in (0, 1) from each image's generator."""
        c = self.config
        if c.time_sampling == "uniform":
            return seeding.rand((b,), generator, dev).clamp(1e-5, 1 - 1e-5)
        n = seeding.randn((b,), generator, dev)
        return torch.sigmoid(c.logit_mean + c.logit_std * n)

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """MSE between the predicted and the true velocity ``eps - x_0`` at a random time.

        Each image draws its time, its noise and its label dropout from its own generator.
        """
        b, dev = x.shape[0], x.device
        t = self.draw_times(b, generator, dev)
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        tt = t.to(x.dtype).view(b, 1, 1, 1)
        xt = (1 - tt) * x + tt * eps
        labels = self._labels(b, y, generator, dev)
        pred = self.net(xt, t * TIME_SCALE, labels)
        mse = losses.mse_per_image(pred, eps - x)
        return {"loss": mse.mean(), "mse": mse.mean().detach()}

    def train_defaults(self) -> dict:
        return dict(FLOW_TRAIN_DEFAULTS)

    def denoise_x0(self, x: torch.Tensor, sigma, y: torch.Tensor | None = None) -> torch.Tensor:
        """``x_0 = x_t - t v`` with ``x_t`` the VP-scaled ``x`` in flow coordinates."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0])
        t = sigma / (1 + sigma)
        shape = (-1,) + (1,) * (x.dim() - 1)
        xt = x * ((1 + sigma**2).sqrt() / (1 + sigma)).to(x.dtype).view(shape)
        v = self.net(xt, (t * TIME_SCALE).to(x.dtype), y)
        return xt - t.to(x.dtype).view(shape) * v

    def sigma_range(self) -> tuple[float, float]:
        t_min = 1e-3
        return t_min / (1 - t_min), self.config.t_max / (1 - self.config.t_max)

    def sampling_levels(self, sampler: str, steps: int) -> torch.Tensor:
        """In t from ``t_max``, evenly spaced or with the sampler's time shift (the EDM grid for ``edm``)."""
        spec = samplers.SAMPLERS[sampler]
        if spec.spacing == "karras":
            return self.karras_levels(steps, sampler)
        return samplers.flow_levels(self.config.t_max, spec.intervals(steps), spec.flow_shift)


# ----------------------------------------------------------------------------- EDM
@dataclass
class EDMConfig(DenoiserConfig):
    """EDM settings (Karras et al., 2022, Table 1, "ours"); sampling: Heun on the EDM grid."""

    sigma_data: float = 0.5  # the data's standard deviation (images in [-1, 1])
    p_mean: float = -1.2  # training levels: ln sigma ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    sampler: str = "edm"
    steps: int = 19  # ten steps: nine Heun steps and a last Euler step

    def __post_init__(self):
        super().__post_init__()
        if not self.sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0 (got {self.sigma_data}); 0.5 suits images in [-1, 1]")
        if not self.p_std > 0:
            raise ValueError(f"p_std must be > 0 (got {self.p_std}); 1.2 is usual")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(
                f"need 0 < sigma_min < sigma_max (got {self.sigma_min}, {self.sigma_max}); 0.002 and 80 are usual"
            )
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0 (got {self.rho}); 7 is usual")


class EDM(Denoiser):
    """EDM: a preconditioned denoiser trained at log-normal noise levels, sampled with Heun."""

    config_class = EDMConfig

    def precondition(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(c_skip, c_out, c_in, c_noise) of (B,) float64 levels (Karras et al., 2022, Table 1)."""
        sd = self.config.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        return c_skip, c_out, c_in, self.time_of(sigma)

    def time_of(self, sigma: torch.Tensor) -> torch.Tensor:
        """The UNet's time input: ``ln sigma`` mapped affinely so [sigma_min, sigma_max] is [0, 1000]."""
        c = self.config
        lo, hi = math.log(c.sigma_min), math.log(c.sigma_max)
        return (sigma.log() - lo) / (hi - lo) * TIME_SCALE

    def denoise_ve(self, x: torch.Tensor, sigma: torch.Tensor, y=None) -> torch.Tensor:
        """``D(x, sigma)`` of a variance-exploding ``x = x_0 + sigma eps``; ``sigma`` (B,) float64."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        c_skip, c_out, c_in, c_noise = self.precondition(sigma)
        f = self.net(x * c_in.to(x.dtype).view(shape), c_noise.to(x.dtype), y)
        return c_skip.to(x.dtype).view(shape) * x + c_out.to(x.dtype).view(shape) * f

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """``lambda(sigma) ||D(x_0 + sigma eps, sigma) - x_0||^2`` with ``lambda = 1 / c_out^2``.

        With that weighting the loss is the plain MSE of ``F`` against its effective target
        ``(x_0 - c_skip x) / c_out`` (unit variance at every level). Each image draws its level,
        its noise and its label dropout from its own generator.
        """
        c = self.config
        b, dev = x.shape[0], x.device
        n = seeding.randn((b,), generator, dev).double()
        sigma = (c.p_mean + c.p_std * n).exp()
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        shape = (b, 1, 1, 1)
        noisy = x + sigma.to(x.dtype).view(shape) * eps
        labels = self._labels(b, y, generator, dev)
        c_skip, c_out, c_in, c_noise = self.precondition(sigma)
        f = self.net(noisy * c_in.to(x.dtype).view(shape), c_noise.to(x.dtype), labels)
        target = (x - c_skip.to(x.dtype).view(shape) * noisy) / c_out.to(x.dtype).view(shape)
        mse = losses.mse_per_image(f, target)
        return {"loss": mse.mean(), "mse": mse.mean().detach()}

    def train_defaults(self) -> dict:
        return dict(FLOW_TRAIN_DEFAULTS)

    def denoise_x0(self, x: torch.Tensor, sigma, y: torch.Tensor | None = None) -> torch.Tensor:
        """``D`` at the VP-scaled ``x``: the variance-exploding ``x`` is ``x sqrt(1 + sigma^2)``."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0])
        shape = (-1,) + (1,) * (x.dim() - 1)
        return self.denoise_ve(x * (1 + sigma**2).sqrt().to(x.dtype).view(shape), sigma, y)

    def sigma_range(self) -> tuple[float, float]:
        return self.config.sigma_min, self.config.sigma_max

    def sampling_levels(self, sampler: str, steps: int) -> torch.Tensor:
        """The EDM grid (``rho`` from the config) for every sampler."""
        c = self.config
        intervals = samplers.SAMPLERS[sampler].intervals(steps)
        return samplers.karras_levels(c.sigma_min, c.sigma_max, intervals, c.rho)
