"""One torch thread for the flow tests.

A flow step is hundreds of small convolutions: two threads gain little on a quiet machine and
lose many times over when the cores are shared (measured: docs/notes/flows.md), the same finding
as the domain judge's.
"""

from __future__ import annotations

import pytest
from gvtest import one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield
