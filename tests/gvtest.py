"""Helpers shared by the tests (import as ``from gvtest import ...``)."""

from __future__ import annotations

import importlib
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from ci_rules import in_ci

from genvision.metrics.judges import one_thread  # noqa: F401  (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[1]

#: a diffusion model small enough that a training step takes milliseconds
TINY_DDPM = {
    "base_channels": 16,
    "channel_mults": (1, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (),
    "num_train_timesteps": 50,
    "steps": 5,
}


def skip_or_fail(message: str) -> None:
    """Skip the test on a developer's machine; fail it under ``CI=true``, where nothing may be missing."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def import_or_fail(module: str):
    """``pytest.importorskip`` that fails under ``CI=true``; works at module level too."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        skip_or_fail(f"cannot import {module} ({e}); `make setup-test` installs the test extra")


def tiny_set_args() -> list[str]:
    args = []
    for k, v in TINY_DDPM.items():
        value = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
        args += ["--set", f"{k}={value}"]
    return args


def run_cli(*args, env=None, check=True, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m genvision ARGS`` in a subprocess; returns the completed process."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "genvision", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"genvision {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


NAN, INF = float("nan"), float("inf")
TINY_GAN = {"latent_dim": 8, "hidden": 16, "base_channels": 8}


def one_line(e) -> str:
    """The message of a ``pytest.raises`` ExceptionInfo, checked to be one line."""
    message = str(e.value)
    assert "\n" not in message.strip(), message
    return message


def preset_values(name: str) -> dict:
    """Config values a registry entry needs to build (classes for a conditional preset)."""
    from genvision import registry

    return {"num_classes": 10} if registry.resolve(name)[1].get("conditional") else {}


def bomb_png(side: int = 60_000) -> bytes:
    """A valid PNG header of side x side grey pixels with a tiny (wrong) body: a decompression
    bomb's header, for tests of the guarded decoder."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def count_net_calls(model) -> dict:
    """Wrap ``model.net.forward`` to count its calls: the returned dict's ``"n"``."""
    calls = {"n": 0}
    forward = model.net.forward

    def counting(*a, **k):
        calls["n"] += 1
        return forward(*a, **k)

    model.net.forward = counting
    return calls
