"""Classifier-free guidance (Ho & Salimans, 2022) as a wrapper the samplers never see.

A conditional denoiser trained with label dropout predicts both ``x0(x_t, y)`` and the
unconditional ``x0(x_t, null)``; guidance extrapolates from the second towards the first:

    guided = uncond + scale * (cond - uncond)

``scale = 1`` is plain conditional sampling, ``0`` unconditional, ``> 1`` sharper and less
diverse. Because ``x0`` and ``eps`` are affine in each other at fixed ``x_t``, guiding ``x0`` is the
same as guiding ``eps``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def with_guidance(
    denoise: Callable[[torch.Tensor, float | torch.Tensor, torch.Tensor | None], torch.Tensor],
    y: torch.Tensor,
    scale: float,
) -> Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]:
    """Turn a conditional denoiser ``(x, sigma, y) -> x0`` into a guided ``(x, sigma) -> x0``.

    Args:
        denoise: conditional denoiser; ``y=None`` must mean "no label" (the null class).
        y: (B,) int64 labels.
        scale: guidance scale (>= 0); 1 skips the unconditional call, 0 the conditional one.
    """
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0 (got {scale})")

    def guided(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if scale == 1:
            return denoise(x, sigma, y)
        uncond = denoise(x, sigma, None)
        if scale == 0:
            return uncond
        cond = denoise(x, sigma, y)
        return uncond + scale * (cond - uncond)

    return guided
