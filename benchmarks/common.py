"""Shared helpers of the benchmark scripts: timing, machine description, provenance, JSON output.

Every benchmark prints one JSON object and writes it to ``--json FILE`` (default
``benchmarks/results/<script>.json``, ``<script>-quick.json`` with ``--quick``, so quick and full
runs never overwrite each other) with the machine, the versions, the mode (quick or full), the
provenance of the code and its figures, so runs can be compared and tabled. A result's
``"table"`` (a list of ``{"figure": ..., "value": ...}`` rows) is what ``make_table.py`` puts in
README.md, with the result's ``"command"``, ``"date"`` and whether it is stale.

Provenance: each script declares the source files it measures (``MEASURES``: files, or folders
that stand for every file under them) and passes them to :func:`parser`, which records, before
the run starts, the git commit, whether the tree was dirty, and the git blob hash of every
measured file as it is in the working tree (:func:`provenance`; ``benchmarks/common.py`` always
counts). :func:`changed_files` later tells which of them differ from the recorded hashes: a
result whose measured code changed since is stale.

The machine is often shared: ``machine()`` records the load average at the time of writing, and
:func:`load_note` turns the loads seen during a run into one sentence the JSON carries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

#: the repository root (benchmarks/..): measured paths are relative to it
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
#: measured by every benchmark: it shapes every result
ALWAYS_MEASURED = ("benchmarks/common.py",)
#: what every benchmark that trains a genvision model through the trainer measures besides its own
#: family: a script's ``MEASURES`` is its own path, its families' folders and one of these
TRAINED = [
    "src/genvision/families/base.py",
    "src/genvision/nn/",
    "src/genvision/training/",
    "src/genvision/data/",
    "src/genvision/seeding.py",
]
#: the same, for a benchmark that also scores what it trained with genvision's metrics
TRAINED_AND_SCORED = [*TRAINED, "src/genvision/metrics/"]
#: what :func:`changed_files` reports for a file whose recorded hash cannot be trusted (the parts
#: of a merged result measured different versions of it)
PARTS_DIFFER = "parts differ"


def parser(description: str, measures: Iterable[str]) -> argparse.ArgumentParser:
    """The shared options, and the provenance of ``measures`` recorded now, before the run starts.

    Args:
        description: the script's one-line description.
        measures: the source files the script measures, relative to the repository root; a folder
            stands for every file under it (the script itself belongs in the list).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="at most 10 minutes: smaller budgets, said in the JSON"
    )
    p.add_argument(
        "--json",
        help="write the JSON result to this file (default benchmarks/results/<script>.json, "
        "<script>-quick.json with --quick)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.set_defaults(provenance=provenance(measures), started=time.time())
    return p


# ----------------------------------------------------------------------------- provenance
def blob_hash(path: Path) -> str | None:
    """Git's blob hash of the file as it is on disk (what ``git hash-object FILE`` prints), or None
    when there is no such file."""
    try:
        content = Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def expand(paths: Iterable[str], root: Path = REPO) -> list[str]:
    """The files ``paths`` stand for, relative to ``root``, sorted: a folder is every file under it
    (bytecode caches left out), anything else itself (a missing file too: its hash will be None)."""
    out = set()
    for p in paths:
        full = Path(root) / p
        if full.is_dir():
            for f in full.rglob("*"):
                rel = f.relative_to(root)
                if f.is_file() and "__pycache__" not in rel.parts and f.suffix != ".pyc":
                    out.add(rel.as_posix())
        else:
            out.add(Path(p).as_posix())
    return sorted(out)


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git ARGS`` in ``root``, or None when git or the repository is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(measures: Iterable[str], root: Path = REPO) -> dict:
    """The code a run measures: git commit, dirty tree, and each measured file's blob hash.

    ``measures`` are paths relative to ``root`` (folders expand to their files);
    ``benchmarks/common.py`` is always added. ``uncommitted`` lists the measured files whose
    working-tree content is not the commit's (so the commit alone does not reproduce the run).
    """
    declared = sorted({*ALWAYS_MEASURED, *measures})
    files = expand(declared, root)
    hashes = {f: blob_hash(Path(root) / f) for f in files}
    head = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    uncommitted = None
    if head is not None:
        listing = _git(root, "ls-tree", "-r", "HEAD", "--", *files) or ""
        at_head = {}
        for line in listing.splitlines():
            meta, _, path = line.partition("\t")
            at_head[path] = meta.split()[-1]
        uncommitted = [f for f in files if at_head.get(f) != hashes[f]]
    return {
        "commit": head,
        "dirty": None if status is None else bool(status),
        "uncommitted": uncommitted,
        "declared": declared,
        "measures": hashes,
    }


def changed_files(record: dict, root: Path = REPO) -> tuple[list[str], list[str]]:
    """(changed, new): the recorded files whose blob hash differs now (deleted ones included), and
    the files that the declared folders hold now but the record lacks."""
    recorded = record.get("measures") or {}
    changed = [f for f, h in sorted(recorded.items()) if blob_hash(Path(root) / f) != h]
    new = [f for f in expand(record.get("declared", []), root) if f not in recorded]
    return changed, new


def merged_provenance(records: list[dict | None]) -> dict:
    """One provenance record for a result pooled from several runs' records.

    A file every part measured at the same hash keeps it; one measured at different hashes (or
    missing from some part's record) gets :data:`PARTS_DIFFER`, which never matches a file, so
    the merged result reads as stale until it is run again. A part without a record makes the
    merged result have none either.
    """
    if not records or any(not r or not r.get("measures") for r in records):
        return {"parts": records, "measures": None}
    files = sorted({f for r in records for f in r["measures"]})
    measures = {}
    for f in files:
        seen = {r["measures"].get(f, PARTS_DIFFER) for r in records}
        measures[f] = seen.pop() if len(seen) == 1 else PARTS_DIFFER
    return {
        "commit": sorted({r.get("commit") or "" for r in records}),
        "dirty": any(r.get("dirty") for r in records),
        "uncommitted": sorted({f for r in records for f in (r.get("uncommitted") or [])}),
        "declared": sorted({d for r in records for d in r.get("declared", [])}),
        "measures": measures,
        "parts_differ": [f for f, h in measures.items() if h == PARTS_DIFFER],
    }


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


def fid_against(images, spec: str, seed: int = 0) -> dict:
    """Domain FID of float images (N, C, H, W) in [-1, 1] against dataset ``spec``, under the
    equal-N protocol of INTERFACES.md: ``fid``, its 95% bootstrap interval ``ci`` (samples
    resampled against the fixed reference, seeded by ``seed``), ``floor`` / ``floor_std`` at
    ``n_floor`` real images and ``equal_n`` (whether that is the samples' N)."""
    from genvision import data
    from genvision.metrics.evaluate import domain_fid_card

    card = domain_fid_card(images, data.load(spec, "train"), data.load(spec, "test"), seed=seed)
    card["n_generated"] = card.pop("n")
    return card


def training_records(run) -> list[dict]:
    """The training records of a run's ``metrics.jsonl`` (those with ``img_per_s``), in order:
    validation records (``val_loss``) and header lines are left out."""
    path = Path(run) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "img_per_s" in r]


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


def default_json(benchmark: str, quick: bool) -> Path:
    """Where a result goes without ``--json``: ``results/<benchmark>.json``, ``-quick`` in quick mode."""
    return RESULTS / f"{benchmark}{'-quick' if quick else ''}.json"


def emit(result: dict, args) -> dict:
    """Print the result as JSON (with machine, date and provenance) and write it to ``--json``
    (default :func:`default_json` of ``result["benchmark"]``).

    The provenance is the one :func:`parser` recorded at the start of the run, unless the result
    brings its own (a merged one).
    """
    record = result.get("provenance") or getattr(args, "provenance", None)
    if record is None:
        raise ValueError("no provenance: build the arguments with common.parser(description, measures)")
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "run_seconds": round(time.time() - args.started, 1) if getattr(args, "started", None) else None,
        **result,
        "provenance": record,
    }
    text = json.dumps(out, indent=2, default=float)
    print(text)
    path = getattr(args, "json", None) or default_json(result["benchmark"], getattr(args, "quick", False))
    from genvision import io

    io.write_text(path, text + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return out
