"""The leaderboard of a compare: ``report.md``, ``leaderboard.json`` and the three pictures.

Written from the compare state alone (``compare.json``: each run's recorded results) and the runs'
sample files, so it can be rewritten at any moment, for a compare part-way through too (runs not
yet evaluated show as pending). One row per model; with several seeds each cell is the mean
+- the standard deviation over seeds (ddof 1). The best value of each ranked column is bold:
lower is better for FID, KID, bits/dim and memorization, higher for the rest; parameters are
shown, not ranked. The Inception FID column appears only when runs were measured with the
Inception weights (``genvision.metrics.inception`` found them); otherwise a line under the table
says so.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import io
from ..metrics import inception
from . import figures

REPORT = "report.md"
LEADERBOARD = "leaderboard.json"
GRIDS, FID_VS_TIME, QUALITY_VS_SPEED = "grids.png", "fid_vs_time.png", "quality_vs_speed.png"
ROW_IMAGES = 10  # images per model in grids.png


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None  # "lower", "higher", or None (shown, not ranked)
    style: str  # how numbers are written: "sig" (3 significant digits), "fixed3", "count"


COLUMNS = (
    Column("fid", "domain FID", "lower", "sig"),
    Column("inception_fid", "Inception FID", "lower", "sig"),
    Column("kid", "KID x10^3", "lower", "sig"),
    Column("precision", "precision", "higher", "fixed3"),
    Column("recall", "recall", "higher", "fixed3"),
    Column("density", "density", "higher", "fixed3"),
    Column("coverage", "coverage", "higher", "fixed3"),
    Column("bpd", "bits/dim", "lower", "fixed3"),
    Column("train_img_s", "train img/s", "higher", "sig"),
    Column("sample_img_s", "sample img/s", "higher", "sig"),
    Column("parameters", "parameters", None, "count"),
    Column("memorization", "memorization", "lower", "fixed3"),
)
#: columns read from the evaluation's metrics of the same name
FROM_EVALUATE = ("fid", "kid", "precision", "recall", "density", "coverage", "bpd", "memorization")
#: columns whose single-seed cells show the confidence interval evaluate gives
WITH_CI = ("fid", "kid")


def write_all(out: Path, state: dict, plan) -> dict:
    """Write the leaderboard, the report and the pictures of ``state`` into ``out``; their paths."""
    board = leaderboard(state, plan)
    paths = {"leaderboard": io.write_json(out / LEADERBOARD, board)}
    paths.update(pictures(out, state, board))
    paths["report"] = io.write_text(out / REPORT, markdown(board, plan, paths))
    return paths


# ----------------------------------------------------------------------------- numbers
def run_values(result: dict | None) -> dict:
    """{column key: float or None} of one evaluated run (None: n/a or not measured)."""
    if not result:
        return {c.key: None for c in COLUMNS}
    metrics = result.get("metrics", {})
    values = {k: _number(metrics.get(k, {}).get("value")) for k in FROM_EVALUATE}
    values["inception_fid"] = _number((result.get("inception_fid") or {}).get("value"))
    values["train_img_s"] = _number(result.get("train", {}).get("img_per_s"))
    values["sample_img_s"] = _number(result.get("sampling", {}).get("img_per_s"))
    values["parameters"] = _number(result.get("parameters"))
    return values


def leaderboard(state: dict, plan) -> dict:
    """The JSON leaderboard: settings, columns, and per model its runs, summary and best columns."""
    runs = state["runs"]
    rows = []
    for model in plan.models:
        mine = [(name, rec) for name, rec in runs.items() if rec["model"] == model]
        done = [rec for _, rec in mine if rec["status"] == "evaluated"]
        summary = {}
        for c in COLUMNS:
            xs = [v for v in (run_values(r["result"])[c.key] for r in done) if v is not None]
            summary[c.key] = {
                "mean": statistics.fmean(xs) if xs else None,
                "std": statistics.stdev(xs) if len(xs) > 1 else None,
                "values": xs,
            }
        rows.append(
            {
                "model": model,
                "family": mine[0][1]["family"] if mine else None,
                "status": _row_status([rec["status"] for _, rec in mine]),
                "summary": summary,
                "best": [],
                "runs": [_run_entry(name, rec) for name, rec in mine],
            }
        )
    columns = [
        c for c in COLUMNS if c.key != "inception_fid" or any(r["summary"][c.key]["values"] for r in rows)
    ]
    for c in columns:
        if c.better is None:
            continue
        ranked = [r for r in rows if r["summary"][c.key]["mean"] is not None]
        if len({r["summary"][c.key]["mean"] for r in ranked}) < 2:
            continue  # fewer than two models, or all tied: nothing to mark
        pick = min if c.better == "lower" else max
        best = pick(r["summary"][c.key]["mean"] for r in ranked)
        for r in ranked:
            if r["summary"][c.key]["mean"] == best:
                r["best"].append(c.key)
    fid = _first_fid(runs)
    return {
        "data": plan.data,
        "minutes": plan.minutes,
        "steps": plan.steps,
        "seeds": list(plan.seeds),
        "quick": plan.quick,
        "n_generated": fid.get("n_generated"),
        "fid_floor": _number(fid.get("floor")),
        "fid_floor_std": _number(fid.get("floor_std")),
        "floor_note": None if fid.get("equal_n", True) else f"the floor is at N = {fid.get('n_floor')}",
        "features": state.get("features") or "evaluate's default",
        "inception": {
            "column": any(c.key == "inception_fid" for c in columns),
            "weights": str(inception.default_path()),
            "reason": _inception_reason(runs),
        },
        "columns": [{"key": c.key, "label": c.label, "better": c.better} for c in columns],
        "models": rows,
        "skipped": dict(plan.skipped),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _run_entry(name: str, rec: dict) -> dict:
    result = rec.get("result") or {}
    metrics = result.get("metrics", {})
    return {
        "run": name,
        "seed": rec["seed"],
        "dir": rec["dir"],
        "status": rec["status"],
        "error": rec.get("error"),
        "values": run_values(result) if rec["status"] == "evaluated" else None,
        "ci": {k: metrics[k]["ci"] for k in WITH_CI if isinstance(metrics.get(k, {}).get("ci"), list)},
        "kid_scale": metrics.get("kid", {}).get("scale"),
        "bpd_note": metrics.get("bpd", {}).get("reason"),
        "train": result.get("train"),
        "sampling": result.get("sampling"),
        "eval_seconds": result.get("eval_seconds"),
        "fid_during_training": [
            {k: p.get(k) for k in ("fraction", "step", "images", "elapsed", "fid")}
            for p in rec.get("progress", [])
        ]
        + ([{"fraction": 1.0, **_train_point(result), "fid": run_values(result)["fid"]}] if result else []),
    }


def _train_point(result: dict) -> dict:
    train = result.get("train") or {}
    return {k: train.get(k) for k in ("step", "images", "elapsed")}


def _row_status(statuses: list[str]) -> str:
    if statuses and all(s == "evaluated" for s in statuses):
        return "evaluated"
    if statuses and all(s == "failed" for s in statuses):
        return "failed"
    return "pending" if not any(s == "evaluated" for s in statuses) else "partial"


def _inception_reason(runs: dict) -> str | None:
    """Why a run has no Inception FID though the weights were found (None: none says)."""
    for rec in runs.values():
        reason = ((rec.get("result") or {}).get("inception_fid") or {}).get("reason")
        if reason:
            return reason
    return None


def _first_fid(runs: dict) -> dict:
    for rec in runs.values():
        if rec["status"] == "evaluated":
            return rec["result"]["metrics"].get("fid", {})
    return {}


# ----------------------------------------------------------------------------- pictures
def pictures(out: Path, state: dict, board: dict) -> dict:
    """grids.png (one row per model, first seed), fid_vs_time.png, quality_vs_speed.png; written paths."""
    import numpy as np

    rows, series, points = [], {}, {}
    for row in board["models"]:
        evaluated = [r for r in row["runs"] if r["status"] == "evaluated"]
        if not evaluated:
            continue
        first = state["runs"][evaluated[0]["run"]]
        samples = out / first["dir"] / first["result"]["sampling"]["samples"]
        if samples.is_file():
            with np.load(samples, allow_pickle=False) as f:
                rows.append((row["model"], f["images"][:ROW_IMAGES]))
        series[row["model"]] = [
            [
                (p["elapsed"], p["fid"])
                for p in r["fid_during_training"]
                if p["elapsed"] is not None and p["fid"] is not None
            ]
            for r in evaluated
        ]
        s = row["summary"]
        if s["fid"]["mean"] is not None and s["sample_img_s"]["mean"] is not None:
            points[row["model"]] = (
                s["sample_img_s"]["mean"],
                s["fid"]["mean"],
                s["sample_img_s"]["std"],
                s["fid"]["std"],
            )
    paths = {}
    if rows:
        paths["grids"] = figures.grids(rows, out / GRIDS)
    if series:
        paths["fid_vs_time"] = figures.fid_vs_time(series, board["fid_floor"], out / FID_VS_TIME)
    if points:
        paths["quality_vs_speed"] = figures.quality_vs_speed(
            points, board["fid_floor"], out / QUALITY_VS_SPEED
        )
    return paths


# ----------------------------------------------------------------------------- markdown
def markdown(board: dict, plan, paths: dict) -> str:
    """report.md: settings, the table, what its numbers mean, the pictures, the runs."""
    columns = [c for c in COLUMNS if any(c.key == k["key"] for k in board["columns"])]
    several = len(board["seeds"]) > 1
    budget = f"{plan.minutes:g} minutes (trainer clock)" if plan.steps is None else f"{plan.steps} steps"
    lines = [
        f"# genvision compare on {board['data']}",
        "",
        f"Each model trained for {budget} with its default config, seed(s) "
        f"{', '.join(map(str, board['seeds']))}{' (--quick)' if plan.quick else ''}, then evaluated with the same "
        f"metrics, N and sampling seed. {'Cells: mean ± std over seeds. ' if several else ''}"
        "Bold: best in its column.",
        "",
        "| model | family | " + " | ".join(c.label for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for row in board["models"]:
        if row["status"] in ("pending", "failed"):
            cells = [row["status"]] * len(columns)
        else:
            cells = [_cell(row, c, several) for c in columns]
        lines.append(f"| {row['model']} | {row['family']} | " + " | ".join(cells) + " |")
    lines += ["", *_notes(board, plan, several), ""]
    for key, title in (
        ("grids", "Samples (one row per model: its first seed's run, that seed's first images)"),
        ("fid_vs_time", "FID during training (at 1/4, 1/2, 3/4 and all of the budget)"),
        ("quality_vs_speed", "Quality against sampling speed"),
    ):
        if key in paths:
            lines += [f"## {title}", "", f"![{key}]({Path(paths[key]).name})", ""]
    lines += [
        "## Runs",
        "",
        "| run | status | steps | images | training s | evaluation s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in board["models"]:
        for r in row["runs"]:
            train = r["train"] or {}
            status = r["status"] + (f": {r['error']}" if r["error"] else "")
            lines.append(
                f"| [{r['run']}]({r['dir']}/report.md) | {status} | {_plain(train.get('step'))} | "
                f"{_plain(train.get('images'))} | {_plain(train.get('elapsed'))} | {_plain(r['eval_seconds'])} |"
            )
    return "\n".join(lines) + "\n"


def _cell(row: dict, c: Column, several: bool) -> str:
    s = row["summary"][c.key]
    if s["mean"] is None:
        return "n/a"
    text = _format(s["mean"], c.style)
    if several and s["std"] is not None:
        text += f" ± {_format(s['std'], c.style)}"
    elif c.key in WITH_CI and len(row["runs"]) == 1 and c.key in row["runs"][0]["ci"]:
        lo, hi = row["runs"][0]["ci"][c.key]
        text += f" [{_format(lo, c.style)}, {_format(hi, c.style)}]"
    return f"**{text}**" if c.key in row["best"] else text


def _notes(board: dict, plan, several: bool) -> list[str]:
    notes = []
    n, floor = board["n_generated"], board["fid_floor"]
    if n is not None:
        notes.append(
            f"- N = {n} generated images per model, scored against a seeded half of the train split; "
            f"floor (N real images of the other half, the same way): "
            f"{_format(floor, 'sig') if floor is not None else 'n/a'}"
            + (f", not at N: {board['floor_note']}" if board.get("floor_note") else "")
            + "."
        )
    if not board["inception"]["column"]:
        why = board["inception"]["reason"] or (
            f"genvision found no Inception weights ({board['inception']['weights']}; "
            "`genvision evaluate --features inception` says where to put them)"
        )
        notes.append(f"- Inception FID is omitted: {why}.")
    scales = {
        str(r["kid_scale"]) for row in board["models"] for r in row["runs"] if r["kid_scale"] is not None
    }
    if scales:
        notes.append(
            f"- KID {', '.join(sorted(scales))}; about 0 for real data, and slightly negative values are "
            "estimates of about 0 (the estimator is unbiased)."
        )
    if any(r["ci"] for row in board["models"] for r in row["runs"]) and not several:
        notes.append(
            "- [lo, hi]: 95% bootstrap interval of the value at this N (`genvision evaluate`'s `ci`)."
        )
    why_no_bpd = sorted(
        {f"{row['model']} ({r['bpd_note']})" for row in board["models"] for r in row["runs"] if r["bpd_note"]}
    )
    if why_no_bpd:
        notes.append(f"- bits/dim n/a: {'; '.join(why_no_bpd)}.")
    notes += [
        "- train img/s: real images drawn per second of training (a GAN's discriminator steps included); "
        "sample img/s: `genvision sample` with the model's defaults, 256 at a time, after a warm-up.",
        "- parameters: every trained parameter (a GAN's discriminator included). memorization: share of samples "
        "nearer a training image than 95% of test images come (about 0.05 for new data).",
    ]
    for model, reason in board["skipped"].items():
        notes.append(f"- {model} skipped: {reason}.")
    if plan.model_config:
        notes.append(f"- config overrides (not the defaults): {plan.model_config}.")
    return notes


def _format(v: float, style: str) -> str:
    if style == "count":
        for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"{v / div:.3g}{unit}"
        return f"{v:.0f}"
    if style == "fixed3":
        return f"{v:.3f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:#.3g}"  # 3 significant digits, trailing zeros kept (11.0, 0.500)


def _plain(v) -> str:
    """Counts as they are, seconds to 3 significant digits, nothing for None."""
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else _format(v, "sig")


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None
