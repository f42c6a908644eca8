"""Long jobs of the web app.

- Processes: ``genvision train`` / resume / ``evaluate`` run as child processes of the server (the
  same CLI a user types, so the same checks, the same one-line errors and the same resumable
  stop: SIGTERM makes the trainer save a checkpoint and exit). Their output goes to a log under
  ``RUNS/.ui/logs/``; the page reads progress from the run's own ``metrics.jsonl``.
- Tasks: sampling and the applications run in the server process on one worker thread (one
  model computation at a time, so a click cannot start ten), and hand their results over as they
  finish.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import one_line

_ids = itertools.count(1)


class ProcessJob:
    def __init__(self, kind: str, run: str, argv: list[str], log_dir: Path, cwd: Path):
        self.id = f"{kind}-{next(_ids)}"
        self.kind, self.run, self.argv = kind, run, argv
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"{self.id}-{int(time.time())}.log"
        self.started = time.time()
        self.ended: float | None = None
        self.stop_requested = False
        with open(self.log, "wb") as f:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "genvision", *argv],
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,  # Ctrl-C in the server's terminal does not reach it
            )

    @property
    def returncode(self) -> int | None:
        rc = self.proc.poll()
        if rc is not None and self.ended is None:
            self.ended = time.time()
        return rc

    def stop(self) -> None:
        """SIGTERM: a training run saves its checkpoint and exits (resumable)."""
        if self.returncode is None:
            self.stop_requested = True
            self.proc.send_signal(signal.SIGTERM)

    def tail(self, lines: int = 5) -> list[str]:
        try:
            text = self.log.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return []
        # progress bars rewrite one line with \r: keep the last state of each line
        return [ln.split("\r")[-1] for ln in text.splitlines() if ln.strip()][-lines:]

    def describe(self) -> dict:
        rc = self.returncode
        if rc is None:
            state = "running"
        elif rc == 0:
            state = "finished"
        elif rc in (130, 143, -signal.SIGTERM) and self.stop_requested:
            state = "stopped"
        else:
            state = "failed"
        tail = self.tail()
        errors = [ln for ln in tail if ": error:" in ln]
        return {
            "id": self.id,
            "kind": self.kind,
            "run": self.run,
            "state": state,
            "returncode": rc,
            "seconds": (self.ended or time.time()) - self.started,
            "log": tail,
            "error": errors[-1] if errors else (tail[-1] if state == "failed" and tail else None),
            "command": "genvision " + " ".join(self.argv),
        }


class Task:
    """An in-process job: ``fn(task)`` runs on the worker thread and fills ``task.items``."""

    def __init__(self, kind: str, total: int = 1):
        self.id = f"{kind}-{next(_ids)}"
        self.kind, self.total = kind, total
        self.items: list = []
        self.result: dict = {}
        self.error: str | None = None
        self.done = False
        self.started = time.time()
        self.first_item: float | None = None
        self.lock = threading.Lock()

    def add(self, item) -> None:
        with self.lock:
            if self.first_item is None:
                self.first_item = time.time()
            self.items.append(item)

    def describe(self, since: int = 0) -> dict:
        with self.lock:
            items = self.items[since:]
        return {
            "id": self.id,
            "kind": self.kind,
            "total": self.total,
            "count": since + len(items),
            "items": items,
            "done": self.done,
            "error": self.error,
            "seconds": time.time() - self.started,
            "result": self.result if self.done else {},
        }


class Jobs:
    def __init__(self, runs: Path, cwd: Path, keep_tasks: int = 64):
        self.runs, self.cwd = runs, cwd
        self.processes: dict[str, ProcessJob] = {}
        self.tasks: dict[str, Task] = {}
        self.keep_tasks = keep_tasks
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genvision-ui")

    # processes
    def start_process(self, kind: str, run: str, argv: list[str]) -> ProcessJob:
        for job in self.processes.values():
            if job.run == run and job.returncode is None:
                raise ValueError(f"{run} already has a {job.kind} job running; stop it first")
        job = ProcessJob(kind, run, argv, self.runs / ".ui" / "logs", self.cwd)
        self.processes[job.id] = job
        return job

    def live_runs(self) -> set[str]:
        return {j.run for j in self.processes.values() if j.returncode is None}

    # tasks
    def submit(self, task: Task, fn) -> Task:
        self.tasks[task.id] = task
        while len(self.tasks) > self.keep_tasks:  # oldest finished tasks go first
            old = next((k for k, t in self.tasks.items() if t.done), None)
            if old is None:
                break
            del self.tasks[old]

        def work():
            try:
                self.set_threads()
                fn(task)
            except (ValueError, OSError, RuntimeError) as e:
                task.error = one_line(e)
            except Exception as e:  # a bug: the line, and the traceback on the server's terminal
                traceback.print_exc()
                task.error = f"internal error: {one_line(e)}"
            finally:
                task.done = True

        self.pool.submit(work)
        return task

    def set_threads(self) -> None:
        """All cores for the app's own computations, one while a child process trains or evaluates:
        more busy threads than cores slow torch's spinning thread pool down many times over."""
        import torch

        cores = os.cpu_count() or 1
        torch.set_num_threads(1 if self.live_runs() else cores)

    def shutdown(self) -> None:
        """Stop child processes (they save and exit) and the worker."""
        for job in self.processes.values():
            job.stop()
        for job in self.processes.values():
            try:
                job.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job.proc.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
