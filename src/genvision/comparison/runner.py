"""``genvision compare``: train every model on the same data for the same budget, measure them alike.

    compare(data, models, minutes, seeds, out)
      -> plan.make_plan        the options made exact and checked; nothing is written before
      -> DIR/compare.json      the plan and each run's state, rewritten atomically after each step
      -> for each seed, for each model: DIR/runs/<model>-seed<S>/, a genvision run directory
           train with the model's default config in segments, to 1/4, 1/2, 3/4 and all of the
             budget (each segment continues the last from its checkpoint: the trainer's resume,
             bit for bit), and measure FID after each intermediate segment: the trainer's clock
             counts training only, so these evaluations are outside the budget
           a model trained in stages (``ldm``): first its autoencoder, DIR/runs/<run>/autoencoder/,
             for its share of the whole budget (as ``genvision train ldm`` splits it), then the
             latent model in the segments; a checkpoint that falls in stage 1 has no FID
           evaluate: metrics.evaluate on the run, the same metrics, N and seed for every model
             (seed k of the compare samples every model with the same per-image seeds)
           sampling rate (sampling.sample after a warm-up), parameter count
      -> report.write_all      DIR/report.md, leaderboard.json, grids.png, fid_vs_time.png,
                               quality_vs_speed.png (rewritten after each run)

The evaluation calls the functions ``genvision.evaluate`` and ``genvision.sample`` wrap (this
package sits below the package root, as the run layer does, so it imports them directly).

Resume (``resume=True``): a run whose evaluation is recorded is not touched; a run whose training
finished is evaluated; a run part-way through is continued by the trainer's resume from its last
checkpoint (a kill loses at most the steps since it). SIGINT / SIGTERM during training stop the
compare once the trainer has saved its checkpoint: the result then says ``stopped_by``. A run that
diverges, or whose samples are not finite, is recorded as failed with its one-line reason and the
compare goes on; ``--resume`` does not retry it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .. import io
from ..errors import one_line
from ..model_dir import read_config
from ..training.run import default_run_dir
from ..training.run import train as train_run
from ..training.staged import AE_FIELDS, STAGE, ae_fraction
from ..training.trainer import TrainingError
from ..version import __version__
from . import report
from .measure import fid_point, measure, training_stats
from .plan import Plan, family, make_plan, staged

STATE_FILE = "compare.json"
STATE_FORMAT = 1


def compare(
    data: str | None = None,
    models=None,
    minutes: float | None = None,
    seeds=None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    quick: bool = False,
    n: int | None = None,
    steps: int | None = None,
    model_config: dict | None = None,
    progress: bool = True,
) -> dict:
    """Train each model on ``data`` for the same budget, evaluate all alike, write one leaderboard.

    Args:
        data: dataset spec (default digits; with ``resume`` the recorded one).
        models: "all" (every model that trains from data alone), "a,b,c" or a list; default all,
            or one per family with ``quick``.
        minutes: training minutes per model (trainer clock; default 5, ``quick`` 2).
        seeds: training seeds, "0,1,2" or a list (default 0); several give mean +- std.
        out: the compare directory (default ``runs/compare-<data>-<time>``); must be empty
            unless ``resume``.
        resume: continue the compare recorded in ``out/compare.json``.
        quick: one model per family (``plan.QUICK_MODELS``) for ``plan.QUICK_MINUTES`` each
            on digits, no diffusion bits/dim.
        n: generated images per evaluation (default ``evaluate``'s for the data).
        steps: training length in steps instead of minutes (tests and scripted checks).
        model_config: {registry name: config overrides} (tests: tiny models); the CLI has no such
            option, so every model keeps its default config.
        progress: progress bars of the trainer and the evaluation.

    Returns:
        {"out": Path, "report": Path, "leaderboard": Path, "stopped_by": None or "SIGINT" /
         "SIGTERM", "runs": {run name: state}}.

    Raises:
        ValueError, FileExistsError: bad options, in one line, with nothing written.
    """
    options = dict(
        data=data, models=models, minutes=minutes, seeds=seeds, n=n, quick=quick, steps=steps,
        model_config=model_config,
    )  # fmt: skip
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the compare to continue)")
        out = Path(out)
        state = read_state(out)
        plan = make_plan(**options, recorded=Plan.from_json(state["plan"]))
    else:
        plan = make_plan(**options)
        out = Path(out) if out is not None else default_run_dir("compare", plan.data)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(
                f"{out} exists and is not empty; pass --resume to continue the compare there, or choose another --out"
            )
        state = new_state(plan)
        save_state(out, state)
    _say(
        f"{len(plan.models)} models x {len(plan.seeds)} seed(s) on {plan.data}, {_budget(plan)} each, in {out}"
    )
    for name in state["runs"]:
        stopped = advance(out, state, name, plan, progress)
        if stopped:
            report.write_all(out, state, plan)
            _say(f"stopped by {stopped}; continue with: genvision compare --resume --out {out}")
            return _result(out, state, stopped)
    report.write_all(out, state, plan)
    return _result(out, state, None)


# ----------------------------------------------------------------------------- state
def new_state(plan: Plan) -> dict:
    """The state of a compare not yet begun: one pending run per (seed, model), seed-major."""
    runs = {}
    for seed in plan.seeds:
        for model in plan.models:
            name = f"{model}-seed{seed}"
            runs[name] = {
                "model": model,
                "family": family(model),
                "seed": seed,
                "dir": f"runs/{name}",
                "status": "pending",  # -> training -> trained -> evaluated, or failed
                "progress": [],  # FID after each intermediate segment
                "result": None,
                "error": None,
            }
    return {
        "format": STATE_FORMAT,
        "genvision_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "plan": plan.to_json(),
        "features": "domain" if _labelled(plan.data) else None,
        "runs": runs,
    }


def read_state(out: Path) -> dict:
    path = out / STATE_FILE
    if not path.is_file():
        raise ValueError(f"nothing to resume in {out}: no {STATE_FILE}; start the compare without --resume")
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is damaged ({e}); start a new compare in another --out") from None
    if not (
        isinstance(state, dict)
        and state.get("format") == STATE_FORMAT
        and "plan" in state
        and "runs" in state
    ):
        raise ValueError(
            f"{path} is not a genvision compare state (format {STATE_FORMAT}); choose another --out"
        )
    return state


def save_state(out: Path, state: dict) -> None:
    io.write_json(out / STATE_FILE, state)


def _labelled(data: str) -> bool:
    from .. import data as datasets

    return datasets.load(data, "train").num_classes >= 2


# ----------------------------------------------------------------------------- one run
def advance(out: Path, state: dict, name: str, plan: Plan, progress: bool) -> str | None:
    """Take run ``name`` as far as it goes: train, evaluate; the stopping signal, or None."""
    rec = state["runs"][name]
    if rec["status"] in ("evaluated", "failed"):
        return None
    run_dir = out / rec["dir"]
    try:
        if rec["status"] != "trained":
            stopped = train_segments(out, state, name, plan, progress)
            if stopped:
                return stopped
        _say(f"{name}: evaluating")
        rec["result"] = measure(run_dir, plan, rec, state.get("features"), progress)
        rec["status"] = "evaluated"
        fid = rec["result"]["metrics"].get("fid", {}).get("value")
        _say(f"{name}: FID {_short(fid)}")
    except (TrainingError, ValueError) as e:  # diverged, or samples not finite: the others go on
        rec["status"], rec["error"] = "failed", one_line(e)
        _say(f"{name} failed: {rec['error']}")
    save_state(out, state)
    report.write_all(out, state, plan)
    return None


def train_segments(out: Path, state: dict, name: str, plan: Plan, progress: bool) -> str | None:
    """Train run ``name`` through the budget's segments, FID after each but the last; a stopping signal or None."""
    rec = state["runs"][name]
    run_dir = out / rec["dir"]
    config = dict(plan.model_config.get(rec["model"], {}))
    segments: list = plan.segments()
    rec["status"] = "training"
    if staged(rec["model"]):
        ae_length, segments = plan.staged_segments(ae_fraction(rec["model"], plan.data, config))
        stage_one = {k: config[k] for k in AE_FIELDS if k in config}
        stopped = train_to(run_dir / STAGE, "autoencoder", ae_length, stage_one, plan, rec, progress)
        if stopped:
            save_state(out, state)
            return stopped
        config[STAGE] = str(run_dir / STAGE)
    for i, (fraction, length) in enumerate(segments):
        last = i == len(segments) - 1
        if not last and i < len(rec["progress"]):
            continue  # trained and measured before an interruption
        if length is None:  # a staged model's budget so far went to its autoencoder (never the last)
            rec["progress"].append(
                {
                    "fraction": fraction,
                    **training_stats(run_dir),
                    "fid": None,
                    "note": "training its autoencoder",
                }
            )
            save_state(out, state)
            continue
        stopped = train_to(run_dir, rec["model"], length, config, plan, rec, progress, fraction)
        if stopped:
            save_state(out, state)
            return stopped
        if not last:
            rec["progress"].append(fid_point(run_dir, plan, rec, fraction, state.get("features")))
            _say(f"{name}: FID {_short(rec['progress'][-1]['fid'])} at {fraction:.0%} of the budget")
            save_state(out, state)
    rec["status"] = "trained"
    save_state(out, state)
    return None


def train_to(
    run_dir: Path,
    model: str,
    length: dict,
    config: dict,
    plan: Plan,
    rec: dict,
    progress: bool,
    fraction=None,
) -> str | None:
    """Train ``run_dir`` until it has trained for ``length`` (starting it, or continuing it by the
    trainer's resume); the signal that stopped it, or None."""
    if segment_done(run_dir, length):
        return None
    share = f" ({fraction:.0%} of the budget)" if fraction is not None else " (stage 1, the autoencoder)"
    _say(f"{rec['model']}-seed{rec['seed']}: training {model} to {_length(length)}{share}")
    train_run(
        model,
        data=plan.data,
        out=run_dir,
        resume=run_dir.is_dir() and any(p.name != STAGE for p in run_dir.iterdir()),
        model_config=config,
        seed=rec["seed"],
        progress=progress,
        stage_entries=(STAGE,) if STAGE in config else (),  # a staged model: its autoencoder stays
        **length,
    )
    meta = read_config(run_dir)
    return (meta.get("stopped_by") or "SIGTERM") if meta.get("status") == "interrupted" else None


def segment_done(run_dir: Path, length: dict) -> bool:
    """Whether ``run_dir`` finished training to ``length`` ({"minutes": M} or {"steps": S})."""
    if not (run_dir / "config.json").is_file():
        return False
    meta = read_config(run_dir)
    ((key, value),) = length.items()
    return meta.get("status") == "finished" and meta.get("train_config", {}).get(key) == value


# ----------------------------------------------------------------------------- helpers
def _result(out: Path, state: dict, stopped: str | None) -> dict:
    return {
        "out": out,
        "report": out / report.REPORT,
        "leaderboard": out / report.LEADERBOARD,
        "stopped_by": stopped,
        "runs": state["runs"],
    }


def _budget(plan: Plan) -> str:
    return f"{plan.minutes:g} min" if plan.steps is None else f"{plan.steps} steps"


def _length(length: dict) -> str:
    ((key, value),) = length.items()
    return f"{value * 60:.0f} s" if key == "minutes" else f"{value} steps"


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else str(v)


def _say(line: str) -> None:
    print(f"compare: {line}", flush=True)


__all__ = ["compare", "STATE_FILE"]
