"""The trainer's mode-collapse monitor (training/monitor.py): entropy, warning, unlabeled data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import genvision as gv
from genvision import data as gdata
from genvision.training.monitor import CollapseMonitor


@pytest.fixture(scope="module")
def digits():
    return gdata.load("digits", "train"), gdata.load("digits", "test")


def test_real_digits_score_near_log_10_and_raise_no_warning(digits):
    train_ds, test_ds = digits
    monitor = CollapseMonitor(train_ds, threshold=0.8)
    x, _ = test_ds.batch(torch.arange(len(test_ds)))
    out = monitor.measure(x)
    assert monitor.active and out["monitor/class_entropy"] > 0.95 * math.log(10)
    assert out["monitor/top_class_share"] < 0.2 and "warning" not in out


def test_samples_of_one_class_are_reported_as_collapse(digits):
    train_ds, test_ds = digits
    x, y = test_ds.batch(torch.arange(len(test_ds)))
    sevens = torch.cat([x[y == 7]] * 3)
    monitor = CollapseMonitor(train_ds, threshold=0.8)
    early = monitor.measure(sevens)  # a fresh generator is often under the line: no alarm yet
    assert early["monitor/class_entropy"] < 0.5 and early["monitor/top_class_share"] > 0.9
    assert "warning" not in early
    assert "warning" not in monitor.measure(x)  # diverse: entropy near log 10
    assert "fell from 2." in monitor.measure(sevens)["warning"]  # collapsed after being diverse
    assert "ended at" in CollapseMonitor(train_ds, threshold=0.8).measure(sevens, final=True)["warning"]


def test_monitor_turns_itself_off_on_unlabeled_data_and_training_goes_on(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "blobs.npz", images=rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8))
    spec = f"npz:{tmp_path / 'blobs.npz'}"
    monitor = CollapseMonitor(gdata.load(spec, "train"), threshold=0.8)
    assert not monitor.active and "unlabeled" in monitor.reason
    model = gv.create("dcgan", base_channels=8, latent_dim=8)
    out = gv.train(
        model, data=spec, out=tmp_path / "run", steps=2, batch_size=8, monitor_every=1, progress=False
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records and not any(k.startswith("monitor/") for r in records for k in r)


def test_collapse_threshold_is_validated():
    from genvision.training.config import TrainConfig

    with pytest.raises(ValueError, match="collapse_threshold"):
        TrainConfig(steps=1, collapse_threshold=0.0)
