"""A short training run on digits beats the per-pixel independent baseline clearly.

Training is counted in steps. The bars: the samples' domain FID is under ``FID_BAR``, set from
this test's own config trained with five seeds (``tests/calibration.json``, "ddpm": well above the
worst seed, far below the baseline's FID), and the judge is more confident on the samples than on
the baseline's.
"""

from __future__ import annotations

import pytest

import genvision as gv
from genvision import data
from genvision.metrics.baseline import independent_pixel_samples
from genvision.metrics.evaluate import domain_fid, evaluate
from genvision.metrics.judges import get_judge

STEPS = 400
N = 500
FID_BAR = 40.0


@pytest.fixture(scope="session")
def trained_digits_ddpm(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality") / "ddpm"
    gv.train(
        "ddpm",
        data="digits",
        out=out,
        steps=STEPS,
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        sample_every=0,
        save_every=0,
        progress=False,
        model_config={"base_channels": 16, "num_res_blocks": 1, "steps": 20},
    )
    return out


def test_short_training_beats_the_independent_pixel_baseline(trained_digits_ddpm):
    train, test = data.load("digits", "train"), data.load("digits", "test")
    baseline = independent_pixel_samples(train, N, seed=0)
    base_fid, floor = domain_fid(baseline, train, test)
    result = evaluate(trained_digits_ddpm, data="digits", n=N)
    fid = result["metrics"]["fid"]
    assert fid["floor"] == pytest.approx(floor)
    assert fid["value"] <= FID_BAR < base_fid / 5, (fid["value"], base_fid)
    conf = result["metrics"]["confidence"]
    judge = get_judge(train, test)  # cached: the judge evaluate used
    base_conf = judge.logits(baseline).softmax(-1).max(-1).values.mean().item()
    assert conf["samples"] > base_conf + 0.05, (conf["samples"], base_conf)
