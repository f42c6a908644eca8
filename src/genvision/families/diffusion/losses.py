"""Training objectives of the denoiser and conversions between its parameterisations.

Notation: ``a = alpha_bar[t]`` (broadcast to the image shape), ``x_t = sqrt(a) x_0 + sqrt(1-a) eps``.
The network predicts one of:

- ``eps``: the noise (Ho et al., 2020);
- ``v``: the velocity ``v = sqrt(a) eps - sqrt(1-a) x_0`` (Salimans & Ho, 2022);
- ``x0``: the clean image.

Given ``x_t`` any one determines the others, so samplers work with predicted ``x_0`` only and
the model converts once. Every objective is a plain mean squared error on its own target (the
"simple" loss); they differ in how they weight the noise levels.
"""

from __future__ import annotations

import torch

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


def mse_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, ...) pair -> (B,) mean squared error of each image."""
    return (pred - target).pow(2).flatten(1).mean(dim=1)
