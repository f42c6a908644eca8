"""Fixtures for the metrics tests: the digits splits and their judge (trained once per session)."""

from __future__ import annotations

import pytest

from genvision import data
from genvision.metrics import domain


@pytest.fixture(scope="session")
def digits():
    """(train, test) splits of the digits set."""
    return data.load("digits", "train"), data.load("digits", "test")


@pytest.fixture
def judge(digits):
    """The digits judge from the session cache (function scope: the cache env is set per test)."""
    return domain.get_judge(*digits)
