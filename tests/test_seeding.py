"""Per-image seeds: distinct across images and across seeds, on the CPU generator too."""

from __future__ import annotations

import torch

from genvision.seeding import image_generators, image_seed, randn, uniform_labels


def test_different_seeds_give_different_noise():
    # torch's CPU generator keeps only the low 32 bits of a seed: S * 2**32 + k collided for every S
    a = randn((4, 3), image_generators(4, 0))
    b = randn((4, 3), image_generators(4, 1))
    assert not torch.allclose(a, b)


def test_image_seeds_are_distinct_within_a_set_and_below_2_32():
    seeds = [image_seed(7, k) for k in range(10_000)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**32 for s in seeds)


def test_image_k_does_not_depend_on_where_the_batch_starts():
    whole = randn((6, 2), image_generators(6, 3))
    tail = randn((2, 2), image_generators(2, 3, start=4))
    assert torch.equal(whole[4:], tail)


def test_uniform_labels_cover_every_class_and_image_k_keeps_its_label():
    labels = uniform_labels(2000, 10, image_generators(2000, seed=3))
    assert labels.dtype == torch.long and int(labels.min()) == 0 and int(labels.max()) == 9
    assert torch.bincount(labels, minlength=10).min() > 150  # 200 expected per class
    alone = uniform_labels(1, 10, image_generators(1, seed=3, start=17))
    assert alone.item() == labels[17].item()
