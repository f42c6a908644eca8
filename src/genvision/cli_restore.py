"""The restoration verbs of the CLI (``inpaint``, ``upscale``, ``colorize``): parsing only.

Each calls :func:`genvision.apps.restore.run`; ``cli.py`` adds these parsers and commands.
"""

from __future__ import annotations

from pathlib import Path

HELP = {
    "inpaint": "fill the missing pixels of images (a task model, or zero-shot with a diffusion, autoregressive, VAE, flow or GAN model)",
    "upscale": "super-resolution: enlarge low-res images (a task model, or zero-shot with a diffusion, VAE, flow or GAN model)",
    "colorize": "colour greyscale images (a task model, or zero-shot with a diffusion, VAE, flow or GAN model of RGB images)",
}
TASK = {"inpaint": "inpaint", "upscale": "sr", "colorize": "colorize"}


def add_parsers(sub) -> None:
    for verb, text in HELP.items():
        r = sub.add_parser(verb, help=text)
        r.add_argument("dir", help="model directory")
        r.add_argument(
            "--input",
            required=True,
            help="IMG, npz:FILE (images uint8 N,H,W[,C]) or folder:DIR; originals of the model's size "
            "are degraded here (and shown beside the output)"
            + ("; or low-res images of 1/scale of it" if verb == "upscale" else ""),
        )
        r.add_argument(
            "--out", required=True, help="FILE.png (grid) or FILE.npz; a side-by-side FILE_compare.png too"
        )
        if verb == "inpaint":
            r.add_argument(
                "--mask",
                required=True,
                help="center | random | box:x,y,w,h | MASK.png (white = missing, the images' size)",
            )
            r.add_argument(
                "--resample",
                type=int,
                default=0,
                help="zero-shot diffusion: extra half passes (RePaint-style)",
            )
        if verb == "upscale":
            r.add_argument("--scale", type=int, default=None, help="2 or 4 (default: 4, or the task model's)")
        r.add_argument("--resize", action="store_true", help="resize inputs of another size to the model's")
        r.add_argument("--seed", type=int, default=0)
        r.add_argument("--sampler", help="diffusion: the sampler (default: the model's)")
        r.add_argument(
            "--steps",
            type=int,
            help="diffusion: network calls of the sampler; VAE/flow/GAN latent search: its Adam steps",
        )
        r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def cmd(args) -> int:
    from .apps.restore import run

    task = TASK[args.command]
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0 (got {args.seed})")
    scale = getattr(args, "scale", None)
    if task == "sr" and scale is None:
        scale = _model_scale(args.dir)
    options = {k: getattr(args, k) for k in ("sampler", "steps") if getattr(args, k) is not None}
    s = run(
        task,
        args.dir,
        args.input,
        args.out,
        mask=getattr(args, "mask", None),
        scale=scale,
        allow_resize=args.resize,
        seed=args.seed,
        resample=getattr(args, "resample", 0),
        device=args.device,
        **options,
    )
    quality = (
        f"; PSNR {s['psnr_db']:.2f} dB, SSIM {s['ssim']:.3f} against the originals" if "psnr_db" in s else ""
    )
    print(f"{args.command}: {s['n']} image(s) by the {s['route']} route{quality}")
    print(f"wrote {s['out']} and {s['compare']}")
    return 0


def _model_scale(run_dir) -> int:
    """A task model's own scale (config.json), else 4."""
    import json

    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return 4
    fields = config.get("model_config", {}) if isinstance(config, dict) else {}
    return int(fields.get("scale") or 4)


COMMANDS = {verb: cmd for verb in HELP}
