"""Samplers: plain functions of a denoiser, a start tensor and a grid of continuous noise levels.

Every sampler has one signature::

    sampler(denoise, x, noise_levels, generators, **opts) -> x_0

``denoise(x, sigma) -> predicted x_0`` (same shape as ``x``; ``sigma`` a float, or a (B,) tensor
of per-image levels) holds the parameterisation (eps / v / x0), clipping and guidance, so no
sampler knows about them. Randomness comes only from ``generators``: one ``torch.Generator``,
a list of per-image generators (see :mod:`genvision.seeding`) or None (the global RNG).
:data:`SAMPLERS` is the table ``Diffusion.sample`` dispatches through; :func:`grid` builds a
sampler's levels from a discrete model's training levels. Here: the stochastic and multistep
samplers of the VP chain (DDPM, DDIM, DPM-Solver++(2M), RePaint) and the table; the ODE samplers
and consistency sampling are in ``ode.py``, the level grids (Karras, flow) in ``schedules.py``,
all reached as ``samplers.NAME``.

Notation (Ho et al., 2020; Song et al., 2021; Karras et al., 2022):

- ``sigma = sqrt((1 - a) / a)``: the noise level, ``a = alpha_bar`` the variance-preserving (VP)
  signal level, ``a = 1 / (1 + sigma^2)``; ``sigma = 0`` is the clean end.
- ``x`` is VP-scaled: ``x = sqrt(a) x_0 + sqrt(1 - a) eps = sqrt(a) (x_0 + sigma eps)`` (the
  variance-exploding ``x_0 + sigma eps`` times ``sqrt(a)``); the start noise is N(0, I).
- ``noise_levels``: (N + 1,) float64, ``sigma_0 > sigma_1 > ... > sigma_N = 0``: N denoiser calls,
  one at every level but the last. ``a`` / ``a_next`` are the levels of a step's two ends.
- ``x0`` the predicted clean image, ``eps`` the noise it implies at ``x``, ``lambda = -log sigma``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ... import seeding
from . import schedules
from .ode import (  # noqa: F401 (the ODE samplers, reached as samplers.NAME like the rest)
    COORDINATES,
    Denoiser,
    consistency,
    edm_heun,
    euler,
    heun,
    heun_intervals,
    heun_plan,
    to_coordinates,
)
from .schedules import flow_levels, karras_levels  # noqa: F401 (level grids, as samplers.NAME)

VARIANCES = ("posterior", "beta")


def _a(sigma: float) -> torch.Tensor:
    """alpha_bar of the level ``sigma`` as a float64 scalar tensor."""
    return schedules.alpha_bar_of(torch.tensor(sigma, dtype=torch.float64))


def ddpm(
    denoise: Denoiser,
    x: torch.Tensor,
    noise_levels: torch.Tensor,
    generators: seeding.Generators = None,
    *,
    variance: str = "posterior",
) -> torch.Tensor:
    """Ancestral sampling (Ho et al., 2020, Algorithm 2), one denoiser call per level.

    Each step draws ``x_next ~ N(mean, var)`` with the posterior mean of
    ``q(x_next | x, x_0 = predicted x0)`` (eq. 7) and ``var`` either that posterior's variance
    ``beta~ = beta (1 - a_next) / (1 - a)`` (``"posterior"``, exact when the data is a point) or
    ``beta = 1 - a / a_next`` (``"beta"``, exact when the data is N(0, I)). No noise is added at the
    last step. Run on every training level it is the paper's sampler.

    Args:
        denoise: (x, sigma) -> predicted x0.
        x: (B, C, H, W) start noise ~ N(0, I) at ``noise_levels[0]``.
        noise_levels: (N + 1,) float64 levels down to 0.
        generators: torch.Generator, list of per-image generators, or None (global RNG).
        variance: "posterior" or "beta".

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    if variance not in VARIANCES:
        raise ValueError(f"unknown ddpm variance {variance!r}; known: {', '.join(VARIANCES)}")
    levels = schedules.level_list(noise_levels)
    for sigma, sigma_next in zip(levels, levels[1:]):
        a, a_next = _a(sigma), _a(sigma_next)
        beta = 1 - a / a_next
        x0 = denoise(x, sigma)
        # posterior q(x_next | x, x_0): mean = c0 * x0 + ct * x (Ho et al., eq. 7)
        c0 = a_next.sqrt() * beta / (1 - a)
        ct = (1 - beta).sqrt() * (1 - a_next) / (1 - a)
        x = (c0 * x0 + ct * x).to(x.dtype)
        if sigma_next > 0:
            var = beta * (1 - a_next) / (1 - a) if variance == "posterior" else beta
            x = x + var.sqrt().to(x.dtype) * seeding.randn(x.shape, generators, x.device, x.dtype)
    return x


def ddim(
    denoise: Denoiser,
    x: torch.Tensor,
    noise_levels: torch.Tensor,
    generators: seeding.Generators = None,
    *,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al., 2021, eq. 12); deterministic at eta = 0.

    ``eta = 1`` on every training level is DDPM's ancestral sampler with posterior variance.

    Args:
        denoise: (x, sigma) -> predicted x0.
        x: (B, C, H, W) start noise ~ N(0, I) at ``noise_levels[0]``.
        noise_levels: (N + 1,) float64 levels down to 0 (N denoiser calls).
        generators: torch.Generator, list of per-image generators, or None (global RNG).
        eta: 0 deterministic; 1 the DDPM posterior noise level.

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (got {eta})")
    levels = schedules.level_list(noise_levels)
    for sigma, sigma_next in zip(levels, levels[1:]):
        a, a_next = _a(sigma), _a(sigma_next)
        x0 = denoise(x, sigma)
        eps = (x - a.sqrt().to(x.dtype) * x0) / (1 - a).sqrt().to(x.dtype)
        s = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)).sqrt()
        x = a_next.sqrt().to(x.dtype) * x0 + (1 - a_next - s**2).clamp(min=0).sqrt().to(x.dtype) * eps
        if eta > 0 and sigma_next > 0:
            x = x + s.to(x.dtype) * seeding.randn(x.shape, generators, x.device, x.dtype)
    return x


def dpm_solver_pp_2m(
    denoise: Denoiser,
    x: torch.Tensor,
    noise_levels: torch.Tensor,
    generators: seeding.Generators = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2): a second-order multistep probability-flow solver.

    Deterministic, with the same denoiser calls as :func:`ddim` on the same grid, but each step
    extrapolates the predicted x0 linearly in ``lambda = -log sigma`` from the last two calls
    instead of holding it constant (DDIM is the first-order member of the family: drop the
    extrapolation and it is ``ddim``). With ``h = lambda_next - lambda`` and ``r = h_prev / h``:

        D = (1 + 1 / (2 r)) x0 - 1 / (2 r) x0_prev      (D = x0 on the first step)
        x_next = sqrt(1 - a_next) / sqrt(1 - a) * x - sqrt(a_next) * (exp(-h) - 1) * D

    The last call (the step to sigma = 0) returns its x0 itself, as DDIM's last step does.
    ``generators`` is accepted for the uniform sampler signature and unused.

    Args:
        denoise: (x, sigma) -> predicted x0.
        x: (B, C, H, W) start noise ~ N(0, I) at ``noise_levels[0]``.
        noise_levels: (N + 1,) float64 levels down to 0 (N denoiser calls).

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    del generators
    levels = schedules.level_list(noise_levels)
    x0_prev, h_prev = None, None
    for sigma, sigma_next in zip(levels, levels[1:]):
        x0 = denoise(x, sigma)
        if sigma_next == 0:
            return x0
        sig, sig_next = (
            torch.tensor(sigma, dtype=torch.float64),
            torch.tensor(sigma_next, dtype=torch.float64),
        )
        x, h = _dpm_2m_update(x, x0, x0_prev, h_prev, sig, sig_next)
        x0_prev, h_prev = x0, h
    return x


def _dpm_2m_update(x, x0, x0_prev, h_prev, sigma, sigma_next):
    """One DPM-Solver++(2M) update from level ``sigma`` to ``sigma_next > 0``: ``(x_next, h)``.

    ``sigma``, ``sigma_next`` and ``h_prev`` are float64 tensors that broadcast against ``x``
    (scalars, or one per image). ``x0_prev`` None (the first call), or ``h_prev`` 0 (a step that
    stayed put), gives the first-order (DDIM) update; otherwise D extrapolates x0 as in
    :func:`dpm_solver_pp_2m`.
    """
    a, a_next = schedules.alpha_bar_of(sigma), schedules.alpha_bar_of(sigma_next)
    h = sigma.log() - sigma_next.log()  # lambda_next - lambda
    if x0_prev is None:
        d = x0
    else:
        k = torch.where(h_prev > 0, 0.5 * h / h_prev.clamp(min=1e-12), torch.zeros_like(h))  # 1 / (2 r)
        d = (1 + k.to(x.dtype)) * x0 - k.to(x.dtype) * x0_prev
    ratio = ((1 - a_next) / (1 - a)).sqrt().to(x.dtype)
    return ratio * x - (a_next.sqrt() * torch.expm1(-h)).to(x.dtype) * d, h


def ode_segment(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma_from: torch.Tensor,
    sigma_to: torch.Tensor,
    calls: int,
    train_levels: torch.Tensor,
) -> torch.Tensor:
    """Probability-flow ODE of each image from its own noise level to a lower one, by DPM-Solver++(2M).

    The few-step distillation target (``DiffusionStudent``): the teacher carries image b from
    ``sigma_from[b]`` to ``sigma_to[b]`` (0 = the clean end) in ``calls`` denoiser calls on levels of
    its training grid ``train_levels`` evenly spaced in ``sigma^(1/7)`` between the two (each
    rounded to the nearest training level), with :func:`dpm_solver_pp_2m`'s update (first order
    on the first call); a segment to the clean end goes to the lowest training level in
    ``calls - 1`` of them and its last call returns its x0, as the samplers' last step does. A
    sub-step that rounds to the level it starts from leaves the image as it is (and the next one
    is first order).

    Args:
        denoise: (x, sigma) -> predicted x0, ``sigma`` a (B,) float64 tensor of per-image levels.
        x: (B, C, H, W) images at ``sigma_from``.
        sigma_from, sigma_to: (B,) levels of ``train_levels`` (or 0 for ``sigma_to``),
            ``sigma_from >= sigma_to``.
        calls: denoiser calls, >= 1.
        train_levels: (T,) increasing levels the denoiser was trained at (``schedules.sigmas``).

    Returns:
        (B, C, H, W) the images at ``sigma_to``.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1 (got {calls})")
    levels = train_levels.to(device=x.device, dtype=torch.float64)
    sigma_from = sigma_from.to(device=x.device, dtype=torch.float64)
    sigma_to = sigma_to.to(device=x.device, dtype=torch.float64)
    if bool((sigma_from < sigma_to).any() | (sigma_to < 0).any() | (sigma_from <= 0).any()):
        raise ValueError("ode_segment needs sigma_from >= sigma_to >= 0 (0 = the clean end)")
    shape = (-1,) + (1,) * (x.dim() - 1)

    # sub-steps evenly spaced in sigma^(1/7) (Karras et al., 2022), as indices into the training
    # grid (-1 = the clean end); why this spacing: docs/notes/diffusion.md
    key = levels.pow(1 / 7)  # increasing in t

    def index(sigma):
        return (key.view(1, -1) - sigma.pow(1 / 7).view(-1, 1)).abs().argmin(dim=1)

    start = index(sigma_from)
    to_clean = sigma_to == 0
    end = torch.where(to_clean, torch.zeros_like(start), index(sigma_to))
    spans = torch.where(to_clean, torch.full_like(start, calls - 1), torch.full_like(start, calls))
    grid = [start]
    for j in range(1, calls + 1):
        frac = (torch.full_like(key[start], j) / spans.clamp(min=1)).clamp(max=1)
        target = key[start] + (key[end] - key[start]) * frac
        nearest = (key.view(1, -1) - target.view(-1, 1)).abs().argmin(dim=1)
        nearest = torch.minimum(torch.maximum(nearest, end), grid[-1])  # inside the segment, descending
        grid.append(torch.where((j > spans) & to_clean, torch.full_like(start, -1), nearest))
    grid[-1] = torch.where(to_clean, torch.full_like(start, -1), end)  # exact ends

    x0_prev, h_prev = None, None
    for j in range(calls):
        i, i_next = grid[j], grid[j + 1]
        sigma = levels[i]
        x0 = denoise(x, sigma)
        clean = (i_next < 0).view(shape)
        # the clean end keeps x0 below; a stand-in level there (sigma = 1) keeps h finite
        sigma_next = torch.where(i_next < 0, torch.ones_like(sigma), levels[i_next.clamp(min=0)])
        moved, h = _dpm_2m_update(x, x0, x0_prev, h_prev, sigma.view(shape), sigma_next.view(shape))
        x = torch.where(clean, x0, moved)  # a sub-step that rounds to its start has h = 0: x stays
        x0_prev, h_prev = x0, h  # after a step that stayed put (h = 0) the next is first order
    return x


# ----------------------------------------------------------------------------- level grids
def from_strength(noise_levels: torch.Tensor, strength: float) -> torch.Tensor:
    """The tail of a sampler's grid for SDEdit at ``strength`` in [0, 1]: from the highest level at
    or below flow time ``strength * t_top`` (``t = sigma / (1 + sigma)``, ``t_top`` the grid's
    first level's) down to 0. Strength 1 keeps the whole grid; a grid of one level (just 0) means
    no step: the input itself."""
    levels = torch.as_tensor(noise_levels, dtype=torch.float64)
    t = levels / (1 + levels)
    target = strength * float(t[0])
    keep = t <= target + 1e-12
    if not bool(keep[:-1].any()):
        return levels[-1:]
    return levels[int(keep.nonzero()[0]) :]


# ----------------------------------------------------------------------------- the table
def repaint(
    denoise: Denoiser,
    x: torch.Tensor,
    noise_levels: torch.Tensor,
    generators: seeding.Generators = None,
    *,
    resample: int = 1,
) -> torch.Tensor:
    """Ancestral sampling with RePaint's resampling (Lugmayr et al., 2022; jump length 1).

    For a denoiser whose clean estimate is held to a measurement (restoration: ``denoise`` projects
    it), each step is repeated ``resample`` + 1 times: after drawing ``x_next`` from the DDPM
    posterior q(x_next | x, x0) (``"posterior"`` variance, as :func:`ddpm`), every repeat but the
    last diffuses it back to the step's start, ``x = sqrt(a / a_next) x_next + sqrt(1 - a / a_next) eps``,
    and steps again: the filled region re-harmonises with the given one at every level. Costs
    ``resample + 1`` times the calls of one pass.

    Args:
        denoise, x, noise_levels, generators: as :func:`ddpm`.
        resample: extra repeats of every step (>= 0; 0 is :func:`ddpm`).
    """
    if resample < 0:
        raise ValueError(f"resample must be >= 0 (got {resample})")
    levels = schedules.level_list(noise_levels)
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        a, a_next = _a(sigma), _a(sigma_next)
        for r in range(resample + 1):
            x0 = denoise(x, sigma)
            if sigma_next == 0:
                x = x0
                break
            alpha = a / a_next  # the step's own alpha: x = sqrt(alpha) x_next + sqrt(1 - alpha) eps
            mean = (a_next.sqrt() * (1 - alpha) / (1 - a)) * x0 + (alpha.sqrt() * (1 - a_next) / (1 - a)) * x
            var = (1 - a_next) / (1 - a) * (1 - alpha)
            x_next = (mean + var.sqrt() * seeding.randn(x.shape, generators, x.device, x.dtype)).to(x.dtype)
            if r < resample:  # back to the step's start
                eps = seeding.randn(x.shape, generators, x.device, x.dtype)
                x = (alpha.sqrt() * x_next + (1 - alpha).sqrt() * eps).to(x.dtype)
            else:
                x = x_next
    return x


@dataclass(frozen=True)
class Sampler:
    """An entry of :data:`SAMPLERS`: the function and what it accepts beyond the grid."""

    fn: Callable[..., torch.Tensor]
    options: tuple[str, ...] = ()  # keyword options of ``fn``; every other sampler refuses them
    every_step: bool = False  # runs on every training level of a discrete model (no ``steps``)
    second_order: bool = False  # takes ``calls=steps``: two calls per step (:func:`heun_intervals`)
    spacing: str = "model"  # "model": the model's own grid; "karras": :func:`karras_levels`
    flow_shift: float = 1.0  # on a flow-time model's grid (:func:`flow_levels`): its time shift
    consistency: bool = False  # for consistency models only (its denoiser jumps to the clean end)

    def intervals(self, steps: int) -> int:
        """Steps on the level grid for ``steps`` denoiser calls."""
        return heun_intervals(steps) if self.second_order else steps


SAMPLERS: dict[str, Sampler] = {
    "ddpm": Sampler(ddpm, ("variance",), every_step=True),
    "ddim": Sampler(ddim, ("eta",)),
    # time shift 2 on flow models for the second-order ones: measured in docs/notes/diffusion.md
    "dpm++2m": Sampler(dpm_solver_pp_2m, flow_shift=2.0),
    "euler": Sampler(euler),
    "heun": Sampler(heun, second_order=True, flow_shift=2.0),
    "edm": Sampler(edm_heun, second_order=True, spacing="karras"),
    "consistency": Sampler(consistency, consistency=True),
}


def check_options(name: str, options: dict) -> None:
    """Refuse options (given, not None) that sampler ``name`` does not take, naming the one that does."""
    for option, value in options.items():
        if value is None or option in SAMPLERS[name].options:
            continue
        owners = [n for n, s in SAMPLERS.items() if option in s.options]
        raise ValueError(
            f"{option} applies to the {' / '.join(owners)} sampler only; use sampler='{owners[0]}'"
        )


def grid(name: str, train_levels: torch.Tensor, steps: int) -> torch.Tensor:
    """The levels sampler ``name`` runs on for a model trained at the (T,) increasing ``train_levels``.

    The sampler's steps for ``steps`` denoiser calls (:meth:`Sampler.intervals`: ``steps`` itself,
    about half for a second-order one; every level for a sampler that runs on every step), as
    training levels evenly spaced in timestep from the noisiest, then 0: a float64 grid.
    """
    T = len(train_levels)
    spec = SAMPLERS[name]
    ts = schedules.timesteps(T, T if spec.every_step else min(spec.intervals(steps), T))
    levels = train_levels.to(torch.float64)[ts]
    return torch.cat([levels, levels.new_zeros(1)])
