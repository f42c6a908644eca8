"""Short digits runs of the newer diffusion objectives reach their bars (quality_recipes.py).

Each bar sits above the worst of five training seeds measured by ``tests/calibrate_quality.py``
(``tests/calibration.json``, the entries of the same name) and far below the per-pixel
independent baseline's FID, so a broken objective, sampler or stage fails.
"""

from __future__ import annotations

import pytest
from families.diffusion import quality_recipes as recipes

#: calibration.json "reflow" (five seeds): bars on the one-step FID and the straightness ratio
REFLOW_BAR = 100.0
REFLOW_STRAIGHTNESS_BAR = 0.25

#: domain FID bars at N = 500 (calibration.json: flow_matching, edm, ldm, consistency, reflow,
#: ldm_consistency)
BARS = {
    "flow_matching": 30.0,
    "edm": 37.0,
    "ldm": 77.0,
    "ldm_reconstruction": 25.0,
    "consistency": 59.0,
    "ldm_consistency": 85.0,
    "reflow": REFLOW_BAR,
}


@pytest.fixture(scope="module")
def baseline():
    return recipes.baseline_fid()


@pytest.fixture(scope="module")
def flow_teacher(tmp_path_factory):
    """The flow_matching run (seed 0): measured itself, and the teacher of both students."""
    return recipes.train_flow_matching(tmp_path_factory.mktemp("flow") / "teacher", 0)


def test_flow_matching_beats_its_bar(flow_teacher, baseline):
    fid = recipes._fid(flow_teacher)
    assert fid <= BARS["flow_matching"] < baseline / 3, (fid, baseline)


@pytest.fixture(scope="module")
def ldm_teacher(tmp_path_factory):
    """The ldm run (seed 0): measured itself, and the teacher of the latent consistency student."""
    return recipes.train_ldm(tmp_path_factory.mktemp("ldm") / "teacher", 0)


def test_edm_beats_its_bar(baseline, tmp_path):
    figures = recipes.edm(tmp_path / "edm")
    assert figures["fid"] <= BARS["edm"] < baseline / 3, (figures, baseline)


def test_ldm_beats_its_bar(ldm_teacher, baseline):
    figures = recipes.ldm_figures(ldm_teacher)
    assert figures["fid"] <= BARS["ldm"] < baseline / 3, (figures, baseline)
    # the decoder's own fidelity has its bar too
    assert figures["reconstruction_fid"] <= BARS["ldm_reconstruction"] < baseline / 3, figures


def test_one_step_consistency_student_beats_its_bar(flow_teacher, baseline, tmp_path):
    figures = recipes.consistency(tmp_path / "student", teacher=flow_teacher)
    assert figures["fid"] <= BARS["consistency"] < baseline / 3, (figures, baseline)


def test_one_step_latent_consistency_student_beats_its_bar(ldm_teacher, baseline, tmp_path):
    figures = recipes.ldm_consistency(tmp_path / "student", teacher=ldm_teacher)
    assert figures["fid"] <= BARS["ldm_consistency"] < baseline / 3, (figures, baseline)


def test_reflow_straightens_the_teachers_paths(flow_teacher, baseline, tmp_path):
    """One Euler step of the student lands near the teacher's ODE image where the teacher's own
    step does not, and its one-step FID is far better than the teacher's two-step one."""
    figures = recipes.reflow(tmp_path / "reflow", teacher=flow_teacher)
    assert figures["straightness"] <= REFLOW_STRAIGHTNESS_BAR, figures
    assert figures["fid"] <= BARS["reflow"] < figures["teacher_fid_2_steps"], (figures, baseline)
