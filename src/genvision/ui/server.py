"""The web app's HTTP side: FastAPI routes over the runs folder, the library API and the jobs.

Pages are one static HTML file and one script (``static/``; no build step, nothing from the
network); everything else is JSON under ``/api/`` and run files under ``/files/``. Every request
passes :func:`_guard` (Host header, session token) first. This module builds the app, its guards
and error handlers, the page and run routes; the image routes (sampling, uploads, applications),
the process jobs and the quiz add theirs from ``api_images``, ``api_jobs`` and ``api_quiz``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from ..errors import one_line
from . import api_images, api_jobs, api_quiz, security
from . import apps as ui_apps
from . import jobs as ui_jobs
from . import runs as ui_runs
from .quiz import Quiz
from .web import data_url, in_worker, png_bytes, to_u8

STATIC = Path(__file__).parent / "static"
MODEL_CACHE = 4
SAMPLE_OPTIONS = ("sampler", "steps", "eta", "guidance_scale", "temperature", "truncation")


class UI:
    """The server's state: the runs folder, the token, the jobs, loaded models and uploads."""

    def __init__(self, runs: Path, token: str, bind_host: str, cwd: Path):
        self.runs = runs.resolve()
        self.token = token
        self.hosts = security.allowed_hosts(bind_host)
        self.any_host = bind_host in ("0.0.0.0", "::")
        self.jobs = ui_jobs.Jobs(self.runs, cwd)
        self.models: dict[str, tuple[float, object, str | None]] = {}
        self.model_lock = threading.Lock()
        self.uploads: dict[str, np.ndarray] = {}
        self.quizzes: dict[str, Quiz] = {}
        self.app_cache: dict[tuple, dict] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="genvision-ui-"))

    # runs
    def run_dir(self, name: str) -> Path:
        if not isinstance(name, str) or not name:
            raise ValueError("name a run (its folder under the runs directory)")
        path = security.safe_path(self.runs, name)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{name} is not a run directory (no config.json)")
        return path

    def name_of(self, path: Path) -> str:
        return path.relative_to(self.runs).as_posix()

    def model(self, name: str):
        """The run's model (cached while its weights file is unchanged) and its weights' sha256."""
        from .. import sampling

        path = self.run_dir(name)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ValueError(f"{name} has saved no weights yet; wait for its first checkpoint")
        stamp = weights.stat().st_mtime
        with self.model_lock:
            hit = self.models.get(str(path))
            if hit and hit[0] == stamp:
                return hit[1], hit[2]
            model, sha = sampling._model(path, "auto")
            self.models[str(path)] = (stamp, model, sha)
            while len(self.models) > MODEL_CACHE:
                self.models.pop(next(iter(self.models)))
            self.app_cache = {k: v for k, v in self.app_cache.items() if k[0] != str(path)}
            return model, sha

    def dataset(self, name: str, split: str = "test"):
        from .. import data
        from ..model_dir import read_config

        meta = read_config(self.run_dir(name))
        spec = (meta.get("data") or {}).get("spec") or "digits"
        size = (meta.get("model_config") or {}).get("image_size")
        return data.load(spec, split=split, image_size=size)


# ----------------------------------------------------------------------------- the app
def create_app(
    runs: str | Path = "runs",
    *,
    token: str | None = None,
    bind_host: str = "127.0.0.1",
    cwd: str | Path | None = None,
) -> FastAPI:
    runs = Path(runs)
    if not runs.is_dir():
        raise FileNotFoundError(
            f"runs folder {runs} does not exist; train a model first (make demo) or pass --runs DIR"
        )
    ui = UI(runs, token or security.new_token(), bind_host, Path(cwd or os.getcwd()))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        ui.jobs.shutdown()  # training children save their checkpoint and exit
        shutil.rmtree(ui.tmp, ignore_errors=True)  # the downloads written for this session

    app = FastAPI(title="genvision", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.ui = ui

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        if not security.host_ok(request.headers.get("host"), ui.hosts, ui.any_host):
            return Response("genvision ui: this Host header is not the server's address", status_code=400)
        given = request.query_params.get("token")
        if given is not None and security.token_ok(given, ui.token):
            if request.method == "GET" and not request.url.path.startswith("/api/"):
                r = RedirectResponse(request.url.path, status_code=303)
            else:
                r = await call_next(request)
            r.set_cookie(security.COOKIE, ui.token, httponly=True, samesite="strict")
            return r
        sent = request.cookies.get(security.COOKIE) or request.headers.get(security.HEADER)
        if not security.token_ok(sent, ui.token):
            message = "no valid session token: open the URL `genvision ui` printed (it ends in ?token=...)"
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": message}, status_code=403)
            return HTMLResponse(f"<!doctype html><title>genvision</title><p>{message}</p>", status_code=403)
        return await call_next(request)

    @app.middleware("http")  # added last: the outermost, so refusals carry the headers too
    async def _headers(request: Request, call_next):
        r = await call_next(request)
        for k, v in security.HEADERS.items():
            r.headers.setdefault(k, v)
        return r

    @app.exception_handler(security.Forbidden)
    async def _forbidden(request, e):
        return JSONResponse({"error": one_line(e)}, status_code=403)

    @app.exception_handler(FileNotFoundError)
    async def _missing(request, e):
        return JSONResponse({"error": one_line(e)}, status_code=404)

    @app.exception_handler(ValueError)
    async def _bad(request, e):
        return JSONResponse({"error": one_line(e)}, status_code=400)

    @app.exception_handler(OSError)
    async def _os(request, e):
        return JSONResponse({"error": one_line(e)}, status_code=400)

    # ---- pages and files
    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/static/{name}")
    async def static(name: str):
        if name not in ("app.js", "style.css"):
            raise FileNotFoundError(f"no static file {name}")
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response((STATIC / name).read_bytes(), media_type=media)

    @app.get("/files/{path:path}")
    async def files(path: str):
        p = security.safe_path(ui.runs, path)
        if not p.is_file():
            raise FileNotFoundError(f"{path} is not a file")
        return FileResponse(p)

    # ---- runs
    @app.get("/api/runs")
    async def list_runs():
        live = ui.jobs.live_runs()
        cards = [ui_runs.card(ui.runs, d, ui.name_of(d) in live) for d in ui_runs.run_dirs(ui.runs)]
        return {"root": str(ui.runs), "runs": cards}

    @app.get("/api/run")
    async def run_detail(run: str):
        path = ui.run_dir(run)
        return ui_runs.detail(ui.runs, path, run in ui.jobs.live_runs())

    @app.get("/api/leaderboards")
    async def leaderboards():
        return {"leaderboards": ui_runs.leaderboards(ui.runs)}

    @app.get("/api/models")
    async def models():
        from ..registry import list_models

        return {
            "models": [
                {"name": m["name"], "family": m["family"], "summary": m["summary"]} for m in list_models()
            ]
        }

    @app.get("/api/run/options")
    async def run_options(run: str):
        def work():
            model, _ = ui.model(run)
            c = model.config
            info = {
                "run": run,
                "model": model.registry_name,
                "family": model.family,
                "image_size": c.image_size,
                "channels": c.channels,
                "accepts": [k for k in SAMPLE_OPTIONS if k in model.sample_options],
                "sampler": getattr(c, "sampler", None),
                "steps": getattr(c, "steps", None),
                "conditional": bool(getattr(c, "conditional", False)),
                "num_classes": c.num_classes,
                "prompts": _takes_prompts(model),
                "apps": ui_apps.available(model),
            }
            if "sampler" in info["accepts"]:
                from ..families.diffusion.samplers import SAMPLERS

                info["samplers"] = sorted(SAMPLERS)
            try:
                ds = ui.dataset(run, "train")
                info["class_names"] = [str(n) for n in (ds.class_names or [])]
            except (ValueError, OSError):
                info["class_names"] = []
            if "edit" in info["apps"]:
                info["apps"]["edit"]["attributes"] += info["class_names"]
            return info

        return await in_worker(ui, work)

    @app.get("/api/run/images")
    async def run_images(run: str, n: int = 16):
        n = max(1, min(int(n), 64))

        def work():
            ds = ui.dataset(run, "test")
            idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).round().long().unique()
            from .. import data

            x = data.to_float(ds.images[idx], ds.levels)
            u8 = to_u8(x, ds.levels)
            return {"images": [{"index": int(i), "png": data_url(png_bytes(a))} for i, a in zip(idx, u8)]}

        return await in_worker(ui, work)

    api_images.add_routes(app, ui)
    api_jobs.add_routes(app, ui)
    api_quiz.add_routes(app, ui)
    return app


def _takes_prompts(model) -> bool:
    try:
        model.check_prompts(1, "a")
        return True
    except (ValueError, TypeError):
        return False
