"""Training objectives of the denoiser and conversions between its parameterisations.

Notation: ``a = alpha_bar[t]`` (broadcast to the image shape), ``x_t = sqrt(a) x_0 + sqrt(1-a) eps``.
The network predicts one of:

- ``eps``: the noise (Ho et al., 2020);
- ``v``: the velocity ``v = sqrt(a) eps - sqrt(1-a) x_0`` (Salimans & Ho, 2022);
- ``x0``: the clean image.

Given ``x_t`` any one determines the others, so samplers work with predicted ``x_0`` only and
the model converts once. Every objective is a plain mean squared error on its own target (the
"simple" loss); they differ in how they weight the noise levels. :func:`variational_bound` is the
likelihood bound (Ho et al., 2020, eq. 5) used for evaluation, not training.
"""

from __future__ import annotations

import torch

from ...nn import pixels

OBJECTIVES = ("eps", "v", "x0")


def add_noise(x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Forward process: ``x_t = sqrt(a) x_0 + sqrt(1 - a) eps``; ``a`` broadcastable to ``x0``."""
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def target(objective: str, x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """What the network should output for ``objective`` given the clean image and the noise."""
    if objective == "eps":
        return eps
    if objective == "v":
        return a.sqrt() * eps - (1 - a).sqrt() * x0
    if objective == "x0":
        return x0
    raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")


def to_x0(objective: str, pred: torch.Tensor, xt: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Predicted clean image from a prediction of kind ``objective`` at noisy ``xt``."""
    if objective == "eps":
        return (xt - (1 - a).sqrt() * pred) / a.sqrt()
    if objective == "v":
        return a.sqrt() * xt - (1 - a).sqrt() * pred
    if objective == "x0":
        return pred
    raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")


def from_x0(objective: str, x0: torch.Tensor, xt: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_x0`: the prediction of kind ``objective`` that implies ``x0`` at ``xt``."""
    return target(objective, x0, eps_from_x0(x0, xt, a), a)


def eps_from_x0(x0: torch.Tensor, xt: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Noise implied by a clean-image prediction: ``(x_t - sqrt(a) x_0) / sqrt(1 - a)``."""
    return (xt - a.sqrt() * x0) / (1 - a).sqrt()


def ddim_x0_target(xt: torch.Tensor, xs: torch.Tensor, a_t: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
    """The x0 a DDIM step from ``xt`` (level ``a_t``) to level ``a_s`` must predict to land on ``xs``.

    DDIM moves ``x_s = sqrt(a_s) x0 + sqrt(1 - a_s) (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)``; solved for
    x0 with ``r = sqrt((1 - a_s) / (1 - a_t))`` that is ``(x_s - r x_t) / (sqrt(a_s) - r sqrt(a_t))``
    (``xs`` itself at the clean end, ``a_s = 1``). The target of few-step distillation (Salimans &
    Ho, 2022): one student DDIM step lands where several teacher steps do.
    """
    r = ((1 - a_s) / (1 - a_t)).sqrt()
    return (xs - r * xt) / (a_s.sqrt() - r * a_t.sqrt())


def mse_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, ...) pair -> (B,) mean squared error of each image."""
    return (pred - target).pow(2).flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------- variational bound
def gaussian_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """Elementwise KL(N(mean1, var1) || N(mean2, var2)) in nats (scalars or tensors)."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def decoder_step(alpha_bar: torch.Tensor, levels: int) -> int:
    """The step the likelihood model decodes from: the last one whose noise, in x0 units
    ``sqrt((1 - a) / a)``, is at most a quarter of a grey-level bin (``1 / (2 (levels - 1))``); 0 if none.
    """
    sigma = ((1 - alpha_bar.double()) / alpha_bar.double()).sqrt()
    below = (sigma <= 1 / (2 * (levels - 1))).nonzero()
    return int(below[-1]) if len(below) else 0


def variational_bound(denoise, x0: torch.Tensor, alpha_bar: torch.Tensor, levels: int, *, generator=None):
    """Lower bound on log p(x0) of the ancestral (posterior-variance) model, nats per image.

    Ho et al. (2020), eq. 5, with the chain stopped at a step ``t0`` (:func:`decoder_step`):

        log p(x0) >= -KL(q(x_T | x0) || N(0, I)) - sum_{t > t0} L_t + log p(x0 | x_t0)

    ``L_t = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))`` at one draw of ``x_t ~ q(x_t | x0)`` per step,
    with ``p(x_{t-1} | x_t)`` = N(posterior mean at the predicted x0, beta~_t) as the ``ddpm`` sampler
    draws it. The decoder ``p(x0 | x_t0)`` is a Gaussian at the predicted x0 with half the noise
    level of ``x_t0`` (in x0 units), discretised to the ``levels`` grey levels. Below ``t0`` the
    noise is too small to move a pixel to another grey level, yet each step there still charges
    for the network's imprecision (measured: docs/notes/diffusion.md). Costs one denoiser call
    per step above ``t0`` plus one.

    Args:
        denoise: (x_t, t) -> predicted x0.
        x0: (B, C, H, W) data on the ``levels`` grid in [-1, 1] (snapped to it here).
        alpha_bar: (T,) training schedule.
        levels: grey levels of the data.
        generator: torch.Generator, list of per-image generators, or None.

    Returns:
        (B,) float64 lower bound on log p(x0) in nats (<= 0 in expectation over the noise draws).
    """
    from ... import seeding

    ab = alpha_bar.to(device=x0.device, dtype=torch.float64)
    T, t0 = len(ab), decoder_step(alpha_bar, levels)
    x0 = pixels.snap(x0, levels)
    x0d = x0.double()

    def per_image(v):
        return v.flatten(1).sum(dim=1)

    zero, one = torch.zeros_like(x0d), ab.new_tensor(1.0)
    bound = -per_image(gaussian_kl(ab[-1].sqrt() * x0d, 1 - ab[-1], zero, one))  # prior term
    for t in range(T - 1, t0 - 1, -1):
        a = ab[t]
        eps = seeding.randn(x0.shape, generator, x0.device, x0.dtype)
        xt = add_noise(x0, eps, a.to(x0.dtype))
        x0_hat = denoise(xt, t).double()
        if t > t0:
            # both Gaussians have variance beta~_t, so the KL is the squared mean gap over 2 beta~
            a_prev = ab[t - 1]
            beta = 1 - a / a_prev
            post_var = beta * (1 - a_prev) / (1 - a)
            c0 = a_prev.sqrt() * beta / (1 - a)
            bound = bound - per_image((c0 * (x0d - x0_hat)) ** 2 / (2 * post_var))
        else:
            std = 0.5 * ((1 - a) / a).sqrt()
            bound = bound + per_image(pixels.discretized_gaussian_log_prob(x0d, x0_hat, std.log(), levels))
    return bound
