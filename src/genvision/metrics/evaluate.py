"""``genvision evaluate``: every metric that applies to a source, each with its metric card.

SOURCE is a model, a model directory (sampled with its defaults and seed 0), ``npz:FILE``
(``images`` uint8 (N, H, W, C) 0..255, every image used) or ``folder:DIR`` (every readable image
in DIR, both of its hash splits). Generated images are quantised to the dataset's grey levels
before they are judged, as saving them to a file would do, so a model is neither rewarded nor
punished for sub-level noise, and ``npz:`` files of real data land exactly on the data's levels.

The metrics are one table, :data:`genvision.metrics.table.METRICS` (names as in INTERFACES.md);
this file is the driver:

1. resolve the source (model, model directory, image files) and the data's splits;
2. decide which metrics apply from what each needs: asked explicitly (``metrics=[...]``) for a
   metric the source cannot give -> ``ValueError`` naming the registered models that can; by
   default (``metrics=None``) -> ``{"value": "n/a", "reason": ...}``;
3. gather what the applicable ones need, once: the samples, their features, the reference
   features of the train (and test) split;
4. call each metric's ``compute``; write ``metrics.json`` (and a model directory's report).

Every result carries a ``card``: extractor, weights hash, resize, input scaling, sample counts,
reference split, batch size, dtype, seeds and library versions (FID implementations disagree on
exactly these).

Sample sizes and the equal-N protocol (:mod:`.protocol`): the reference is a seeded half of the
train split (of its first ``reference_n`` images when given); the floor is as many real images of
the other half as there are samples, scored against the same reference (mean and spread over a
few draws). N generated = 1,000 for digits-size data (train split under 10,000 images) and
10,000 otherwise, capped where the held half can still match it (digits: 650), unless ``n`` is
given; a floor that cannot match N says so in every report. FID and KID carry bootstrap
intervals. The test split serves likelihoods and memorization's yardstick.
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
from . import features as feats
from .inputs import Settings
from .sample_metrics import class_histogram, diagnostics, domain_fid, domain_fid_card  # noqa: F401 (public names)
from .sources import (  # noqa: F401 (default_n, quantise, sample_model: public names of this module)
    default_n,
    kind,
    load_model,
    model_dir,
    quantise,
    recorded_size,
    recorded_spec,
    sample_model,
    source_images,
)
from .table import (  # noqa: F401 (ALIASES: a public name of this module)
    ALIASES,
    CONDITIONAL,
    CONTROL,
    KNOWN,
    LOGITS,
    METRICS,
    PROMPTS,
    SAMPLES,
    TEST_FEATURES,
    Inputs,
    resolve_metrics,
)


def evaluate(
    source,
    data: str | None = "digits",
    metrics=None,
    n: int | None = None,
    out=None,
    *,
    settings: Settings | None = None,
    **options,
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
        settings: a :class:`Settings`; ``options`` (its field names: seed, batch_size,
            features, reference_n, likelihood_n, progress, ...) override its values.

    Returns:
        {"metrics": {name: {"value": ..., "card": {...}, ...}}, "source": {...},
         "data": train split description, "card": the shared card, "seconds": float},
        plus "path" of the metrics.json written, if one was.
    """
    start = time.perf_counter()
    run = (settings or Settings()).replace(**({"n": n} if n is not None else {}), **options)
    asked = resolve_metrics(metrics)
    names = list(KNOWN) if asked is None else asked

    # 1. the source and the data
    run_dir = model_dir(source)
    if data is None:
        data = recorded_spec(run_dir) or "digits"
    # a run trained on this data resized (--set image_size=32) is measured on it resized alike
    size = recorded_size(run_dir, data)

    def split(name: str):
        ds = datasets.load(data, name)
        return ds if size is None or size == ds.image_size else datasets.load(data, name, image_size=size)

    train_ds, test_ds = split("train"), split("test")
    model = load_model(source, train_ds)
    target = Path(out) if out is not None else run_dir

    # 2. which metrics apply
    results: dict = {}

    def refuse(reasons: dict) -> None:
        for name, reason in reasons.items():
            if asked is not None:
                raise ValueError(reason)
            results[name] = {"value": "n/a", "reason": reason}

    refuse(_inapplicable(names, model, train_ds, source))
    sampled = [m for m in names if m not in results and SAMPLES in METRICS[m].needs]
    extractor = None
    if sampled:
        extractor, reasons = _extractor(run.features, train_ds, test_ds, sampled, strict=asked is not None)
        refuse(reasons)
    wanted = [m for m in names if m not in results]

    # 3. what they need, once
    inputs = Inputs(run, train_ds, test_ds, model, target, _common_card(run.seed, run.batch_size, train_ds))
    source_info: dict = {"kind": kind(source)}
    if any(SAMPLES in METRICS[m].needs for m in wanted):
        need_test = any(TEST_FEATURES in METRICS[m].needs for m in wanted)
        source_info = _gather_samples(inputs, source, extractor, need_test)
        if model is not None and run_dir is not None:
            source_info.update(kind="model directory", path=str(source))

    # 4. each metric, then what is written
    for name in wanted:
        results[name] = METRICS[name].compute(inputs)
    if inputs.images is not None:
        results.update(diagnostics(inputs))
    if model is not None:
        source_info.setdefault("registry_name", model.registry_name)
        source_info.setdefault("family", model.family)
        source_info.setdefault("seed", run.seed)
        if run_dir is not None:
            source_info.setdefault("path", str(source))
    report = {
        "metrics": {m: results[m] for m in [*names, *results] if m in results},
        "source": source_info,
        "data": train_ds.describe(),
        "card": inputs.common,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if target is not None:
        _write(report, target, run_dir)
    return report


# ----------------------------------------------------------------------------- applicability
def _inapplicable(names, model, train_ds, source) -> dict:
    """{metric: one-line reason} for the metrics this source cannot give (by model and data)."""
    reasons = {name: _why_not(name, model, train_ds, source) for name in names}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def _why_not(name: str, model, train_ds, source) -> str | None:
    """Why the source cannot give metric ``name``, in one line; None when it can."""
    metric = METRICS[name]
    for cap in metric.capabilities:
        if model is None:
            return (
                f"{name} needs a model with {cap}() and {source} holds only images; "
                f"models that have it: {families_with(cap)}"
            )
        if cap in model.capability_notes:
            return f"{name} needs {cap}(): {model.capability_notes[cap]}"
        if not has(model, cap):
            return (
                f"{name} needs {cap}(), which {model.registry_name} ({model.family}) does not have; "
                f"models that have it: {families_with(cap)}"
            )
    if CONDITIONAL in metric.needs:
        if model is None or not model.config.conditional:
            what = (
                "this source holds only images"
                if model is None
                else f"{model.registry_name} is unconditional"
            )
            return f"{name} needs a class-conditional model (it checks the requested labels); {what}"
        if train_ds.num_classes < 2:
            return f"{name} needs labelled data; {train_ds.spec} is unlabeled"
    if PROMPTS in metric.needs:
        return _why_not_prompts(name, model, train_ds, source)
    if CONTROL in metric.needs and not getattr(model, "takes_control", False):
        from .. import registry

        takers = ", ".join(
            n for n in registry.MODELS if getattr(registry.resolve(n)[0], "takes_control", False)
        )
        what = (
            "this source holds only images"
            if model is None
            else f"{model.registry_name} takes no control maps"
        )
        return f"{name} needs a structure-conditioned model; {what}; models: {takers}"
    return None


def _why_not_prompts(name: str, model, train_ds, source) -> str | None:
    """Why ``name`` (a metric that prompts the model with captions) cannot run, or None."""
    from .. import registry
    from ..data import captions
    from ..nn import text

    takers = ", ".join(n for n in registry.MODELS if getattr(registry.resolve(n)[0], "takes_prompts", False))
    if model is None:
        return f"{name} needs a text-conditioned model to prompt, and {source} holds only images; models: {takers}"
    if not getattr(model, "takes_prompts", False):
        return (
            f"{name} needs a text-conditioned model; {model.registry_name} takes no prompts; models: {takers}"
        )
    if not text.available():
        return f"{name} needs the {text.NAME} sentence encoder; install it: {text.INSTALL}"
    if train_ds.num_classes < 1 and not captions.has_caption_file(train_ds):
        return f"{name} needs captions: {train_ds.spec} has no captions.tsv and no classes"
    return None


def families_with(capability: str) -> str:
    """Registry names whose class has ``capability``, comma-separated (for error messages).

    Read from the classes, without building a model: the class has the method and its class-level
    ``capability_notes`` do not withdraw it. (An instance may still withdraw it, as a distilled
    diffusion student does for ``log_likelihood``; the error then quotes its note.)
    """
    from .. import registry

    names = []
    for name in registry.MODELS:
        cls, _ = registry.resolve(name)
        if callable(getattr(cls, capability, None)) and capability not in cls.capability_notes:
            names.append(name)
    return ", ".join(names) or "none registered"


def _extractor(features, train_ds, test_ds, sampled, *, strict: bool):
    """(the feature extractor or None, {metric: reason} for the sample metrics it cannot serve).

    Without an extractor every sample metric is n/a, unless the metrics or the features were
    asked for explicitly (``strict`` or ``features`` given): then the error is raised as is.
    """
    try:
        spec = features if features is not None else feats.default_features(train_ds)
        extractor = feats.get_extractor(spec, train_ds, test_ds)
    except (ValueError, FileNotFoundError) as e:
        if strict or features is not None:  # asked for, so not silently skipped
            raise
        return None, {m: f"no feature extractor: {e}" for m in sampled}
    reasons = {
        m: f"{m} needs class logits and the {extractor.name} extractor gives none; use domain or inception"
        for m in sampled
        if LOGITS in METRICS[m].needs and not extractor.has_logits
    }
    return extractor, reasons


# ----------------------------------------------------------------------------- gathering
def _gather_samples(inputs: Inputs, source, extractor, need_test: bool) -> dict:
    """Sample the source, extract features, load the references into ``inputs``; the source info."""
    run, model, train_ds = inputs.settings, inputs.model, inputs.train_ds
    images, source_info = source_images(
        source if model is None else model,
        train_ds,
        n=run.n,
        seed=run.seed,
        batch_size=run.batch_size,
        sample_options=run.sample_options,
        test_ds=inputs.test_ds,
    )
    gen_f, gen_logits = extractor.extract(images, progress="features of samples" if run.progress else None)
    train_ref = feats.reference(train_ds, extractor, n=run.reference_n, progress=run.progress)
    test_ref = None  # the test split's features: the memorization yardstick
    if need_test:
        test_ref = feats.reference(inputs.test_ds, extractor, n=run.reference_n, progress=run.progress)
    inputs.images, inputs.extractor = images, extractor
    inputs.gen_features, inputs.gen_logits = gen_f, gen_logits
    inputs.train_ref, inputs.test_ref = train_ref, test_ref
    if model is not None and model.config.conditional:
        inputs.labels = torch.arange(len(images)) % model.config.num_classes  # as sample_model asks
    inputs.card = {
        **inputs.common,
        "extractor": extractor.card,
        "n_generated": len(images),
        "n_reference": train_ref.n_reference,
        "reference": f"{train_ds.spec} train split, seeded reference half ({train_ref.n_reference} of {train_ref.n})",
        "reference_cache": str(train_ref.path),
        "feature_batch_size": extractor.batch_size,
    }
    return source_info


def _common_card(seed: int, batch_size: int, train_ds) -> dict:
    import scipy

    from ..version import __version__

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


# ----------------------------------------------------------------------------- writing
def _write(report: dict, target: Path, run_dir: Path | None) -> None:
    """``target/metrics.json`` (and ``report["path"]``); a model directory's report.md refreshed."""
    io.write_json(target / "metrics.json", _jsonable(report))
    report["path"] = str(target / "metrics.json")  # where it went (not stored in the file)
    if run_dir is not None and target.resolve() == run_dir.resolve():
        from .report import write_report

        write_report(run_dir)


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
