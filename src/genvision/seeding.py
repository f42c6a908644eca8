"""Per-image randomness.

Image k of a sample set with seed S draws all of its randomness from its own generator,
``torch.Generator(device).manual_seed(S * 2**32 + k)`` (INTERFACES.md), so image k is the same
whatever the batch size. Samplers accept either one ``torch.Generator`` (one stream for the
whole batch) or a list of per-image generators; :func:`randn` hides the difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def image_generators(n: int, seed: int, device: str | torch.device = "cpu", start: int = 0) -> list:
    """One generator per image: image k uses seed ``seed * 2**32 + start + k``."""
    device = torch.device(device)
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got {seed})")
    return [torch.Generator(device).manual_seed(seed * 2**32 + start + k) for k in range(n)]


def _draw(fn, shape, generator: Generators, device, dtype) -> torch.Tensor:
    """``fn`` (torch.randn or torch.rand) of ``shape``; row k from generator k when given a list."""
    shape = tuple(shape)
    if generator is None or isinstance(generator, torch.Generator):
        return fn(shape, generator=generator, device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} per-image generators for a batch of {shape[0]}")
    rows = [fn(shape[1:], generator=g, device=device, dtype=dtype) for g in generator]
    return torch.stack(rows) if rows else torch.empty(shape, device=device, dtype=dtype)


def randn(shape, generator: Generators = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape``; with a list of generators, row k comes from generator k.

    Args:
        shape: full shape, (B, ...). With per-image generators B must equal their count.
        generator: None (global RNG), a ``torch.Generator``, or a list of per-image generators.
    """
    return _draw(torch.randn, shape, generator, device, dtype)


def rand(shape, generator: Generators = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Uniform [0, 1) noise, per-image like :func:`randn`."""
    return _draw(torch.rand, shape, generator, device, dtype)


def resolve(n: int, seed: int | None, generator, device) -> Generators:
    """The generator argument a sampler gets: per-image generators when a seed is given."""
    if seed is not None and generator is not None:
        raise ValueError("give either seed= (per-image seeds) or generator= (one stream), not both")
    if seed is not None:
        return image_generators(n, seed, device)
    return generator
