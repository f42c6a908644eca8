"""Samplers: plain functions of a denoiser, a start tensor and the training schedule.

Every sampler takes ``denoise(x_t, t) -> predicted x_0`` (same shape as ``x_t``, ``t`` a Python int
in 0..T-1), so the parameterisation (eps / v / x0), clipping and guidance all live in the
denoiser and no sampler knows about them. Randomness comes only from ``generator``: one
``torch.Generator`` or a list of per-image generators (see :mod:`genvision.seeding`).

Notation (Ho et al., 2020; Song et al., 2021): ``a = alpha_bar[t]``, ``a_prev`` / ``a_next`` the
level of the step the sampler moves to (1 after the last step), ``x0`` the predicted clean
image, ``eps`` the noise it implies at ``x_t``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import seeding

Denoiser = Callable[[torch.Tensor, int], torch.Tensor]
VARIANCES = ("posterior", "beta")


def ddpm(
    denoise: Denoiser,
    x: torch.Tensor,
    alpha_bar: torch.Tensor,
    *,
    variance: str = "posterior",
    generator: seeding.Generators = None,
) -> torch.Tensor:
    """Ancestral sampling (Ho et al., 2020, Algorithm 2), one denoiser call per training step.

    Each step draws ``x_{t-1} ~ N(mean, var)`` with the posterior mean of
    ``q(x_{t-1} | x_t, x_0 = predicted x0)`` (eq. 7) and ``var`` either that posterior's variance
    ``beta~_t = beta_t (1 - a_prev) / (1 - a)`` (``"posterior"``, exact when the data is a point) or
    ``beta_t`` (``"beta"``, exact when the data is N(0, I)). No noise is added at the last step.

    Args:
        denoise: (x_t, t) -> predicted x0.
        x: (B, C, H, W) start noise x_{T-1} ~ N(0, I).
        alpha_bar: (T,) training schedule.
        variance: "posterior" or "beta".
        generator: torch.Generator, list of per-image generators, or None (global RNG).

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    if variance not in VARIANCES:
        raise ValueError(f"unknown ddpm variance {variance!r}; known: {', '.join(VARIANCES)}")
    alpha_bar = alpha_bar.to(device=x.device, dtype=torch.float64)
    for t in range(len(alpha_bar) - 1, -1, -1):
        a = alpha_bar[t]
        a_prev = alpha_bar[t - 1] if t > 0 else a.new_tensor(1.0)
        beta = 1 - a / a_prev
        x0 = denoise(x, t)
        # posterior q(x_{t-1} | x_t, x_0): mean = c0 * x0 + ct * x_t (Ho et al., eq. 7)
        c0 = a_prev.sqrt() * beta / (1 - a)
        ct = (1 - beta).sqrt() * (1 - a_prev) / (1 - a)
        x = (c0 * x0 + ct * x).to(x.dtype)
        if t > 0:
            var = beta * (1 - a_prev) / (1 - a) if variance == "posterior" else beta
            x = x + var.sqrt().to(x.dtype) * seeding.randn(x.shape, generator, x.device, x.dtype)
    return x


def timesteps(T: int, steps: int) -> list[int]:
    """``steps`` timesteps from T-1 down to 0, evenly spaced (all of them when steps == T)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T} (got {steps})")
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()


def ddim(
    denoise: Denoiser,
    x: torch.Tensor,
    alpha_bar: torch.Tensor,
    steps: int,
    *,
    eta: float = 0.0,
    generator: seeding.Generators = None,
) -> torch.Tensor:
    """DDIM (Song et al., 2021, eq. 12) on ``steps`` evenly spaced timesteps; deterministic at eta = 0.

    ``eta = 1`` with every step (``steps = T``) is DDPM's ancestral sampler with posterior variance.

    Args:
        denoise: (x_t, t) -> predicted x0.
        x: (B, C, H, W) start noise ~ N(0, I).
        alpha_bar: (T,) training schedule.
        steps: number of denoiser calls, 1..T.
        eta: 0 deterministic; 1 the DDPM posterior noise level.
        generator: torch.Generator, list of per-image generators, or None (global RNG).

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (got {eta})")
    alpha_bar = alpha_bar.to(device=x.device, dtype=torch.float64)
    ts = timesteps(len(alpha_bar), steps)
    for t, t_next in zip(ts, ts[1:] + [None]):
        a = alpha_bar[t]
        a_next = alpha_bar[t_next] if t_next is not None else a.new_tensor(1.0)
        x0 = denoise(x, t)
        eps = (x - a.sqrt().to(x.dtype) * x0) / (1 - a).sqrt().to(x.dtype)
        sigma = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)).sqrt()
        x = a_next.sqrt().to(x.dtype) * x0 + (1 - a_next - sigma**2).clamp(min=0).sqrt().to(x.dtype) * eps
        if eta > 0 and t_next is not None:
            x = x + sigma.to(x.dtype) * seeding.randn(x.shape, generator, x.device, x.dtype)
    return x


def dpm_solver_pp_2m(
    denoise: Denoiser,
    x: torch.Tensor,
    alpha_bar: torch.Tensor,
    steps: int,
    *,
    generator: seeding.Generators = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2): a second-order multistep probability-flow solver.

    Deterministic, on the same ``steps`` evenly spaced timesteps as :func:`ddim` and with the same
    number of denoiser calls, but each step extrapolates the predicted x0 linearly in
    ``lambda = log(sqrt(a) / sqrt(1 - a))`` from the last two calls instead of holding it constant
    (DDIM is the first-order member of the family: drop the extrapolation and it is ``ddim``).
    With ``h = lambda_next - lambda`` and ``r = h_prev / h``:

        D = (1 + 1 / (2 r)) x0 - 1 / (2 r) x0_prev      (D = x0 on the first step)
        x_next = sigma_next / sigma * x - alpha_next * (exp(-h) - 1) * D

    The last call (t = 0, or the last timestep) returns its x0 itself, as DDIM's last step does.
    ``generator`` is accepted for a uniform sampler signature and unused.

    Args:
        denoise: (x_t, t) -> predicted x0.
        x: (B, C, H, W) start noise ~ N(0, I).
        alpha_bar: (T,) training schedule.
        steps: number of denoiser calls, 1..T.

    Returns:
        (B, C, H, W) samples x_0 (not clamped).
    """
    del generator
    alpha_bar = alpha_bar.to(device=x.device, dtype=torch.float64)
    ts = timesteps(len(alpha_bar), steps)
    x0_prev, h_prev = None, None
    for t, t_next in zip(ts, ts[1:] + [None]):
        x0 = denoise(x, t)
        if t_next is None:
            return x0
        x, h = _dpm_2m_update(x, x0, x0_prev, h_prev, alpha_bar[t], alpha_bar[t_next])
        x0_prev, h_prev = x0, h
    return x


def _dpm_2m_update(x, x0, x0_prev, h_prev, a, a_next):
    """One DPM-Solver++(2M) update from level ``a`` to ``a_next``: ``(x_next, h)``.

    ``a``, ``a_next`` and ``h_prev`` are float64 tensors that broadcast against ``x`` (scalars, or
    one per image). ``x0_prev`` None (the first call), or ``h_prev`` 0 (a step that stayed put),
    gives the first-order (DDIM) update; otherwise D extrapolates x0 as in :func:`dpm_solver_pp_2m`.
    """
    h = 0.5 * ((a_next / (1 - a_next)).log() - (a / (1 - a)).log())  # lambda_next - lambda
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
    alpha_bar: torch.Tensor,
    t_from: torch.Tensor,
    t_to: torch.Tensor,
    calls: int,
) -> torch.Tensor:
    """Probability-flow ODE of each image from its own timestep to another, by DPM-Solver++(2M).

    The few-step distillation target (``Diffusion`` with a ``teacher``): the teacher carries image b
    from ``t_from[b]`` to ``t_to[b]`` (``-1`` = the clean end, alpha_bar = 1) in ``calls`` denoiser
    calls on integer timesteps evenly spaced in ``sigma^(1/7)`` between the two, with
    :func:`dpm_solver_pp_2m`'s update (first order on the first call); a segment to the clean end
    goes to t = 0 in ``calls - 1`` of them and its last call returns its x0, as the samplers' last
    step does. A sub-step that rounds to the timestep it starts from leaves the image as it is (and
    the next one is first order).

    Args:
        denoise: (x_t, t) -> predicted x0, ``t`` a (B,) long tensor of per-image timesteps.
        x: (B, C, H, W) images at ``t_from``.
        alpha_bar: (T,) training schedule.
        t_from, t_to: (B,) long, ``T - 1 >= t_from >= t_to >= -1``.
        calls: denoiser calls, >= 1.

    Returns:
        (B, C, H, W) the images at ``t_to``.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1 (got {calls})")
    T = len(alpha_bar)
    levels = alpha_bar.to(device=x.device, dtype=torch.float64)
    t_from, t_to = t_from.to(x.device).long(), t_to.to(x.device).long()
    if bool((t_from < t_to).any() | (t_to < -1).any() | (t_from < 0).any() | (t_from > T - 1).any()):
        raise ValueError(f"ode_segment needs T - 1 >= t_from >= t_to >= -1 (T = {T})")
    shape = (-1,) + (1,) * (x.dim() - 1)

    # sub-step timesteps evenly spaced in sigma^(1/7), sigma = sqrt((1 - a) / a) (Karras et al., 2022):
    # evenly spaced t puts too few near t = 0, evenly spaced log-SNR too many near t = T - 1 (on a
    # Gaussian target at 4 calls the worst segment of a 10-step grid is off by 0.02, against 0.08
    # and 0.03). To the clean end: to t = 0, then one step.
    key = ((1 - levels) / levels).pow(1 / 14)  # increasing in t
    to_clean = t_to < 0
    end = torch.where(to_clean, torch.zeros_like(t_to), t_to)
    spans = torch.where(to_clean, torch.full_like(t_to, calls - 1), torch.full_like(t_to, calls))
    grid = [t_from]
    for j in range(1, calls + 1):
        frac = (torch.full_like(key[t_from], j) / spans.clamp(min=1)).clamp(max=1)
        target = key[t_from] + (key[end] - key[t_from]) * frac
        nearest = (key.view(1, -1) - target.view(-1, 1)).abs().argmin(dim=1)
        nearest = torch.minimum(torch.maximum(nearest, end), grid[-1])  # inside the segment, descending
        grid.append(torch.where((j > spans) & to_clean, torch.full_like(t_to, -1), nearest))
    grid[-1] = t_to  # exact ends (a one-call segment to the clean end goes straight there)

    x0_prev, h_prev = None, None
    for j in range(calls):
        t, t_next = grid[j], grid[j + 1]
        x0 = denoise(x, t.clamp(min=0))
        a = levels[t.clamp(min=0)].view(shape)
        clean = (t_next < 0).view(shape)
        # the clean end keeps x0 below; a stand-in level there keeps h finite
        a_next = torch.where(clean, torch.full_like(a, 0.5), levels[t_next.clamp(min=0)].view(shape))
        moved, h = _dpm_2m_update(x, x0, x0_prev, h_prev, a, a_next)
        x = torch.where(clean, x0, moved)  # a sub-step that rounds to t has h = 0: x stays
        x0_prev, h_prev = x0, h  # after a step that stayed put (h = 0) the next is first order
    return x


SAMPLERS = {"ddpm": ddpm, "ddim": ddim, "dpm++2m": dpm_solver_pp_2m}
