"""Noise schedules: the cumulative signal level ``alpha_bar[t]`` of the forward process.

Notation (Ho et al., 2020): ``x_t = sqrt(alpha_bar[t]) * x_0 + sqrt(1 - alpha_bar[t]) * eps``,
``alpha_bar[t] = prod_{s<=t} (1 - beta[s])``, timesteps ``t = 0 .. T-1`` (paper's 1 .. T).

- ``linear``: beta rises linearly (Ho et al., 2020). The endpoints 1e-4 .. 0.02 are for T = 1000
  and are scaled by 1000 / T (as in Nichol & Dhariwal, 2021), so any T ends near pure noise.
- ``cosine``: ``alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2)`` (Nichol & Dhariwal, 2021), betas
  capped at 0.999 so the last step stays finite.

Schedules are computed in float64 and returned as float32 (T,) tensors in (0, 1), decreasing.

Samplers see continuous noise levels ``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` (the noise to
signal ratio; 0 is the clean end): :func:`sigmas` gives those of the training steps, and
:func:`timesteps` the evenly spaced steps a few-step sampler visits.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("linear", "cosine")


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) float64 betas rising linearly; the 1000-step endpoints scaled by 1000 / T."""
    scale = 1000 / T
    return torch.linspace(scale * beta_start, min(scale * beta_end, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """(T,) float64 betas of the cosine schedule."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,) alpha_bar at 0/T .. T/T
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def alpha_bar(name: str, T: int) -> torch.Tensor:
    """(T,) float32 cumulative product of (1 - beta) for schedule ``name`` with T steps."""
    if name == "linear":
        betas = linear_betas(T)
    elif name == "cosine":
        betas = cosine_betas(T)
    else:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    return torch.cumprod(1 - betas, dim=0).float()


def betas_from_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    """(T,) per-step betas implied by a (T,) alpha_bar: ``1 - alpha_bar[t] / alpha_bar[t-1]``."""
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    return 1 - alpha_bar / prev


def sigmas(alpha_bar: torch.Tensor) -> torch.Tensor:
    """(T,) float64 noise levels ``sigma[t] = sqrt((1 - alpha_bar[t]) / alpha_bar[t])``, increasing in t."""
    a = alpha_bar.double()
    return ((1 - a) / a).sqrt()


def alpha_bar_of(sigma: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`sigmas`: ``alpha_bar = 1 / (1 + sigma^2)`` (1 at the clean end, sigma = 0)."""
    return 1 / (1 + sigma**2)


def timesteps(T: int, steps: int) -> list[int]:
    """``steps`` timesteps from T-1 down to 0, evenly spaced (all of them when steps == T)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T} (got {steps})")
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()


# ----------------------------------------------------------------------------- samplers' level grids
def level_list(noise_levels: torch.Tensor) -> list[float]:
    """A sampler's grid of noise levels as Python floats (exact float64 values), after checking its shape and order."""
    levels = torch.as_tensor(noise_levels, dtype=torch.float64).flatten()
    if len(levels) < 2 or levels[-1] != 0 or bool((levels[1:] >= levels[:-1]).any()):
        raise ValueError("noise_levels must decrease strictly to 0 (at least one step)")
    return levels.tolist()


def karras_levels(sigma_min: float, sigma_max: float, intervals: int, rho: float = 7.0) -> torch.Tensor:
    """(intervals + 1,) float64 levels evenly spaced in ``sigma^(1/rho)`` from sigma_max to sigma_min, then 0.

    Karras et al. (2022), eq. 5: rho = 7 spends the steps near the clean end, where the ODE bends.
    """
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max (got {sigma_min}, {sigma_max})")
    if intervals < 1:
        raise ValueError(f"intervals must be >= 1 (got {intervals})")
    if intervals == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    ramp = torch.linspace(0, 1, intervals, dtype=torch.float64)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    levels = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([levels, levels.new_zeros(1)])


def flow_levels(t_max: float, intervals: int, shift: float = 1.0) -> torch.Tensor:
    """(intervals + 1,) float64 levels in flow time ``t`` from ``t_max`` down to 0, as sigma.

    ``sigma = t / (1 - t)``; ``t_max < 1`` keeps the start level finite. ``shift`` 1: evenly spaced
    in ``t``; ``shift`` s > 1 maps each evenly spaced ``u`` in [0, 1] to ``s u / (1 + (s - 1) u)``
    (then times ``t_max``), which spends more of the steps at high noise (s < 1: at low noise; the
    time shift of Esser et al., 2024; why second-order samplers use 2 here: docs/notes/diffusion.md).
    """
    if not 0 < t_max < 1:
        raise ValueError(f"t_max must be in (0, 1) (got {t_max})")
    if intervals < 1:
        raise ValueError(f"intervals must be >= 1 (got {intervals})")
    if not shift > 0:
        raise ValueError(f"shift must be > 0 (got {shift})")
    u = torch.linspace(1, 0, intervals + 1, dtype=torch.float64)
    t = t_max * shift * u / (1 + (shift - 1) * u)
    return t / (1 - t)
