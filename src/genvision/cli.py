"""The ``genvision`` command: argument parsing only; every subcommand calls the public API.

    genvision models
    genvision train MODEL --data SPEC [--steps N | --images N | --minutes M] [...] [--set key=value ...]
    genvision distill TEACHER_DIR [--method progressive|consistency|reflow] [--sampling-steps K] [--teacher-calls M] [--minutes M | --steps N] [...]
    genvision sample DIR --n N [--seed S] [--out FILE.png|FILE.npz] [--label K | --labels 0,1,... | --prompt TEXT | --prompts-file F] [...]
    genvision evaluate SOURCE --data SPEC [--metrics LIST] [--n N] [--features domain|inception|FILE.py:Class]
        [--out DIR] [--seed S] [--reference-n N] [--likelihood-n N]
    genvision interpolate DIR [--data SPEC] --from I --to J [--frames K] [--mode linear|spherical] --out FILE.png
    genvision compare [--data SPEC] [--models all|a,b,c] [--minutes M] [--seeds 0,1,2] [--n N] [--out DIR]
        [--resume] [--quick]
    genvision score DIR --data SPEC [--anomalies SPEC] [--method NAME] [--background DIR] [--out FILE.csv]
    genvision inspect FILE.png|FILE.npz
    genvision detect --train-real SPEC --train-fake SRC[,SRC] --test-real SPEC --test-fake SRC[,SRC] [--n N]
    genvision ui [--runs DIR] [--host 127.0.0.1] [--port 7860]
    genvision demo

Bad input ends in one line on stderr naming the problem and the fix, and exit status 2. A
training run stopped by Ctrl-C or SIGTERM saves a checkpoint and exits 130 / 143 (resumable with
``--resume``), so ``train && evaluate`` does not go on with an unfinished model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli_forensics, cli_restore, cli_sample, cli_stylize, cli_translate, cli_ui

#: trainer flags: CLI option -> TrainConfig field (only passed when given)
TRAIN_FLAGS = {
    "steps": int,
    "images": int,
    "minutes": float,
    "batch_size": int,
    "lr": float,
    "seed": int,
    "ema_half_life": float,
    "save_every": int,
    "sample_every": int,
}


class UsageError(ValueError):
    """A bad command-line value."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genvision", description="Deep generative models of images.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("models", help="list the models genvision can build")

    t = sub.add_parser("train", help="train a model; the run directory is a model directory")
    t.add_argument("model", help="registry name (see `genvision models`)")
    t.add_argument("--data", default=None, help="dataset spec: digits (default), mnist:DIR, folder:DIR, ...")
    _trainer_flags(t, "model config field, or train.FIELD for the trainer")

    ds = sub.add_parser(
        "distill",
        help="distil a diffusion model into a few-step student: progressive (K DDIM steps), consistency (1 step) "
        "or reflow (straighter flow, few Euler steps)",
    )
    ds.add_argument("teacher", help="a trained diffusion model directory")
    ds.add_argument(
        "--method",
        choices=("progressive", "consistency", "reflow"),
        default="progressive",
        help="progressive: a K-step DDIM student of a ddpm (default); consistency: a consistency model "
        "of a ddpm, flow-matching, edm or latent model (ldm ...), sampled in 1 or a few steps; reflow: a flow-matching student "
        "of a flow-matching teacher on the teacher's own noise-image pairs",
    )
    ds.add_argument(
        "--sampling-steps",
        type=int,
        default=None,
        help="the student's default sampling calls (progressive: K DDIM steps, default 10; consistency: 1; "
        "reflow: Euler steps, 2)",
    )
    ds.add_argument(
        "--teacher-calls",
        type=int,
        default=None,
        help="teacher ODE calls per student step (progressive; default 4) or per noise-image pair (reflow; default 10)",
    )
    ds.add_argument("--data", default=None, help="dataset spec (default: the teacher's training data)")
    _trainer_flags(ds, "train.FIELD for the trainer")

    cli_sample.add_parsers(sub)

    e = sub.add_parser("evaluate", help="measure a model directory, npz:FILE or folder:DIR")
    e.add_argument("source")
    e.add_argument("--data", help="dataset spec (default: the run's own data, else digits)")
    e.add_argument(
        "--metrics",
        help="comma-separated: fid,kid,is,pr,dc,bpd,nll,elbo,reconstruction,memorization,"
        "conditional_accuracy,text_alignment,control_fidelity (default: all that apply, n/a with a reason for the rest)",
    )
    e.add_argument("--n", type=int, help="generated images (default 1000 for digits, 10000 for MNIST-size)")
    e.add_argument(
        "--features",
        help="domain | inception | inception:WEIGHTS | FILE.py:Class (default: inception for 32 px and up "
        "when its weights are present, else domain)",
    )
    e.add_argument("--out", help="directory for metrics.json and pictures (default: the model directory)")
    e.add_argument("--seed", type=int, default=0, help="sampling and metric seed (default 0)")
    e.add_argument("--reference-n", type=int, help="use only the first N images of each split as reference")
    e.add_argument("--likelihood-n", type=int, help="score likelihoods on the first N test images only")

    i = sub.add_parser(
        "interpolate",
        help="decode a path between two latents into one row of images",
        description="Models with encode (VAE, flows): --from/--to index the test split of --data and the "
        "row is [image I, path..., image J]. Models without encode (GANs): --from/--to are seeds of "
        "prior latents N(0, I). VQ-VAE codes are discrete and are refused.",
    )
    i.add_argument("dir", help="model directory")
    i.add_argument("--data", help="dataset spec whose test split --from/--to index (default: the run's data)")
    i.add_argument("--from", dest="start", type=int, default=0, help="test image index (seed without encode)")
    i.add_argument("--to", dest="end", type=int, default=1, help="test image index (seed without encode)")
    i.add_argument("--frames", type=int, default=8, help="points on the path, both ends included")
    i.add_argument("--mode", choices=["linear", "spherical"], default="linear")
    i.add_argument("--out", help="PNG to write (default interpolate_<from>_<to>.png)")

    c = sub.add_parser(
        "compare",
        help="train every model on the same data for the same time, measure them alike, one leaderboard",
        description="Each model trains with its default config for --minutes (a run directory each under "
        "--out), is measured with FID at 1/4, 1/2 and 3/4 of its budget (outside the budget) and evaluated "
        "at the end with the same metrics, N and seed; writes report.md, leaderboard.json, grids.png, "
        "fid_vs_time.png and quality_vs_speed.png. Interrupted? Run it again with --resume.",
    )
    c.add_argument("--data", help="dataset spec (default digits; with --resume the recorded one)")
    c.add_argument(
        "--models", help="all (default: every model that trains from data alone) or names separated by commas"
    )
    c.add_argument(
        "--minutes", type=float, help="training minutes per model, trainer clock (default 5; --quick 2)"
    )
    c.add_argument("--seeds", help="training seeds separated by commas (default 0); several give mean ± std")
    c.add_argument("--n", type=int, help="generated images per evaluation (default: evaluate's for the data)")
    c.add_argument("--out", help="compare directory (default runs/compare-<data>-<time>)")
    c.add_argument("--resume", action="store_true", help="continue the compare in --out where it stopped")
    c.add_argument(
        "--quick",
        action="store_true",
        help="one model per family, 2 minutes each on digits, no diffusion bits/dim",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    cli_forensics.add_parsers(sub)
    cli_restore.add_parsers(sub)
    cli_translate.add_parsers(sub)
    cli_stylize.add_parsers(sub)
    cli_ui.add_parsers(sub)

    d = sub.add_parser("demo", help="train the default model on digits, sample, evaluate, write a report")
    d.add_argument("--out", help="run directory (default runs/demo-<time>)")
    d.add_argument("--steps", type=int, help="training steps (default: the demo recipe)")
    d.add_argument("--no-progress", action="store_true")
    for name, verb in sub.choices.items():  # every verb that can write a PNG
        if name not in ("models", "inspect", "score", "detect"):
            verb.add_argument(
                "--no-watermark",
                action="store_true",
                help="write PNGs without the invisible watermark (the provenance record stays)",
            )
    return p


# ----------------------------------------------------------------------------- helpers
def _trainer_flags(t: argparse.ArgumentParser, set_help: str) -> None:
    """The trainer's options, shared by ``train`` and ``distill``."""
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training length in optimiser steps")
    length.add_argument("--images", type=int, help="training length in images seen")
    length.add_argument("--minutes", type=float, help="training length in minutes of training time")
    for flag in ("batch_size", "lr", "seed", "ema_half_life", "save_every", "sample_every"):
        t.add_argument(
            "--" + flag.replace("_", "-"),
            type=TRAIN_FLAGS[flag],
            help="images" if flag == "ema_half_life" else None,
        )
    t.add_argument("--precision", choices=["fp32", "bf16"])
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument(
        "--keep",
        choices=["best", "last"],
        help="weights saved to sample: best validation loss (default where validation is on) or last",
    )
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    t.add_argument("--out", help="run directory (default runs/<model>-<data>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--strict", action="store_true", help="corrupt data files are an error, not skipped")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log to DIR/tensorboard (needs the tensorboard package)",
    )


def _trainer_values(args, train_cfg: dict) -> dict:
    """TrainConfig fields the user gave on the command line (flags, then --set train.FIELD)."""
    given = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    for k in ("precision", "device", "keep"):
        if getattr(args, k) is not None:
            given[k] = getattr(args, k)
    if args.strict:
        given["strict"] = True
    if args.no_progress:
        given["progress"] = False
    if args.tensorboard:
        given["tensorboard"] = True
    given.update(train_cfg)
    return given


def _split_sets(items: list[str]) -> tuple[dict, dict]:
    model_cfg, train_cfg = {}, {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--set needs KEY=VALUE (got {item!r})")
        if key.startswith("train."):
            train_cfg[key[6:]] = value
        else:
            model_cfg[key] = value
    return model_cfg, train_cfg


#: exit status of a training run stopped by a signal (checkpoint saved, resumable): 128 + signal
STOPPED = {"SIGINT": 130, "SIGTERM": 143}


def _finished(out) -> int:
    """Print where the run went; 0 when it finished, 130 / 143 when a signal stopped it (resumable)."""
    from .model_dir import read_config

    print(f"model directory: {out}")
    print(f"report: {Path(out) / 'report.md'}")
    meta = read_config(out)
    if meta.get("status") != "interrupted":
        return 0
    return STOPPED.get(meta.get("stopped_by"), 143)


# ----------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    from . import list_models

    rows = list_models()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['family']:<10}  {r['summary']}")
    return 0


def cmd_train(args) -> int:
    from . import train

    model_cfg, train_cfg = _split_sets(args.set)
    given = _trainer_values(args, train_cfg)
    out = train(
        args.model,
        data=args.data,
        out=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        model_config=model_cfg,
        **given,
    )
    return _finished(out)


def cmd_distill(args) -> int:
    from . import distill

    model_cfg, train_cfg = _split_sets(args.set)
    if model_cfg:
        raise UsageError(
            f"distill copies the teacher's model settings; --set takes train.FIELD only (got {sorted(model_cfg)})"
        )
    out = distill(
        args.teacher,
        out=args.out,
        method=args.method,
        sampling_steps=args.sampling_steps,
        teacher_calls=args.teacher_calls,
        data=args.data,
        resume=args.resume,
        overwrite=args.overwrite,
        **_trainer_values(args, train_cfg),
    )
    return _finished(out)


def cmd_evaluate(args) -> int:
    from . import evaluate

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if args.n is not None and args.n < 2:
        raise UsageError(f"--n must be >= 2 (got {args.n})")
    for flag in ("reference_n", "likelihood_n"):
        if getattr(args, flag) is not None and getattr(args, flag) < 2:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 2 (got {getattr(args, flag)})")
    result = evaluate(
        args.source,
        data=args.data,
        metrics=metrics,
        n=args.n,
        out=args.out,
        features=args.features,
        seed=args.seed,
        reference_n=args.reference_n,
        likelihood_n=args.likelihood_n,
        progress=True,
    )
    from .metrics.report import summary_lines

    print("\n".join(summary_lines(result)))
    if result.get("path"):
        print(f"wrote {result['path']}")
    return 0


def cmd_interpolate(args) -> int:
    from .apps.interpolate import interpolation_grid

    result = interpolation_grid(
        args.dir,
        data=args.data,
        start=args.start,
        end=args.end,
        frames=args.frames,
        mode=args.mode,
        out=args.out,
    )
    what = "test images" if result["route"] == "images" else "prior latents of seeds"
    print(f"{args.mode} path between {what} {args.start} and {args.end}: {tuple(result['images'].shape)}")
    print(f"wrote {result['path']}")
    return 0


def cmd_compare(args) -> int:
    from . import compare

    result = compare(
        data=args.data,
        models=args.models,
        minutes=args.minutes,
        seeds=args.seeds,
        out=args.out,
        resume=args.resume,
        quick=args.quick,
        n=args.n,
        progress=not args.no_progress,
    )
    if result["stopped_by"]:
        return STOPPED.get(result["stopped_by"], 143)
    print(f"leaderboard: {result['leaderboard']}")
    print(f"report: {result['report']}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, steps=args.steps, progress=not args.no_progress)
    return 0


COMMANDS = {
    "models": cmd_models,
    "train": cmd_train,
    "distill": cmd_distill,
    **cli_sample.COMMANDS,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "interpolate": cmd_interpolate,
    "compare": cmd_compare,
    **cli_forensics.COMMANDS,
    **cli_restore.COMMANDS,
    **cli_translate.COMMANDS,
    **cli_stylize.COMMANDS,
    **cli_ui.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    import shlex

    from . import provenance
    from .errors import one_line

    args = _parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    provenance.COMMAND = " ".join(["genvision", *map(shlex.quote, map(str, argv))])
    provenance.WATERMARK = not getattr(args, "no_watermark", False)
    from .training.trainer import TrainingError

    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, TrainingError) as e:  # OSError: missing files, a full disk, no permission
        print(f"genvision {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genvision {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        provenance.COMMAND = None  # one command's line never stamps the next (API calls after it)
        provenance.WATERMARK = True


if __name__ == "__main__":
    raise SystemExit(main())
