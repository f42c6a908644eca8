"""Anomaly scores (apps/anomaly.py), detection figures (metrics/roc.py), the class filter and
the background model's pixel noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gvtest import TINY_DDPM, one_line, run_cli
from sklearn import metrics as skm

import genvision as gv
from genvision import data
from genvision.apps import anomaly
from genvision.data.transforms import perturb_pixels
from genvision.metrics import roc
from genvision.training.config import TrainConfig

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}
TINY_GLOW = {"steps_per_level": 2, "hidden_channels": 8}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_figures_equal_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=300).round(1)  # rounding makes many ties
    odd = (rng.normal(size=120) + 0.8).round(1)
    scores, labels = np.r_[normal, odd], np.r_[np.zeros(300), np.ones(120)]
    assert roc.auroc(normal, odd) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert roc.average_precision(normal, odd) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12
    )
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    assert roc.fpr_at_tpr(normal, odd, 0.95) == pytest.approx(fpr[np.searchsorted(tpr, 0.95)])


def test_detection_figures_of_perfect_and_reversed_scores():
    assert roc.detection_summary([0, 1, 2], [5, 6])["auroc"] == 1.0
    assert roc.auroc([5, 6], [0, 1, 2]) == 0.0
    assert roc.fpr_at_tpr([0, 1, 2], [5, 6]) == 0.0
    with pytest.raises(ValueError) as e:
        roc.auroc([0.0, np.nan], [1.0])
    assert "finite" in one_line(e)


def test_class_filter_keeps_only_the_named_classes_with_their_labels():
    full = data.load("digits", "test")
    kept = data.load("digits?classes=0-2,7", "test")
    assert set(kept.labels.tolist()) == {0, 1, 2, 7}
    assert len(kept) == int(torch.isin(full.labels, torch.tensor([0, 1, 2, 7])).sum())
    assert kept.num_classes == 10 and kept.spec == "digits?classes=0-2,7"
    for bad, words in [
        ("digits?classes=x", "numbers or ranges"),
        ("digits?colour=1", "only option"),
        ("digits?classes=11", "no class 11"),
        ("digits?classes=4-2", "LOW <= HIGH"),
    ]:
        with pytest.raises(ValueError) as e:
            data.load(bad, "test")
        assert words in one_line(e)


def test_pixel_noise_replaces_the_asked_fraction_with_grid_levels_deterministically():
    x = torch.zeros(64, 1, 8, 8)
    a = perturb_pixels(x, 0.25, 17, torch.Generator().manual_seed(3))
    b = perturb_pixels(x, 0.25, 17, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    changed = (a != 0).float().mean().item()
    assert 0.2 < changed < 0.26  # a hit may draw the pixel's own level (1 in 17)
    levels = (a + 1) * 8  # the 17-level grid
    assert torch.allclose(levels, levels.round(), atol=1e-5)
    with pytest.raises(ValueError) as e:
        TrainConfig(pixel_noise=1.5)
    assert "pixel_noise" in one_line(e)


def test_ratio_of_a_model_with_itself_is_zero_and_methods_follow_capabilities():
    torch.manual_seed(0)
    glow = gv.create("glow", image_size=8, levels=17, **TINY_GLOW)
    ds = data.load("digits", "test")
    assert np.all(anomaly.score(glow, ds, "ratio", background=glow, n=20) == 0)
    assert "recon" not in anomaly.methods_for(glow)
    with pytest.raises(ValueError) as e:
        anomaly.score(glow, ds, "recon", n=5)
    assert "it can use: bpd" in one_line(e)
    with pytest.raises(ValueError) as e:
        anomaly.score(glow, ds, "ratio", n=5)
    assert "--background" in one_line(e)
    gan = gv.create("dcgan", image_size=8, levels=17)
    with pytest.raises(ValueError) as e:
        anomaly.default_method(gan)
    assert "no anomaly score" in one_line(e)


def test_diffusion_score_does_not_depend_on_the_batch_size():
    torch.manual_seed(0)
    model = gv.create("ddpm", image_size=8, levels=17, **TINY_DDPM)
    ds = data.load("digits", "test")
    a = anomaly.score(model, ds, "diffusion", n=12, batch_size=12)
    b = anomaly.score(model, ds, "diffusion", n=12, batch_size=5)
    assert a.shape == (12,) and np.allclose(a, b, atol=1e-6)


def test_score_cli_tells_noise_from_held_out_digits(tmp_path):
    """A glow trained briefly on digits rates uniform noise far stranger than test digits."""
    run = tmp_path / "glow"
    gv.train("glow", data="digits", out=run, steps=40, model_config=TINY_GLOW, **QUIET)
    noise = np.random.default_rng(0).integers(0, 17, size=(60, 8, 8, 1)).astype(np.uint8)
    np.savez(tmp_path / "noise.npz", images=(noise * 255 // 16).astype(np.uint8))
    out = tmp_path / "s.csv"
    proc = run_cli(
        "score",
        run,
        "--data",
        "digits",
        "--anomalies",
        f"npz:{tmp_path / 'noise.npz'}",
        "--n",
        "100",
        "--out",
        out,
        check=False,
    )
    # the npz holds 256-level images and the model 17: refused in one line, nothing written
    assert proc.returncode == 2 and "levels" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
    odd = anomaly.score(gv.load(run), _noise_set(noise), "bpd")
    normal = anomaly.score(gv.load(run), data.load("digits", "test"), "bpd", n=100)
    assert roc.auroc(normal, odd) > 0.99
    proc = run_cli(
        "score", run, "--data", "digits", "--anomalies", "digits?classes=9", "--n", "50", "--out", out
    )
    assert "AUROC" in proc.stdout and out.exists() and (tmp_path / "s_roc.png").exists()
    rows = out.read_text().splitlines()
    assert rows[0] == "set,index,name,label,score" and len(rows) == 1 + 50 + 50


def _noise_set(levels17: np.ndarray):
    images = torch.from_numpy(levels17).permute(0, 3, 1, 2).contiguous()
    return data.ImageDataset(
        images, torch.full((len(images),), -1), levels=17, num_classes=0, spec="noise", split="test"
    )
