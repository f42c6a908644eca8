"""The translation verb of the CLI (``translate``: SDEdit, or ``--invert``): parsing only.

It calls :func:`genvision.apps.translation.run`; ``cli.py`` adds this parser and command.
"""

from __future__ import annotations

HELP = {
    "translate": "move images into a diffusion model's domain (SDEdit, --strength S), or invert them to "
    "their noise (--invert)",
}


def add_parsers(sub) -> None:
    t = sub.add_parser("translate", help=HELP["translate"])
    t.add_argument("dir", help="model directory (a diffusion-family model of the target domain)")
    t.add_argument("--input", required=True, help="IMG, npz:FILE (images uint8 N,H,W[,C]) or folder:DIR")
    t.add_argument(
        "--out",
        required=True,
        help="FILE.png (grid) or FILE.npz; --invert: FILE.npz (noise, reconstruction, psnr_db); "
        "a side-by-side FILE_compare.png too",
    )
    t.add_argument(
        "--strength",
        type=float,
        default=None,
        help="SDEdit: 0 keeps the input, 1 ignores it (a fresh sample); 0.3-0.6 is the usual range",
    )
    t.add_argument(
        "--invert",
        action="store_true",
        help="write the start noise the Euler sampler turns into each input, and the reconstruction",
    )
    t.add_argument("--resize", action="store_true", help="resize inputs of another size to the model's")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--sampler", help="SDEdit: the sampler (default: the model's)")
    t.add_argument(
        "--steps", type=int, help="network calls (SDEdit: of the whole grid; --invert: default 50)"
    )
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def cmd(args) -> int:
    from .apps.translation import run

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0 (got {args.seed})")
    if args.invert and args.sampler:
        raise ValueError("--invert uses the Euler sampler (the flow ODE); drop --sampler")
    options = {"sampler": args.sampler} if args.sampler else {}
    s = run(
        args.dir,
        args.input,
        args.out,
        strength=args.strength,
        do_invert=args.invert,
        steps=args.steps,
        allow_resize=args.resize,
        seed=args.seed,
        device=args.device,
        **options,
    )
    if args.invert:
        print(
            f"translate --invert: {s['n']} image(s); reconstruction PSNR {s['psnr_db']:.2f} dB against the inputs"
        )
    else:
        print(
            f"translate: {s['n']} image(s) at strength {args.strength:g}; PSNR to the inputs {s['psnr_to_input_db']:.2f} dB"
        )
    print(f"wrote {s['out']} and {s['compare']}")
    return 0


COMMANDS = {"translate": cmd}
