"""The skip rules of ``ci_rules.py``, checked on small pytest runs of their own (no torch imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gvtest import import_or_fail

TESTS = Path(__file__).resolve().parent

SKIPS = """
import pytest

def test_imperative_skip():
    pytest.skip("shared data missing")

@pytest.mark.skipif(True, reason="only without an optional package")
def test_declared_skip():
    pass
"""


def _pytest(tmp_path: Path, source: str, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"PYTHONPATH": str(TESTS), **({"CI": "true"} if ci else {})})
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "ci_rules",
        "-p",
        "no:cacheprovider",
        "test_probe.py",
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_run_where_every_test_skips_fails(tmp_path):
    proc = _pytest(tmp_path, SKIPS, ci=False)
    assert proc.returncode == 1 and "every test skipped (2)" in proc.stdout, proc.stdout


def test_under_ci_an_imperative_skip_fails_and_a_declared_one_stays_a_skip(tmp_path):
    proc = _pytest(tmp_path, SKIPS + "\ndef test_real():\n    pass\n", ci=True)
    assert proc.returncode == 1 and "1 failed, 1 passed, 1 skipped" in proc.stdout, proc.stdout
    assert "skipped under CI=true" in proc.stdout and "shared data missing" in proc.stdout


def test_a_missing_test_dependency_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_here"):
        import_or_fail("no_such_module_here")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no_such_module_here"):
        import_or_fail("no_such_module_here")
    assert import_or_fail("json").dumps([]) == "[]"
