"""benchmarks/synthetic_data.py's pipeline on a tiny case: n real digits per class, a conditional model
trained on them, its samples by class, a classifier on real + synthetic."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from gvtest import TINY_DDPM

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import synthetic_data as sd  # noqa: E402

from genvision import data  # noqa: E402

TINY_NET = {k: v for k, v in TINY_DDPM.items() if k != "num_train_timesteps"}


def test_synthetic_data_pipeline_end_to_end(tmp_path):
    train_ds, test_ds = data.load("digits", "train"), data.load("digits", "test")
    x, y = sd.subset(train_ds, 3, seed=0)
    assert x.shape == (30, 1, 8, 8) and torch.equal(torch.bincount(y), torch.full((10,), 3))
    synth = sd.generator_samples(
        x, y, None, 2, 0, tmp_path / "gen", steps=5, batch_size=10, model_config={**TINY_NET, "steps": 4}
    )
    assert synth.shape == (20, 1, 8, 8) and synth.min() >= -1 and synth.max() <= 1
    shifted = sd.shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    test = test_ds.batch(torch.arange(200))
    real = sd.classify(x, y, test, 0, False, steps=150)
    mixed = sd.classify(
        torch.cat([x, synth]), torch.cat([y, torch.arange(10).repeat_interleave(2)]), test, 0, True, steps=150
    )
    assert 0.3 < real <= 1 and 0 <= mixed <= 1  # 30 real digits already teach most classes
