"""Every metric ``genvision evaluate`` knows, as one table: name -> what it needs, how it is computed.

A :class:`Metric` says what it needs and holds a small ``compute(inputs) -> dict`` (the entry of
``metrics.json``: ``value`` and its ``card``, plus extras). The driver (:mod:`.evaluate`) decides
which metrics apply from ``needs``, gathers what the applicable ones need once into
:class:`Inputs`, then calls each ``compute``. The vocabulary of ``needs``:

- ``samples``: generated images and their features (one sampling, one feature pass for all);
- ``train_features`` / ``test_features``: the reference features of the train / test split
  (the train split is gathered with any sample metric: the shared card names it);
- ``logits``: class logits from the feature extractor (the Inception Score);
- ``conditional``: a class-conditional model (image k asks for class k mod K) and labelled data;
- ``control``: a structure-conditioned model (``takes_control``); every sample metric then sees
  samples that follow the test split's structure maps;
- ``prompts``: a text-conditioned model and captioned (or labelled) data; the metric prompts the
  model itself (with the test split's captions), apart from the shared samples;
- a model capability (:data:`CAPABILITIES`): ``log_likelihood``, ``elbo``, ``reconstruct``, ...,
  present when ``genvision.families.base.has`` says so (a capability note withdraws it).

Aliases expand in place: ``pr`` = precision + recall, ``dc`` = density + coverage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import alignment
from . import likelihood as lk
from . import sample_metrics as sm
from .inputs import (
    CAPABILITIES,
    CONDITIONAL,
    CONTROL,
    LOGITS,
    NEEDS,
    PROMPTS,
    SAMPLES,
    TEST_FEATURES,
    TRAIN_FEATURES,
    Inputs,
)


@dataclass(frozen=True)
class Metric:
    """One metric: its name, what it needs (see the module docstring), its compute, a summary."""

    name: str
    needs: tuple[str, ...]
    compute: Callable[[Inputs], dict]
    summary: str

    def __post_init__(self):
        unknown = [n for n in self.needs if n not in NEEDS]
        if unknown:
            raise ValueError(
                f"metric {self.name} needs unknown {', '.join(unknown)}; known: {', '.join(NEEDS)}"
            )

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The model methods this metric needs."""
        return tuple(n for n in self.needs if n in CAPABILITIES)


# fmt: off
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fid", (SAMPLES, TRAIN_FEATURES), sm.fid_metric,
           "Frechet distance to the train split's reference half, with its floor at the same N "
           "(held half vs reference), a bootstrap interval and per-class FIDs"),
    Metric("kid", (SAMPLES, TRAIN_FEATURES), sm.kid_metric,
           "kernel inception distance x 10^3 (unbiased MMD^2, cubic kernel) over random subsets, "
           "with a bootstrap interval"),
    Metric("is", (SAMPLES, LOGITS), sm.is_metric,
           "Inception Score: exp of the mean KL between class posteriors and their marginal"),
    Metric("precision", (SAMPLES, TRAIN_FEATURES), partial(sm.prdc_metric, "precision"),
           "share of samples inside the real data's k-NN manifold (fidelity)"),
    Metric("recall", (SAMPLES, TRAIN_FEATURES), partial(sm.prdc_metric, "recall"),
           "share of real images inside the samples' k-NN manifold (diversity)"),
    Metric("density", (SAMPLES, TRAIN_FEATURES), partial(sm.prdc_metric, "density"),
           "mean count of real k-NN balls holding each sample, over k (fidelity)"),
    Metric("coverage", (SAMPLES, TRAIN_FEATURES), partial(sm.prdc_metric, "coverage"),
           "share of real images whose k-NN ball holds a sample (diversity)"),
    Metric("memorization", (SAMPLES, TRAIN_FEATURES, TEST_FEATURES), sm.memorization_metric,
           "share of samples nearer a training image than test images come, with a picture"),
    Metric("conditional_accuracy", (SAMPLES, CONDITIONAL), sm.conditional_accuracy_metric,
           "how often the domain judge agrees with the class a conditional model was asked for"),
    Metric("text_alignment", (PROMPTS,), alignment.text_alignment_metric,
           "mean cosine of samples to their prompts and prompt-retrieval top-1/top-5 under an aligner "
           "trained on the data's captions (a CLIP-score analogue, not OpenAI's CLIP), beside real "
           "test images"),
    Metric("control_fidelity", (SAMPLES, CONTROL), sm.control_fidelity_metric,
           "the structure extracted from each sample against the map it followed (edge F1 with a "
           "1-pixel tolerance, mask IoU or low-res PSNR), beside chance (another image's map)"),
    Metric("bpd", ("log_likelihood",), partial(lk.nll_metric, "bpd"),
           "bits per dimension on the test split, from log_likelihood()"),
    Metric("nll", ("log_likelihood",), partial(lk.nll_metric, "nll"),
           "negative log-likelihood on the test split, nats per image"),
    Metric("elbo", ("elbo",), lk.elbo_metric,
           "evidence lower bound on the test split, nats per image"),
    Metric("reconstruction", ("reconstruct",), lk.reconstruction_metric,
           "mean squared reconstruction error per pixel on the test split, with a picture, and the "
           "reconstructions' domain FID at equal N (the fidelity of a latent model's decoder)"),
)}
# fmt: on
KNOWN = tuple(METRICS)
ALIASES = {"pr": ("precision", "recall"), "dc": ("density", "coverage")}


def resolve_metrics(metrics) -> list[str] | None:
    """Metric names (list or comma-separated string, aliases expanded, in order); None = all."""
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names: list[str] = []
    for m in metrics:
        for name in ALIASES.get(m, (m,)):
            if name not in METRICS:
                raise ValueError(
                    f"unknown metric {m!r}; known: {', '.join(KNOWN)} (aliases: pr = precision+recall, "
                    "dc = density+coverage)"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"no metric named; known: {', '.join(KNOWN)}")
    return names
