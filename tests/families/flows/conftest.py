"""One torch thread for the flow tests.

A flow step is hundreds of small convolutions: two threads gain little on a quiet machine and
lose ~10x when the cores are shared (measured: 300 digits steps took 43 s with one thread and
490 s with two on a busy 2-core machine), the same finding as the domain judge's.
"""

from __future__ import annotations

import pytest
from gvtest import one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield
