"""Recipes: models trained from other models, built by the run layer and fitted like any other.

- Distillation (``genvision distill``), ``method="progressive"``: a :class:`~genvision.families.
  diffusion.distill.DiffusionStudent` that samples in K DDIM steps what its teacher's
  probability-flow ODE gives; ``method="consistency"``: a consistency model
  (``families/diffusion/consistency.py``) that samples in one or a few steps; ``method="reflow"``:
  a flow-matching student trained on its teacher's noise-image pairs (``families/diffusion/
  reflow.py``), sampled with a few Euler steps. The teacher is
  loaded here and passed to the student (its parent, recorded in the student's config.json by
  path and hash); the student starts from the teacher's weights and trains on the teacher's data.
  Sampling a student never needs the teacher; resuming its training does.

Staged training (``genvision train ldm``: the autoencoder first, then the latent model) is the run
layer's own (``staged.train_staged``): it is how one run directory is trained, not a new model.
"""

from __future__ import annotations

from pathlib import Path

from .. import registry
from ..model_dir import load_model_dir, parent_dir, read_config
from .run import default_run_dir, train

STUDENT = "ddpm-student"
METHODS = ("progressive", "consistency", "reflow")


def distill(
    teacher: str | Path,
    out: str | Path | None = None,
    *,
    method: str = "progressive",
    sampling_steps: int | None = None,
    teacher_calls: int | None = None,
    data: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    **train_values,
) -> Path:
    """Train a ``sampling_steps``-step DDIM student of the diffusion model in ``teacher``.

    Args:
        teacher: a trained diffusion model directory.
        out: the student's run directory (default ``runs/<name>-distill<K>-<data>-<time>``).
        method: "progressive" (a K-step DDIM student of a ``ddpm`` teacher), "consistency" (a
            consistency model of a ``ddpm``, ``flow-matching``, ``edm`` or latent (``ldm``,
            ``ldm-cond``, ``ldm-ddpm``, ``ldm-edm``) teacher) or "reflow"
            (a flow-matching student of a ``flow-matching`` teacher).
        sampling_steps: the student's default sampling calls (progressive: K DDIM steps,
            default 10; consistency: default 1; reflow: Euler steps, default 2).
        teacher_calls: teacher ODE calls per student step (progressive) or per noise-image pair
            (reflow; default there 10).
        data: dataset spec (default: the teacher's training data).
        resume: continue the student run in ``out``.
        overwrite: replace an existing ``out``.
        **train_values: trainer settings, as for ``genvision.train`` (``minutes=``, ``steps=``,
            ``lr=``, ...); the distillation defaults are the student's ``train_defaults()``.

    Returns:
        The student's run directory (a model directory; it samples with DDIM in K steps).
    """
    if method not in METHODS:
        raise ValueError(f"unknown distillation method {method!r}; known: {', '.join(METHODS)}")
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the student run to continue)")
        meta = read_config(out)
        ref = meta.get("parents", {}).get("teacher")
        if meta.get("registry_name") not in (STUDENT, *STUDENT_NAMES) or ref is None:
            raise ValueError(f"{out} is not a distillation run; continue it with genvision train --resume")
        if parent_dir(out, "teacher", ref) != Path(teacher).expanduser().resolve():
            raise ValueError(
                f"--resume: {out} distils {parent_dir(out, 'teacher', ref)}, not {teacher}; pass that teacher"
            )
        return train(meta["registry_name"], data=data, out=out, resume=True, **train_values)
    meta = read_config(teacher)
    name = meta.get("registry_name")
    if name in (STUDENT, *STUDENT_NAMES):
        raise ValueError(f"{teacher} holds a distilled student; distil its teacher instead")
    if meta.get("family") != "diffusion":
        raise ValueError(
            f"{teacher} holds a {name} ({meta.get('family')}); distillation needs a diffusion model "
            "(genvision train ddpm / flow-matching / edm / ldm ...)"
        )
    if method != "consistency" and latent(name):
        raise ValueError(
            f"{teacher} holds a {name}, a latent model; {method} distillation needs a diffusion model in "
            "pixel space (genvision train ddpm / flow-matching / edm); --method consistency distils latent models"
        )
    teacher_calls_given = teacher_calls is not None
    teacher_calls = 4 if teacher_calls is None else teacher_calls
    model = load_model_dir(teacher)
    data = data or meta.get("data", {}).get("spec", "digits")
    if method == "reflow":
        from ..families.diffusion import reflow
        from ..families.diffusion.continuous import FlowMatching

        if type(model) is not FlowMatching:
            raise ValueError(
                f"{teacher} holds a {name}; reflow takes a flow-matching teacher "
                "(use --method consistency for ddpm or edm)"
            )
        fields = reflow.student_config(model, teacher_steps=teacher_calls if teacher_calls_given else 10)
        if sampling_steps is not None:
            fields["steps"] = sampling_steps
        student = registry.create("flow-matching-reflow", parents={"teacher": model}, **fields)
        tag = "reflow"
    elif method == "consistency":
        from ..families.diffusion import consistency

        student_name = consistency.STUDENTS.get(type(model))
        if student_name is None:
            raise ValueError(
                f"{teacher} holds a {name}; consistency distillation takes ddpm, flow-matching, edm "
                "or their latent forms (ldm, ldm-cond, ldm-ddpm, ldm-edm)"
            )
        fields = consistency.student_config(model)
        if sampling_steps is not None:
            fields["steps"] = sampling_steps
        parents = {"teacher": model}
        if model.has_parent("autoencoder"):  # a latent student decodes with its teacher's autoencoder
            parents["autoencoder"] = model.parent("autoencoder")
        student = registry.create(student_name, parents=parents, **fields)
        tag = "consistency"
    else:
        from ..families.diffusion.distill import student_config
        from ..families.diffusion.model import Diffusion

        if type(model) is not Diffusion:
            raise ValueError(
                f"{teacher} holds a {name}; progressive distillation takes a ddpm teacher "
                "(use --method consistency for flow-matching or edm)"
            )
        sampling_steps = 10 if sampling_steps is None else sampling_steps
        student = registry.create(
            STUDENT, parents={"teacher": model}, **student_config(model, sampling_steps, teacher_calls)
        )
        tag = f"distill{sampling_steps}"
    if out is None:
        out = default_run_dir(f"{model.registry_name}-{tag}", data)
    return train(student, data=data, out=out, overwrite=overwrite, **train_values)


STUDENT_NAMES = (
    "ddpm-consistency",
    "flow-matching-consistency",
    "edm-consistency",
    "ldm-consistency",
    "ldm-ddpm-consistency",
    "ldm-edm-consistency",
    "flow-matching-reflow",
)


def latent(name: str) -> bool:
    """Whether the registry name ``name`` is a latent model (its class works on an autoencoder's latents)."""
    from ..families.diffusion.latent import LatentMixin

    return name in registry.MODELS and issubclass(registry.resolve(name)[0], LatentMixin)
