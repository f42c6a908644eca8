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

from . import fid, judges, manifold, protocol
from .features import domain_extractor, reference
from .inception_score import inception_score
from .kid import kid
from .memorization import memorization
from .sources import quantise

if TYPE_CHECKING:
    from .inputs import Inputs

PRDC = ("precision", "recall", "density", "coverage")


def fid_metric(inputs: Inputs) -> dict:
    """FID against the reference half, its floor at the same N, a bootstrap interval, per-class FIDs.

    The equal-N protocol (:mod:`.protocol`): the floor is real images of the held half, as many as
    there are samples, scored against the same reference.
    """
    gen_f, labels, extractor, ref = inputs.gen_features, inputs.labels, inputs.extractor, inputs.train_ref
    value = fid.frechet_distance(*fid.statistics(gen_f), ref.mu, ref.sigma)
    fl = protocol.floor(ref.mu, ref.sigma, ref.held_features, len(gen_f))
    boot = _fid_bootstrap(inputs)
    result = {
        "value": value,
        "ci": boot.get("ci"),
        "population_ci": boot.get("population_ci"),
        "floor": fl["value"],
        "floor_std": fl["std"],
        "ratio_to_floor": value / fl["value"] if fl["value"] > 0 else math.inf,
        "n_generated": len(gen_f),
        "n_reference": ref.n_reference,
        "n_floor": fl["n"],
        "equal_n": fl["equal_n"],
        "features": extractor.name,
        "reference": f"seeded half of the train split ({ref.n_reference} of {ref.n} images)",
        "floor_definition": protocol.describe_floor(fl),
        "note": "FID is biased upwards at small N; compare values at equal n_generated",
    }
    if extractor.judge is not None:
        result["judge"] = extractor.judge.info()
    if labels is not None and (ref.labels >= 0).any():
        per_class = []
        feats, lab = ref.reference_features, ref.reference_labels
        for c in range(int(labels.max()) + 1):
            g, r = gen_f[labels == c], feats[lab == c]
            per_class.append(fid.fid_from_features(g, r) if len(g) > 1 and len(r) > 1 else "n/a")
        result["per_class"] = per_class
        result["per_class_reference"] = f"reference-half features of each class ({len(feats)} in all)"
    result["card"] = {
        **inputs.card,
        "trace": "sum sqrt(eig(S1^1/2 S2 S1^1/2)), numpy.linalg.eigh, float64",
        "statistics": "mean and unbiased covariance, float64, streamed over the reference half",
        "floor": {k: fl[k] for k in ("n", "draws", "std", "equal_n")},
        "interval": {k: v for k, v in boot.items() if k not in ("ci", "population_ci")},
    }
    return result


def _fid_bootstrap(inputs: Inputs) -> dict:
    resamples = inputs.settings.bootstrap
    if resamples == 0:
        return {"method": "none (bootstrap=0)"}
    ref = inputs.train_ref
    features = ref.reference_features if ref.all_stored else None  # to resample the reference too
    return protocol.bootstrap_fid(
        inputs.gen_features,
        features,
        ref_stats=(ref.mu, ref.sigma),
        resamples=resamples,
        seed=inputs.settings.seed,
    )


#: KID is reported in units of 10^-3 (x 10^3), the convention of the literature
KID_SCALE = 1000.0


def kid_metric(inputs: Inputs) -> dict:
    """KID x 10^3 against the reference half's features, seeded subsets, a bootstrap interval."""
    s, ref = inputs.settings, inputs.train_ref
    real, fake = ref.reference_features.double(), torch.as_tensor(inputs.gen_features).double()
    standardised = inputs.extractor.name != "inception"
    if standardised:  # features without a fixed scale: unit scale per dimension, from the reference
        mu = torch.from_numpy(ref.mu)
        sd = torch.from_numpy(ref.sigma.diagonal().copy()).clamp_min(1e-12).sqrt()
        real, fake = (real - mu) / sd, (fake - mu) / sd
    resamples = s.bootstrap if s.bootstrap is not None else KID_BOOTSTRAP
    k = kid(
        real, fake, subsets=s.kid_subsets, subset_size=s.kid_subset_size, seed=s.seed, bootstrap=resamples
    )
    settings = {key: k.pop(key) for key in ("subsets", "subset_size", "degree", "gamma", "coef", "seed")}
    out = {
        "value": k["value"] * KID_SCALE,
        "std": k["std"] * KID_SCALE,
        "ci": [v * KID_SCALE for v in k["ci"]] if "ci" in k else None,
        "scale": "x 10^3 (value = 1000 MMD^2)",
    }
    card = {
        **inputs.card,
        "n_reference": len(real),
        "kid": settings,
        "units": "KID x 10^3, as the literature reports it",
        "features": (
            f"{inputs.extractor.name} features standardised per dimension by the reference half's mean "
            "and std before the kernel (their raw scale makes the cubic kernel blow up); "
            "not comparable with Inception KID"
            if standardised
            else "Inception pool features as they are (the literature's convention)"
        ),
        "negative_values": "the estimator is unbiased: with (nearly) equal distributions the true value "
        "is about 0 and estimates fall on both sides of it",
        "interval": k.get("bootstrap", "none (bootstrap=0)"),
        "dtype": "float64 kernels",
    }
    return {**out, "card": card}


#: bootstrap resamples of KID (each the mean of a few subsets) when the settings leave it open
KID_BOOTSTRAP = 100


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
    real = _subset(inputs.train_ref.reference_features, len(inputs.gen_features), seed)
    p = manifold.prdc(real, inputs.gen_features, k=inputs.settings.nearest_k)
    card = {
        **inputs.card,
        "n_reference": p["n_real"],
        "k": p["k"],
        "reference_subset": f"seeded subset of the reference half (seed {seed})",
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
    judge = inputs.extractor.judge or judges.get_judge(inputs.train_ds, inputs.test_ds)
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


def control_fidelity_metric(inputs: Inputs) -> dict:
    """How faithfully a structure-conditioned model's samples follow their maps.

    Image k followed test image (k mod T)'s map (:func:`.sources.control_maps`); the same
    extractor is applied to the sample and compared with that map (edge F1, mask IoU or low-res
    PSNR: ``data/structure.py``). Beside it, chance: the samples against the maps of other test
    images (each sample against the next image's map).
    """
    from ..data import structure
    from .sources import control_maps

    images, model = inputs.images, inputs.model
    maps = control_maps(model, inputs.test_ds, len(images))
    got = structure.fidelity(model.config.control, maps, images)
    chance = structure.fidelity(model.config.control, maps.roll(1, dims=0), images)
    return {
        **got,
        "chance": chance["value"],
        "card": {
            **inputs.card,
            "controls": f"image k follows the {model.config.control} map of test image k mod {len(inputs.test_ds)}",
            "chance": "the same measure against another test image's map (each sample against the next one's)",
            "extractor": "data/structure.py, the extractor the model was trained with",
        },
    }


def diagnostics(inputs: Inputs) -> dict:
    """With the domain judge as extractor: the samples' class histogram and the judge's confidence."""
    extractor, logits = inputs.extractor, inputs.gen_logits
    if extractor.name != "domain" or logits is None:
        return {}
    return judge_reading(logits, extractor.judge)


def judge_reading(logits: torch.Tensor, judge) -> dict:
    """What the domain judge's class logits (N, K) of generated images say, beside the test split:
    the predicted-class histogram and its entropy, and the judge's mean top-class confidence."""
    return {
        "class_histogram": class_histogram(logits, judge),
        "confidence": {
            "samples": float(logits.softmax(dim=1).max(dim=1).values.mean()),
            "test_split": judge.meta["test_confidence"],
            "judge_test_accuracy": judge.accuracy,
        },
    }


def recognisability(images, train_ds, test_ds, *, tolerance: float = 0.1) -> dict:
    """Whether float ``images`` (N, C, H, W) in [-1, 1] are recognisable by class, as the domain judge
    reads them: its mean confidence on them and the entropy of its predicted-class histogram, each
    within ``tolerance`` (relative) of the same on the real held-back test split.

    Low confidence means images the judge cannot place in a class; a low entropy means samples
    piled into few classes, a high one (with low confidence) class-less mush. Returns
    :func:`judge_reading`'s fields plus ``confidence_ratio`` and ``entropy_ratio`` (samples / test
    split), ``tolerance`` and ``met``.
    """
    extractor = domain_extractor(train_ds, test_ds)
    _, logits = extractor.extract(quantise(torch.as_tensor(images), train_ds.levels))
    out = judge_reading(logits, extractor.judge)
    hist, conf = out["class_histogram"], out["confidence"]
    out["confidence_ratio"] = conf["samples"] / conf["test_split"]
    out["entropy_ratio"] = hist["entropy_nats"] / hist["test_split_entropy_nats"]
    out["tolerance"] = tolerance
    out["met"] = all(abs(out[k] - 1) <= tolerance for k in ("confidence_ratio", "entropy_ratio"))
    return out


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
    """(domain FID of ``images`` against the reference half, the floor at the same N).

    ``images`` float (N, C, H, W); quantised to the data's levels first. The floor is at N unless
    the held half is too small (then at :func:`.protocol.max_n` of it); :func:`domain_fid_card`
    says which, and adds the bootstrap interval.
    """
    card = domain_fid_card(images, train_ds, test_ds, bootstrap=False)
    return card["fid"], card["floor"]


def domain_fid_card(images, train_ds, test_ds, *, bootstrap: bool = True, seed: int = 0) -> dict:
    """Domain FID of float ``images`` (N, C, H, W) under the equal-N protocol, as one dict.

    Returns ``fid``, ``n`` (samples), ``ci`` (95% bootstrap interval, samples resampled against
    the fixed reference, seeded by ``seed``; absent with ``bootstrap=False``), ``floor`` and
    ``floor_std`` (mean and spread over the floor's draws), ``n_floor`` and ``equal_n`` (whether
    the floor is at the samples' N).
    """
    extractor = domain_extractor(train_ds, test_ds)
    ref = reference(train_ds, extractor)
    x = quantise(torch.as_tensor(images), train_ds.levels)
    gen = fid.extract(extractor.judge, x)
    value = fid.frechet_distance(*fid.statistics(gen), ref.mu, ref.sigma)
    floor = protocol.floor(ref.mu, ref.sigma, ref.held_features, len(x))
    card = {
        "fid": value,
        "n": len(x),
        "floor": floor["value"],
        "floor_std": floor["std"],
        "n_floor": floor["n"],
        "equal_n": floor["equal_n"],
    }
    if bootstrap:
        card["ci"] = protocol.bootstrap_fid(gen, ref_stats=(ref.mu, ref.sigma), seed=seed)["ci"]
    return card


def _subset(features: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    if len(features) <= size:
        return features
    return features[torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:size]]


def _entropy(counts) -> float:
    p = np.asarray(counts, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())
