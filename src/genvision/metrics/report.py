"""``report.md`` of a run directory, rebuilt from whatever the directory holds.

Inputs (each optional): ``config.json`` (model name, family, configs, data), ``metrics.jsonl``
(loss curve -> ``loss.png``, final loss, throughput), ``grid.png`` and ``samples/`` (written by
the trainer), ``metrics.json`` (written by ``genvision evaluate``). The trainer calls
:func:`write_report` at the end of a run and ``evaluate`` calls it again after scoring a model
directory, so the report always shows the latest of each. Images are linked relatively, so the
directory can be moved or viewed on a forge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .. import io

REPORT_FILE = "report.md"


def write_report(run_dir) -> Path:
    """Build ``run_dir/report.md`` (and ``loss.png`` when there are loss records); returns its path."""
    run_dir = Path(run_dir)
    meta = _read_json(run_dir / "config.json") or {}
    records = read_records(run_dir / "metrics.jsonl")
    evaluation = _read_json(run_dir / "metrics.json")

    name = meta.get("registry_name", run_dir.name)
    data = meta.get("data") or {}
    spec = data.get("spec") if isinstance(data, dict) else data
    lines = [f"# {name}" + (f" on {spec}" if spec else ""), ""]
    facts = [f"family: {meta['family']}" if "family" in meta else None]
    facts += [f"status: {meta['status']}" if "status" in meta else None]
    facts += [f"genvision {meta['genvision_version']}" if "genvision_version" in meta else None]
    if any(facts):
        lines += [" · ".join(f for f in facts if f), ""]

    lines += _training_section(run_dir, records)
    lines += _samples_section(run_dir)
    lines += _evaluation_section(evaluation)
    lines += _config_section(meta)
    return io.write_text(run_dir / REPORT_FILE, "\n".join(lines).rstrip() + "\n")


def read_records(path: Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl file; torn or blank lines are skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


# ----------------------------------------------------------------------------- sections
def _training_section(run_dir: Path, records: list[dict]) -> list[str]:
    if not records:
        return []
    from ..viz import plot_loss

    rows = []
    last = records[-1]
    for key, label in (("step", "steps"), ("images", "images seen"), ("elapsed", "training seconds")):
        if key in last:
            rows.append((label, _fmt(last[key])))
    losses = [r["loss"] for r in records if _number(r.get("loss"))]
    if losses:
        rows.append(("final loss (last logged)", _fmt(losses[-1])))
        tail = losses[-max(1, len(losses) // 10) :]
        rows.append((f"mean loss, last {len(tail)} records", _fmt(sum(tail) / len(tail))))
    speeds = sorted(r["img_per_s"] for r in records if _number(r.get("img_per_s")))
    if speeds:
        rows.append(("images / s (median over records)", _fmt(speeds[len(speeds) // 2])))
    flops = [r["flops_per_image"] for r in records if _number(r.get("flops_per_image"))]
    if flops:
        rows.append(("training FLOPs / image", _fmt_flops(flops[-1])))
    lines = ["## Training", "", *_table(("training", "value"), rows), ""]
    if any("loss" in k for r in records for k in r):
        plot_loss(records, run_dir / "loss.png")
        lines += ["![loss curve](loss.png)", ""]
    return lines


def _samples_section(run_dir: Path) -> list[str]:
    lines = []
    if (run_dir / "grid.png").is_file():
        lines += ["![samples](grid.png)", ""]
    steps = sorted((run_dir / "samples").glob("step_*.png")) if (run_dir / "samples").is_dir() else []
    if steps:
        latest = steps[-1].relative_to(run_dir).as_posix()
        lines += [
            f"Sample grids during training: {len(steps)} in `samples/`; latest [{latest}]({latest}).",
            "",
        ]
    return ["## Samples", "", *lines] if lines else []


def _evaluation_section(evaluation: dict | None) -> list[str]:
    if not evaluation:
        return []
    m = evaluation.get("metrics", {})
    rows = []
    f = m.get("fid") or {}
    if _number(f.get("value")):
        rows.append(
            (
                "domain FID",
                f"{_fmt(f['value'])} ({f.get('n_generated')} generated vs {f.get('n_reference')} train)",
            )
        )
        rows.append(
            ("floor (test split vs train)", f"{_fmt(f.get('floor'))} ({f.get('n_floor')} test images)")
        )
        rows.append(("ratio to floor", _fmt(f.get("ratio_to_floor"))))
        judge = f.get("judge") or {}
        if "test_accuracy" in judge:
            rows.append(
                (
                    "judge test accuracy",
                    f"{_fmt(judge['test_accuracy'])} (recipe v{judge.get('recipe_version')})",
                )
            )
    elif f:
        rows.append(("domain FID", f"n/a: {f.get('reason', '')}"))
    conf = m.get("confidence") or {}
    if conf:
        rows.append(
            (
                "judge confidence, samples / test split",
                f"{_fmt(conf['samples'])} / {_fmt(conf['test_split'])}",
            )
        )
    hist = m.get("class_histogram") or {}
    if hist:
        rows.append(
            (
                "class entropy (nats), samples / max",
                f"{_fmt(hist['entropy_nats'])} / {_fmt(hist['max_entropy_nats'])}",
            )
        )
    src = evaluation.get("source") or {}
    lines = ["## Evaluation", ""]
    if src:
        lines += [
            f"Source: {src.get('kind', '?')}, seed {src.get('seed', '-')}, {src.get('n', '?')} images.",
            "",
        ]
    lines += [*_table(("metric", "value"), rows), ""]
    if hist.get("counts"):
        k = len(hist["counts"])
        header = ("class", *map(str, range(k)))
        body = [("samples", *map(str, hist["counts"]))]
        if hist.get("test_split_counts"):
            body.append(("test split", *map(str, hist["test_split_counts"])))
        lines += ["Judge-predicted classes:", "", *_table(header, body), ""]
    return lines


def _config_section(meta: dict) -> list[str]:
    lines = []
    for key, title in (("model_config", "Model config"), ("train_config", "Train config")):
        cfg = meta.get(key)
        if isinstance(cfg, dict) and cfg:
            rows = [(k, f"`{json.dumps(v)}`") for k, v in cfg.items() if v is not None]
            lines += [f"### {title}", "", *_table(("key", "value"), rows), ""]
    return ["## Configuration", "", *lines] if lines else []


# ----------------------------------------------------------------------------- formatting
def _table(header, rows) -> list[str]:
    if not rows:
        return []
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"


def _fmt_flops(v: float) -> str:
    for unit, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} FLOP"


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
