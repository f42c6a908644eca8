"""``genvision evaluate``: every metric that applies to a source, each with its metric card.

SOURCE is a model, a model directory (sampled with its defaults and seed 0), ``npz:FILE``
(``images`` uint8 (N, H, W, C) 0..255, every image used) or ``folder:DIR`` (every readable image
in DIR, both of its hash splits). Generated images are quantised to the dataset's grey levels
before they are judged, as saving them to a file would do, so a model is neither rewarded nor
punished for sub-level noise, and ``npz:`` files of real data land exactly on the data's levels.

Metrics (INTERFACES.md names), by what they need:

- from samples and features (:mod:`.features`): ``fid`` (with floor = test split vs train,
  and per-class FID for conditional models), ``kid``, ``is``, ``precision``, ``recall``,
  ``density``, ``coverage``, ``memorization``; ``conditional_accuracy`` (conditional models:
  does the domain judge agree with the requested label);
- from model capabilities on the test split (:mod:`.likelihood`), never sampling:
  ``bpd`` and ``nll`` (``log_likelihood``), ``elbo`` (``elbo``), ``reconstruction``
  (``reconstruct``).

Asked explicitly (``metrics=[...]``) for a metric the source cannot give: ``ValueError`` naming
the registered models that can. By default (``metrics=None``): every metric, those that do not
apply as ``{"value": "n/a", "reason": ...}``. Every result carries a ``card``: extractor,
weights hash, resize, input scaling, sample counts, reference split, batch size, dtype, seeds
and library versions (FID implementations disagree on exactly these).

Sample sizes: N generated = 1,000 for digits-size data (train split under 10,000 images) and
10,000 otherwise, unless ``n`` is given; FID is biased upwards at small N, so compare values at
equal N. Reference = the train split (all of it unless ``reference_n``); floor = the test split
against the train split. Precision/recall/density/coverage compare against a seeded random
subset of the stored train features of the same size as the generated set (as the prdc paper).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from .. import io
from ..families.base import has
from . import domain, fid, likelihood, manifold
from . import features as feats
from .inception_score import inception_score
from .kid import kid
from .memorization import memorization
from .sources import (  # noqa: F401 (default_n, quantise, sample_model: public names of this module)
    conditional,
    default_n,
    kind,
    load_model,
    model_dir,
    quantise,
    recorded_spec,
    sample_model,
    source_images,
)

SAMPLE_METRICS = (
    "fid",
    "kid",
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
    "memorization",
    "conditional_accuracy",
)
#: metric -> the model capability it needs
LIKELIHOOD_METRICS = {
    "bpd": "log_likelihood",
    "nll": "log_likelihood",
    "elbo": "elbo",
    "reconstruction": "reconstruct",
}
KNOWN = SAMPLE_METRICS + tuple(LIKELIHOOD_METRICS)
ALIASES = {"pr": ("precision", "recall"), "dc": ("density", "coverage")}
PRDC = ("precision", "recall", "density", "coverage")


def resolve_metrics(metrics) -> list[str] | None:
    """Metric names (list or comma-separated string, aliases expanded, in order); None = all."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names: list[str] = []
    for m in metrics:
        for name in ALIASES.get(m, (m,)):
            if name not in KNOWN:
                raise ValueError(
                    f"unknown metric {m!r}; known: {', '.join(KNOWN)} (aliases: pr = precision+recall, "
                    "dc = density+coverage)"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"no metric named; known: {', '.join(KNOWN)}")
    return names


def evaluate(
    source,
    data: str | None = "digits",
    metrics=None,
    n: int | None = None,
    out=None,
    *,
    seed: int = 0,
    batch_size: int = 250,
    features=None,
    sample_options: dict | None = None,
    reference_n: int | None = None,
    likelihood_n: int | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    nearest_k: int = manifold.NEAREST_K,
    progress: bool = False,
) -> dict:
    """Evaluate ``source`` against dataset ``data``; see the module docstring for the metrics.

    Args:
        source: a model, a model directory (str / Path), ``"npz:FILE"`` or ``"folder:DIR"``.
        data: dataset spec; None takes the spec recorded in a model directory's config.json.
        metrics: names or comma-separated string (aliases pr, dc); None = all, "n/a" where
            they do not apply.
        n: generated images (models) or the first n images (files); default per dataset.
        out: folder for ``metrics.json`` and pictures; a model directory source writes there
            by default and refreshes its ``report.md``.
        seed: sampling seed (image k uses seeding.image_seed(seed, k), whatever ``batch_size``); also seeds
            the KID subsets, the IS shuffle, the PRDC reference subset and the likelihood noise.
        batch_size: images per ``model.sample`` and per likelihood call.
        features: "domain", "inception", "inception:PATH", "FILE.py:Class", an ``nn.Module`` or
            an :class:`~genvision.metrics.features.Extractor`; None = Inception for 32 px and up
            when its weights file is present, else the domain judge.
        sample_options: extra keyword options for ``model.sample`` (sampler, steps, ...).
        reference_n: use only the first ``reference_n`` images of each split as the reference.
        likelihood_n: score only the first ``likelihood_n`` test images (default all).
        kid_subsets, kid_subset_size, is_splits, nearest_k: metric settings (recorded in cards).
        progress: show progress bars (stderr).

    Returns:
        {"metrics": {name: {"value": ..., "card": {...}, ...}}, "source": {...},
         "data": train split description, "card": the shared card, "seconds": float},
        plus "path" of the metrics.json written, if one was.
    """
    start = time.perf_counter()
    asked = resolve_metrics(metrics)
    names = list(KNOWN) if asked is None else asked
    run_dir = model_dir(source)
    if data is None:
        data = recorded_spec(run_dir) or "digits"
    train_ds, test_ds = datasets.load(data, "train"), datasets.load(data, "test")
    model = load_model(source, train_ds)

    results: dict = {}
    for name, reason in _inapplicable(names, model, train_ds, source).items():
        if asked is not None:
            raise ValueError(reason)
        results[name] = {"value": "n/a", "reason": reason}
    wanted = [m for m in names if m not in results]
    target = Path(out) if out is not None else run_dir
    common = _common_card(seed, batch_size, train_ds)

    sample_wanted = [m for m in wanted if m in SAMPLE_METRICS]
    source_info: dict = {"kind": kind(source)}
    if sample_wanted:
        try:
            extractor = feats.get_extractor(
                features if features is not None else feats.default_features(train_ds), train_ds, test_ds
            )
        except (ValueError, FileNotFoundError) as e:
            if asked is not None or features is not None:  # asked for, so not silently skipped
                raise
            for m in sample_wanted:
                results[m] = {"value": "n/a", "reason": f"no feature extractor: {e}"}
            sample_wanted = []
    if "is" in sample_wanted and not extractor.has_logits:
        reason = (
            f"is needs class logits and the {extractor.name} extractor gives none; use domain or inception"
        )
        if asked is not None:
            raise ValueError(reason)
        results["is"] = {"value": "n/a", "reason": reason}
        sample_wanted.remove("is")
    if sample_wanted:
        images, source_info = source_images(
            source if model is None else model,
            train_ds,
            n=n,
            seed=seed,
            batch_size=batch_size,
            sample_options=sample_options,
        )
        if model is not None and run_dir is not None:
            source_info.update(kind="model directory", path=str(source))
        results.update(
            _sample_metrics(
                sample_wanted,
                images,
                extractor,
                train_ds,
                test_ds,
                model=model,
                target=target,
                common=common,
                options=dict(
                    seed=seed,
                    reference_n=reference_n,
                    kid_subsets=kid_subsets,
                    kid_subset_size=kid_subset_size,
                    is_splits=is_splits,
                    nearest_k=nearest_k,
                    progress=progress,
                ),
            )
        )
    like_wanted = [m for m in wanted if m in LIKELIHOOD_METRICS]
    if like_wanted:
        results.update(
            _likelihood_metrics(
                like_wanted, model, test_ds, target, common, seed, batch_size, likelihood_n, progress
            )
        )
    if model is not None:
        source_info.setdefault("registry_name", model.registry_name)
        source_info.setdefault("family", model.family)
        source_info.setdefault("seed", seed)
        if run_dir is not None:
            source_info.setdefault("path", str(source))
    report = {
        "metrics": {m: results[m] for m in [*names, *results] if m in results},
        "source": source_info,
        "data": train_ds.describe(),
        "card": common,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if target is not None:
        io.write_json(target / "metrics.json", _jsonable(report))
        report["path"] = str(target / "metrics.json")  # where it went (not stored in the file)
        if run_dir is not None and target.resolve() == run_dir.resolve():
            from .report import write_report

            write_report(run_dir)
    return report


# ----------------------------------------------------------------------------- applicability
def _inapplicable(names, model, train_ds, source) -> dict:
    """{metric: one-line reason} for the metrics this source cannot give."""
    out = {}
    for name in names:
        cap = LIKELIHOOD_METRICS.get(name)
        if cap and model is None:
            out[name] = (
                f"{name} needs a model with {cap}() and {source} holds only images; "
                f"models that have it: {families_with(cap)}"
            )
        elif cap and cap in getattr(model, "capability_notes", {}):
            out[name] = f"{name} needs {cap}(): {model.capability_notes[cap]}"
        elif cap and not has(model, cap):
            out[name] = (
                f"{name} needs {cap}(), which {model.registry_name} ({model.family}) does not have; "
                f"models that have it: {families_with(cap)}"
            )
        elif name == "conditional_accuracy" and not (model is not None and conditional(model)):
            out[name] = (
                "conditional_accuracy needs a class-conditional model (it checks the requested labels); "
                f"{'this source holds only images' if model is None else model.registry_name + ' is unconditional'}"
            )
        elif name == "conditional_accuracy" and train_ds.num_classes < 2:
            out[name] = f"conditional_accuracy needs labelled data; {train_ds.spec} is unlabeled"
    return out


def families_with(capability: str) -> str:
    """Registry names whose class has ``capability`` (families still being written are skipped)."""
    from .. import registry

    names = []
    for name in registry.MODELS:
        try:
            cls, _ = registry.resolve(name)
        except Exception:  # noqa: BLE001 (a family that does not import yet cannot be named)
            continue
        if callable(getattr(cls, capability, None)):
            names.append(name)
    return ", ".join(names) or "none registered"


# ----------------------------------------------------------------------------- sample metrics
def _sample_metrics(wanted, images, extractor, train_ds, test_ds, *, model, target, common, options) -> dict:
    seed, progress = options["seed"], options["progress"]
    gen_f, gen_logits = extractor.extract(images, progress="features of samples" if progress else None)
    train_ref = feats.reference(train_ds, extractor, n=options["reference_n"], progress=progress)
    test_ref = None  # the test split's features: the FID floor and the memorization yardstick
    if "fid" in wanted or "memorization" in wanted:
        test_ref = feats.reference(test_ds, extractor, n=options["reference_n"], progress=progress)
    card = {
        **common,
        "extractor": extractor.card,
        "n_generated": len(images),
        "n_reference": train_ref.n,
        "reference": f"{train_ds.spec} train split",
        "reference_cache": str(train_ref.path),
        "feature_batch_size": extractor.batch_size,
    }
    labels = (
        torch.arange(len(images)) % model.config.num_classes
        if model is not None and conditional(model)
        else None
    )
    out: dict = {}
    if "fid" in wanted:
        out["fid"] = _fid(gen_f, labels, train_ref, test_ref, extractor, card)
    if "kid" in wanted:
        k = kid(
            train_ref.features,
            gen_f,
            subsets=options["kid_subsets"],
            subset_size=options["kid_subset_size"],
            seed=seed,
        )
        settings = {key: k.pop(key) for key in ("subsets", "subset_size", "degree", "gamma", "coef", "seed")}
        card_k = {**card, "n_reference": len(train_ref.features), "kid": settings, "dtype": "float64 kernels"}
        out["kid"] = {**k, "card": card_k}
    if "is" in wanted:
        s = inception_score(gen_logits, splits=min(options["is_splits"], len(gen_logits)), seed=seed)
        note = (
            "Inception 1008-way logits without bias"
            if extractor.name == "inception"
            else f"{extractor.name} logits (no Inception file): scores confident, diverse classes of this "
            f"dataset, at most {gen_logits.shape[1]}; not comparable with papers' IS"
        )
        out["is"] = {
            "value": s["value"],
            "std": s["std"],
            "max_possible": s["max_possible"],
            "card": {
                **card,
                "logits": note,
                "splits": s["splits"],
                "std": "sample std over splits (ddof 1)",
            },
        }
    k_nn = options["nearest_k"]
    if any(m in wanted for m in PRDC) and len(gen_f) <= k_nn:
        for m in PRDC:
            if m in wanted:
                out[m] = {"value": "n/a", "reason": f"{m} needs more than k={k_nn} generated images"}
    elif any(m in wanted for m in PRDC):
        real = _subset(train_ref.features, len(gen_f), seed)
        p = manifold.prdc(real, gen_f, k=k_nn)
        card_p = {
            **card,
            "n_reference": p["n_real"],
            "k": p["k"],
            "reference_subset": f"seeded (seed {seed})",
        }
        for m in PRDC:
            if m in wanted:
                out[m] = {"value": p[m], "card": card_p}
    if "memorization" in wanted:
        figures, order, nearest = memorization(gen_f, test_ref.features, train_ref.features)
        picture = None
        if target is not None:
            from ..viz import save_grid

            train_x, _ = train_ds.batch(train_ref.index[nearest], generator=torch.Generator().manual_seed(0))
            picture = "memorization.png"
            save_grid(
                torch.cat([images[order], train_x.float()]),
                target / picture,
                nrow=len(order),
                levels=train_ds.levels,
            )
        out["memorization"] = {
            **figures,
            "picture": picture,
            "card": {
                **card,
                "space": f"{extractor.name} features, Euclidean",
                "n_reference": len(train_ref.features),
            },
        }
    if "conditional_accuracy" in wanted:
        judge = extractor.judge or domain.get_judge(train_ds, test_ds)
        predicted = torch.cat(
            [judge.logits(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)]
        )
        per_class = [
            float((predicted[labels == c] == c).double().mean()) for c in range(model.config.num_classes)
        ]
        out["conditional_accuracy"] = {
            "value": float((predicted == labels).double().mean()),
            "per_class": per_class,
            "judge_test_accuracy": judge.accuracy,
            "card": {**card, "judge": judge.info(), "labels": "image k asks for class k mod num_classes"},
        }
    if extractor.name == "domain" and gen_logits is not None:
        out["class_histogram"] = class_histogram(gen_logits, extractor.judge)
        out["confidence"] = {
            "samples": float(gen_logits.softmax(dim=1).max(dim=1).values.mean()),
            "test_split": extractor.judge.meta["test_confidence"],
            "judge_test_accuracy": extractor.judge.accuracy,
        }
    return out


def _fid(gen_f, labels, train_ref, test_ref, extractor, card) -> dict:
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
        **card,
        "trace": "sum sqrt(eig(S1^1/2 S2 S1^1/2)), numpy.linalg.eigh, float64",
        "statistics": "mean and unbiased covariance, float64, streamed over the reference split",
    }
    return result


def _subset(features: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    if len(features) <= size:
        return features
    return features[torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:size]]


# ----------------------------------------------------------------------------- likelihood metrics
def _likelihood_metrics(
    wanted, model, test_ds, target, common, seed, batch_size, likelihood_n, progress
) -> dict:
    dims = test_ds.channels * test_ds.image_size**2
    card = {
        **common,
        "split": f"{test_ds.spec} test split",
        "batch_size": batch_size,
        "noise": f"image i of the split uses generator seeding.image_seed(seed, i) (seed {seed})",
        "likelihood_note": getattr(model, "likelihood_note", None) or "not stated by the model",
        "units": "nats per image; bits/dim = nats / (C*H*W*ln 2)",
        "levels": test_ds.levels,
    }
    out: dict = {}
    if "bpd" in wanted or "nll" in wanted:
        nats = likelihood.per_image_nats(
            model,
            test_ds,
            "log_likelihood",
            n=likelihood_n,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )
        s = likelihood.summarise(nats, dims)
        card_l = {**card, "n": s["n"]}
        if "bpd" in wanted:
            out["bpd"] = {"value": s["bpd"], "se": s["bpd_se"], "card": card_l}
        if "nll" in wanted:
            out["nll"] = {"value": s["nll_nats"], "se": s["nll_se"], "card": card_l}
    if "elbo" in wanted:
        nats = likelihood.per_image_nats(
            model, test_ds, "elbo", n=likelihood_n, seed=seed, batch_size=batch_size, progress=progress
        )
        s = likelihood.summarise(nats, dims)
        out["elbo"] = {
            "value": -s["nll_nats"],
            "se": s["nll_se"],
            "bpd": s["bpd"],
            "card": {**card, "n": s["n"]},
        }
    if "reconstruction" in wanted:
        figures, grid = likelihood.reconstruction(
            model, test_ds, n=likelihood_n, batch_size=batch_size, progress=progress
        )
        picture = None
        if target is not None:
            from ..viz import save_grid

            picture = "reconstructions.png"
            save_grid(grid, target / picture, nrow=len(grid) // 2, levels=test_ds.levels)
        out["reconstruction"] = {
            "value": figures["mse"],
            "se": figures["mse_se"],
            "picture": picture,
            "card": {**card, "n": figures["n"], "units": "mean squared error per pixel, [-1, 1] scale"},
        }
    return out


# ----------------------------------------------------------------------------- cards
def _common_card(seed: int, batch_size: int, train_ds) -> dict:
    import scipy

    from .. import __version__

    return {
        "seed": seed,
        "per_image_seeds": "image k uses generator seeding.image_seed(seed, k)",
        "sample_batch_size": batch_size,
        "quantised_to_levels": train_ds.levels,
        "dtype": "features float32, statistics float64",
        "versions": {
            "genvision": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
    }


# ----------------------------------------------------------------------------- sources
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


# ----------------------------------------------------------------------------- helpers
def _entropy(counts) -> float:
    p = np.asarray(counts, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj
