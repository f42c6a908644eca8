"""Signals and kills: every rank stops together with a checkpoint; many SIGKILLs change nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from gvtest import run_cli, tiny_set_args
from safetensors.torch import load_file

import genvision as gv
from genvision.training import checkpoint

ARGS = ["--data", "digits", "--batch-size", "16", "--sample-every", "0", "--no-progress"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_pids(out: Path) -> dict[int, int]:
    """rank -> pid of the genvision processes training into ``out`` (read from /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = dict(
                kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv
            )
        except OSError:
            continue
        if str(out).encode() in cmdline and b"RANK" in environ and b"genvision" in b" ".join(cmdline):
            found[int(environ[b"RANK"])] = int(proc.name)
    return found


def test_sigterm_to_rank_1_stops_every_rank_with_a_final_checkpoint(tmp_path):
    out = tmp_path / "dp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
        "-m", "genvision", "train", "ddpm", *ARGS, "--steps", "2000", "--save-every", "0",
        "--set", "train.log_every=1", *tiny_set_args(), "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", GENVISION_TEST_STEP_DELAY="0.02")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not (out / "metrics.jsonl").exists():
        assert proc.poll() is None and time.time() - t0 < 120, "the run ended before it logged a step"
        time.sleep(0.05)
    ranks = _rank_pids(out)
    assert set(ranks) == {0, 1}, ranks
    os.kill(ranks[1], signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    meta = json.loads((out / "config.json").read_text())
    assert meta["status"] == "interrupted", err.decode()[-2000:]
    tensors, state = checkpoint.load(out)  # complete and readable: the final checkpoint
    assert 0 < state["step"] < 2000
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == state["step"]


def _state(run: Path) -> dict[str, torch.Tensor]:
    state = load_file(str(run / "training_state" / "state.safetensors"))
    state = {k: v for k, v in state.items() if not k.startswith("rng.")}
    state.update({f"file.{k}": v for k, v in load_file(str(run / "model.safetensors")).items()})
    return state


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after kill + resume"


@pytest.mark.slow
def test_five_sigkills_at_random_moments_then_resume_equal_an_uninterrupted_run(tmp_path):
    args = [*ARGS, "--steps", "40", "--save-every", "4", "--ema-half-life", "500", *tiny_set_args()]
    ref = tmp_path / "ref"
    run_cli("train", "ddpm", *args, "--out", ref)
    run = tmp_path / "killed"
    run.mkdir()  # --resume of an empty run directory starts the run
    rng = random.Random(0)
    env = dict(os.environ, OMP_NUM_THREADS="1", GENVISION_TEST_STEP_DELAY="0.01")
    for _ in range(5):
        started = time.time()
        cmd = [sys.executable, "-m", "genvision", "train", "ddpm", *args, "--out", str(run), "--resume"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # once this process has begun training (it rewrites config.json), a seeded moment later:
        # mid-step, mid-write or between the state and the weights, wherever it lands
        config = run / "config.json"
        while proc.poll() is None and not (config.exists() and config.stat().st_mtime >= started):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_cli("train", "ddpm", *args, "--out", run, "--resume")
    _assert_equal(_state(ref), _state(run))


SMALL = {
    "dcgan": {"latent_dim": 8, "base_channels": 8},  # two phases, batch norm
    "vqvae": {"base_channels": 8, "codebook_size": 16, "embedding_dim": 4},  # codebook EMA, restarts
    "glow": {"steps_per_level": 2, "hidden_channels": 8},  # actnorm data-dependent init
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_exact_resume_of_gan_vqvae_and_flow(name, tmp_path):
    common = dict(
        data="digits", batch_size=16, save_every=3, sample_every=0, progress=False, model_config=SMALL[name]
    )
    ref = gv.train(name, out=tmp_path / "ref", steps=6, **common)
    part = gv.train(name, out=tmp_path / "part", steps=3, **common)
    gv.train(name, out=part, steps=6, resume=True, **{k: v for k, v in common.items() if k != "model_config"})
    _assert_equal(_state(ref), _state(part))
