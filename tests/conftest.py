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
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Every test shares one session cache (the judge is trained once), never ~/.cache."""
    cache = os.environ.get("GENVISION_CACHE") or str(tmp_path_factory.getbasetemp() / "gv-cache")
    monkeypatch.setenv("GENVISION_CACHE", cache)
