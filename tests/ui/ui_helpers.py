"""Constants and helpers the web app's tests share (a module of its own: ``conftest`` is taken)."""

from __future__ import annotations

import time

TOKEN = "test-token-123"
BASE = "http://127.0.0.1:7860"


def wait_task(client, task_id: str, timeout: float = 120.0) -> dict:
    """Poll a task until it is done; returns its last state with every item."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        s = client.get(f"/api/tasks/{task_id}").json()
        if s["done"]:
            return s
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} not done in {timeout}s")
