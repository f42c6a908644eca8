"""Deterministic ODE samplers (Euler, Heun, EDM's Heun) and multistep consistency sampling.

They share the signature and the notation of ``samplers.py`` (whose table lists them): a
denoiser, a VP-scaled start tensor, a float64 grid of noise levels decreasing to 0.

The probability-flow ODE reads ``dx/dtau = (x - x0) / tau`` (x0 the denoiser's prediction) in two
coordinate systems: the variance-exploding one of Karras et al. (2022), ``x = x_0 + sigma eps``
with ``tau = sigma``, and the flow-matching (rectified flow) one, ``x = (1 - t) x_0 + t eps`` with
``tau = t = sigma / (1 + sigma)``. A VP-scaled ``x`` becomes ``scale * x`` there. Euler steps are
the same in both (DDIM); second-order steps differ, because the ODE's curvature does:
docs/notes/diffusion.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ... import seeding
from . import schedules

Denoiser = Callable[[torch.Tensor, "float | torch.Tensor"], torch.Tensor]


COORDINATES = ("ve", "flow")


def to_coordinates(coords: str, sigma: float) -> tuple[float, float]:
    """``(scale, tau)`` of level ``sigma``: the VP-scaled ``x`` times ``scale`` is ``x`` in ``coords``."""
    if coords == "ve":
        return math.sqrt(1 + sigma**2), sigma
    if coords == "flow":
        return math.sqrt(1 + sigma**2) / (1 + sigma), sigma / (1 + sigma)
    raise ValueError(f"unknown coordinates {coords!r}; known: {', '.join(COORDINATES)}")


def heun_plan(intervals: int, calls: int | None) -> list[bool]:
    """Which of ``intervals`` steps take Heun's correction (a second call) for ``calls`` calls in all.

    The last step (to the clean end) is always an Euler step, as in Karras et al. (2022), Algorithm
    1; every other step is second order unless the budget is one call short, in which case the
    first (noisiest) step is Euler too. ``calls`` None: as many corrections as there are steps.
    """
    full = 2 * intervals - 1
    calls = full if calls is None else calls
    if not full - 1 <= calls <= full or calls < 1:
        raise ValueError(f"{intervals} steps take {full - 1} or {full} calls, not {calls}")
    plan = [True] * (intervals - 1) + [False]
    if calls == full - 1:
        plan[0] = False
    return plan


def heun_intervals(calls: int) -> int:
    """Steps of a second-order sampler spending exactly ``calls`` denoiser calls (see :func:`heun_plan`)."""
    if calls < 1:
        raise ValueError(f"calls must be >= 1 (got {calls})")
    return calls // 2 + 1


def _ode(coords: str, second_order: bool):
    """A deterministic sampler: Euler (or Heun) steps of ``dx/dtau = (x - x0) / tau`` in ``coords``."""

    def sample(
        denoise: Denoiser,
        x: torch.Tensor,
        noise_levels: torch.Tensor,
        generators: seeding.Generators = None,
        *,
        calls: int | None = None,
    ) -> torch.Tensor:
        del generators  # deterministic
        levels = schedules.level_list(noise_levels)
        plan = heun_plan(len(levels) - 1, calls) if second_order else [False] * (len(levels) - 1)
        scale, tau = to_coordinates(coords, levels[0])
        x = x * scale  # into the ODE's coordinates
        for (sigma, sigma_next), correct in zip(zip(levels, levels[1:]), plan):
            scale, tau = to_coordinates(coords, sigma)
            scale_next, tau_next = to_coordinates(coords, sigma_next)
            x0 = denoise(x / scale, sigma)
            d = (x - x0) / tau
            x_next = x + (tau_next - tau) * d
            if correct and sigma_next > 0:
                d_next = (x_next - denoise(x_next / scale_next, sigma_next)) / tau_next
                x_next = x + (tau_next - tau) * 0.5 * (d + d_next)
            x = x_next
        return x  # at sigma = 0 the coordinates are x_0 itself

    return sample


euler = _ode("flow", second_order=False)
euler.__doc__ = """Euler steps of the flow-matching ODE ``dx/dt = v`` (Liu et al., 2023; Lipman et al., 2023).

One denoiser call per level. On any grid it equals deterministic :func:`ddim` (both hold the
predicted x0 constant over a step); it is listed under the name flow-matching users know.
"""
heun = _ode("flow", second_order=True)
heun.__doc__ = """Heun's second-order method on the flow-matching ODE (in ``t = sigma / (1 + sigma)``).

``calls`` denoiser calls in all (:func:`heun_plan`: the last step, and the first when the
budget is even, are Euler steps). On a flow-matching model's straight-ish paths this is the
sampler of choice; it runs on any model of this family.
"""
edm_heun = _ode("ve", second_order=True)
edm_heun.__doc__ = """The deterministic sampler of Karras et al. (2022), Algorithm 1: Heun steps in ``sigma``.

The ODE ``dx/dsigma = (x - x0) / sigma`` of ``x = x_0 + sigma eps``, on the EDM level grid
(:func:`karras_levels`), ``calls`` denoiser calls in all (:func:`heun_plan`).
"""


def consistency(
    denoise: Denoiser,
    x: torch.Tensor,
    noise_levels: torch.Tensor,
    generators: seeding.Generators = None,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al., 2023, Algorithm 1), one call per level.

    ``denoise`` is a consistency function (it maps a noisy image straight to the clean end). The
    first call maps the start noise to an image; each later level re-noises that image to
    ``sigma`` with fresh noise from ``generators`` and maps it back.
    """
    levels = schedules.level_list(noise_levels)[:-1]
    x0 = denoise(x, levels[0])
    for sigma in levels[1:]:
        noise = seeding.randn(x.shape, generators, x.device, x.dtype)
        x0 = denoise((x0 + sigma * noise) / math.sqrt(1 + sigma**2), sigma)
    return x0
