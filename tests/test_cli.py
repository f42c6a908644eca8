"""The commands of INTERFACES.md end to end, and bad values failing in one line."""

from __future__ import annotations

import numpy as np
import pytest
from gvtest import run_cli, tiny_set_args

from genvision.cli import main
from genvision.seeding import image_seed


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    run_cli(
        "train",
        "ddpm",
        "--data",
        "digits",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--no-progress",
        *tiny_set_args(),
        "--out",
        out,
    )
    return out


def test_models_lists_the_registry():
    out = run_cli("models").stdout
    assert "ddpm " in out and "ddpm-cond" in out and "diffusion" in out


def test_train_writes_a_model_directory(tiny_run):
    for name in ("config.json", "model.safetensors", "report.md", "grid.png", "metrics.jsonl"):
        assert (tiny_run / name).is_file()


def test_sample_png_and_npz_with_summary(tiny_run, tmp_path):
    proc = run_cli("sample", tiny_run, "--n", "5", "--seed", "1", "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file()
    assert "start: Gaussian noise" in proc.stdout or "start:" in proc.stdout
    assert "wrote" in proc.stdout and "ok:" in proc.stdout
    run_cli("sample", tiny_run, "--n", "7", "--seed", "2", "--batch-size", "7", "--out", tmp_path / "a.npz")
    run_cli("sample", tiny_run, "--n", "7", "--seed", "2", "--batch-size", "1", "--out", tmp_path / "b.npz")
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["images"].shape == (7, 8, 8, 1) and a["images"].dtype == np.uint8
    np.testing.assert_array_equal(a["images"], b["images"])  # image k fixed by (seed, k)
    assert a["seeds"].tolist() == [image_seed(2, k) for k in range(7)]
    # digits has 17 levels: every value is round(v * 255 / 16)
    assert set(np.unique(a["images"])) <= {round(v * 255 / 16) for v in range(17)}


def test_evaluate_prints_domain_fid(tiny_run, tmp_path):
    proc = run_cli(
        "evaluate", tiny_run, "--data", "digits", "--n", "200", "--metrics", "fid", "--out", tmp_path
    )
    assert "domain FID" in proc.stdout and "floor" in proc.stdout
    assert (tmp_path / "metrics.json").is_file()


def test_distill_writes_a_few_step_student(tiny_run, tmp_path):
    import json

    out = tmp_path / "student"
    args = ("--steps", "2", "--batch-size", "8", "--sampling-steps", "3", "--no-progress", "--out", out)
    proc = run_cli("distill", tiny_run, *args)
    assert "model directory" in proc.stdout
    meta = json.loads((out / "config.json").read_text())
    model, teacher = meta["model_config"], (out / meta["parents"]["teacher"]["path"]).resolve()
    assert (meta["registry_name"], model["sampler"], model["steps"]) == ("ddpm-student", "ddim", 3)
    assert teacher == tiny_run.resolve()
    run_cli("sample", out, "--n", "3", "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file()


def test_distill_consistency_then_sample_in_one_step(tiny_run, tmp_path):
    import json

    out = tmp_path / "consistency"
    args = ("--method", "consistency", "--steps", "2", "--batch-size", "8", "--no-progress", "--out", out)
    run_cli("distill", tiny_run, *args)
    meta = json.loads((out / "config.json").read_text())
    assert (meta["registry_name"], meta["model_config"]["sampler"]) == ("ddpm-consistency", "consistency")
    proc = run_cli("sample", out, "--n", "3", "--steps", "1", "--out", tmp_path / "c.png")
    assert (tmp_path / "c.png").is_file(), proc.stdout


def test_distill_reflow_needs_a_flow_matching_teacher(tiny_run, tmp_path):
    proc = run_cli(
        "distill", tiny_run, "--method", "reflow", "--steps", "1", "--out", tmp_path / "r", check=False
    )
    assert proc.returncode == 2 and "reflow takes a flow-matching teacher" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_train_ldm_trains_its_autoencoder_then_samples(tmp_path):
    out = tmp_path / "ldm"
    sets = [
        "--set",
        "base_channels=8",
        "--set",
        "num_res_blocks=1",
        "--set",
        "downsample=1",
        "--set",
        "steps=3",
    ]
    proc = run_cli("train", "ldm", "--steps", "4", "--batch-size", "16", "--no-progress", "--out", out, *sets)
    assert "stage 1 of 2" in proc.stdout and "stage 2 of 2" in proc.stdout
    assert (out / "autoencoder" / "model.safetensors").is_file()
    run_cli("sample", out, "--n", "3", "--out", tmp_path / "l.png")
    assert (tmp_path / "l.png").is_file()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "nosuchmodel", "--steps", "1"], "unknown model"),
        (["distill", "/nonexistent/run", "--method", "consistency"], "/nonexistent/run"),
        (["train", "ddpm", "--data", "nosuch:thing", "--steps", "1"], "dataset spec"),
        (["train", "ddpm", "--data", "folder:/nonexistent/dir", "--steps", "1"], "/nonexistent/dir"),
        (["train", "ddpm", "--steps", "1", "--set", "objective=banana"], "objective"),
        (["train", "ddpm", "--steps", "1", "--set", "nosuchkey=1"], "unknown"),
        (["train", "ddpm", "--steps", "1", "--set", "base_channels=abc"], "base_channels"),
        (["train", "ddpm", "--steps", "0"], "--steps must be >= 1"),
        (["train", "ddpm", "--steps", "1", "--lr", "-3"], "--lr"),
        (["train", "ddpm", "--steps", "1", "--keep", "best"], "--keep best needs validation"),
        (["train", "pixelcnn", "--steps", "1", "--set", "train.validate_every=-1"], "validate_every"),
        (["sample", "/nonexistent/run", "--n", "2"], "does not exist"),
        (["train", "ddpm", "--resume", "--out", "/nonexistent/run"], "does not exist"),
        (["train", "ddpm", "--resume"], "--resume needs --out"),
        (["evaluate", "npz:/nonexistent.npz", "--data", "digits"], "nonexistent"),
        (["distill", "/nonexistent/run", "--steps", "1"], "does not exist"),
        (["distill", "/nonexistent/run", "--set", "base_channels=4"], "train.FIELD"),
        (["distill", "/nonexistent/run", "--resume"], "--resume needs --out"),
    ],
)
def test_bad_values_fail_in_one_line(args, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert needle in lines[0]


def test_bad_values_fail_in_one_line_from_a_real_process(tmp_path):
    proc = run_cli("train", "ddpm", "--set", "objective=banana", "--steps", "1", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "objective" in proc.stderr


def test_bad_sample_options_name_what_the_family_accepts(tiny_run, tmp_path):
    proc = run_cli("sample", tiny_run, "--n", "2", "--temperature", "0.7", check=False)
    assert proc.returncode == 2 and "temperature" in proc.stderr and "accepts" in proc.stderr
    proc = run_cli("sample", tiny_run, "--n", "2", "--label", "3", check=False)
    assert proc.returncode == 2 and "unconditional" in proc.stderr
    proc = run_cli("sample", tiny_run, "--n", "2", "--out", tmp_path / "x.jpg", check=False)
    assert proc.returncode == 2 and ".png or .npz" in proc.stderr
