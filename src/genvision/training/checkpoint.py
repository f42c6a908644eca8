"""Training state for exact resume: one safetensors file, written atomically.

``DIR/training_state/state.safetensors`` holds every tensor needed to continue bit for bit
(raw weights and buffers, EMA, optimiser moments, the global torch RNG) and, in its metadata,
a JSON blob with the counters (step, images seen, data cursor, elapsed seconds) and each
optimiser's param-group settings. One file means one atomic rename: a kill at any moment leaves
the previous state or the new one. Nothing is unpickled on load.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from .. import io

STATE_DIR = "training_state"
STATE_FILE = "state.safetensors"
FORMAT = 1


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATE_DIR / STATE_FILE


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, list]:
    """Optimiser state as flat tensors ``{prefix}.{param_index}.{key}`` plus JSON-able groups."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}.{idx}.{key}"] = t
    return tensors, sd["param_groups"]


def unflatten_optimizer(prefix: str, tensors: dict, groups: list) -> dict:
    state: dict[int, dict] = {}
    head = prefix + "."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def save(run_dir: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Atomically write the training state (``tensors`` + JSON ``meta``)."""
    path = state_path(run_dir)
    meta = dict(meta, format=FORMAT)
    blob = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}

    def write(tmp):
        from safetensors.torch import save_file

        save_file(blob, tmp, metadata={"genvision": json.dumps(meta)})
        # Fault injection for the kill-during-write test: hold the half-done write open.
        delay = float(os.environ.get("GENVISION_TEST_SAVE_DELAY", "0") or 0)
        if delay:
            time.sleep(delay)

    io.atomic_write(path, write)
    return path


def load(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read the training state; clear errors for a missing or unreadable file."""
    from safetensors import SafetensorError, safe_open

    path = state_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: nothing to resume in {run_dir}; start again with --overwrite instead of --resume"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})["genvision"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({e}); it was not written by genvision's trainer") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has state format {meta.get('format')}, this genvision reads {FORMAT}")
    return tensors, meta


def remove_stale_temporaries(run_dir: str | Path, names=None) -> int:
    """Delete half-written temporaries (``.NAME.XXXXXXXX.tmp``, from ``io.atomic_write``) that a
    killed run left of the files it writes (``names``; default any); returns how many."""
    n = 0
    for folder in (Path(run_dir), Path(run_dir) / STATE_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                if names is None or p.name[1:-4].rpartition(".")[0] in names:
                    p.unlink(missing_ok=True)
                    n += 1
    return n
