"""Per-image randomness.

Image k of a sample set with seed S draws all of its randomness from its own generator,
``torch.Generator(device).manual_seed(image_seed(S, k))`` (INTERFACES.md), so image k is the same
whatever the batch size.

Why not ``S * 2**32 + k``: torch's CPU generator (mt19937) keeps only the low 32 bits of a seed,
so that formula gave every seed S the same images. ``image_seed`` stays below 2**32: a 32-bit hash
of S plus k (mod 2**32). Within a set the seeds are distinct; two sets of n images with different
seeds share a generator only when their hashes fall within n of each other (probability about
2n / 2**32, 5e-6 for n = 10,000). Samplers accept either one ``torch.Generator`` (one stream for the
whole batch) or a list of per-image generators; :func:`randn` hides the difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def image_seed(seed: int, k: int) -> int:
    """The generator seed of image ``k`` of a set with seed ``seed``: below 2**32 (see above)."""
    if seed < 0 or k < 0:
        raise ValueError(f"seed and image index must be >= 0 (got {seed}, {k})")
    base = int.from_bytes(
        hashlib.blake2b(f"genvision-image-seed:{seed}".encode(), digest_size=4).digest(), "little"
    )
    return (base + k) % 2**32


def image_generators(n: int, seed: int, device: str | torch.device = "cpu", start: int = 0) -> list:
    """One generator per image: image k uses ``image_seed(seed, start + k)``."""
    device = torch.device(device)
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got {seed})")
    return [torch.Generator(device).manual_seed(image_seed(seed, start + k)) for k in range(n)]


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


def uniform_labels(n: int, num_classes: int, generator: Generators = None, device=None) -> torch.Tensor:
    """(n,) int64 classes, uniform over ``num_classes``; image k's from its own generator like :func:`rand`."""
    u = rand((n,), generator, device)
    return (u * num_classes).long().clamp(max=num_classes - 1)


def resolve(n: int, seed: int | None, generator, device) -> Generators:
    """The generator argument a sampler gets: per-image generators when a seed is given."""
    if seed is not None and generator is not None:
        raise ValueError("give either seed= (per-image seeds) or generator= (one stream), not both")
    if seed is not None:
        return image_generators(n, seed, device)
    return generator
