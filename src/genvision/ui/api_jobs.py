"""The web app's process jobs: training a new run, resuming one, evaluating one, as ``genvision``
child processes (``jobs.Jobs.start_process``), listed and stopped from the Jobs page."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from .web import float_field, int_field, json_body

if TYPE_CHECKING:
    from .server import UI

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
SET_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")


def add_routes(app: FastAPI, ui: UI) -> None:
    """Job routes: list, train, resume, evaluate, stop."""

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
        steps, minutes = int_field(body, "steps", None, 1, 10_000_000), float_field(body, "minutes")
        if steps and minutes:
            raise ValueError("give steps or minutes, not both")
        if minutes is not None:
            if not 0 < minutes <= 7 * 24 * 60:
                raise ValueError(f"minutes must be > 0 (got {minutes})")
            argv += ["--minutes", repr(minutes)]
        elif steps:
            argv += ["--steps", str(steps)]
        for key in ("batch_size", "seed", "save_every", "sample_every"):
            v = int_field(body, key, None, 0 if key == "seed" else 1, 10_000_000)
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
        n = int_field(body, "n", None, 10, 100_000)
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
