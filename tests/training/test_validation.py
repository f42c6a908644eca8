"""Validation while training (training/validation.py): the best weights are kept, --keep last
keeps the last, resume stays exact, and the overfitting warning fires only when it should.

The overfitting run: a wide PixelCNN with a 256-way softmax head, a high learning rate and no
EMA or dropout, on 200 digits pooled to 4x4 (an ``npz:`` file: about 160 train images), memorises
its training images within about a hundred steps, so its validation loss turns up while its
training loss keeps falling.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genvision as gv
from genvision import data as gdata
from genvision import registry
from genvision.training import validation
from genvision.training.config import TrainConfig

OVERFIT = dict(
    steps=150,
    batch_size=32,
    validate_every=10,
    ema_half_life=0.0,
    warmup=0,
    sample_every=0,
    save_every=0,
    num_samples=4,
    progress=False,
)
MODEL = {"width": 64, "num_layers": 3, "head": "softmax", "lr": 1e-2, "dropout": 0.0}


@pytest.fixture(scope="module")
def few_digits(tmp_path_factory) -> str:
    """npz:FILE of 200 sklearn digits, 2x2-average-pooled to 4x4, 0..240 (about 160 train, 20 val)."""
    from sklearn.datasets import load_digits

    digits = load_digits().images[:200].reshape(200, 4, 2, 4, 2).mean(axis=(2, 4))  # (200, 4, 4) 0..16
    images = (digits * 15).astype(np.uint8)
    path = tmp_path_factory.mktemp("few") / "digits.npz"
    np.savez(path, images=images)
    return f"npz:{path}"


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory, few_digits):
    out = tmp_path_factory.mktemp("overfit") / "run"
    torch.set_num_threads(1)
    gv.train("pixelcnn", few_digits, out, model_config=MODEL, **OVERFIT)
    return out


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _test_bpd(model, spec) -> float:
    test = gdata.load(spec, "test")
    x, _ = test.batch(torch.arange(len(test)))
    return float(-model.log_likelihood(x).mean() / (x[0].numel() * math.log(2)))


def _last_weights(run) -> dict:
    state = load_file(str(run / "training_state" / "state.safetensors"))
    return {k[6:]: v for k, v in state.items() if k.startswith("model.")}


def test_overfitting_run_keeps_the_best_weights_which_beat_the_last_on_test(overfit_run, few_digits):
    meta = json.loads((overfit_run / "config.json").read_text())["validation"]
    val = {r["step"]: r["val_loss"] for r in _records(overfit_run) if "val_loss" in r}
    assert sorted(val) == list(range(10, 151, 10))
    assert meta["best_step"] == min(val, key=val.get) < 150 and meta["kept"] == "best"
    assert meta["best_val_loss"] == val[meta["best_step"]] < val[150]
    assert f"at step {meta['best_step']}" in (overfit_run / "report.md").read_text()
    best = gv.load(overfit_run)
    last = gv.load(overfit_run)
    last.load_state_dict(_last_weights(overfit_run))
    assert _test_bpd(best, few_digits) < _test_bpd(last, few_digits)


def test_overfitting_run_warns_once_in_metrics(overfit_run):
    warnings = [r for r in _records(overfit_run) if "warning" in r]
    assert len(warnings) == 1 and "overfitting" in warnings[0]["warning"]
    assert json.loads((overfit_run / "config.json").read_text())["validation"]["overfitting_warning"]


def test_healthy_run_does_not_warn(tmp_path):
    out = tmp_path / "healthy"
    settings = {**OVERFIT, "steps": 70}
    gv.train("pixelcnn", "digits", out, model_config={**MODEL, "width": 16, "lr": 1e-3}, **settings)
    val = [r["val_loss"] for r in _records(out) if "val_loss" in r]
    assert val == sorted(val, reverse=True) and not any("warning" in r for r in _records(out))


def test_keep_last_writes_the_last_weights(tmp_path, few_digits):
    out = tmp_path / "last"
    gv.train("pixelcnn", few_digits, out, model_config=MODEL, **{**OVERFIT, "steps": 40, "keep": "last"})
    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in _last_weights(out).items())
    assert json.loads((out / "config.json").read_text())["validation"]["kept"] == "last"


def test_resumed_run_with_validation_equals_uninterrupted(tmp_path, few_digits):
    # the first part ends on a validation step (a run validates at its last step too)
    settings = {**OVERFIT, "steps": 60, "save_every": 30, "ema_half_life": 500.0}
    model = {**MODEL, "width": 16, "dropout": 0.2}
    gv.train("pixelcnn", few_digits, tmp_path / "ref", model_config=model, **settings)
    gv.train("pixelcnn", few_digits, tmp_path / "cut", model_config=model, **{**settings, "steps": 30})
    gv.train(None, None, tmp_path / "cut", resume=True, steps=60)
    for name in ("model.safetensors", "training_state/state.safetensors"):
        ref, cut = load_file(str(tmp_path / "ref" / name)), load_file(str(tmp_path / "cut" / name))
        assert ref.keys() == cut.keys() and all(torch.equal(ref[k], cut[k]) for k in ref), name
    val = [[r["val_loss"] for r in _records(tmp_path / run) if "val_loss" in r] for run in ("ref", "cut")]
    assert val[0] == val[1]


@pytest.mark.parametrize(
    "name, on",
    [
        ("gated-pixelcnn", True),
        ("glow", True),
        ("vae", True),
        ("ddpm", False),
        ("gan", False),
        ("vqvae", False),
    ],
)
def test_validation_is_on_by_default_for_likelihood_models_only(name, on):
    model_class = registry.resolve(name)[0]
    assert validation.train_defaults(model_class) == ({"validate_every": validation.EVERY} if on else {})


def test_tiny_data_turns_validation_off_or_is_an_error_when_asked_for(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(path, images=np.zeros((40, 8, 8), np.uint8))  # a few validation images
    train, cfg = gdata.load(f"npz:{path}"), TrainConfig(steps=1, validate_every=100)
    with pytest.raises(ValueError, match="validation image"):
        validation.split_data(train, cfg, given={"validate_every": 100}, image_size=None)
    fit, val, cfg = validation.split_data(train, cfg, given={}, image_size=None)
    assert fit is train and val is None and cfg.validate_every == 0
    with pytest.raises(ValueError, match="--keep best needs validation"):
        validation.split_data(train, cfg, given={"keep": "best"}, image_size=None)
