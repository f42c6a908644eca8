"""evaluate(): sources (npz, model, model directory), metric names, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genvision as gv
from genvision import data, seeding
from genvision.families.base import GenerativeModel, ModelConfig, save_model_dir
from genvision.metrics import evaluate as ev


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


def test_npz_of_the_test_split_scores_the_floor(digits, tmp_path):
    _, test = digits
    images = data.to_uint8_255(data.to_float(test.images, 17), 17).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "test.npz", images=images)
    result = ev.evaluate(f"npz:{tmp_path / 'test.npz'}", data="digits", out=tmp_path / "eval")
    f = result["metrics"]["fid"]
    assert f["value"] == pytest.approx(f["floor"], rel=1e-6)
    assert f["n_generated"] == 450 and f["n_reference"] == 1347 and f["features"] == "domain"
    assert f["judge"]["test_accuracy"] > 0.9
    hist = result["metrics"]["class_histogram"]
    assert sum(hist["counts"]) == 450 and hist["entropy_nats"] > 2.2
    conf = result["metrics"]["confidence"]
    assert conf["samples"] == pytest.approx(conf["test_split"], abs=1e-6)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["metrics"]["fid"]["value"] == f["value"]


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
    result = ev.evaluate(tmp_path / "run", data="digits", n=20)
    assert result["source"]["kind"] == "model directory" and result["source"]["n"] == 20
    assert (tmp_path / "run" / "metrics.json").is_file()
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"{result['metrics']['fid']['value']:.4g}" in report


def test_unknown_and_future_metric_names_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'fidd'; known: fid, kid, is"):
        ev.resolve_metrics(["fidd"])
    with pytest.raises(ValueError, match="'kid' arrives with the evaluation suite; available now: fid"):
        ev.resolve_metrics("fid,kid")
    with pytest.raises(ValueError, match="'pr' arrives with the evaluation suite"):
        ev.resolve_metrics(["pr"])
    assert ev.resolve_metrics(None) == ["fid"] and ev.resolve_metrics("fid, fid") == ["fid"]


def test_sources_of_the_wrong_shape_are_refused(tmp_path):
    np.savez(tmp_path / "rgb.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\).*\(1, 8, 8\)"):
        ev.evaluate(f"npz:{tmp_path / 'rgb.npz'}", data="digits")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ev.evaluate(tmp_path / "missing", data="digits")
