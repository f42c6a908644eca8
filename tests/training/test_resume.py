"""A run killed with SIGKILL (mid-step, and during a checkpoint write) and resumed ends
bitwise equal to an uninterrupted run of the same length."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from gvtest import run_cli, tiny_set_args
from safetensors.torch import load_file

ARGS = [
    "--data",
    "digits",
    "--steps",
    "45",
    "--save-every",
    "15",
    "--sample-every",
    "0",
    "--batch-size",
    "16",
    "--ema-half-life",
    "500",
    "--no-progress",
]


def _start(out: Path, extra_env: dict, resume: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-m", "genvision", "train", "ddpm", *ARGS, *tiny_set_args(), "--out", str(out)]
    if resume:
        args.append("--resume")
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra_env)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, proc, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended before the kill point:\n{err.decode()[-2000:]}")
        time.sleep(0.01)
    raise AssertionError("timed out waiting for the kill point")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_file(str(run / "training_state" / "state.safetensors"))
    state = {k: v for k, v in state.items() if k.startswith(("model.", "ema.", "opt"))}
    state.update({f"file.{k}": v for k, v in load_file(str(run / "model.safetensors")).items()})
    return state


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    run_cli("train", "ddpm", *ARGS, *tiny_set_args(), "--out", ref)

    run = tmp_path / "killed"
    state = run / "training_state" / "state.safetensors"
    # 1) SIGKILL mid-step, after the first checkpoint (step 15): each update pauses after backward.
    proc = _start(run, {"GENVISION_TEST_STEP_DELAY": "0.05"})
    _wait_for(state.exists, proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # 2) resume, and SIGKILL while the step-30 checkpoint is half written.
    proc = _start(run, {"GENVISION_TEST_SAVE_DELAY": "30"}, resume=True)
    _wait_for(lambda: any((run / "training_state").glob(".state.safetensors.*.tmp")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any((run / "training_state").glob(".*.tmp")), "the kill should leave a half-written temporary"

    # 3) resume to the end.
    done = run_cli("train", "ddpm", *ARGS, *tiny_set_args(), "--out", run, "--resume")
    assert "model directory" in done.stdout
    assert not any((run / "training_state").glob(".*.tmp"))

    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after kill + resume"
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 45


def test_resume_refuses_conflicting_options(tmp_path):
    out = tmp_path / "r"
    run_cli(
        "train",
        "ddpm",
        *ARGS[:2],
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--no-progress",
        *tiny_set_args(),
        "--out",
        out,
    )
    proc = run_cli(
        "train", "ddpm", "--steps", "4", "--batch-size", "16", "--out", out, "--resume", check=False
    )
    assert proc.returncode == 2
    assert "batch_size" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # extending the length is allowed
    run_cli("train", "ddpm", "--steps", "4", "--out", out, "--resume", "--no-progress")
    assert '"step": 4' in (out / "metrics.jsonl").read_text()


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    run = tmp_path / "term"
    args = [
        sys.executable,
        "-m",
        "genvision",
        "train",
        "ddpm",
        "--data",
        "digits",
        "--steps",
        "400",
        "--save-every",
        "0",
        "--sample-every",
        "0",
        "--batch-size",
        "8",
        "--no-progress",
        "--set",
        "train.log_every=1",
        *tiny_set_args(),
        "--out",
        str(run),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", GENVISION_TEST_STEP_DELAY="0.05")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: (run / "metrics.jsonl").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]  # 128 + SIGTERM: stopped, resumable
    assert b"stopped by SIGTERM" in out
    meta = json.loads((run / "config.json").read_text())
    assert meta["status"] == "interrupted" and meta["stopped_by"] == "SIGTERM"
    step = load_file(str(run / "training_state" / "state.safetensors"))  # readable, complete
    assert step
    run_cli("train", "ddpm", "--steps", "3", "--out", run, "--resume", "--no-progress")
    assert json.loads((run / "config.json").read_text())["status"] == "finished"
