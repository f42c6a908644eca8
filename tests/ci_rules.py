"""Pytest hooks that keep skips honest (registered by ``tests/conftest.py``; a plain plugin module,
so that ``tests/test_ci_rules.py`` can load it into a small pytest run of its own with ``-p``).

- Under ``CI=true`` (``.ci/run`` sets it) a skip raised while a test runs (``pytest.skip`` in a
  fixture or test, a missing shared folder, a missing test dependency) is a failure. Skips that a
  test file declares with a ``skip`` / ``skipif`` marker (a test that only makes sense without an
  optional package) stay skips.
- Anywhere, a run in which tests were collected but none passed and some were skipped fails:
  "every test skipped" is not a green run.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether skips for missing data or dependencies are failures (``CI=true``)."""
    return os.environ.get("CI") == "true"


_COUNTS = {"passed": 0, "skipped": 0}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    declared = item.get_closest_marker("skip") or item.get_closest_marker("skipif")
    if report.skipped and in_ci() and not declared and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (every skip is a failure there): {report.longrepr[-1]}"


def pytest_runtest_logreport(report):
    if report.skipped:
        _COUNTS["skipped"] += 1
    elif report.passed and report.when == "call":
        _COUNTS["passed"] += 1


def pytest_collectreport(report):
    if report.skipped:  # a whole module skipped at import
        _COUNTS["skipped"] += 1


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.OK and _COUNTS["skipped"] and not _COUNTS["passed"]:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"every test skipped ({_COUNTS['skipped']}): nothing was checked", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
