"""Data order and training randomness as pure functions of (seed, batch draw, global image index).

The data order comes from a seeded permutation per epoch and every image's training noise from
its own generator, so (1) resume is exact without replaying anything, and (2) N processes on
disjoint shards of a global batch compute the same update as one process on the whole batch.
"""

from __future__ import annotations

import hashlib

import torch


def mix(*ints: int) -> int:
    """A 63-bit seed from a tuple of integers (stable across runs and machines)."""
    h = hashlib.blake2b(repr(ints).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


class BatchStream:
    """Global batches of indices: a fresh seeded permutation per epoch, read in order."""

    def __init__(self, n: int, seed: int, epoch: int = 0, offset: int = 0):
        self.n, self.seed, self.epoch, self.offset = n, seed, epoch, offset
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(mix(self.seed, epoch, 1)))

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.offset == self.n:
                self.epoch, self.offset = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
            m = min(k, self.n - self.offset)
            out.append(self._perm[self.offset : self.offset + m])
            self.offset += m
            k -= m
        return torch.cat(out)


def training_generators(seed: int, draw: int, start: int, count: int, device) -> list[torch.Generator]:
    """Generators of the training noise of global images ``start .. start+count-1`` of batch ``draw``.

    (Sampling uses :func:`genvision.seeding.image_generators`, keyed by sample seed and index.)
    """
    return [torch.Generator(device).manual_seed(mix(seed, draw, start + i, 2)) for i in range(count)]


def augmentation_generator(seed: int, draw: int) -> torch.Generator:
    """The generator of batch ``draw``'s data-side randomness (dynamic binarisation, ...)."""
    return torch.Generator().manual_seed(mix(seed, draw, 3))


def pixel_noise_generator(seed: int, draw: int) -> torch.Generator:
    """The generator of batch ``draw``'s pixel perturbation (``TrainConfig.pixel_noise``)."""
    return torch.Generator().manual_seed(mix(seed, draw, 4))
