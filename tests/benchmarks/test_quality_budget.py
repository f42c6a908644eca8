"""benchmarks/quality_budget.py's own logic, without the peer libraries (CI installs only the test
extra): the two-stage budget split, the checkpoint schedule, which trainers the FID-against-time
plot shows, and the two picture writers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers  # noqa: E402
import quality_budget as qb  # noqa: E402

import genvision as gv  # noqa: E402
from genvision.training.staged import split_length  # noqa: E402


def test_the_peers_split_a_budget_as_genvision_train_ldm_does():
    fraction = peers.ae_fraction("digits")
    assert fraction == gv.create("ldm", image_size=8, channels=1).config.ae_fraction == 0.25
    ae, main = split_length({"minutes": 15.0}, fraction)  # what `genvision train ldm --minutes 15` runs
    total = 15 * 60
    assert peers.stage_targets(total, total, fraction) == pytest.approx(
        (ae["minutes"] * 60, main["minutes"] * 60)
    )
    # slice by slice: stage 1 first, then stage 2; the parts always add up to the time spent
    spent, seen = 0.0, []
    for _ in range(6):
        spent += total / 6
        first, second = peers.stage_targets(spent, total, fraction)
        assert first + second == pytest.approx(spent)
        seen.append((first, second))
    assert seen[0] == pytest.approx((total / 6, 0.0))  # 1/6 < 1/4: still the autoencoder
    assert seen[1] == pytest.approx((total / 4, total / 3 - total / 4))  # the slice that switches stages
    assert all(f == pytest.approx(total / 4) for f, _ in seen[1:])
    assert peers.stage_targets(2 * total, total, fraction) == pytest.approx((total / 4, 3 * total / 4))
    with pytest.raises(ValueError, match="fraction"):
        peers.stage_targets(1.0, 10.0, 1.0)


def test_checkpoints_fall_at_the_end_of_slices_before_the_last():
    assert qb.checkpoint_slices(qb.FULL["checkpoints"], qb.FULL["slices"]) == [2, 4]
    assert qb.checkpoint_slices(qb.QUICK["checkpoints"], qb.QUICK["slices"]) == [2]
    with pytest.raises(ValueError, match="slices"):
        qb.checkpoint_slices((1 / 3,), 4)  # 4/3 slices: no slice ends there
    with pytest.raises(ValueError, match="slices"):
        qb.checkpoint_slices((1.0,), 4)  # the end of the budget is scored anyway


def _run(fids: dict, seed: int = 0, recognised: bool | None = None) -> dict:
    """One seed's race as race() records it: trainer -> library and FID per sampler (with the
    judge's reading of the samples when ``recognised`` is given)."""
    libraries = {"genvision": "genvision", "pythae-vae": "pythae-vae"}
    reading = (
        {}
        if recognised is None
        else {
            "recognisable": {
                "confidence_ratio": 0.97 if recognised else 0.8,
                "entropy_ratio": 1.02,
                "met": recognised,
            }
        }
    )
    return {
        "seed": seed,
        "trainers": {
            name: {
                "library": libraries.get(name, "diffusers"),
                "floor": 1.0,
                "samplers": {
                    label: {"fid": fid, "ci": [fid - 1, fid + 1], **reading}
                    for label, fid in by_sampler.items()
                },
            }
            for name, by_sampler in fids.items()
        },
    }


def test_the_plot_shows_genvision_and_the_best_peers_best_trainer():
    run = _run(
        {
            "genvision": {"HEUN-20": 8.0},
            "diffusers": {"DDIM-50": 40.0},
            "diffusers-best": {"DPM++2M-25": 30.0, "DDIM-50": 35.0},
            "diffusers-latent": {"DPM++2M-20": 12.0},
            "pythae-vae": {"prior": 60.0, "GMM-10": 20.0},
        }
    )
    summary = qb.summarise([run])
    assert summary["best_peer"] == "diffusers"
    assert summary["best_configuration"]["diffusers"] == "diffusers-latent DPM++2M-20"
    assert qb.curve_trainers(summary) == ["genvision", "diffusers-latent"]
    assert summary["ratio_genvision_to_best_peer"] == pytest.approx(8 / 12)
    # pythae's best sampler is its figure
    assert summary["mean_fid"]["pythae-vae"] == 20.0


def test_a_code_path_check_has_no_verdict_in_the_table():
    summary = qb.summarise([_run({"genvision": {"HEUN-20": 9.0}, "diffusers-latent": {"DPM++2M-20": 3.0}})])
    rows = qb.table_rows(
        {"digits (check)": {"budget_minutes_per_trainer": 0.5, "target_applies": False, **summary}}
    )
    assert "target" not in rows[-1]["figure"] and "no target" in rows[-1]["value"]
    rows = qb.table_rows({"digits": {"budget_minutes_per_trainer": 5.0, **summary}})
    assert "target <= 0.5" in rows[-1]["figure"] and "NOT met" in rows[-1]["value"]


def test_fid_time_plot_writes_a_png_and_skips_points_without_a_fid(tmp_path):
    curves = {
        "genvision": [
            {"train_seconds": 60.0, "fid": None, "n": 500, "sampler": "HEUN-20"},  # latent stage not started
            {"train_seconds": 300.0, "fid": 40.0, "floor": 2.0, "n": 500, "sampler": "HEUN-20"},
            {"train_seconds": 900.0, "fid": 9.0, "floor": 2.0, "n": 500, "sampler": "HEUN-20"},
        ],
        "diffusers-best": [
            {"train_seconds": 900.0, "fid": 30.0, "floor": 2.0, "n": 500, "sampler": "DPM++2M-25"}
        ],
        "never-ready": [{"train_seconds": 10.0, "fid": None, "n": 500, "sampler": None}],
    }
    path = qb.fid_time_plot(curves, tmp_path / "curve.png", "test")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (650, 420)
        assert len(np.unique(np.asarray(im.convert("L")))) > 10  # lines and text were drawn


def test_side_by_side_keeps_colour_when_a_grid_has_it(tmp_path):
    grey = torch.rand(16, 1, 8, 8) * 2 - 1
    rgb = -torch.ones(16, 3, 8, 8)
    rgb[:, 0] = 1.0  # pure red images
    path = qb.side_by_side({"a": grey, "b": rgb}, None, tmp_path / "both.png")
    with Image.open(path) as im:
        assert im.mode == "RGB"
        px = np.asarray(im)
        reds = (px[..., 0] == 255) & (px[..., 1] == 0) & (px[..., 2] == 0)
        assert reds.sum() > 16 * 8 * 8  # the red tiles (upscaled) survive as red
    path = qb.side_by_side({"a": grey}, 17, tmp_path / "grey.png")
    with Image.open(path) as im:
        assert im.mode == "L"


@pytest.mark.slow
def test_genvision_staged_spends_its_budget_stage_by_stage(tmp_path):
    """genvision's ldm through genvision.train in round-robin slices: the autoencoder first, for
    its share of the budget, then the latent model on it; samples only once that has trained."""
    total = 2.0
    staged = peers.GenvisionStaged("digits", 0, tmp_path, total_seconds=total)
    staged.train_for(0.25)  # within the autoencoder's share (a quarter of the budget)
    assert not staged.ready and set(staged.stages()) == {"ae_fraction", "autoencoder"}
    staged.train_for(total - 0.25)
    assert staged.ready
    stages = staged.stages()
    ae, ldm = stages["autoencoder"]["train_seconds"], stages["ldm"]["train_seconds"]
    share = stages["ae_fraction"] * total
    # each stage trains until its share is spent (the step that reaches it may overrun it: no upper
    # bound on time, which a loaded machine stretches)
    assert ae >= share and ldm >= total - share
    assert staged.steps == stages["autoencoder"]["steps"] + stages["ldm"]["steps"]
    staged.train_for(1.0)  # past the budget: nothing more trains
    assert staged.stages() == stages
    model = staged.load()
    assert model.registry_name == "ldm" and model.parent("autoencoder").registry_name == "autoencoder"
    images = staged.sample(3, seed=0)
    assert images.shape == (3, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, staged.sample(3, seed=0))  # per-image seeds


def test_mnist_and_emoji_add_the_floor_and_recognisability_targets():
    fids = {"genvision": {"HEUN-20": 4.0}, "diffusers-latent": {"DPM++2M-20": 10.0}}
    digits = qb.summarise([_run(fids)], "digits")
    assert list(digits["targets"]) == ["ratio_to_best_peer"] and digits["target_met"]
    mnist = qb.summarise([_run(fids)], "mnist")  # 4x the floor of 1.0: the 3x target fails
    assert mnist["targets"]["floor_multiple"]["value"] == pytest.approx(4.0)
    assert mnist["targets"]["ratio_to_best_peer"]["met"] and not mnist["target_met"]
    emoji = qb.summarise([_run(fids, 0, True), _run(fids, 1, True)], "emoji")  # 4x <= 5x
    assert emoji["targets"]["recognisable"]["met"] and emoji["target_met"]
    emoji = qb.summarise([_run(fids, 0, True), _run(fids, 1, False)], "emoji")  # one seed is not
    assert not emoji["targets"]["recognisable"]["met"] and not emoji["target_met"]
    assert emoji["targets"]["recognisable"]["confidence_ratio"] == [0.97, 0.8]
    rows = qb.table_rows({"emoji": {"budget_minutes_per_trainer": 15.0, **emoji}})
    assert "(met)" in rows[-3]["value"] and "4.00x (met)" == rows[-2]["value"]
    assert "recognisable" in rows[-1]["figure"] and rows[-1]["value"] == "0.97 / 1.02, 0.80 / 1.02 (NOT met)"
    # a run recorded before the judge's reading existed cannot meet the recognisability target
    old = qb.summarise([_run(fids)], "emoji")
    assert not old["targets"]["recognisable"]["met"]
    assert (
        "not recorded" in qb.table_rows({"emoji": {"budget_minutes_per_trainer": 15.0, **old}})[-1]["value"]
    )
