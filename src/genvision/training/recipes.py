"""Recipes: models trained from other models, built by the run layer and fitted like any other.

Few-step distillation (``genvision distill``): a :class:`~genvision.families.diffusion.distill.
DiffusionStudent` that samples in K DDIM steps what its teacher's probability-flow ODE gives. The
teacher is loaded here and passed to the student (its parent, recorded in the student's
config.json by path and hash); the student starts from the teacher's weights and trains on the
teacher's data. Sampling a student never needs the teacher; resuming its training does.
"""

from __future__ import annotations

from pathlib import Path

from .. import registry
from ..model_dir import load_model_dir, parent_dir, read_config
from .run import default_run_dir, train

STUDENT = "ddpm-student"


def distill(
    teacher: str | Path,
    out: str | Path | None = None,
    *,
    sampling_steps: int = 10,
    teacher_calls: int = 4,
    data: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    **train_values,
) -> Path:
    """Train a ``sampling_steps``-step DDIM student of the diffusion model in ``teacher``.

    Args:
        teacher: a trained diffusion model directory.
        out: the student's run directory (default ``runs/<name>-distill<K>-<data>-<time>``).
        sampling_steps: the student's DDIM steps K (denoiser calls per image).
        teacher_calls: teacher ODE calls per student step (its target's accuracy).
        data: dataset spec (default: the teacher's training data).
        resume: continue the student run in ``out``.
        overwrite: replace an existing ``out``.
        **train_values: trainer settings, as for ``genvision.train`` (``minutes=``, ``steps=``,
            ``lr=``, ...); the distillation defaults are the student's ``train_defaults()``.

    Returns:
        The student's run directory (a model directory; it samples with DDIM in K steps).
    """
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the student run to continue)")
        meta = read_config(out)
        ref = meta.get("parents", {}).get("teacher")
        if meta.get("registry_name") != STUDENT or ref is None:
            raise ValueError(f"{out} is not a distillation run; continue it with genvision train --resume")
        if parent_dir(out, "teacher", ref) != Path(teacher).expanduser().resolve():
            raise ValueError(
                f"--resume: {out} distils {parent_dir(out, 'teacher', ref)}, not {teacher}; pass that teacher"
            )
        return train(STUDENT, data=data, out=out, resume=True, **train_values)
    meta = read_config(teacher)
    if meta.get("family") != "diffusion" or meta.get("registry_name") == STUDENT:
        what = (
            "a distilled student; distil its teacher instead"
            if meta.get("registry_name") == STUDENT
            else (
                f"a {meta.get('registry_name')} ({meta.get('family')}); distillation needs a diffusion model "
                "(genvision train ddpm ...)"
            )
        )
        raise ValueError(f"{teacher} holds {what}")
    from ..families.diffusion.distill import student_config

    model = load_model_dir(teacher)
    student = registry.create(
        STUDENT, parents={"teacher": model}, **student_config(model, sampling_steps, teacher_calls)
    )
    data = data or meta.get("data", {}).get("spec", "digits")
    if out is None:
        out = default_run_dir(f"{model.registry_name}-distill{sampling_steps}", data)
    return train(student, data=data, out=out, overwrite=overwrite, **train_values)
