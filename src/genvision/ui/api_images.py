"""The web app's image routes: sampling a run (images stream in as batches finish), the finished
set as PNG or .npz with its record, uploads, and the applications on a picked or uploaded image.

Model work runs as tasks on the one worker thread (``jobs.Jobs.submit``); the page polls
``/api/tasks/{id}``.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from . import apps as ui_apps
from . import jobs as ui_jobs
from . import security
from .web import data_url, float_field, from_u8, int_field, json_body, png_bytes, to_u8

if TYPE_CHECKING:
    from .server import UI

MAX_SAMPLE_N = 256


def add_routes(app: FastAPI, ui: UI) -> None:
    """Sampling, task, upload and application routes over ``ui``'s runs."""

    # ---- sampling
    @app.post("/api/sample")
    async def sample(request: Request):
        body = await json_body(request)
        run = body.get("run")
        ui.run_dir(run)
        n = int_field(body, "n", 16, 1, MAX_SAMPLE_N)
        seed = int_field(body, "seed", 0, 0, 2**31 - 1)
        options = {
            "sampler": body.get("sampler") or None,
            "steps": int_field(body, "steps", None, 1, 10_000),
            "eta": float_field(body, "eta"),
            "guidance_scale": float_field(body, "guidance_scale"),
            "temperature": float_field(body, "temperature"),
            "truncation": float_field(body, "truncation"),
        }
        label = int_field(body, "label", None, 0, 100_000)
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
            from ..data.inputs import resize

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


def _image(ui: UI, ds, src: dict, size: int, channels: int, resize) -> torch.Tensor:
    """One input image, (1, C, size, size) in [-1, 1]: a test image by index, or an upload."""
    from .. import data

    if not isinstance(src, dict):
        raise ValueError("an image is {test: INDEX} or {upload: ID}")
    if "test" in src:
        i = int_field(src, "test", None, 0, len(ds) - 1)
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
