"""One torch thread for the flow tests.

A flow step is hundreds of small convolutions: two threads gain little on a quiet machine and
lose ~10x when the cores are shared (measured: 300 digits steps took 43 s with one thread and
490 s with two on a busy 2-core machine), the same finding as the domain judge's.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
