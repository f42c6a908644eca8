"""genvision compare: one leaderboard over models trained and measured alike, resumable, strict on input.

The end-to-end case trains two tiny models (a VAE and an SNGAN) for 3 steps each (FID after steps 1 and 2) and evaluates 64
samples: the compare is interrupted after the second model's second segment (the trainer had
written its checkpoint, the compare had not recorded it), then resumed; the first model must not
be touched again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from gvtest import TINY_GAN
from PIL import Image

import genvision as gv
from genvision import registry
from genvision.cli import main
from genvision.comparison import measure, report, runner
from genvision.comparison import plan as cplan

TINY = {"vae": {"base_channels": 8, "hidden": 32, "latent_dim": 4}, "sngan": dict(TINY_GAN)}
OPTIONS = dict(models="vae,sngan", steps=3, n=64, model_config=TINY, progress=False)


class Killed(RuntimeError):
    """Stands for a kill: raised by the patched trainer call after it has returned."""


def dies_once_after(calls: list, model: str, steps: int):
    """The trainer call, noting (model, steps, resume) in ``calls``, that raises :class:`Killed` once
    after training ``model`` to ``steps`` (its checkpoint written, the compare not told)."""
    real_train, killed = runner.train_run, []

    def train_then_die(name, **kw):
        calls.append((name, kw.get("steps"), kw.get("resume")))
        result = real_train(name, **kw)
        if name == model and kw.get("steps") == steps and not killed:
            killed.append(True)
            raise Killed("killed after the checkpoint, before the compare recorded it")
        return result

    return train_then_die


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A compare killed in the second model's training, then resumed: (out, facts noted on the way)."""
    out = tmp_path_factory.mktemp("compare") / "cmp"
    calls: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "train_run", dies_once_after(calls, "sngan", 2))
        with pytest.raises(Killed):
            gv.compare("digits", out=out, **OPTIONS)
        state = json.loads((out / "compare.json").read_text())
        vae = out / state["runs"]["vae-seed0"]["dir"]
        before = {
            "status": {k: r["status"] for k, r in state["runs"].items()},
            "weights": (sha(vae / "model.safetensors"), (vae / "model.safetensors").stat().st_mtime_ns),
            "metrics": (vae / "metrics.json").stat().st_mtime_ns,
            "calls": len(calls),
        }
        result = gv.compare(out=out, resume=True, progress=False)
    return out, before, calls, result


def test_compare_resumes_without_redoing_the_finished_model(resumed):
    out, before, calls, result = resumed
    assert before["status"] == {"vae-seed0": "evaluated", "sngan-seed0": "training"}
    assert result["stopped_by"] is None
    state = json.loads((out / "compare.json").read_text())
    assert {k: r["status"] for k, r in state["runs"].items()} == {
        "vae-seed0": "evaluated",
        "sngan-seed0": "evaluated",
    }
    vae = out / state["runs"]["vae-seed0"]["dir"]
    assert (sha(vae / "model.safetensors"), (vae / "model.safetensors").stat().st_mtime_ns) == before[
        "weights"
    ]
    assert (vae / "metrics.json").stat().st_mtime_ns == before["metrics"]  # not evaluated again
    after = calls[before["calls"] :]
    # the finished second segment is not trained again; the last continues from its checkpoint
    assert after == [("sngan", 3, True)]
    progress = state["runs"]["sngan-seed0"]["progress"]
    assert [p["step"] for p in progress] == [1, 2]
    assert all(isinstance(p["fid"], float) for p in progress)


def test_compare_writes_one_row_per_model_and_the_pictures(resumed):
    out = resumed[0]
    text = (out / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| vae |", "| sngan |"))]
    assert len(rows) == 2
    assert (
        "floor (N real images of the other half, the same way)" in text and "N = 64 generated images" in text
    )
    board = json.loads((out / "leaderboard.json").read_text())
    assert [m["model"] for m in board["models"]] == ["vae", "sngan"]
    vae, sngan = (m["summary"] for m in board["models"])
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "memorization"):
        assert vae[key]["mean"] is not None and sngan[key]["mean"] is not None, key
    assert vae["bpd"]["mean"] > 0 and sngan["bpd"]["mean"] is None  # a GAN has no likelihood
    assert (
        vae["parameters"]["mean"] > 0 and sngan["sample_img_s"]["mean"] > 0 and vae["train_img_s"]["mean"] > 0
    )
    curve = board["models"][1]["runs"][0]["fid_during_training"]
    assert [p["step"] for p in curve] == [1, 2, 3]
    assert all(a["elapsed"] <= b["elapsed"] for a, b in zip(curve, curve[1:]))
    for name in ("grids.png", "fid_vs_time.png", "quality_vs_speed.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.size[0] > 100


def test_resume_refuses_other_options_and_an_empty_dir_refuses_resume(resumed, tmp_path, capsys):
    out = resumed[0]
    state = (out / "compare.json").read_bytes()
    for args, word in ((["--minutes", "3"], "--minutes"), (["--data", "mnist:/nowhere"], "--data")):
        assert main(["compare", "--resume", "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and word in err, err
    assert (out / "compare.json").read_bytes() == state
    assert main(["compare", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "without --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--models", "vae,nosuch"], ["nosuch", "--models"]),
        (["--models", "vqvae-transformer"], ["vqvae-transformer", "built on another model"]),
        (["--models", "vae,vae"], ["twice"]),
        (["--minutes", "0"], ["--minutes", "> 0"]),
        (["--minutes", "nan"], ["--minutes"]),
        (["--seeds", "1,x"], ["--seeds"]),
        (["--seeds", "-1"], ["--seeds"]),
        (["--seeds", "1,1"], ["--seeds", "twice"]),
        (["--n", "1"], ["--n"]),
        (["--data", "nosuch:thing"], ["nosuch"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "cmp"
    assert main(["compare", "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("genvision compare: error:"), err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_a_non_empty_dir_without_resume_is_refused(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["compare", "--out", str(tmp_path), "--models", "vae"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


#: models whose ``sample`` is no draw from a model of the data: an autoencoder's decoder, the
#: restoration task models' restorations of stored images
#: models compare leaves out: no prior of their own (autoencoder), or they transform given images
#: (restoration task models, translation and style models)
DECODE_ONLY = ("autoencoder", "inpaint", "sr", "colorize", "pix2pix", "cyclegan", "adain")


def test_all_is_every_model_that_trains_from_data_alone():
    names, skipped = cplan.select_models("all", False, labelled=True, data="digits")
    assert names == [
        m
        for m in registry.MODELS
        if set(registry.resolve(m)[0].parents) <= {"autoencoder"} and m not in DECODE_ONLY
    ]
    assert not skipped and "ddpm-cond" in names and "flow-matching" in names and "edm" in names
    assert "ldm" in names and "ldm-ddpm" in names  # trained in stages: the autoencoder first
    assert "vqvae-transformer" not in names and "ddpm-student" not in names and "controlnet" not in names
    with pytest.raises(ValueError, match="no learned prior"):  # it only encodes and decodes
        cplan.select_models("autoencoder", False, labelled=True, data="digits")
    names, skipped = cplan.select_models("all", False, labelled=False, data="folder:x")
    assert "sngan-cond" in skipped and not any(cplan.conditional(m) for m in names)


def test_quick_has_one_model_per_family_that_trains_from_data():
    families = {registry.resolve(m)[0].family for m in registry.MODELS}
    assert set(cplan.QUICK_MODELS) == families
    for fam, name in cplan.QUICK_MODELS.items():
        assert cplan.family(name) == fam and cplan.trains_from_data(name)
    quick = cplan.make_plan(quick=True)
    assert (
        quick.minutes == cplan.QUICK_MINUTES and quick.data == "digits" and not quick.wants_bpd("diffusion")
    )


def test_segments_reach_the_budget_at_each_checkpoint():
    p = cplan.Plan(data="digits", models=("vae",), minutes=2.0)
    assert p.segments() == [
        (0.25, {"minutes": 0.5}),
        (0.5, {"minutes": 1.0}),
        (0.75, {"minutes": 1.5}),
        (1.0, {"minutes": 2.0}),
    ]
    short = cplan.Plan(data="digits", models=("vae",), minutes=None, steps=2)
    assert short.segments() == [(0.5, {"steps": 1}), (1.0, {"steps": 2})]


def fake_run(model: str, seed: int, fid: float, recall: float) -> dict:
    metrics = {"fid": {"value": fid, "floor": 2.0, "n_generated": 100, "ci": [fid - 1, fid + 1]}}
    metrics.update({k: {"value": recall} for k in ("recall", "precision", "density", "coverage")})
    metrics.update(
        {"kid": {"value": 1.0}, "memorization": {"value": 0.05}, "bpd": {"value": "n/a", "reason": "none"}}
    )
    result = {
        "metrics": metrics,
        "train": {"img_per_s": 10.0, "elapsed": 1.0, "step": 5, "images": 10},
        "sampling": {"img_per_s": 100.0, "samples": "x.npz"},
        "parameters": 1000,
    }
    return {"model": model, "family": "f", "seed": seed, "dir": f"runs/{model}-seed{seed}", "status": "evaluated",
            "progress": [], "result": result, "error": None}  # fmt: skip


def test_several_seeds_give_mean_and_std_and_the_best_is_bold_in_its_direction():
    p = cplan.Plan(data="digits", models=("a", "b"), seeds=(0, 1))
    runs = {"a-seed0": fake_run("a", 0, 10.0, 0.5), "b-seed0": fake_run("b", 0, 20.0, 0.7)}
    runs.update({"a-seed1": fake_run("a", 1, 12.0, 0.5), "b-seed1": fake_run("b", 1, 22.0, 0.9)})
    board = report.leaderboard({"runs": runs, "features": "domain"}, p)
    a, b = board["models"]
    assert a["summary"]["fid"]["mean"] == 11.0 and a["summary"]["fid"]["std"] == pytest.approx(2**0.5)
    assert "fid" in a["best"] and "recall" in b["best"] and "recall" not in a["best"]
    assert "kid" not in a["best"] + b["best"]  # tied: nothing to mark
    assert "parameters" not in a["best"] + b["best"]
    text = report.markdown(board, p, {})
    row_a = next(line for line in text.splitlines() if line.startswith("| a |"))
    assert "**11.0 ± 1.41**" in row_a
    assert "Inception FID is omitted" in text and "Inception FID |" not in text


def test_the_inception_column_appears_only_when_runs_have_it():
    p = cplan.Plan(data="digits", models=("a", "b"))
    runs = {"a-seed0": fake_run("a", 0, 10.0, 0.5), "b-seed0": fake_run("b", 0, 20.0, 0.7)}
    runs["a-seed0"]["result"]["inception_fid"] = {"value": 30.0}
    runs["b-seed0"]["result"]["inception_fid"] = {"value": 40.0}
    board = report.leaderboard({"runs": runs, "features": "domain"}, p)
    text = report.markdown(board, p, {})
    assert "| Inception FID |" in text and "omitted" not in text
    assert "**10.0 [9.00, 11.0]**" in text  # one seed: the interval evaluate gives
    runs["a-seed0"]["result"]["inception_fid"] = runs["b-seed0"]["result"]["inception_fid"] = {
        "value": "n/a",
        "reason": "bad weights file",
    }
    text = report.markdown(report.leaderboard({"runs": runs}, p), p, {})
    assert "Inception FID |" not in text and "Inception FID is omitted: bad weights file." in text


def test_a_staged_model_trains_its_autoencoder_first_and_resumes(tmp_path):
    """``ldm`` in a compare: its autoencoder for its share of the whole budget first (1 of 4 steps
    here), then the latent model to 1, 2 and 3 steps; killed after the latent model's second
    segment, the resumed compare trains neither the autoencoder nor that segment again."""
    assert cplan.staged("ldm") and cplan.trains_from_data("ldm") and not cplan.staged("ddpm")
    out, calls = tmp_path / "cmp", []

    options = dict(
        models="ldm",
        steps=4,
        n=64,
        model_config={"ldm": {"downsample": 1, "base_channels": 8}},
        progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "train_run", dies_once_after(calls, "ldm", 2))
        with pytest.raises(Killed):
            gv.compare("digits", out=out, **options)
        assert calls == [("autoencoder", 1, False), ("ldm", 1, False), ("ldm", 2, True)]
        result = gv.compare(out=out, resume=True, progress=False)
    assert calls[3:] == [("ldm", 3, True)]
    rec = result["runs"]["ldm-seed0"]
    assert rec["status"] == "evaluated", rec.get("error")
    run = out / rec["dir"]
    ae = json.loads((run / "autoencoder" / "config.json").read_text())
    assert ae["registry_name"] == "autoencoder" and ae["train_config"]["steps"] == 1
    assert ae["model_config"]["downsample"] == 1  # the latent model's fields reach its autoencoder
    assert json.loads((run / "config.json").read_text())["parents"]["autoencoder"]["path"] == "autoencoder"
    first, *measured = rec["progress"]
    assert first["fid"] is None and first["fraction"] == 0.25 and "autoencoder" in first["note"]
    assert [p["step"] for p in measured] == [1, 2] and all(isinstance(p["fid"], float) for p in measured)
    train = rec["result"]["train"]
    assert train["step"] == 3 and train["stage_one"]["step"] == 1
    assert train["elapsed"] == pytest.approx(
        measure._stats(run)["elapsed"] + train["stage_one"]["elapsed"]
    )  # the budget counts both stages
    assert isinstance(rec["result"]["metrics"]["fid"]["value"], float)
