"""``genvision ui``: parsing only; :func:`genvision.ui.serve` does the work."""

from __future__ import annotations


def add_parsers(sub) -> None:
    u = sub.add_parser("ui", help="a local web app: runs, sampling, applications, training, comparison")
    u.add_argument("--runs", default="runs", help="the runs folder to show (default: runs)")
    u.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    u.add_argument("--port", type=int, default=7860)


def cmd(args) -> int:
    from .ui import serve

    serve(args.runs, host=args.host, port=args.port)
    return 0


COMMANDS = {"ui": cmd}
