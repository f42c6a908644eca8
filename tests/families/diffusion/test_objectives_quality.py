"""Short digits runs of the newer diffusion objectives reach their bars (quality_recipes.py).

Each bar sits above the worst of five training seeds measured by ``tests/calibrate_quality.py``
(``tests/calibration.json``, the entries of the same name) and far below the per-pixel
independent baseline's FID, so a broken objective, sampler or stage fails.
"""

from __future__ import annotations

import pytest
from families.diffusion import quality_recipes as recipes

#: domain FID bars at N = 500 (calibration.json: flow_matching, edm, ldm, consistency)
BARS = {"flow_matching": 30.0, "edm": 37.0, "ldm": 77.0, "ldm_reconstruction": 25.0, "consistency": 67.0}


@pytest.fixture(scope="module")
def baseline():
    return recipes.baseline_fid()


@pytest.mark.parametrize("name", ["flow_matching", "edm", "ldm"])
def test_objective_beats_its_bar(name, baseline, tmp_path):
    figures = getattr(recipes, name)(tmp_path / name)
    assert figures["fid"] <= BARS[name] < baseline / 3, (figures, baseline)
    if name == "ldm":  # the decoder's own fidelity has its bar too
        assert figures["reconstruction_fid"] <= BARS["ldm_reconstruction"] < baseline / 3, figures


def test_one_step_consistency_student_beats_its_bar(baseline, tmp_path):
    figures = recipes.consistency(tmp_path / "student")
    assert figures["fid"] <= BARS["consistency"] < baseline / 3, (figures, baseline)
