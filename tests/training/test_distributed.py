"""Two gloo processes on disjoint shards end allclose to one process on the combined batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from gvtest import TINY_DDPM, run_cli, tiny_set_args
from safetensors.torch import load_file

import genvision as gv

ARGS = ["--data", "digits", "--steps", "6", "--batch-size", "16", "--sample-every", "0", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_on_the_combined_batch(tmp_path):
    one = tmp_path / "one"
    run_cli("train", "ddpm", *ARGS, *tiny_set_args(), "--out", one)

    two = tmp_path / "two"
    # `accelerate launch` (torchrun underneath); on CPU the process group uses gloo.
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "genvision",
        "train",
        "ddpm",
        *ARGS,
        *tiny_set_args(),
        "--out",
        str(two),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((two / "config.json").read_text())["world_size"] == 2

    a = load_file(str(one / "training_state" / "state.safetensors"))
    b = load_file(str(two / "training_state" / "state.safetensors"))
    keys = [k for k in a if k.startswith("model.")]
    assert keys
    for k in keys:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), f"{k} differs between 1 and 2 processes"

    # training moved the weights: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    init = gv.create("ddpm", **TINY_DDPM, levels=17, num_classes=10).state_dict()
    assert any(not torch.allclose(init[k[6:]], a[k]) for k in keys)
