"""Smallest diffusion configs for the registry walk (tests/test_registry.py).

``ddpm`` and ``ddpm-cond`` use ``gvtest.TINY_DDPM`` (set in the walk itself); ``ddpm-student``
needs a teacher: ``prepare`` saves a tiny untrained ``ddpm`` and names its directory as the
student's parent (``gv.create(name, teacher=DIR)``), with the student's fields copied from it.
"""

from __future__ import annotations

from gvtest import TINY_DDPM

import genvision as gv
from genvision.families.diffusion.distill import student_config
from genvision.model_dir import save_model_dir

TINY = {"ddpm-student": {**TINY_DDPM, "steps": 3}}


def prepare(name: str, tmp_path) -> dict:
    """Extra ``gv.create`` arguments: the teacher of ``ddpm-student`` (as ``parents``)."""
    if name != "ddpm-student":
        return {}
    teacher = gv.create("ddpm", num_classes=10, levels=17, **TINY_DDPM)
    save_model_dir(teacher, tmp_path / "teacher")
    return {
        "teacher": str(tmp_path / "teacher"),
        **student_config(teacher, sampling_steps=3, teacher_calls=2),
    }
