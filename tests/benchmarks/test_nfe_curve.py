"""benchmarks/nfe_curve.py's own logic: each dataset's lengths, N and NFE grid, and the overrides."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import nfe_curve  # noqa: E402
import quality_budget as qb  # noqa: E402


def flags(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"steps": None, "distill_steps": None, "n": None, **given})


def test_each_dataset_gets_its_mode_and_the_larger_ones_quality_budgets_n():
    assert nfe_curve.settings("digits", False, flags()) == nfe_curve.FULL
    assert nfe_curve.settings("digits", True, flags()) == nfe_curve.QUICK
    for data in ("mnist", "emoji"):
        full = nfe_curve.settings(data, False, flags())
        assert full["n"] == qb.FID_N[data] and full["steps"] == nfe_curve.FULL_LARGE["steps"]
        assert nfe_curve.REFERENCE_NFE not in full["nfe"]  # 1000 calls only for the reference sampler
        assert nfe_curve.settings(data, True, flags()) == nfe_curve.QUICK


def test_the_command_lines_lengths_and_n_override_the_mode_without_changing_it():
    got = nfe_curve.settings("mnist", False, flags(steps=7, distill_steps=3, n=40))
    assert (got["steps"], got["distill_steps"], got["n"]) == (7, 3, 40)
    assert nfe_curve.FULL_LARGE["steps"] == 3000 and "n" not in nfe_curve.FULL_LARGE
