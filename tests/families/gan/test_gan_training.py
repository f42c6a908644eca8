"""GANs trained a few hundred steps on digits beat the per-pixel baseline and cover the classes.

Two short runs are shared by the tests of this module (session fixtures): an SNGAN and a
class-conditional SNGAN, both at half the default width. A tiny WGAN-GP goes through the CLI; a textbook WGAN (weight clipping) trains
without collapse.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gvtest import one_thread, run_cli

import genvision as gv
from genvision import data as gdata
from genvision.metrics import judges
from genvision.metrics.baseline import independent_pixel_samples
from genvision.metrics.evaluate import domain_fid, quantise
from genvision.sampling import read_record

SMALL = {"base_channels": 32}
#: bars set from this module's runs trained with five seeds (tests/calibration.json, "sngan")
FID_BAR = 100.0
ENTROPY_BAR = 2.1
MONITOR_ENTROPY_BAR = 2.0
COND_ACCURACY_BAR = 0.8
#: biggan at 400 steps (tests/calibration.json, "biggan")
BIGGAN_ACCURACY_BAR = 0.75
BIGGAN_FID_BAR = 70.0
#: the textbook WGAN at 4x its preset learning rate (300 steps; tests/calibration.json, "wgan")
WGAN_FID_BAR = 130.0
WGAN_ENTROPY_BAR = 2.1


def _train(tmp_path_factory, name: str, steps: int, **config):
    """Train ``name`` at half width on one thread (these small convolutions gain nothing from a
    second thread, and lose several-fold when the cores are busy)."""
    out = tmp_path_factory.mktemp(name) / "run"
    with one_thread():
        gv.train(
            name,
            data="digits",
            out=out,
            steps=steps,
            model_config={**SMALL, **config},
            progress=False,
            sample_every=0,
            monitor_every=100,
        )
    return out


@pytest.fixture(scope="module")
def splits():
    return gdata.load("digits", "train"), gdata.load("digits", "test")


@pytest.fixture(scope="module")
def sngan_run(tmp_path_factory):
    return _train(tmp_path_factory, "sngan", steps=300)


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    return _train(tmp_path_factory, "sngan-cond", steps=500)


@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory):
    return _train(tmp_path_factory, "biggan", steps=400)


@pytest.fixture(scope="module")
def wgan_run(tmp_path_factory):
    return _train(tmp_path_factory, "wgan", steps=300, lr_g=2e-4, lr_d=2e-4)


def _entropy(labels: torch.Tensor) -> float:
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def test_short_sngan_is_far_below_the_baseline_fid_and_covers_the_classes(sngan_run, splits):
    train_ds, test_ds = splits
    model = gv.load(sngan_run)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    fid_gan, _ = domain_fid(samples, train_ds, test_ds)
    fid_base, _ = domain_fid(independent_pixel_samples(train_ds, 1000, seed=0), train_ds, test_ds)
    judge = judges.get_judge(train_ds, test_ds)
    entropy = _entropy(judge.logits(quantise(samples, train_ds.levels)).argmax(dim=1))
    assert fid_gan <= FID_BAR < fid_base / 2.5, (fid_gan, fid_base)
    assert entropy >= ENTROPY_BAR, entropy


def test_short_biggan_draws_the_requested_digit_and_truncation_goes_through_the_cli(biggan_run, splits):
    model = gv.load(biggan_run)
    labels = torch.arange(500) % 10
    samples = model.sample(500, y=labels, seed=0)
    judge = judges.get_judge(*splits)
    accuracy = (judge.logits(quantise(samples, 17)).argmax(dim=1) == labels).float().mean().item()
    fid, _ = domain_fid(torch.cat([samples, model.sample(500, y=labels, seed=1)]), *splits)
    assert accuracy >= BIGGAN_ACCURACY_BAR and fid <= BIGGAN_FID_BAR, (accuracy, fid)
    out = biggan_run.parent / "three.npz"
    proc = run_cli("sample", biggan_run, "--n", "8", "--truncation", "0.7", "--label", "3", "--out", out)
    assert proc.returncode == 0 and read_record(out)["options"]["truncation"] == 0.7
    with np.load(out) as f:
        threes = torch.from_numpy(f["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    predicted = judge.logits(quantise(threes, 17)).argmax(dim=1)
    assert (predicted == 3).sum() >= 6, predicted


def test_short_wgan_with_clipped_critic_trains_without_collapse(wgan_run, splits):
    train_ds, test_ds = splits
    model = gv.load(wgan_run)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    fid, _ = domain_fid(samples, train_ds, test_ds)
    entropy = _entropy(judges.get_judge(train_ds, test_ds).logits(quantise(samples, 17)).argmax(dim=1))
    assert fid <= WGAN_FID_BAR and entropy >= WGAN_ENTROPY_BAR, (fid, entropy)
    records = [json.loads(line) for line in (wgan_run / "metrics.jsonl").read_text().splitlines()]
    assert "discriminator/wasserstein" in set().union(*records)


def test_training_log_carries_the_gan_diagnostics_and_the_entropy_curve(sngan_run):
    records = [json.loads(line) for line in (sngan_run / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"discriminator/d_real", "discriminator/d_fake", "generator/loss", "generator/d_fake"} <= keys
    curve = [(r["step"], r["monitor/class_entropy"]) for r in records if "monitor/class_entropy" in r]
    assert [s for s, _ in curve] == [100, 200, 300]  # every monitor_every steps
    # the monitor sees the classes spread out as training goes: near log(10) = 2.30 by the end, where
    # a collapsed generator is far below (bar and calibration: tests/calibration.json, "sngan")
    assert curve[-1][1] >= MONITOR_ENTROPY_BAR and curve[-1][1] > curve[0][1], curve
    report = (sngan_run / "report.md").read_text()
    assert "monitor.png" in report and (sngan_run / "monitor.png").is_file()


def test_conditional_sngan_draws_the_requested_digit(cond_run, splits):
    model = gv.load(cond_run)
    labels = torch.arange(500) % 10
    samples = model.sample(500, y=labels, seed=0)
    judge = judges.get_judge(*splits)
    predicted = judge.logits(quantise(samples, 17)).argmax(dim=1)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy >= COND_ACCURACY_BAR, accuracy


def test_wgan_gp_trains_and_samples_through_the_cli(tmp_path):
    out = tmp_path / "wgan"
    tiny = ["--set", "base_channels=8", "--set", "latent_dim=16"]
    run_cli("train", "wgan-gp", "--data", "digits", "--steps", "3", "--out", out, *tiny)
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"discriminator/gp", "discriminator/wasserstein"} <= set(record)
    proc = run_cli(
        "sample", out, "--n", "8", "--seed", "0", "--truncation", "0.7", "--out", tmp_path / "g.png"
    )
    assert (tmp_path / "g.png").is_file() and "Gaussian latent z" in proc.stdout
