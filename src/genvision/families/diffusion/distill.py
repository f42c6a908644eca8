"""Few-step distillation: a student that samples in ``steps`` DDIM steps what its teacher's ODE gives.

The student is the teacher's network and settings with ``teacher=DIR``, ``sampler="ddim"``,
``steps=K`` and no per-step clipping (its x0 at a noisy step is the point a DDIM step must aim at,
not an image, and may leave [-1, 1]); it starts from the teacher's weights and trains with the one
Trainer on the teacher's data (``Diffusion._distillation_loss`` gives the objective). A student
directory is an ordinary model directory: sampling never needs the teacher, resuming does.

A class-conditional teacher is distilled without guidance: each image keeps its label (or the
null class, dropped as in training), so the student learns both the conditional and the
unconditional ODE; guidance on a student mixes its distilled predictions, an approximation of
the guided teacher's ODE.
"""

from __future__ import annotations

from pathlib import Path

from ...model_dir import load_model_dir, read_config


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
            ``lr=``, ...); the distillation defaults are ``Diffusion.train_defaults()``'s.

    Returns:
        The student's run directory (a model directory; it samples with DDIM in K steps).
    """
    from ...training.trainer import default_run_dir, train

    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the student run to continue)")
        meta = read_config(out)
        stored = meta.get("model_config", {}).get("teacher", "")
        if not stored:
            raise ValueError(f"{out} is not a distillation run; continue it with genvision train --resume")
        if Path(stored) != Path(teacher).expanduser().resolve():
            raise ValueError(f"--resume: {out} distils {stored}, not {teacher}; pass that teacher")
        return train(meta.get("registry_name", "ddpm"), data=data, out=out, resume=True, **train_values)
    meta = read_config(teacher)
    if meta.get("family") != "diffusion":
        raise ValueError(
            f"{teacher} holds a {meta.get('registry_name')} ({meta.get('family')}); distillation needs a "
            "diffusion model (genvision train ddpm ...)"
        )
    model = load_model_dir(teacher)
    config = model.config.to_dict()
    if config.get("teacher"):
        raise ValueError(
            f"{teacher} is itself a distilled model; distil its teacher {config['teacher']} instead"
        )
    config.update(
        teacher=str(Path(teacher)),
        sampler="ddim",
        steps=sampling_steps,
        eta=0.0,
        clip_x0=False,
        teacher_calls=teacher_calls,
    )
    student = type(model)(type(model.config)(**config))
    student.registry_name = model.registry_name
    data = data or meta.get("data", {}).get("spec", "digits")
    if out is None:
        out = default_run_dir(f"{model.registry_name}-distill{sampling_steps}", data)
    return train(student, data=data, out=out, overwrite=overwrite, **train_values)
