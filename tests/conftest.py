"""Shared fixtures: thread count and a per-session judge cache (never ~/.cache); the skip rules."""

from __future__ import annotations

import os

import ci_rules
import pytest
import torch


def pytest_configure(config):
    """Skips fail under CI=true, and a run where every test skipped fails (``ci_rules.py``)."""
    if not config.pluginmanager.has_plugin("ci_rules"):
        config.pluginmanager.register(ci_rules, "ci_rules")


@pytest.fixture(autouse=True, scope="session")
def _threads():
    """Two threads (CI's cores); GENVISION_TEST_THREADS=1 on a machine shared with other jobs, where
    more threads than free cores slow torch's spinning thread pool down many times over."""
    torch.set_num_threads(int(os.environ.get("GENVISION_TEST_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Every test shares one session cache (the judge is trained once), never ~/.cache."""
    cache = os.environ.get("GENVISION_CACHE") or str(tmp_path_factory.getbasetemp() / "gv-cache")
    monkeypatch.setenv("GENVISION_CACHE", cache)
