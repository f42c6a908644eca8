"""The short digits runs behind the diffusion family's quality tests, shared with the calibration.

``tests/families/diffusion/test_objectives_quality.py`` trains each once (seed 0) and checks its
bar; ``tests/calibrate_quality.py`` trains each over five seeds to set the bars
(``tests/calibration.json``). Each returns the measured figures of one run.
"""

from __future__ import annotations

from pathlib import Path

import genvision as gv
from genvision import data
from genvision.metrics.baseline import independent_pixel_samples
from genvision.metrics.evaluate import domain_fid, evaluate

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}
NET = {"base_channels": 16, "num_res_blocks": 1}
#: training steps of each run, and the samples measured
STEPS = {
    "flow_matching": 400,
    "edm": 400,
    "ldm": 600,
    "consistency": 150,
    "reflow": 150,
    "ldm_consistency": 150,
}
N = 500


def baseline_fid() -> float:
    train, test = data.load("digits", "train"), data.load("digits", "test")
    return domain_fid(independent_pixel_samples(train, N, seed=0), train, test)[0]


def _fid(out: Path, **options) -> float:
    result = evaluate(out, data="digits", n=N, metrics=["fid"], sample_options=options or None)
    return result["metrics"]["fid"]["value"]


def train_flow_matching(out: Path, seed: int = 0) -> Path:
    return gv.train(
        "flow-matching",
        data="digits",
        out=out,
        steps=STEPS["flow_matching"],
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        seed=seed,
        model_config={**NET, "steps": 10},
        **QUIET,
    )


def flow_matching(out: Path, seed: int = 0) -> dict:
    train_flow_matching(out, seed)
    return {"fid": _fid(out)}


def edm(out: Path, seed: int = 0) -> dict:
    gv.train(
        "edm",
        data="digits",
        out=out,
        steps=STEPS["edm"],
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        seed=seed,
        model_config={**NET, "steps": 11},
        **QUIET,
    )
    return {"fid": _fid(out)}


def train_ldm(out: Path, seed: int = 0) -> Path:
    """Staged: the autoencoder on a quarter of the steps (8x8 -> 4x4x4), flow matching on the latents."""
    return gv.train(
        "ldm",
        data="digits",
        out=out,
        steps=STEPS["ldm"],
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        seed=seed,
        model_config={**NET, "downsample": 1, "steps": 10},
        **QUIET,
    )


def ldm(out: Path, seed: int = 0) -> dict:
    """The ldm run's samples and its decoder's reconstructions."""
    return ldm_figures(train_ldm(out, seed))


def ldm_figures(out: Path) -> dict:
    result = evaluate(out, data="digits", n=N, metrics=["fid", "reconstruction"])["metrics"]
    return {"fid": result["fid"]["value"], "reconstruction_fid": result["reconstruction"]["fid"]["value"]}


def consistency(out: Path, seed: int = 0, teacher: Path | None = None) -> dict:
    """A one-step consistency student of the flow_matching run (teacher and student both seeded;
    ``teacher``: that run, already trained with this seed)."""
    return _consistency_student(
        teacher or train_flow_matching(out.parent / "teacher", seed), out, seed, "consistency"
    )


def ldm_consistency(out: Path, seed: int = 0, teacher: Path | None = None) -> dict:
    """A one-step consistency student of the ldm run (``teacher``: that run, already trained with
    this seed): it learns on the teacher's latents and decodes with its autoencoder."""
    return _consistency_student(
        teacher or train_ldm(out.parent / "teacher", seed), out, seed, "ldm_consistency"
    )


def _consistency_student(teacher: Path, out: Path, seed: int, recipe: str) -> dict:
    """Distil ``teacher`` into a one-step consistency student in ``out``; its FIDs and the teacher's."""
    gv.distill(
        teacher, out, method="consistency", steps=STEPS[recipe], batch_size=64, lr=5e-4, seed=seed, **QUIET
    )
    return {"fid": _fid(out), "fid_2_steps": _fid(out, steps=2), "teacher_fid": _fid(teacher)}


def reflow(out: Path, seed: int = 0, teacher: Path | None = None) -> dict:
    """A reflow student of the flow_matching run, sampled with 1 and 2 Euler steps, beside its
    teacher's Euler steps; ``straightness``: the mean squared gap between a one-step Euler image
    and the teacher's 10-call Heun image from the same noise, the student's over the teacher's."""
    teacher = teacher or train_flow_matching(out.parent / "teacher", seed)
    gv.distill(
        teacher, out, method="reflow", steps=STEPS["reflow"], batch_size=64, lr=5e-4, seed=seed, **QUIET
    )
    t, s = gv.load(teacher), gv.load(out)
    ode = t.sample(N, seed=1, sampler="heun", steps=10)
    gap = [(m.sample(N, seed=1, sampler="euler", steps=1) - ode).pow(2).mean().item() for m in (s, t)]
    return {
        "fid": _fid(out, steps=1),
        "fid_2_steps": _fid(out, steps=2),
        "teacher_fid_1_step": _fid(teacher, sampler="euler", steps=1),
        "teacher_fid_2_steps": _fid(teacher, sampler="euler", steps=2),
        "straightness": gap[0] / gap[1],
    }
