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

from . import cli_restore, cli_stylize, cli_translate, cli_ui

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
        "of a ddpm, flow-matching or edm, sampled in 1 or a few steps; reflow: a flow-matching student "
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

    s = sub.add_parser("sample", help="sample images from a model directory")
    s.add_argument("dir", help="model directory")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--out", help="FILE.png (grid) or FILE.npz (default DIR/samples/seed<S>_n<N>.png)")
    lab = s.add_mutually_exclusive_group()
    lab.add_argument("--label", type=int, help="class of every image (conditional models)")
    lab.add_argument("--labels", help="comma-separated classes, cycled over the images")
    lab.add_argument("--prompt", help="text models: the caption of every image")
    lab.add_argument("--prompts-file", help="text models: one prompt per line; image k uses line k (cycled)")
    s.add_argument(
        "--control",
        help="controlnet: IMG or npz:FILE of structure maps (bright = structure), image k follows map k (cycled)",
    )
    s.add_argument(
        "--sampler",
        help="diffusion: ddpm, ddim, dpm++2m, euler, heun, edm, consistency (default: the model's config)",
    )
    s.add_argument(
        "--steps", type=int, help="diffusion: network calls of the sampler (1 for a consistency model)"
    )
    s.add_argument("--eta", type=float, help="diffusion: ddim noise, 0 deterministic")
    s.add_argument("--guidance-scale", type=float)
    s.add_argument("--temperature", type=float)
    s.add_argument("--truncation", type=float)
    s.add_argument(
        "--style-mix",
        metavar="SEED_A,SEED_B",
        help="stylegan: a style-mixing picture instead: coarse styles from seed A's images (rows), fine "
        "from seed B's (columns), sqrt(--n) of each",
    )
    s.add_argument("--crossover", type=int, help="--style-mix: style inputs 0..K-1 from A (default: half)")
    s.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when torch sees it"
    )

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

    sc = sub.add_parser(
        "score",
        help="anomaly scores per image (higher = stranger); with --anomalies: AUROC, AUPRC, FPR@95%%TPR and a ROC plot",
        description="Methods: bpd, nll (likelihood models), recon (reconstruct), typicality, ratio (against "
        "--background, the same model trained with --set train.pixel_noise=0.2), diffusion (denoising "
        "change). Default: the first of diffusion, bpd, recon the model has (ratio with --background).",
    )
    sc.add_argument("dir", help="model directory")
    sc.add_argument("--data", required=True, help="normal images: a dataset spec (its test split by default)")
    sc.add_argument("--anomalies", help="a dataset spec whose images (all splits) count as anomalies")
    sc.add_argument("--method", help="bpd, nll, recon, typicality, ratio or diffusion")
    sc.add_argument("--background", help="ratio's background model directory")
    sc.add_argument("--split", default="test", choices=["test", "train", "all"], help="split of --data")
    sc.add_argument("--n", type=int, help="score at most N images of each set")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", default="scores.csv", help="CSV of scores (ROC plot beside it as *_roc.png)")

    dt = sub.add_parser(
        "detect",
        help="train a real-vs-generated detector and report its AUROC on unseen generators, clean and after JPEG",
        description="SRC: a model directory (sampled), npz:FILE or folder:DIR; several separated by commas.",
    )
    dt.add_argument("--train-real", required=True, help="dataset spec of real training images (train split)")
    dt.add_argument("--train-fake", required=True, help="generated training sources, SRC[,SRC...]")
    dt.add_argument("--test-real", required=True, help="dataset spec of real test images (test split)")
    dt.add_argument("--test-fake", required=True, help="generated test sources, SRC[,SRC...]")
    dt.add_argument("--n", type=int, default=1000, help="images per class for training and for testing")
    dt.add_argument("--jpeg-quality", type=int, default=75)
    dt.add_argument("--seed", type=int, default=0)

    ins = sub.add_parser(
        "inspect",
        help="print the provenance record genvision stored in a .png or .npz, and look for the watermark",
    )
    ins.add_argument("file", help="a .png or .npz written by genvision")

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


def _labels(args, n: int):
    import torch

    if args.label is not None:
        return torch.full((n,), args.label, dtype=torch.long)
    if args.labels:
        try:
            values = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"--labels must be integers separated by commas (got {args.labels!r})") from None
        if not values:
            raise UsageError("--labels is empty")
        return torch.tensor([values[k % len(values)] for k in range(n)], dtype=torch.long)
    return None


def _prompts(args, n: int) -> list[str] | None:
    if args.prompt is not None:
        return [args.prompt] * n
    if args.prompts_file:
        try:
            lines = Path(args.prompts_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise UsageError(f"cannot read --prompts-file {args.prompts_file}: {e.strerror or e}") from None
        lines = [line.strip() for line in lines if line.strip()]
        if not lines:
            raise UsageError(f"--prompts-file {args.prompts_file} holds no prompt (one per line)")
        return [lines[k % len(lines)] for k in range(n)]
    return None


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


def cmd_sample(args) -> int:
    from . import sample

    if args.n < 1:
        raise UsageError(f"--n must be >= 1 (got {args.n})")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1 (got {args.batch_size})")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0 (got {args.seed})")
    if args.style_mix is not None:
        return _style_mix(args)
    if args.crossover is not None:
        raise UsageError("--crossover goes with --style-mix SEED_A,SEED_B")
    out = Path(args.out) if args.out else Path(args.dir) / "samples" / f"seed{args.seed}_n{args.n}.png"
    if out.suffix not in (".png", ".npz"):
        raise UsageError(f"--out must end in .png or .npz (got {out.name})")
    options = {
        k: getattr(args, k)
        for k in ("sampler", "steps", "eta", "guidance_scale", "temperature", "truncation")
    }
    result = sample(
        args.dir,
        args.n,
        seed=args.seed,
        labels=_labels(args, args.n),
        prompts=_prompts(args, args.n),
        control=args.control,
        out=out,
        batch_size=args.batch_size,
        device=args.device,
        **options,
    )
    images, seconds = result["images"], result["seconds"]
    print(f"start: {result['start']}")
    print(f"output: {tuple(images.shape)} float in [{images.min():.3f}, {images.max():.3f}]")
    print(f"wrote {result['path']}")
    print(f"ok: {args.n} images in {seconds:.1f}s ({args.n / max(seconds, 1e-9):.1f} img/s)")
    return 0


def _style_mix(args) -> int:
    from .sampling import style_mix

    given = [
        f for f in ("label", "labels", "prompt", "prompts_file", "control") if getattr(args, f) is not None
    ]
    if given:
        raise UsageError(f"--style-mix takes no --{given[0].replace('_', '-')}")
    try:
        seed_a, seed_b = (int(v) for v in args.style_mix.split(","))
    except ValueError:
        raise UsageError(f"--style-mix takes two seeds, SEED_A,SEED_B (got {args.style_mix!r})") from None
    out = args.out or Path(args.dir) / "samples" / f"style_mix_{seed_a}_{seed_b}.png"
    result = style_mix(
        args.dir,
        seed_a,
        seed_b,
        crossover=args.crossover,
        n=args.n,
        out=out,
        device=args.device,
        truncation=args.truncation,
    )
    print(result["record"]["images"])
    print(f"wrote {result['path']}")
    return 0


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


def cmd_score(args) -> int:
    from .apps.anomaly import score_run

    if args.n is not None and args.n < 1:
        raise UsageError(f"--n must be >= 1 (got {args.n})")
    r = score_run(
        args.dir,
        args.data,
        anomalies=args.anomalies,
        method=args.method,
        background=args.background,
        split=args.split,
        n=args.n,
        out=args.out,
        seed=args.seed,
        progress=True,
    )
    normal = r["scores"]["normal"]
    print(f"{r['method']} ({r['what']}): normal mean {normal.mean():.4g} over {len(normal)} images")
    if r["summary"] is not None:
        s = r["summary"]
        print(
            f"anomalies mean {r['scores']['anomalies'].mean():.4g} over {s['n_anomalous']}: AUROC {s['auroc']:.4f}, "
            f"AUPRC {s['auprc']:.4f}, FPR at 95% TPR {s['fpr_at_95_tpr']:.4f}"
        )
    print(f"wrote {r['csv']}" + (f" and {r['plot']}" if r["plot"] else ""))
    return 0


def cmd_detect(args) -> int:
    from .apps.detect import detect

    r = detect(
        args.train_real,
        args.train_fake,
        args.test_real,
        args.test_fake,
        n=args.n,
        seed=args.seed,
        jpeg_quality=args.jpeg_quality,
    )
    q = r["jpeg_quality"]
    print(f"detector: {r['n']['train_real']} real + {r['n']['train_fake']} generated training images")
    for src, a in r["per_source"].items():
        print(f"  {src}: AUROC {a['clean']:.4f} clean, {a['jpeg']:.4f} after JPEG {q}")
    print(
        f"AUROC {r['auroc']['clean']:.4f} clean, {r['auroc']['jpeg']:.4f} after JPEG {q} ({r['n']['test_real']} real, {r['n']['test_fake']} generated test images)"
    )
    return 0


def cmd_inspect(args) -> int:
    import json

    from .sampling import read_record

    path = Path(args.file)
    mark = _watermark_line(path)
    try:
        record = read_record(path)
    except ValueError as e:
        if "no genvision record" not in str(e):
            raise
        print(
            f"{path}: no genvision record (not written by genvision, written before records, or re-saved by a tool that drops PNG text chunks)"
        )
        if mark:
            print(mark)
        return 1
    print(json.dumps(record, indent=2))
    if mark:
        print(mark)
    return 0


def _watermark_line(path: Path) -> str | None:
    """``inspect``'s watermark line for an image file (None for .npz: never marked)."""
    if path.suffix.lower() == ".npz":
        return "watermark: none (npz outputs are never marked)"
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from . import watermark

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except (OSError, UnidentifiedImageError):
        return None  # read_record says what is wrong with the file
    return watermark.describe(watermark.detect(arr))


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, steps=args.steps, progress=not args.no_progress)
    return 0


COMMANDS = {
    "models": cmd_models,
    "train": cmd_train,
    "distill": cmd_distill,
    "sample": cmd_sample,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "interpolate": cmd_interpolate,
    "compare": cmd_compare,
    "score": cmd_score,
    "inspect": cmd_inspect,
    "detect": cmd_detect,
    **cli_restore.COMMANDS,
    **cli_translate.COMMANDS,
    **cli_stylize.COMMANDS,
    **cli_ui.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    import shlex

    from . import provenance

    args = _parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    provenance.COMMAND = " ".join(["genvision", *map(shlex.quote, map(str, argv))])
    provenance.WATERMARK = not getattr(args, "no_watermark", False)
    from .training.trainer import TrainingError

    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, TrainingError) as e:  # OSError: missing files, a full disk, no permission
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"genvision {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genvision {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        provenance.COMMAND = None  # one command's line never stamps the next (API calls after it)
        provenance.WATERMARK = True


if __name__ == "__main__":
    raise SystemExit(main())
