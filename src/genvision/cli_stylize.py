"""The ``stylize`` verb of the CLI: parsing only; calls :func:`genvision.apps.stylize.run`."""

from __future__ import annotations

HELP = "style transfer: content images in the style of a style image (a trained adain model)"


def add_parsers(sub) -> None:
    r = sub.add_parser("stylize", help=HELP)
    r.add_argument("dir", help="model directory (genvision train adain --data folder:DIR)")
    r.add_argument("--content", required=True, help="IMG, npz:FILE (uint8 N,H,W[,C]) or folder:DIR")
    r.add_argument("--style", required=True, help="IMG (or npz:FILE / folder:DIR: one per content image)")
    r.add_argument("--alpha", type=float, default=1.0, help="0 keeps the content, 1 is full style (default)")
    r.add_argument(
        "--out", required=True, help="FILE.png (grid) or FILE.npz; a side-by-side FILE_compare.png too"
    )
    r.add_argument("--resize", action="store_true", help="resize inputs of another size to the model's")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def cmd(args) -> int:
    from .apps.stylize import run

    s = run(
        args.dir,
        args.content,
        args.style,
        args.out,
        alpha=args.alpha,
        allow_resize=args.resize,
        device=args.device,
    )
    print(f"stylize: {s['n']} image(s), alpha {s['alpha']:g}")
    print(f"wrote {s['out']} and {s['compare']}")
    return 0


COMMANDS = {"stylize": cmd}
