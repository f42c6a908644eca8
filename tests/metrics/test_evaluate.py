"""evaluate(): sources (npz, model, model directory), metric names, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genvision as gv
from genvision import data, seeding
from genvision.families.base import GenerativeModel, ModelConfig
from genvision.metrics import baseline, features
from genvision.metrics import evaluate as ev
from genvision.model_dir import save_model_dir


class Resampler(GenerativeModel):
    """A stand-in model that 'samples' training images: image k is drawn by its own generator."""

    family = "test"

    def __init__(self, train, conditional=False):
        super().__init__(ModelConfig(image_size=8, channels=1, num_classes=10, levels=17))
        self.config.conditional = conditional
        self.train_ds = train
        self.seen_labels = []

    def sample(self, n, y=None, seed=None, generator=None, **options):
        gens = seeding.resolve(n, seed, generator, "cpu")
        self.seen_labels.append(None if y is None else torch.as_tensor(y).tolist())
        idx = [int(torch.randint(len(self.train_ds), (1,), generator=g)) for g in gens]
        x, _ = self.train_ds.batch(torch.tensor(idx))
        return x + 0.01 * seeding.randn(x.shape, gens)  # sub-level noise, removed by quantisation


def test_npz_of_the_test_split_scores_about_the_floor_at_equal_n(digits, tmp_path):
    _, test = digits
    images = data.to_uint8_255(data.to_float(test.images, 17), 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "test.npz", images=images)
    result = ev.evaluate(f"npz:{tmp_path / 'test.npz'}", data="digits", out=tmp_path / "eval")
    f = result["metrics"]["fid"]
    # real images of a third set, at the floor's N: about the floor (the held half's own spread)
    assert f["n_generated"] == f["n_floor"] == 450 and f["equal_n"]
    assert 0.7 < f["ratio_to_floor"] < 1.5, f
    assert f["ci"][0] < f["value"] < f["ci"][1]
    assert f["n_reference"] == 674 and f["features"] == "domain"
    assert f["judge"]["test_accuracy"] > 0.9
    hist = result["metrics"]["class_histogram"]
    assert sum(hist["counts"]) == 450 and hist["entropy_nats"] > 2.2
    conf = result["metrics"]["confidence"]
    assert conf["samples"] == pytest.approx(conf["test_split"], abs=1e-6)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["metrics"]["fid"]["value"] == f["value"]


def test_recognisability_passes_real_images_and_fails_piled_or_overlaid_ones(digits):
    from genvision.metrics.sample_metrics import recognisability

    train, test = digits
    x, y = data.to_float(test.images, 17), test.labels
    real = recognisability(x, train, test)
    assert real["confidence_ratio"] == pytest.approx(1.0) and real["entropy_ratio"] == pytest.approx(1.0)
    assert real["met"] and sum(real["class_histogram"]["counts"]) == len(x)
    threes = recognisability(x[y == 3], train, test)  # confident, but one class: the entropy fails
    assert threes["confidence_ratio"] > 0.95 and threes["entropy_ratio"] < 0.2 and not threes["met"]
    # two digits overlaid: every class still appears, but the judge hesitates
    mixed = (x + x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]) / 2
    blend = recognisability(mixed, train, test)
    assert blend["entropy_ratio"] > 0.9 and blend["confidence_ratio"] < 0.9 and not blend["met"]
    assert recognisability(mixed, train, test, tolerance=0.2)["met"]


def test_model_samples_are_independent_of_batch_size_and_labels_cycle(digits):
    train, _ = digits
    model = Resampler(train, conditional=True)
    a = ev.sample_model(model, 12, seed=3, batch_size=5)
    b = ev.sample_model(model, 12, seed=3, batch_size=12)
    assert torch.equal(a, b)
    assert model.seen_labels[0] == [0, 1, 2, 3, 4] and model.seen_labels[2] == [0, 1]


def test_model_that_resamples_training_data_scores_near_the_floor(digits):
    train, _ = digits
    result = gv.evaluate(Resampler(train), data="digits", n=1000)
    f = result["metrics"]["fid"]
    assert f["n_generated"] == 1000
    assert f["value"] < 2 * f["floor"]
    assert result["source"]["kind"] == "model" and result["source"]["seed"] == 0


def test_model_directory_gets_metrics_json_and_report(tmp_path):
    model = gv.create(
        "ddpm",
        image_size=8,
        channels=1,
        levels=17,
        num_classes=10,
        base_channels=8,
        channel_mults=(1,),
        num_res_blocks=1,
        attention_resolutions=(),
        num_train_timesteps=10,
        steps=2,
    )
    save_model_dir(model, tmp_path / "run")
    result = ev.evaluate(tmp_path / "run", data="digits", n=20, metrics="fid,kid,bpd", likelihood_n=20)
    assert result["source"]["kind"] == "model directory" and result["source"]["n"] == 20
    assert (tmp_path / "run" / "metrics.json").is_file()
    report = (tmp_path / "run" / "report.md").read_text()
    m = result["metrics"]
    assert f"{m['fid']['value']:.4g}" in report and f"| bpd | {m['bpd']['value']:.4g} |" in report
    assert "| kid |" in report and "Metric card" in report and "extractor | domain" in report


def test_metric_names_resolve_with_aliases_and_unknown_ones_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'fidd'; known: fid, kid, is"):
        ev.resolve_metrics(["fidd"])
    assert ev.resolve_metrics("fid, pr,dc, fid") == ["fid", "precision", "recall", "density", "coverage"]
    assert ev.resolve_metrics(None) is None  # all, n/a where they do not apply


def test_sources_of_the_wrong_shape_are_refused(tmp_path):
    np.savez(tmp_path / "rgb.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\).*\(1, 8, 8\)"):
        ev.evaluate(f"npz:{tmp_path / 'rgb.npz'}", data="digits")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ev.evaluate(tmp_path / "missing", data="digits")


class LabelResampler(Resampler):
    """A conditional stand-in: image k is a training image of the requested class y[k]."""

    def sample(self, n, y=None, seed=None, generator=None, **options):
        gens = seeding.resolve(n, seed, generator, "cpu")
        labels = torch.as_tensor(self.train_ds.labels)
        idx = []
        for g, c in zip(gens, torch.as_tensor(y).tolist()):
            pool = torch.nonzero(labels == c).flatten()
            idx.append(int(pool[torch.randint(len(pool), (1,), generator=g)]))
        return self.train_ds.batch(torch.tensor(idx))[0]


def test_default_evaluation_gives_every_metric_with_cards_and_n_a_reasons(digits, tmp_path):
    train, _ = digits
    result = gv.evaluate(LabelResampler(train, conditional=True), data="digits", n=500, out=tmp_path)
    m = result["metrics"]
    assert set(ev.KNOWN) <= set(m)
    for name in ("fid", "kid", "is", "precision", "recall", "density", "coverage", "memorization"):
        card = m[name]["card"]
        assert card["n_generated"] == 500 and card["extractor"]["extractor"] == "domain", name
        assert {"seed", "versions", "dtype"} <= set(card)
    assert "log_likelihood" in m["bpd"]["reason"] and m["bpd"]["value"] == "n/a"
    # samples are training images of the asked class: the judge agrees, memorization is total
    assert m["conditional_accuracy"]["value"] > 0.95
    # the bar and its measurements: tests/calibration.json, "per_class_fid"
    assert len(m["fid"]["per_class"]) == 10 and max(m["fid"]["per_class"]) < 42, m["fid"]["per_class"]
    assert m["memorization"]["value"] == 1.0 and m["memorization"]["copies"] == 500
    assert m["precision"]["value"] > 0.9 and m["is"]["value"] > 8
    assert (tmp_path / "memorization.png").is_file()


def test_memorization_and_fidelity_separate_copies_from_the_independent_baseline(digits, tmp_path):
    train, _ = digits
    x = baseline.independent_pixel_samples(train, 450, seed=0)
    images = data.to_uint8_255(x, 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "base.npz", images=images)
    m = ev.evaluate(f"npz:{tmp_path / 'base.npz'}", data="digits", metrics="memorization,pr,dc,kid,is")[
        "metrics"
    ]
    assert m["memorization"]["value"] < 0.05 and m["memorization"]["copies"] == 0
    assert m["precision"]["value"] < 0.85 and m["recall"]["value"] < 0.6  # test split: 0.96, 0.98
    assert m["density"]["value"] < 0.5 and m["coverage"]["value"] < 0.5  # test split: 0.98, 0.98
    assert m["kid"]["value"] > 10 * m["kid"]["std"]


def test_stale_reference_cache_is_detected_and_recomputed(digits, tmp_path):
    train, test = digits
    extractor = features.module_extractor(torch.nn.Flatten())
    first = features.reference(train, extractor, n=100, cache_dir=tmp_path)
    again = features.reference(train, extractor, n=100, cache_dir=tmp_path)
    assert np.array_equal(first.mu, again.mu) and again.record == first.record
    with pytest.warns(
        UserWarning, match=r"stale reference statistics .*n, n_reference changed: 100 -> 200, 50 -> 100"
    ):
        bigger = features.reference(train, extractor, n=200, cache_dir=tmp_path)
    assert bigger.n == 200 and len(bigger.features) == 200 and bigger.n_reference == bigger.n_held == 100
    changed = data.ImageDataset(
        train.images.flip(0), train.labels.flip(0), levels=17, num_classes=10, spec="digits", split="train"
    )
    with pytest.warns(UserWarning, match="data_identity changed"):
        features.reference(changed, extractor, n=200, cache_dir=tmp_path)
    # streamed statistics of the reference half equal the direct ones
    flat = train.batch(torch.arange(200))[0].flatten(1).double().numpy()[bigger.in_reference.numpy()]
    assert np.allclose(bigger.mu, flat.mean(0)) and np.allclose(bigger.sigma, np.cov(flat, rowvar=False))


def test_user_feature_module_from_a_file(digits, tmp_path):
    _, test = digits
    (tmp_path / "feat.py").write_text(
        "import torch\n\nclass Pixels(torch.nn.Module):\n    def forward(self, x):\n        return x.flatten(1)\n"
    )
    images = data.to_uint8_255(data.to_float(test.images, 17), 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "test.npz", images=images)
    spec = f"{tmp_path / 'feat.py'}:Pixels"
    result = ev.evaluate(f"npz:{tmp_path / 'test.npz'}", data="digits", metrics="fid,pr", features=spec)
    f = result["metrics"]["fid"]
    assert f["features"] == "module:Pixels" and f["equal_n"] and 0.7 < f["ratio_to_floor"] < 1.5
    with pytest.raises(ValueError, match="is needs class logits"):
        ev.evaluate(f"npz:{tmp_path / 'test.npz'}", data="digits", metrics="is", features=spec)


def test_inception_features_end_to_end_with_their_card(digits, random_inception, tmp_path, monkeypatch):
    _, test = digits
    images = data.to_uint8_255(data.to_float(test.images[:4], 17), 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "four.npz", images=images)
    source = f"npz:{tmp_path / 'four.npz'}"  # the first 4 test images
    extractor = features.inception_extractor(random_inception, verify_hash=False)
    result = ev.evaluate(source, data="digits", metrics="fid,is", features=extractor, reference_n=8)
    f, card = result["metrics"]["fid"], result["metrics"]["fid"]["card"]["extractor"]
    assert f["features"] == "inception" and f["n_reference"] == 4 and f["n_floor"] == 4 and f["equal_n"]
    assert f["value"] > 0 and f["floor"] > 0 and f["ci"][0] <= f["value"] <= f["ci"][1]
    assert card["hash_verified"] is False and "torch-fidelity" in card["resize"]
    assert result["metrics"]["is"]["max_possible"] == 1008
    monkeypatch.setenv("GENVISION_INCEPTION", str(tmp_path / "absent.pth"))
    with pytest.raises(FileNotFoundError, match="Inception weights not found"):
        ev.evaluate(source, data="digits", features="inception")  # asked for: an error, not n/a
