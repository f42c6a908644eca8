"""``report.md`` of a run directory, rebuilt from whatever the directory holds.

Inputs (each optional): ``config.json`` (model name, family, configs, data), ``metrics.jsonl``
(loss curve -> ``loss.png``, final loss, throughput), ``grid.png`` and ``samples/`` (written by
the trainer), ``metrics.json`` (written by ``genvision evaluate``), ``human_eval.json`` (the web
app's real-or-generated quiz, :mod:`genvision.ui.quiz`). The trainer calls
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
    lines += _human_section(_read_json(run_dir / "human_eval.json"))
    lines += _config_section(meta)
    return io.write_text(run_dir / REPORT_FILE, "\n".join(lines).rstrip() + "\n")


def read_records(path: Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl file; torn or blank lines are skipped."""
    return io.read_jsonl(path)


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
    # one optimised loss, or one per phase ("discriminator/loss", "generator/loss", ...)
    loss_keys = (
        ["loss"]
        if any("loss" in r for r in records)
        else sorted({k for r in records for k in r if k.endswith("/loss")})
    )
    for key in loss_keys:
        losses = [r[key] for r in records if _number(r.get(key))]
        if losses:
            rows.append((f"final {key} (last logged)", _fmt(losses[-1])))
            tail = losses[-max(1, len(losses) // 10) :]
            rows.append((f"mean {key}, last {len(tail)} records", _fmt(sum(tail) / len(tail))))
    # monitor series (e.g. monitor/class_entropy of the mode-collapse monitor): last value
    monitor_keys = sorted(
        {k for r in records for k, v in r.items() if k.startswith("monitor/") and _number(v)}
    )
    for key in monitor_keys:
        values = [r[key] for r in records if _number(r.get(key))]
        rows.append((f"{key} (last of {len(values)} checks)", _fmt(values[-1])))
    val = [(r["val_loss"], r["step"]) for r in records if _number(r.get("val_loss"))]
    if val:  # training/validation.py: with --keep best, model.safetensors holds that step's weights
        best, step = min(val, key=lambda v: (v[0], v[1]))
        rows.append(
            ("best val_loss (validation slice)", f"{_fmt(best)} at step {step}; last {_fmt(val[-1][0])}")
        )
    warnings = [r for r in records if isinstance(r.get("warning"), str)]
    if warnings:
        last_warning = f"step {warnings[-1]['step']}: {warnings[-1]['warning']}"
        rows.append((f"warnings ({len(warnings)})", last_warning))
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
    if monitor_keys:
        _plot_monitor(records, monitor_keys, run_dir / "monitor.png")
        lines += ["![monitor series](monitor.png)", ""]
    return lines


def _plot_monitor(records: list[dict], keys: list[str], path: Path) -> None:
    """One panel per monitor series against the step; PNG written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 2.2 * len(keys)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        pts = [(r["step"], r[key]) for r in records if _number(r.get(key)) and "step" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", markersize=3)
        ax.set_ylabel(key.removeprefix("monitor/"), fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    io.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def _samples_section(run_dir: Path) -> list[str]:
    lines = []
    if (run_dir / "grid.png").is_file():
        lines += ["![samples](grid.png)", ""]
    if (run_dir / "style_mix.png").is_file():
        lines += [
            "![style mixing](style_mix.png)",
            "",
            "Style mixing: coarse styles from the left column's images (seed 0), fine styles from the top "
            "row's (seed 1), crossover at half the style inputs.",
            "",
        ]
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
    src = evaluation.get("source") or {}
    lines = ["## Evaluation", ""]
    if src:
        lines += [
            f"Source: {src.get('kind', '?')}, seed {src.get('seed', '-')}, {src.get('n', '?')} images.",
            "",
        ]
    rows = [(name, value, detail) for name, value, detail in metric_rows(m)]
    lines += [*_table(("metric", "value", "details"), rows), ""]
    judge = (m.get("fid") or {}).get("judge") or {}
    if "test_accuracy" in judge:
        lines += [
            f"Domain judge test accuracy: {_fmt(judge['test_accuracy'])} (recipe v{judge.get('recipe_version')}).",
            "",
        ]
    conf = m.get("confidence") or {}
    hist = m.get("class_histogram") or {}
    if conf and hist:
        lines += [
            f"Judge confidence, samples / test split: {_fmt(conf['samples'])} / {_fmt(conf['test_split'])}; "
            f"class entropy (nats), samples / max: {_fmt(hist['entropy_nats'])} / {_fmt(hist['max_entropy_nats'])}.",
            "",
        ]
    if hist.get("counts"):
        k = len(hist["counts"])
        header = ("class", *map(str, range(k)))
        body = [("samples", *map(str, hist["counts"]))]
        if hist.get("test_split_counts"):
            body.append(("test split", *map(str, hist["test_split_counts"])))
        lines += ["Judge-predicted classes:", "", *_table(header, body), ""]
    for key, caption in (
        ("memorization", "closest samples (top) and their nearest training images (bottom)"),
        ("reconstruction", "test images (top) and their reconstructions (bottom)"),
    ):
        picture = (m.get(key) or {}).get("picture")
        if picture:
            lines += [f"![{caption}]({picture})", "", f"{key}: {caption}.", ""]
    lines += _card_lines(evaluation)
    return lines


def _human_section(human: dict | None) -> list[str]:
    """The quiz's human error rate beside the automatic metrics (0.5: people cannot tell)."""
    if not isinstance(human, dict) or not human.get("judgements"):
        return []
    lo, hi = human["ci95"]
    rows = [
        (
            "human error rate",
            _fmt(human["error_rate"]),
            f"95% CI [{_fmt(lo)}, {_fmt(hi)}] ({human.get('interval', 'Wilson')}); 0.5 = indistinguishable from real",
        ),
        (
            "judgements",
            str(human["judgements"]),
            f"{human.get('sessions', '?')} quiz session(s); median response {_fmt(human.get('median_response_ms'))} ms",
        ),
    ]
    for kind in ("generated", "real"):
        if human.get(f"judgements_{kind}"):
            rows.append(
                (
                    f"error on {kind} images",
                    _fmt(human[f"error_rate_{kind}"]),
                    f"{human[f'judgements_{kind}']} judgements",
                )
            )
    return [
        "## Human judgement",
        "",
        "Real-or-generated quiz (`genvision ui`, a run's quiz page).",
        "",
        *_table(("measure", "value", "details"), rows),
        "",
    ]


def metric_rows(m: dict) -> list[tuple[str, str, str]]:
    """(metric, value, details) for every metric of an evaluation, n/a ones with their reason."""
    rows = []
    for name, r in m.items():
        if name in ("class_histogram", "confidence") or not isinstance(r, dict):
            continue
        value = r.get("value")
        if not _number(value):
            rows.append((name, str(value), r.get("reason", "")))
            continue
        card = r.get("card") or {}
        detail = ""
        if name == "fid":
            detail = (
                f"{_ci(r)}{r.get('features')} features, {r.get('n_generated')} generated vs a reference half of "
                f"{r.get('n_reference')} train images; floor {_fmt(r.get('floor'))} "
                f"({r.get('floor_definition') or str(r.get('n_floor')) + ' images'}), "
                f"ratio {_fmt(r.get('ratio_to_floor'))}"
            )
            if isinstance(r.get("per_class"), list):
                detail += "; per class " + ", ".join(_fmt(v) for v in r["per_class"])
        elif name == "kid":
            k = card.get("kid") or {}
            detail = (
                f"{_ci(r)}{r.get('scale', 'raw MMD^2')}; ± {_fmt(r.get('std'))} over {k.get('subsets')} subsets "
                f"of {k.get('subset_size')}; negative values mean about 0 (unbiased estimator)"
            )
        elif name == "is":
            detail = (
                f"± {_fmt(r.get('std'))} over {card.get('splits')} splits; at most {r.get('max_possible')}"
            )
        elif name in ("precision", "recall", "density", "coverage"):
            detail = (
                f"k = {card.get('k')}, {card.get('n_reference')} train vs {card.get('n_generated')} generated"
            )
        elif name == "memorization":
            detail = (
                f"share of samples nearer a training image than the {r.get('threshold_definition')} "
                f"(real data: {_fmt(r.get('expected_for_real_data'))}); median distance ratio "
                f"{_fmt(r.get('median_ratio'))}; {r.get('copies')} copies"
            )
        elif name == "conditional_accuracy":
            detail = f"judge agrees with the requested label; judge test accuracy {_fmt(r.get('judge_test_accuracy'))}"
        elif name == "text_alignment":
            real = r.get("real") or {}
            detail = (
                f"prompt retrieval top-1 {_fmt(r.get('top1'))}, top-5 {_fmt(r.get('top5'))} among "
                f"{r.get('candidates')} test captions (chance {_fmt(r.get('top5_chance'))}); real test images: "
                f"cosine {_fmt(real.get('cosine'))}, top-1 {_fmt(real.get('top1'))}, top-5 {_fmt(real.get('top5'))}; "
                "aligner trained on this data's captions, not OpenAI's CLIP"
            )
            cat = r.get("category_accuracy")
            if isinstance(cat, dict):
                detail += (
                    f"; the judge's category accuracy on prompted samples {_fmt(cat.get('samples'))} "
                    f"(real test images {_fmt(cat.get('real'))})"
                )
        elif name == "control_fidelity":
            detail = (
                f"{r.get('measure')} of the {r.get('kind')} map extracted from each sample against the map it "
                f"followed (test images' maps); chance (another image's map) {_fmt(r.get('chance'))}"
            )
        elif name in ("bpd", "nll", "elbo", "reconstruction"):
            detail = f"± {_fmt(r.get('se'))} (s.e.), {card.get('n')} test images; {card.get('likelihood_note', '')}"
            if name == "elbo":
                detail += f"; {_fmt(r.get('bpd'))} bits/dim"
            fid = r.get("fid") if name == "reconstruction" else None
            if isinstance(fid, dict):
                detail += (
                    f"; reconstructions' domain FID {_fmt(fid.get('value'))}{_ci_brief(fid)} against a floor of "
                    f"{_fmt(fid.get('floor'))} at n = {fid.get('n')} (how faithful the decoder a latent "
                    "model samples through is)"
                )
        rows.append((name, _fmt(value), detail))
    return rows


def _ci(r: dict) -> str:
    """The "95% CI [lo, hi]; " prefix of a result with a bootstrap interval, else an empty string."""
    ci = r.get("ci")
    if not (isinstance(ci, list) and len(ci) == 2 and all(_number(v) for v in ci)):
        return ""
    level = ((r.get("card") or {}).get("interval") or {}).get("level", 0.95)
    return f"{level:.0%} CI [{_fmt(ci[0])}, {_fmt(ci[1])}]; "


def _ci_brief(r: dict) -> str:
    """The suffix ', 95% CI [lo, hi]' of a result with an interval, else an empty string."""
    text = _ci(r)
    return f", {text[:-2]}" if text else ""


def summary_lines(evaluation: dict) -> list[str]:
    """Short lines for the terminal: one per metric (FID first, with its floor)."""
    m = evaluation.get("metrics", {})
    out = []
    f = m.get("fid") or {}
    if _number(f.get("value")):
        out.append(
            f"{f.get('features')} FID {f['value']:.3f}{_ci_brief(f)}  (floor {f['floor']:.3f} at n={f.get('n_floor')}, "
            f"ratio {f['ratio_to_floor']:.2f}x, n={f['n_generated']}"
            + ("" if f.get("equal_n", True) else "; floor NOT at the samples' N")
            + ")"
        )
    for name, value, detail in metric_rows(m):
        if name != "fid" or not out:
            out.append(f"{name}: {value}" + (f"  ({detail})" if detail else ""))
    return out


def _card_lines(evaluation: dict) -> list[str]:
    card = evaluation.get("card") or {}
    extractor = next(
        (
            (r.get("card") or {}).get("extractor")
            for r in evaluation.get("metrics", {}).values()
            if isinstance(r, dict) and isinstance((r.get("card") or {}).get("extractor"), dict)
        ),
        None,
    )
    rows = []
    if extractor:
        rows += [("extractor", extractor.get("extractor")), ("feature", extractor.get("feature"))]
        if extractor.get("sha256"):
            verified = "verified" if extractor.get("hash_verified") else "NOT the reference file"
            rows.append(("weights sha256", f"`{extractor['sha256'][:16]}...` ({verified})"))
        rows += [("resize", extractor.get("resize")), ("input scaling", extractor.get("input_scaling"))]
    if card:
        rows += [
            ("seed", f"{card.get('seed')} ({card.get('per_image_seeds')})"),
            ("dtype", card.get("dtype")),
        ]
        versions = card.get("versions") or {}
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if not rows:
        return []
    return [
        "Metric card (each number's full card is in metrics.json):",
        "",
        *_table(("field", "value"), rows),
        "",
    ]


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
