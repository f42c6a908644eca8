"""Fixtures for the metrics tests: the digits splits and their judge (trained once per session)."""

from __future__ import annotations

import pytest

from genvision import data
from genvision.metrics import judges


@pytest.fixture(scope="session")
def digits():
    """(train, test) splits of the digits set."""
    return data.load("digits", "train"), data.load("digits", "test")


@pytest.fixture
def judge(digits):
    """The digits judge from the session cache (function scope: the cache env is set per test)."""
    return judges.get_judge(*digits)


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory):
    """A file of random values in the real Inception file's layout (legacy torch serialisation)."""
    from genvision.metrics import inception

    return inception.write_random_weights(tmp_path_factory.mktemp("inception") / "random.pth", seed=0)
