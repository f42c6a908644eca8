"""``genvision ui``: a local web app over a runs folder (needs the ``ui`` extra).

    genvision ui [--runs DIR] [--host 127.0.0.1] [--port 7860]

Pages: Runs, Run (report, evaluate, resume, quiz), Sample, Apps, Train, Compare. The server binds
127.0.0.1 unless told otherwise, serves only files inside the runs folder, and every request needs
the session token printed in the start URL (:mod:`genvision.ui.security`). Modules: ``server``
(the app, its guards, the page and run routes), ``api_images`` (sampling, uploads, applications),
``api_jobs`` (train, resume, evaluate as child processes), ``api_quiz`` (the quiz routes), ``web``
(request fields, the worker thread, PNG data URLs), ``runs`` (cards and progress), ``jobs`` (training processes, sampling tasks), ``apps``
(the applications page), ``quiz`` (human judgement), ``markdown`` (reports as HTML),
``static/`` (the page and its script).
"""

from __future__ import annotations

from pathlib import Path

MISSING = "the web app needs its extra: pip install 'genvision[ui]' (FastAPI and uvicorn)"


def create_app(runs="runs", **options):
    """The ASGI app over ``runs`` (``token=``, ``bind_host=``, ``cwd=``); see :mod:`.server`."""
    try:
        from .server import create_app as _create
    except ImportError as e:
        raise ValueError(f"{MISSING} ({e.name} is missing)") from None
    return _create(runs, **options)


def serve(runs="runs", host: str = "127.0.0.1", port: int = 7860, token: str | None = None) -> None:
    """Start the server and block; prints the URL with the session token."""
    from . import security

    try:
        import uvicorn
    except ImportError:
        raise ValueError(MISSING) from None
    if not 0 < port < 65536:
        raise ValueError(f"--port must be 1..65535 (got {port})")
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:  # a port in use: one line, before the URL is printed
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ValueError(
                f"cannot serve on {host}:{port} ({e.strerror}); pick another --port or --host"
            ) from None
    token = token or security.new_token()
    app = create_app(runs, token=token, bind_host=host)
    if host not in security.LOCAL_HOSTS:
        print(
            f"warning: serving on {host}: other machines on the network can reach this page; anyone with "
            "the token can sample, train and read the runs folder. Use the default 127.0.0.1 unless you mean it."
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"genvision ui: serving {Path(runs).resolve()}")
    print(f"open http://{shown}:{port}/?token={token}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
