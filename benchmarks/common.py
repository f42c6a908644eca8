"""Shared helpers of the benchmark scripts: timing, machine description, JSON output.

Every benchmark prints one JSON object (and may write it to ``--json FILE``) with the machine,
the versions, the mode (quick or full) and its figures, so runs can be compared and tabled.
A result's optional ``"table"`` (a list of ``{"figure": ..., "value": ...}`` rows) is what
``make_table.py`` puts in README.md, with the result's ``"command"`` and ``"date"``.

The machine is often shared: ``machine()`` records the load average at the time of writing, and
:func:`load_note` turns the loads seen during a run into one sentence the JSON carries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="at most 10 minutes: smaller budgets, said in the JSON"
    )
    p.add_argument("--json", help="also write the JSON result to this file")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    return p


def machine() -> dict:
    import torch

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_1_5_15min": [round(v, 2) for v in os.getloadavg()],
    }


def set_threads(args) -> None:
    """Apply ``--threads`` (torch intra-op threads) when given."""
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def busy(peak: float, threads: int) -> bool:
    """True when a run's peak 1-min load exceeds its own torch threads by more than half a core."""
    return peak > threads + 0.5


def load_note(loads: list[float]) -> str:
    """One sentence on how busy the machine was, from 1-minute load averages sampled during a run.

    The run's own torch threads count towards the load average; "quiet" means that other work
    added at most half a core on top of them.
    """
    import torch

    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    peak = max(loads) if loads else os.getloadavg()[0]
    if not busy(peak, threads):
        return (
            f"quiet machine (1-min load average at most {peak:.1f} on {cores} cores, "
            f"this run's {threads} torch threads included)"
        )
    return (
        f"LOADED machine: 1-min load average up to {peak:.1f} on {cores} cores while this ran with "
        f"{threads} torch threads; absolute speeds are low and noisy, ratios between trainers run in "
        "the same process are the figures to read"
    )


def peer_versions() -> dict:
    """Versions of the peer libraries that are installed (None for a missing one)."""
    from importlib import metadata

    out = {}
    for name in ("diffusers", "pythae", "torch", "genvision"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def fid_against(images, spec: str) -> dict:
    """Domain FID of float images (N, C, H, W) in [-1, 1] against dataset ``spec`` (INTERFACES.md protocol)."""
    from genvision import data
    from genvision.metrics.evaluate import domain_fid

    value, floor = domain_fid(images, data.load(spec, "train"), data.load(spec, "test"))
    return {"fid": value, "floor": floor, "n_generated": len(images)}


def timeit(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, sync: bool = False) -> dict:
    """Wall-clock seconds of ``fn()``: median and spread over ``repeats`` after ``warmup`` calls."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def matmul_peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Achieved float32 matmul GFLOP/s on this machine right now (the 'peak' we compare with)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    t = timeit(lambda: a @ b, repeats=repeats, warmup=2)
    return 2 * n**3 / t["min_s"] / 1e9


def emit(result: dict, args=None) -> dict:
    """Print the result as JSON (with machine and date) and write it to ``--json`` if given."""
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        **result,
    }
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args is not None and getattr(args, "json", None):
        from genvision import io

        io.write_text(args.json, text + "\n")
    return out
