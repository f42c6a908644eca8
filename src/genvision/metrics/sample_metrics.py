"""The metrics of generated samples in a feature space: one ``compute(inputs) -> dict`` each.

Each takes the :class:`~genvision.metrics.table.Inputs` the driver gathered once (samples, their
features and logits, the train / test reference features, the shared card) and returns its
``metrics.json`` entry: ``value``, extras, and a ``card`` (the shared card plus what this metric
adds). The maths lives in :mod:`.fid`, :mod:`.kid`, :mod:`.inception_score`, :mod:`.manifold`
and :mod:`.memorization`; this file only wires it to the inputs and writes the cards.

Precision/recall/density/coverage compare against a seeded random subset of the stored train
features of the same size as the generated set (as the prdc paper), computed once for all four.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import domain, fid, manifold
from .inception_score import inception_score
from .kid import kid
from .memorization import memorization
from .sources import quantise

if TYPE_CHECKING:
    from .inputs import Inputs

PRDC = ("precision", "recall", "density", "coverage")


def fid_metric(inputs: Inputs) -> dict:
    """FID against the train split, its floor (test vs train), per-class FIDs of conditional models."""
    gen_f, labels, extractor = inputs.gen_features, inputs.labels, inputs.extractor
    train_ref, test_ref = inputs.train_ref, inputs.test_ref
    value = fid.frechet_distance(*fid.statistics(gen_f), train_ref.mu, train_ref.sigma)
    floor = fid.frechet_distance(test_ref.mu, test_ref.sigma, train_ref.mu, train_ref.sigma)
    result = {
        "value": value,
        "floor": floor,
        "ratio_to_floor": value / floor if floor > 0 else math.inf,
        "n_generated": len(gen_f),
        "n_reference": train_ref.n,
        "n_floor": test_ref.n,
        "features": extractor.name,
        "reference": "train split",
        "floor_definition": "test split against train split",
        "note": "FID is biased upwards at small N; compare values at equal n_generated",
    }
    if extractor.judge is not None:
        result["judge"] = extractor.judge.info()
    if labels is not None and (train_ref.labels >= 0).any():
        per_class = []
        for c in range(int(labels.max()) + 1):
            g, r = gen_f[labels == c], train_ref.features[train_ref.labels == c]
            per_class.append(fid.fid_from_features(g, r) if len(g) > 1 and len(r) > 1 else "n/a")
        result["per_class"] = per_class
        result["per_class_reference"] = (
            f"stored train features of each class ({len(train_ref.features)} in all)"
        )
    result["card"] = {
        **inputs.card,
        "trace": "sum sqrt(eig(S1^1/2 S2 S1^1/2)), numpy.linalg.eigh, float64",
        "statistics": "mean and unbiased covariance, float64, streamed over the reference split",
    }
    return result


def kid_metric(inputs: Inputs) -> dict:
    """KID against the stored train features, seeded subsets."""
    s = inputs.settings
    k = kid(
        inputs.train_ref.features,
        inputs.gen_features,
        subsets=s.kid_subsets,
        subset_size=s.kid_subset_size,
        seed=s.seed,
    )
    settings = {key: k.pop(key) for key in ("subsets", "subset_size", "degree", "gamma", "coef", "seed")}
    card = {
        **inputs.card,
        "n_reference": len(inputs.train_ref.features),
        "kid": settings,
        "dtype": "float64 kernels",
    }
    return {**k, "card": card}


def is_metric(inputs: Inputs) -> dict:
    """Inception Score of the extractor's logits (Inception's, or the domain judge's)."""
    logits, extractor = inputs.gen_logits, inputs.extractor
    s = inception_score(logits, splits=min(inputs.settings.is_splits, len(logits)), seed=inputs.settings.seed)
    note = (
        "Inception 1008-way logits without bias"
        if extractor.name == "inception"
        else f"{extractor.name} logits (no Inception file): scores confident, diverse classes of this "
        f"dataset, at most {logits.shape[1]}; not comparable with papers' IS"
    )
    return {
        "value": s["value"],
        "std": s["std"],
        "max_possible": s["max_possible"],
        "card": {
            **inputs.card,
            "logits": note,
            "splits": s["splits"],
            "std": "sample std over splits (ddof 1)",
        },
    }


def prdc_metric(name: str, inputs: Inputs) -> dict:
    """Precision, recall, density or coverage (``name``); the four are computed together once."""
    k = inputs.settings.nearest_k
    if len(inputs.gen_features) <= k:
        return {"value": "n/a", "reason": f"{name} needs more than k={k} generated images"}
    p, card = inputs.once("prdc", lambda: _prdc(inputs))
    return {"value": p[name], "card": card}


def _prdc(inputs: Inputs) -> tuple[dict, dict]:
    seed = inputs.settings.seed
    real = _subset(inputs.train_ref.features, len(inputs.gen_features), seed)
    p = manifold.prdc(real, inputs.gen_features, k=inputs.settings.nearest_k)
    card = {
        **inputs.card,
        "n_reference": p["n_real"],
        "k": p["k"],
        "reference_subset": f"seeded (seed {seed})",
    }
    return p, card


def memorization_metric(inputs: Inputs) -> dict:
    """Share of samples nearer a training image than test images come; a picture of the closest."""
    train_ref, images, train_ds = inputs.train_ref, inputs.images, inputs.train_ds
    figures, order, nearest = memorization(inputs.gen_features, inputs.test_ref.features, train_ref.features)
    picture = None
    if inputs.target is not None:
        from ..viz import save_grid

        train_x, _ = train_ds.batch(train_ref.index[nearest], generator=torch.Generator().manual_seed(0))
        picture = "memorization.png"
        save_grid(
            torch.cat([images[order], train_x.float()]),
            inputs.target / picture,
            nrow=len(order),
            levels=train_ds.levels,
        )
    return {
        **figures,
        "picture": picture,
        "card": {
            **inputs.card,
            "space": f"{inputs.extractor.name} features, Euclidean",
            "n_reference": len(train_ref.features),
        },
    }


def conditional_accuracy_metric(inputs: Inputs) -> dict:
    """How often the domain judge predicts the class each sample was asked for."""
    images, labels = inputs.images, inputs.labels
    judge = inputs.extractor.judge or domain.get_judge(inputs.train_ds, inputs.test_ds)
    predicted = torch.cat([judge.logits(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)])
    per_class = [
        float((predicted[labels == c] == c).double().mean()) for c in range(inputs.model.config.num_classes)
    ]
    return {
        "value": float((predicted == labels).double().mean()),
        "per_class": per_class,
        "judge_test_accuracy": judge.accuracy,
        "card": {**inputs.card, "judge": judge.info(), "labels": "image k asks for class k mod num_classes"},
    }


def diagnostics(inputs: Inputs) -> dict:
    """With the domain judge as extractor: the samples' class histogram and the judge's confidence."""
    extractor, logits = inputs.extractor, inputs.gen_logits
    if extractor.name != "domain" or logits is None:
        return {}
    return {
        "class_histogram": class_histogram(logits, extractor.judge),
        "confidence": {
            "samples": float(logits.softmax(dim=1).max(dim=1).values.mean()),
            "test_split": extractor.judge.meta["test_confidence"],
            "judge_test_accuracy": extractor.judge.accuracy,
        },
    }


def class_histogram(logits: torch.Tensor, judge) -> dict:
    """Judge-predicted class counts of generated images, their entropy and the test split's."""
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(dim=1), minlength=k).tolist()
    out = {"counts": counts, "entropy_nats": _entropy(counts), "max_entropy_nats": math.log(k)}
    if "test_class_counts" in judge.meta:
        out["test_split_counts"] = judge.meta["test_class_counts"]
        out["test_split_entropy_nats"] = _entropy(judge.meta["test_class_counts"])
    return out


def domain_fid(images, train_ds, test_ds) -> tuple[float, float]:
    """(domain FID of ``images`` against the train split, the floor); images float (N, C, H, W)."""
    judge = domain.get_judge(train_ds, test_ds)
    x = quantise(torch.as_tensor(images), train_ds.levels)
    value = fid.frechet_distance(*fid.statistics(fid.extract(judge, x)), *judge.stats["train"])
    return value, judge.floor


def _subset(features: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    if len(features) <= size:
        return features
    return features[torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:size]]


def _entropy(counts) -> float:
    p = np.asarray(counts, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())
