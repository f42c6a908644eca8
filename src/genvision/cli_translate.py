"""The translation verbs of the CLI: ``translate`` (SDEdit, or ``--invert``) and ``edit``
(attribute editing); parsing only.

They call :func:`genvision.apps.translation.run` and :func:`genvision.apps.editing.run`; ``cli.py``
adds these parsers and commands.
"""

from __future__ import annotations

HELP = {
    "translate": "move images into a diffusion model's domain (SDEdit, --strength S), or invert them to "
    "their noise (--invert)",
    "edit": "move images along an attribute (thickness, a class, a caption word, or two folders) in a "
    "model's latent space",
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

    e = sub.add_parser("edit", help=HELP["edit"])
    e.add_argument("dir", help="model directory (a VAE, flow, or diffusion-family model)")
    e.add_argument("--input", required=True, help="IMG, npz:FILE (images uint8 N,H,W[,C]) or folder:DIR")
    e.add_argument(
        "--out", required=True, help="FILE.png (grid) or FILE.npz at --amount; a FILE_strip.png of -A..+A too"
    )
    e.add_argument(
        "--attribute",
        help="thickness (grey digits), a class name or number, or a word of the data's captions (woman, older)",
    )
    e.add_argument("--amount", type=float, default=1.0, help="how far (thickness: in training-set stds)")
    e.add_argument(
        "--from-dir", help="images without the attribute (with --to-dir: the direction between them)"
    )
    e.add_argument("--to-dir", help="images with the attribute")
    e.add_argument(
        "--data", default=None, help="dataset spec of the direction (default: the model's training data)"
    )
    e.add_argument("--n", type=int, default=None, help="training images the direction is estimated from")
    e.add_argument(
        "--direction",
        choices=["mean", "probe"],
        default="mean",
        help="mean latent difference (default) or a linear probe's normal (not for thickness)",
    )
    e.add_argument("--resize", action="store_true", help="resize inputs of another size to the model's")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


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


def cmd_edit(args) -> int:
    from .apps.editing import run

    if args.n is not None and args.n < 2:
        raise ValueError(f"--n must be >= 2 (got {args.n})")
    s = run(
        args.dir,
        args.input,
        args.out,
        attribute=args.attribute,
        amount=args.amount,
        from_dir=args.from_dir,
        to_dir=args.to_dir,
        data_spec=args.data,
        n=args.n,
        method=args.direction,
        allow_resize=args.resize,
        device=args.device,
    )
    extra = f"; thickness changed by {s['thickness_change']:+.2f} px" if "thickness_change" in s else ""
    print(f"edit: {s['n']} image(s) in the {s['space']} ({s['how']}){extra}")
    print(f"wrote {s['out']} and {s['strip']}")
    return 0


COMMANDS = {"translate": cmd, "edit": cmd_edit}
