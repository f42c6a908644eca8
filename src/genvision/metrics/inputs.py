"""What an evaluation runs with and gathers: its :class:`Settings`, the vocabulary of what a
metric needs, and the :class:`Inputs` the driver gathers once for every applicable metric.

Kept apart from the table (``table.py``) and the compute functions (``sample_metrics.py``,
``likelihood.py``) so that each of those imports this module and none imports another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import manifold

if TYPE_CHECKING:
    from .features import Extractor, Reference


@dataclass(frozen=True)
class Settings:
    """How one evaluation runs; every value is recorded in the cards.

    Attributes:
        n: generated images (models) or the first n images (files); None = default per dataset.
        seed: sampling seed (image k uses seeding.image_seed(seed, k), whatever ``batch_size``);
            also seeds the KID subsets, the IS shuffle, the PRDC reference subset and the
            likelihood noise.
        batch_size: images per ``model.sample`` and per likelihood call.
        features: "domain", "inception", "inception:PATH", "FILE.py:Class", an ``nn.Module`` or
            an :class:`~genvision.metrics.features.Extractor`; None = Inception for 32 px and up
            when its weights file is present, else the domain judge.
        sample_options: extra keyword options for ``model.sample`` (sampler, steps, ...).
        reference_n: use only the first ``reference_n`` images of each split as the reference.
        likelihood_n: score only the first ``likelihood_n`` test images (default all).
        kid_subsets, kid_subset_size, is_splits, nearest_k: metric settings.
        bootstrap: resamples for the FID and KID intervals; None = the protocol's default
            (:mod:`~genvision.metrics.protocol`), 0 = no interval.
        progress: show progress bars (stderr).
    """

    n: int | None = None
    seed: int = 0
    batch_size: int = 250
    features: object = None
    sample_options: dict | None = None
    reference_n: int | None = None
    likelihood_n: int | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    nearest_k: int = manifold.NEAREST_K
    bootstrap: int | None = None
    progress: bool = False

    def replace(self, **options) -> Settings:
        """A copy with ``options`` changed; an unknown name is a TypeError naming the known ones."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"unknown evaluate option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return dataclasses.replace(self, **options)


SAMPLES = "samples"
TRAIN_FEATURES = "train_features"
TEST_FEATURES = "test_features"
LOGITS = "logits"
CONDITIONAL = "conditional"
PROMPTS = "prompts"
CONTROL = "control"
#: model methods a metric may need (asked through ``genvision.families.base.has``)
CAPABILITIES = ("log_likelihood", "elbo", "reconstruct", "encode", "decode")
NEEDS = (SAMPLES, TRAIN_FEATURES, TEST_FEATURES, LOGITS, CONDITIONAL, PROMPTS, CONTROL, *CAPABILITIES)


@dataclass
class Inputs:
    """What the applicable metrics need, gathered once by the driver.

    The sample fields stay None when no applicable metric needs samples.

    Attributes:
        settings: the run's settings (seed, batch size, metric settings...).
        train_ds, test_ds: the data's splits; model: the model, or None for image files.
        target: folder for pictures, or None (nothing written).
        common: the card every metric shares (seed, versions, dtype...).
        images: generated images, float (N, C, H, W) on the data's levels.
        extractor: the feature extractor; gen_features (N, D) float32, gen_logits (N, K) or None.
        train_ref, test_ref: reference features of the splits (test_ref only when needed).
        labels: (N,) int64 requested classes of a conditional model, else None.
        card: the sample metrics' shared card (common card + extractor and counts).
    """

    settings: Settings
    train_ds: object
    test_ds: object
    model: torch.nn.Module | None
    target: Path | None
    common: dict
    images: torch.Tensor | None = None
    extractor: Extractor | None = None
    gen_features: torch.Tensor | None = None
    gen_logits: torch.Tensor | None = None
    train_ref: Reference | None = None
    test_ref: Reference | None = None
    labels: torch.Tensor | None = None
    card: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict, repr=False)

    def once(self, key: str, make: Callable[[], object]):
        """``make()`` the first time ``key`` is asked for, the same value after (shared work)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]
