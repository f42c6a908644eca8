"""The metric table: every INTERFACES name is in it, applicability and families_with read from it."""

from __future__ import annotations

import pytest

import genvision as gv
from genvision import registry
from genvision.families.base import GenerativeModel, ModelConfig
from genvision.metrics import evaluate as ev
from genvision.metrics.table import ALIASES, CAPABILITIES, METRICS, NEEDS, Metric

#: INTERFACES.md, section "Metrics"
INTERFACE_NAMES = (
    "fid",
    "kid",
    "is",
    "precision",
    "recall",
    "density",
    "coverage",
    "bpd",
    "nll",
    "elbo",
    "memorization",
    "conditional_accuracy",
    "reconstruction",
    "text_alignment",  # "planned" there; the conditioning issue built it
)
#: metrics beyond INTERFACES.md's list, each added by an issue that asked for it
ADDED = ("control_fidelity",)  # the conditioning issue's "control fidelity"
LIKELIHOOD_FAMILIES = ("ddpm", "vae", "hvae", "pixelcnn", "gated-pixelcnn", "pixelrnn", "realnvp", "glow")
GANS = ("gan", "gan-minimax", "dcgan", "wgan", "wgan-gp", "sngan", "sngan-cond", "biggan", "stylegan")


def test_every_interface_metric_is_in_the_table_and_each_entry_is_complete():
    assert set(METRICS) == set(INTERFACE_NAMES) | set(ADDED)
    for name, metric in METRICS.items():
        assert metric.name == name and callable(metric.compute) and metric.summary
        assert metric.needs and set(metric.needs) <= set(NEEDS), name
    assert ALIASES == {"pr": ("precision", "recall"), "dc": ("density", "coverage")}
    assert {m: METRICS[m].capabilities for m in ("bpd", "nll", "elbo", "reconstruction")} == {
        "bpd": ("log_likelihood",),
        "nll": ("log_likelihood",),
        "elbo": ("elbo",),
        "reconstruction": ("reconstruct",),
    }
    assert ev.resolve_metrics("nll,pr,bpd") == ["nll", "precision", "recall", "bpd"]


def test_a_metric_with_an_unknown_need_is_refused():
    with pytest.raises(ValueError, match="needs unknown photos"):
        Metric("x", ("photos",), lambda inputs: {}, "nothing")


def test_families_with_log_likelihood_names_likelihood_families_and_no_gan():
    named = ev.families_with("log_likelihood").split(", ")
    assert set(LIKELIHOOD_FAMILIES) <= set(named)
    assert not set(GANS) & set(named)
    assert named == [n for n in registry.MODELS if n in named]  # in registry order
    assert set(ev.families_with("reconstruct").split(", ")) == {
        "vae",
        "beta-vae",
        "hvae",
        "vqvae",
        "autoencoder",
        "ldm",
        "ldm-cond",
        "ldm-ddpm",
        "ldm-edm",
        "ldm-text",
        "ldm-consistency",  # a latent student decodes through its teacher's autoencoder
        "ldm-ddpm-consistency",
        "ldm-edm-consistency",
    }
    assert ev.families_with("no_such_capability") == "none registered"
    assert set(CAPABILITIES) >= {"log_likelihood", "elbo", "reconstruct"}


class WithdrawnLikelihood(GenerativeModel):
    """A class whose log_likelihood exists but is withdrawn by a class-level capability note."""

    family = "test"
    capability_notes = {"log_likelihood": "not a normalised density"}

    def log_likelihood(self, x, y=None, *, seed=0, generator=None):
        raise AssertionError("never called")


class Plain(WithdrawnLikelihood):
    """The same class with nothing withdrawn."""

    capability_notes = {}


def test_families_with_honours_class_capability_notes(monkeypatch):
    target = f"{__name__}:WithdrawnLikelihood"
    monkeypatch.setitem(registry.MODELS, "withdrawn", registry.Entry(target))
    monkeypatch.setitem(registry.MODELS, "plain", registry.Entry(f"{__name__}:Plain"))
    named = ev.families_with("log_likelihood").split(", ")
    assert "withdrawn" not in named and "plain" in named


def test_explicit_bpd_of_a_gan_is_a_one_line_error_naming_families():
    gan = gv.create("gan", image_size=8, channels=1, levels=17)
    with pytest.raises(ValueError) as info:
        ev.evaluate(gan, data="digits", metrics="bpd")  # refused before anything is sampled
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "bpd needs log_likelihood(), which gan (gan) does not have; models that have it: "
    )
    named = message.split("models that have it: ")[1].split(", ")
    assert set(LIKELIHOOD_FAMILIES) <= set(named) and not set(GANS) & set(named)


def test_implicit_metrics_a_gan_cannot_give_are_n_a_with_reasons(digits):
    gan = gv.create("gan", image_size=8, channels=1, levels=17)
    reasons = ev._inapplicable(list(METRICS), gan, digits[0], "gan")
    assert set(reasons) == {
        "bpd",
        "nll",
        "elbo",
        "reconstruction",
        "conditional_accuracy",
        "text_alignment",
        "control_fidelity",
    }
    assert "gan is unconditional" in reasons["conditional_accuracy"]
    assert all("\n" not in r for r in reasons.values())


def test_instance_capability_note_is_quoted(digits):
    model = Plain(ModelConfig(image_size=8, channels=1, levels=17))
    model.capability_notes = {"log_likelihood": "trained at 3 timesteps only"}
    reasons = ev._inapplicable(["bpd", "fid"], model, digits[0], "model")
    assert reasons == {"bpd": "bpd needs log_likelihood(): trained at 3 timesteps only"}


def test_settings_are_one_dataclass_and_unknown_options_are_named():
    s = ev.Settings().replace(seed=3, likelihood_n=5)
    assert (s.seed, s.likelihood_n, s.batch_size) == (3, 5, 250)
    with pytest.raises(TypeError, match="unknown evaluate option.s. sead; known: n, seed"):
        ev.Settings().replace(sead=3)
    with pytest.raises(TypeError, match="sead"):
        gv.evaluate("npz:/nonexistent.npz", data="digits", sead=3)
