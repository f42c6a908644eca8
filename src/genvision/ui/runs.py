"""The runs folder as the web app sees it: one card per run directory, live progress from
``metrics.jsonl``, and a run's page (report, config, metrics)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..model_dir import CONFIG_FILE
from . import markdown

#: how deep under the runs folder run directories are looked for (a latent model's autoencoder
#: sub-run and a comparison's runs sit one or two levels down)
MAX_DEPTH = 3
#: a run whose status says "training" but whose log has not moved for this long is shown as stale
STALE_SECONDS = 120
#: the trainer's length when a run gave none (``training.run``: 1000 steps)
DEFAULT_STEPS = 1000
SKIP = {"training_state", "samples", "tensorboard", ".ui", "__pycache__"}


def run_dirs(root: Path, marker: str = CONFIG_FILE) -> list[Path]:
    """Every directory under ``root`` holding ``marker`` (a run's ``config.json``; a comparison's
    ``leaderboard.json``), not following symlinks."""
    found = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        if (d / marker).is_file() and d != root:
            found.append(d)
        if depth >= MAX_DEPTH:
            return
        for e in entries:
            if e.is_dir() and not e.is_symlink() and e.name not in SKIP and not e.name.startswith("."):
                walk(e, depth + 1)

    walk(root, 0)
    return found


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def last_record(path: Path, max_bytes: int = 16384) -> dict | None:
    """The last complete JSON line of ``metrics.jsonl`` (reads only its tail)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "step" in rec:
            return rec
    return None


def loss_of(rec: dict) -> tuple[str, float] | None:
    """The record's main loss: ``loss``, else the first ``*/loss`` (a GAN's discriminator, ...)."""
    if isinstance(rec.get("loss"), (int, float)):
        return "loss", rec["loss"]
    for k, v in rec.items():
        if k.endswith("loss") and isinstance(v, (int, float)):
            return k, v
    return None


def progress(run: Path, meta: dict) -> dict | None:
    """Steps, loss, img/s, fraction done and ETA of a run from its last log record."""
    rec = last_record(run / "metrics.jsonl")
    if rec is None:
        return None
    tc = meta.get("train_config") or {}
    step, images, elapsed = rec.get("step", 0), rec.get("images", 0), rec.get("elapsed", 0.0)
    if tc.get("steps"):
        fraction, total = step / tc["steps"], f"{tc['steps']} steps"
    elif tc.get("images"):
        fraction, total = images / tc["images"], f"{tc['images']} images"
    elif tc.get("minutes"):
        fraction, total = elapsed / (60 * tc["minutes"]), f"{tc['minutes']:g} minutes"
    else:
        fraction, total = step / DEFAULT_STEPS, f"{DEFAULT_STEPS} steps"
    fraction = max(0.0, min(1.0, fraction))
    if meta.get("status") == "finished":
        fraction = 1.0
    eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else 0.0
    loss = loss_of(rec)
    try:
        age = time.time() - (run / "metrics.jsonl").stat().st_mtime
    except OSError:
        age = math.inf
    return {
        "step": step,
        "images": images,
        "elapsed": elapsed,
        "img_per_s": rec.get("img_per_s"),
        "loss_name": loss[0] if loss else None,
        "loss": loss[1] if loss else None,
        "fraction": fraction,
        "eta": eta,
        "total": total,
        "seconds_since_log": age,
    }


def status_of(meta: dict, prog: dict | None, live: bool) -> str:
    status = meta.get("status") or "unknown"
    if status == "training" and not live:
        age = prog["seconds_since_log"] if prog else math.inf
        if age > STALE_SECONDS:
            return "stale"  # killed without saving its status, or still writing its first records
    return status


def latest_grid(run: Path) -> str | None:
    """Relative path of the run's grid, else its newest training grid."""
    if (run / "grid.png").is_file():
        return "grid.png"
    grids = sorted((run / "samples").glob("step_*.png")) if (run / "samples").is_dir() else []
    return f"samples/{grids[-1].name}" if grids else None


def key_metrics(run: Path) -> dict:
    """The headline numbers of ``metrics.json``: each metric's value (and FID's floor ratio)."""
    ev = read_json(run / "metrics.json") or {}
    out = {}
    for name, m in (ev.get("metrics") or {}).items():
        if isinstance(m, dict) and isinstance(m.get("value"), (int, float)):
            out[name] = m["value"]
            if name == "fid" and isinstance(m.get("ratio_to_floor"), (int, float)):
                out["fid_ratio_to_floor"] = m["ratio_to_floor"]
    human = read_json(run / "human_eval.json")
    if isinstance(human, dict) and isinstance(human.get("error_rate"), (int, float)):
        out["human_error_rate"] = human["error_rate"]
    return out


def card(root: Path, run: Path, live: bool = False) -> dict:
    meta = read_json(run / CONFIG_FILE) or {}
    prog = progress(run, meta)
    data = meta.get("data") or {}
    try:
        mtime = max((run / f).stat().st_mtime for f in (CONFIG_FILE, "metrics.jsonl") if (run / f).exists())
    except ValueError:
        mtime = 0.0
    return {
        "name": run.relative_to(root.resolve()).as_posix(),
        "model": meta.get("registry_name"),
        "family": meta.get("family"),
        "data": data.get("spec"),
        "image_size": (meta.get("model_config") or {}).get("image_size"),
        "status": status_of(meta, prog, live),
        "has_weights": (run / "model.safetensors").is_file(),
        "grid": latest_grid(run),
        "metrics": key_metrics(run),
        "progress": prog,
        "modified": mtime,
    }


def detail(root: Path, run: Path, live: bool = False) -> dict:
    """A run's page: its card, the report rendered to HTML, the config and the evaluation."""
    c = card(root, run, live)
    report = run / "report.md"
    html = None
    if report.is_file():
        html = markdown.render(report.read_text(errors="replace"), base=f"/files/{c['name']}/")
    return {
        **c,
        "report_html": html,
        "config": read_json(run / CONFIG_FILE),
        "evaluation": read_json(run / "metrics.json"),
        "human": read_json(run / "human_eval.json"),
    }


def leaderboards(root: Path) -> list[dict]:
    """The ``genvision compare`` outputs under ``root``: their leaderboard and report as HTML."""
    out = []
    for d in run_dirs(root, "leaderboard.json"):
        board = read_json(d / "leaderboard.json") or {}
        name = d.relative_to(root.resolve()).as_posix()
        report = d / "report.md"
        out.append(
            {
                "name": name,
                "data": board.get("data"),
                "models": [m.get("model") for m in board.get("models") or [] if isinstance(m, dict)],
                "created": board.get("created"),
                "report_html": markdown.render(report.read_text(errors="replace"), base=f"/files/{name}/")
                if report.is_file()
                else None,
            }
        )
    return out
