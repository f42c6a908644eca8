"""The web app's HTTP side: FastAPI routes over the runs folder, the library API and the jobs.

Pages are one static HTML file and one script (``static/``; no build step, nothing from the
network); everything else is JSON under ``/api/`` and run files under ``/files/``. Every request
passes :func:`_guard` (Host header, session token) first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io as _io
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from . import apps as ui_apps
from . import jobs as ui_jobs
from . import runs as ui_runs
from . import security
from .quiz import Quiz

STATIC = Path(__file__).parent / "static"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
SET_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")
MAX_SAMPLE_N = 256
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


# ----------------------------------------------------------------------------- helpers
def png_bytes(arr: np.ndarray) -> bytes:
    """uint8 (H, W, C) or (C, H, W) tensor/array -> PNG bytes (no record, no mark: for showing)."""
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] == a.shape[1]:
        a = a.transpose(1, 2, 0)
    a = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    buf = _io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def to_u8(x: torch.Tensor, levels: int) -> np.ndarray:
    """Float images (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C) at the model's levels."""
    from ..data.transforms import to_uint8_255

    return to_uint8_255(x.detach().float().cpu().clamp(-1, 1), levels).permute(0, 2, 3, 1).numpy()


def from_u8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy()).float().permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def _int(body: dict, key: str, default=None, low: int | None = None, high: int | None = None):
    v = body.get(key, default)
    if v in (None, ""):
        return default
    try:
        v = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number (got {body.get(key)!r})") from None
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{key} must be between {low} and {high} (got {v})")
    return v


def _float(body: dict, key: str, default=None):
    v = body.get(key, default)
    if v in (None, ""):
        return default
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number (got {body.get(key)!r})") from None
    if v != v or abs(v) == float("inf"):
        raise ValueError(f"{key} must be a finite number")
    return v


async def in_worker(ui: UI, fn):
    """Run ``fn`` on the one model-computation thread and wait for it without blocking the loop."""

    def work():
        ui.jobs.set_threads()
        return fn()

    return await asyncio.wrap_future(ui.jobs.pool.submit(work))


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


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
        return JSONResponse({"error": ui_jobs.error_line(e)}, status_code=403)

    @app.exception_handler(FileNotFoundError)
    async def _missing(request, e):
        return JSONResponse({"error": ui_jobs.error_line(e)}, status_code=404)

    @app.exception_handler(ValueError)
    async def _bad(request, e):
        return JSONResponse({"error": ui_jobs.error_line(e)}, status_code=400)

    @app.exception_handler(OSError)
    async def _os(request, e):
        return JSONResponse({"error": ui_jobs.error_line(e)}, status_code=400)

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

    # ---- sampling
    @app.post("/api/sample")
    async def sample(request: Request):
        body = await json_body(request)
        run = body.get("run")
        ui.run_dir(run)
        n = _int(body, "n", 16, 1, MAX_SAMPLE_N)
        seed = _int(body, "seed", 0, 0, 2**31 - 1)
        options = {
            "sampler": body.get("sampler") or None,
            "steps": _int(body, "steps", None, 1, 10_000),
            "eta": _float(body, "eta"),
            "guidance_scale": _float(body, "guidance_scale"),
            "temperature": _float(body, "temperature"),
            "truncation": _float(body, "truncation"),
        }
        label = _int(body, "label", None, 0, 100_000)
        prompt = (body.get("prompt") or "").strip() or None
        task = ui_jobs.Task("sample", n)

        def work(task):
            from .. import sampling
            from ..seeding import image_seed

            model, sha = ui.model(run)
            levels = model.config.levels

            def on_batch(start, imgs):
                for j, a in enumerate(to_u8(imgs, levels)):
                    k = start + j
                    task.add({"k": k, "png": data_url(png_bytes(a)), "image_seed": image_seed(seed, k)})

            labels = label
            if label is None and getattr(model.config, "conditional", False):
                labels = [k % model.config.num_classes for k in range(n)]  # the classes in turn
            res = sampling.sample(
                model,
                n,
                seed=seed,
                labels=labels,
                prompts=prompt,
                batch_size=64,
                ramp=True,
                on_batch=on_batch,
                **options,
            )
            record = {**res["record"], "weights_sha256": sha, "via": "genvision ui", "run": run}
            task.result = {"record": record, "start": res["start"], "seconds": res["seconds"]}
            task.payload = (res["images"], res["labels"], levels, record, seed)

        ui.jobs.submit(task, work)
        return {"task": task.id, "n": n}

    @app.get("/api/tasks/{task_id}")
    async def task_state(task_id: str, since: int = 0):
        return _task(ui, task_id).describe(max(0, int(since)))

    @app.get("/api/tasks/{task_id}/image/{k}.png")
    async def task_png(task_id: str, k: int):
        from ..seeding import image_seed
        from ..viz import save_grid

        images, labels, levels, record, seed = _payload(ui, task_id)
        if not 0 <= k < len(images):
            raise FileNotFoundError(f"image {k} is not in this set of {len(images)}")
        one = {
            **record,
            "n": 1,
            "index": k,
            "image_seed": image_seed(seed, k),
            "images": f"image {k} of the set with seed {seed}: draws from seeding.image_seed({seed}, {k})",
        }
        if labels is not None:
            one["labels"] = [int(labels[k])]
        path = ui.tmp / f"{task_id}-{k}.png"
        save_grid(images[k : k + 1], path, nrow=1, levels=levels, pad=0, scale=1, metadata=one)
        return FileResponse(path, filename=f"seed{seed}_image{k}.png", media_type="image/png")

    @app.get("/api/tasks/{task_id}/images.npz")
    async def task_npz(task_id: str):
        from ..sampling import _write

        images, labels, levels, record, seed = _payload(ui, task_id)
        path = ui.tmp / f"{task_id}.npz"
        _write(path, images, labels, seed, levels, record)
        return FileResponse(
            path, filename=f"seed{seed}_n{len(images)}.npz", media_type="application/octet-stream"
        )

    # ---- uploads and applications
    @app.post("/api/upload")
    async def upload(run: str, request: Request):
        model_info = ui.run_dir(run)
        try:  # refused before the body is read: a huge upload never reaches the disk
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            raise ValueError("an upload needs a Content-Length header (a browser sends one)") from None
        if length > security.MAX_UPLOAD_BYTES + 65536:
            raise ValueError(
                f"the upload is {length / 2**20:.1f} MiB; the limit is {security.MAX_UPLOAD_BYTES / 2**20:.0f} MiB"
            )
        form = await request.form(max_files=1, max_fields=1)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ValueError("send the image as the form field 'file'")
        data = await file.read(security.MAX_UPLOAD_BYTES + 1)
        from ..model_dir import read_config

        channels = (read_config(model_info).get("model_config") or {}).get("channels", 3)
        arr = security.decode_upload(data, channels)
        key = f"u{len(ui.uploads) + 1}-{int(time.time() * 1000) % 100000}"
        ui.uploads[key] = arr
        while len(ui.uploads) > 32:
            ui.uploads.pop(next(iter(ui.uploads)))
        return {"upload": key, "width": arr.shape[1], "height": arr.shape[0], "png": data_url(png_bytes(arr))}

    @app.post("/api/apps/{app_name}")
    async def run_app(app_name: str, request: Request):
        body = await json_body(request)
        run = body.get("run")
        ui.run_dir(run)
        if app_name not in ui_apps.APPS:
            raise FileNotFoundError(f"no application {app_name}; known: {', '.join(ui_apps.APPS)}")
        task = ui_jobs.Task(app_name, 1)

        def work(task):
            from ..apps.files import resize

            model, _ = ui.model(run)
            c = model.config
            if app_name not in ui_apps.available(model):
                raise ValueError(f"{model.registry_name} cannot {app_name}; the Apps page lists what it can")
            ds = ui.dataset(run, "test")
            images = []
            for src in body.get("images") or []:
                images.append(_image(ui, ds, src, c.image_size, c.channels, resize))
            if not images:
                raise ValueError("pick or upload an image first")
            params = dict(body.get("params") or {})
            if app_name == "inpaint":
                params["mask"] = _mask(body.get("mask"), c.image_size)
            cache = ui.app_cache.setdefault((str(ui.run_dir(run)), app_name), {})
            train = ui.dataset(run, "train") if app_name == "edit" else None
            out = ui_apps.run(app_name, model, train, images, params, cache)
            shown = []
            for title in ("input", "degraded", "output"):
                if out.get(title) is not None:
                    x = out[title]
                    shown.append(
                        {"title": title, "png": [data_url(png_bytes(a)) for a in to_u8(x, c.levels)]}
                    )
            task.add({"panels": shown, "note": out.get("note")})

        ui.jobs.submit(task, work)
        return {"task": task.id}

    # ---- training and other process jobs
    @app.get("/api/jobs")
    async def list_jobs():
        return {"jobs": [j.describe() for j in reversed(list(ui.jobs.processes.values()))]}

    @app.post("/api/train")
    async def train(request: Request):
        from .. import registry

        body = await json_body(request)
        model = str(body.get("model") or "")
        registry.resolve(model)
        spec = str(body.get("data") or "digits").strip()
        if not spec or "\n" in spec or len(spec) > 400:
            raise ValueError("give a dataset spec: digits, mnist:DIR, folder:DIR, ...")
        name = str(body.get("name") or "").strip() or f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
        if not NAME.match(name):
            raise ValueError(f"run name {name!r}: use letters, digits, '.', '_' and '-' (up to 80)")
        out = ui.runs / name
        if out.exists():
            raise ValueError(
                f"{name} exists in the runs folder; choose another name (the web app never overwrites a run)"
            )
        argv = ["train", model, "--data", spec, "--out", str(out), "--no-progress"]
        steps, minutes = _int(body, "steps", None, 1, 10_000_000), _float(body, "minutes")
        if steps and minutes:
            raise ValueError("give steps or minutes, not both")
        if minutes is not None:
            if not 0 < minutes <= 7 * 24 * 60:
                raise ValueError(f"minutes must be > 0 (got {minutes})")
            argv += ["--minutes", repr(minutes)]
        elif steps:
            argv += ["--steps", str(steps)]
        for key in ("batch_size", "seed", "save_every", "sample_every"):
            v = _int(body, key, None, 0 if key == "seed" else 1, 10_000_000)
            if v is not None:
                argv += ["--" + key.replace("_", "-"), str(v)]
        for key, value in (body.get("set") or {}).items():
            if not SET_KEY.match(str(key)) or "\n" in str(value):
                raise ValueError(f"setting {key!r}: KEY=VALUE with a config field name")
            argv += ["--set", f"{key}={value}"]
        job = ui.jobs.start_process("train", name, argv)
        return job.describe()

    @app.post("/api/resume")
    async def resume(request: Request):
        from ..model_dir import read_config

        body = await json_body(request)
        run = body.get("run")
        path = ui.run_dir(run)
        meta = read_config(path)
        if meta.get("status") == "finished":
            raise ValueError(f"{run} has finished; train a new run to train longer")
        argv = ["train", str(meta.get("registry_name")), "--out", str(path), "--resume", "--no-progress"]
        return ui.jobs.start_process("resume", run, argv).describe()

    @app.post("/api/evaluate")
    async def evaluate(request: Request):
        body = await json_body(request)
        run = body.get("run")
        path = ui.run_dir(run)
        argv = ["evaluate", str(path)]
        n = _int(body, "n", None, 10, 100_000)
        if n:
            argv += ["--n", str(n)]
        return ui.jobs.start_process("evaluate", run, argv).describe()

    @app.post("/api/jobs/{job_id}/stop")
    async def stop(job_id: str):
        job = ui.jobs.processes.get(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id}")
        job.stop()
        return job.describe()

    # ---- human judgement
    @app.post("/api/quiz")
    async def quiz_start(request: Request):
        body = await json_body(request)
        run = body.get("run")
        path = ui.run_dir(run)
        per_kind = _int(body, "per_kind", 10, 1, 100)

        def work():
            model, _ = ui.model(run)
            q = Quiz(path, model, per_kind=per_kind)
            ui.quizzes[q.session] = q
            return {"quiz": q.session, "count": len(q.items)}

        return await in_worker(ui, work)

    @app.get("/api/quiz/{quiz_id}/{i}.png")
    async def quiz_item(quiz_id: str, i: int):
        q = _quiz(ui, quiz_id)
        return Response(
            png_bytes(q.item(i).numpy()), media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    @app.post("/api/quiz/{quiz_id}/answer")
    async def quiz_answer(quiz_id: str, request: Request):
        body = await json_body(request)
        q = _quiz(ui, quiz_id)
        result = q.answer(_int(body, "i", None, 0, 10_000), str(body.get("answer")), _float(body, "ms"))
        if len(q.answered) == len(q.items):
            from ..metrics.report import write_report

            write_report(q.run)
        return result

    return app


def _takes_prompts(model) -> bool:
    try:
        model.check_prompts(1, "a")
        return True
    except (ValueError, TypeError):
        return False


def _task(ui: UI, task_id: str) -> ui_jobs.Task:
    task = ui.jobs.tasks.get(task_id)
    if task is None:
        raise FileNotFoundError(f"no task {task_id} (finished long ago, or the server restarted)")
    return task


def _payload(ui: UI, task_id: str):
    task = _task(ui, task_id)
    if not task.done or task.error or not hasattr(task, "payload"):
        raise ValueError(
            "the images are not ready yet" if not task.done else f"the task failed: {task.error}"
        )
    return task.payload


def _quiz(ui: UI, quiz_id: str) -> Quiz:
    q = ui.quizzes.get(quiz_id)
    if q is None:
        raise FileNotFoundError(f"no quiz {quiz_id}; start one from a run's page")
    return q


def _image(ui: UI, ds, src: dict, size: int, channels: int, resize) -> torch.Tensor:
    """One input image, (1, C, size, size) in [-1, 1]: a test image by index, or an upload."""
    from .. import data

    if not isinstance(src, dict):
        raise ValueError("an image is {test: INDEX} or {upload: ID}")
    if "test" in src:
        i = _int(src, "test", None, 0, len(ds) - 1)
        return data.to_float(ds.images[i : i + 1], ds.levels)
    if "upload" in src:
        arr = ui.uploads.get(str(src["upload"]))
        if arr is None:
            raise ValueError("that upload is gone (the server restarted); upload it again")
        x = from_u8(arr)
        x = x[:, :1] if channels == 1 else (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)
        return resize(x, size) if x.shape[-2:] != (size, size) else x
    raise ValueError("an image is {test: INDEX} or {upload: ID}")


def _mask(url, size: int) -> torch.Tensor:
    """The canvas mask (a PNG data URL, painted = missing) as (1, 1, size, size) of 0/1."""
    if not isinstance(url, str) or not url.startswith("data:image/png;base64,"):
        raise ValueError("inpainting needs a mask: paint on the image")
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
    except ValueError:
        raise ValueError("the mask is not a PNG data URL") from None
    arr = security.decode_upload(raw, 1)[..., 0]
    from PIL import Image

    if arr.shape != (size, size):
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.BOX))
    return torch.from_numpy((arr > 127).astype(np.float32))[None, None]
