"""Nothing a user types destroys their data; faults end in a checkpoint and a one-line message.

In process through ``genvision.cli.main`` where a real process is not the point (exit codes and
signals use real processes in test_resume.py and test_signals.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from gvtest import TINY_DDPM, tiny_set_args
from safetensors.torch import load_file

import genvision as gv
from genvision import io
from genvision.cli import main
from genvision.model_dir import save_model_dir
from genvision.training import checkpoint
from genvision.training.trainer import TrainingError

QUICK = ["--data", "digits", "--batch-size", "8", "--sample-every", "0", "--no-progress"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# -- 1, 2: --overwrite and --out never destroy what genvision did not write --------------------
def test_overwrite_refuses_a_foreign_folder_with_config_json_and_git(tmp_path, capsys):
    repo = tmp_path / "my-ml-repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "config.json").write_text('{"hidden_size": 768}')
    (repo / "train.py").write_text("print('mine')\n")
    before = snapshot(repo)
    code = main(
        ["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(repo), "--overwrite"]
    )
    one_line_error(capsys, code, "refusing to overwrite", ".git")
    (repo / ".git" / "HEAD").unlink()
    (repo / ".git").rmdir()
    before.pop(".git/HEAD")
    code = main(
        ["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(repo), "--overwrite"]
    )
    one_line_error(capsys, code, "not a genvision run directory")
    assert snapshot(repo) == before


def test_overwrite_never_takes_the_current_directory(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(run)]) == 0
    monkeypatch.chdir(run)
    before = snapshot(run)
    code = main(["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", ".", "--overwrite"])
    one_line_error(capsys, code, "current, home or root directory")
    assert snapshot(run) == before


def test_overwrite_of_a_run_deletes_only_what_a_run_writes(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ddpm", *QUICK, "--steps", "2", *tiny_set_args(), "--out", str(run)]) == 0
    (run / "my-notes.txt").write_text("keep me")
    assert (
        main(["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(run), "--overwrite"])
        == 0
    )
    assert (run / "my-notes.txt").read_text() == "keep me"
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 1


def test_distill_into_its_teacher_is_refused_before_anything_is_deleted(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(teacher)]) == 0
    before = snapshot(teacher)
    code = main(
        ["distill", str(teacher), "--steps", "1", "--out", str(teacher), "--overwrite", "--no-progress"]
    )
    one_line_error(capsys, code, "is (or holds) the teacher model")
    assert snapshot(teacher) == before


# -- 3: the NaN guard works without clipping and no save writes non-finite weights -------------
def poisoned(model, at_step: int, what: str):
    """From update ``at_step`` on, the gradient goes NaN (finite loss) or, after the optimiser
    step, a weight does (a non-gradient update gone wrong)."""
    loss, after_step, calls = model.loss, model.after_step, {"n": 0, "updates": 0}
    first = next(model.parameters())

    def wrapped_loss(x, y=None, phase="main", generator=None):
        calls["n"] += 1
        out = loss(x, y, phase=phase, generator=generator)
        if what == "gradient" and calls["n"] >= at_step:  # d sqrt(u) / du at u = 0 is infinite
            out["loss"] = out["loss"] + torch.sqrt(first.sum() * 0)
        return out

    def wrapped_after_step(phase):
        after_step(phase)
        calls["updates"] += 1
        if what == "weights" and calls["updates"] >= at_step:
            with torch.no_grad():
                first.view(-1)[0] = float("nan")

    model.loss, model.after_step = wrapped_loss, wrapped_after_step
    return model


@pytest.mark.parametrize("what", ["gradient", "weights"])
def test_nan_without_clipping_never_replaces_the_last_good_checkpoint(tmp_path, what):
    model = poisoned(gv.create("ddpm", **TINY_DDPM, levels=17, num_classes=10), at_step=4, what=what)
    out = tmp_path / "run"
    with pytest.raises(
        TrainingError, match="gradient norm became nan" if what == "gradient" else "non-finite"
    ):
        gv.train(
            model,
            data="digits",
            out=out,
            steps=6,
            batch_size=8,
            save_every=2,
            sample_every=0,
            grad_clip=0.0,
            progress=False,
        )
    _, meta = checkpoint.load(out)
    assert meta["step"] == 2
    weights = load_file(str(out / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


# -- 5: --resume of a run killed before its first checkpoint starts it -------------------------
def test_resume_without_a_checkpoint_starts_the_run(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(["train", "ddpm", *QUICK, "--steps", "2", *tiny_set_args(), "--out", str(empty), "--resume"])
        == 0
    )
    assert "nothing to resume" in capsys.readouterr().out
    assert json.loads((empty / "config.json").read_text())["status"] == "finished"
    # killed after config.json, before the first checkpoint
    (empty / "model.safetensors").unlink()
    checkpoint.state_path(empty).unlink()
    assert (
        main(["train", "ddpm", *QUICK, "--steps", "2", *tiny_set_args(), "--out", str(empty), "--resume"])
        == 0
    )
    assert checkpoint.state_path(empty).is_file()


# -- 6: a failed write is one line, names the file, and keeps the previous checkpoint -----------
def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real, writes = os.replace, {"n": 0}

    def replace(src, dst):
        writes["n"] += 1
        if str(dst).endswith("state.safetensors") and writes["state"] == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if str(dst).endswith("state.safetensors"):
            writes["state"] = 1
        return real(src, dst)

    writes["state"] = 0
    monkeypatch.setattr(io.os, "replace", replace)
    code = main(
        ["train", "ddpm", *QUICK, "--steps", "4", "--save-every", "2", *tiny_set_args(), "--out", str(out)]
    )
    one_line_error(capsys, code, "cannot write", "state.safetensors", "No space left on device")
    _, meta = checkpoint.load(out)
    assert meta["step"] == 2
    assert not list((out / "training_state").glob(".*.tmp"))


def test_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["train", "ddpm", *QUICK, "--steps", "1", *tiny_set_args(), "--out", str(blocker / "run")])
    one_line_error(capsys, code)
    assert blocker.read_text() == "not a folder"


def test_a_kill_between_state_and_weights_leaves_a_loadable_directory_that_resume_repairs(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "ddpm",
                *QUICK,
                "--steps",
                "2",
                "--save-every",
                "2",
                *tiny_set_args(),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    real = io.write_bytes

    def killed(path, data):
        if Path(path).name == "model.safetensors":
            raise SystemExit("killed")  # the process dies after the state, before the weights
        return real(path, data)

    monkeypatch.setattr(io, "write_bytes", killed)
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "ddpm",
                *QUICK,
                "--steps",
                "4",
                "--save-every",
                "2",
                *tiny_set_args(),
                "--out",
                str(out),
                "--resume",
            ]
        )
    monkeypatch.setattr(io, "write_bytes", real)
    _, meta = checkpoint.load(out)
    assert meta["step"] == 4
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() != meta["weights_sha256"]
    gv.load(out)  # the older weights still match config.json
    save_model_dir  # noqa: B018 (imported for the reader: directories stay model directories)
    assert (
        main(["train", "ddpm", *QUICK, "--steps", "4", *tiny_set_args(), "--out", str(out), "--resume"]) == 0
    )
    assert "repaired" in capsys.readouterr().out
    assert (
        hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
        == checkpoint.load(out)[1]["weights_sha256"]
    )


# -- 18: a hand-started process group listens on the loopback interface -------------------------
def test_local_process_groups_rendezvous_on_loopback():
    from genvision.training.distributed import local_rendezvous

    assert local_rendezvous({"WORLD_SIZE": "2", "RANK": "1"}) == {"MASTER_ADDR": "127.0.0.1"}
    assert local_rendezvous({"WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.5"}) == {}
    assert local_rendezvous({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}) == {}
