"""Few-step distillation: a student that samples in ``steps`` DDIM steps what its teacher's ODE gives.

The student (:class:`DiffusionStudent`, registry name ``ddpm-student``) is the teacher's network
and settings with ``sampler="ddim"``, ``steps=K``, ``eta=0`` and no per-step clipping (its x0 at a
noisy step is the point a DDIM step must aim at, not an image, and may leave [-1, 1])
(:func:`student_config`). The teacher is passed in by whoever builds it (a "train" parent: only
training and resuming need it); the student starts from the teacher's weights and trains with
the one Trainer on the teacher's data. A student directory is an ordinary model directory that
names its teacher as a parent: sampling never needs the teacher, resuming does.

A class-conditional teacher is distilled without guidance: each image keeps its label (or the
null class, dropped as in training), so the student learns both the conditional and the
unconditional ODE; guidance on a student mixes its distilled predictions, an approximation of
the guided teacher's ODE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel
from . import losses, samplers, schedules
from .model import Diffusion, DiffusionConfig

#: trainer settings distillation was tuned with (docs/notes/diffusion.md); user flags override
DISTILL_TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 5000, "warmup": 0}
#: teacher settings the student must share (besides the network's shapes)
SHARED_FIELDS = ("objective", "schedule", "num_train_timesteps", "conditional")


@dataclass
class StudentConfig(DiffusionConfig):
    """A distilled student: its teacher's settings, deterministic DDIM in ``steps`` steps."""

    sampler: str = "ddim"
    clip_x0: bool = False
    teacher_calls: int = 4  # teacher denoiser calls per student step
    caps: ClassVar[dict[str, int]] = {"teacher_calls": 1000}

    def __post_init__(self):
        super().__post_init__()
        if self.teacher_calls < 1:
            raise ValueError(f"teacher_calls must be >= 1 (got {self.teacher_calls}); 4 is usual")
        if self.sampler != "ddim" or self.eta != 0:
            raise ValueError(
                f"a distilled model learns deterministic DDIM steps (sampler=ddim, eta=0), not "
                f"sampler={self.sampler} eta={self.eta}; set sampler=ddim eta=0"
            )


def student_config(teacher: Diffusion, sampling_steps: int, teacher_calls: int) -> dict:
    """The config fields of a ``sampling_steps``-step DDIM student of ``teacher``."""
    config = teacher.config.to_dict()
    config.update(sampler="ddim", steps=sampling_steps, eta=0.0, clip_x0=False, teacher_calls=teacher_calls)
    return config


class DiffusionStudent(Diffusion):
    """A few-step DDIM student of a diffusion teacher (Salimans & Ho, 2022, with an ODE-solver target)."""

    config_class = StudentConfig
    parents = {"teacher": "train"}
    # trained at its K DDIM levels only, its network is no longer a denoiser at the others, so
    # the likelihood bound (which calls every one) means nothing
    capability_notes = {
        "log_likelihood": "a distilled student (a few DDIM steps) has no meaningful likelihood bound; "
        "measure its teacher"
    }
    start_note: ClassVar[str] = "denoised by the distilled DDIM steps"

    def __init__(self, config: StudentConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        if self.has_parent("teacher"):
            self._check_teacher(self.parent("teacher"))

    def _check_teacher(self, teacher: GenerativeModel) -> None:
        """One-line errors for a teacher this student cannot learn from."""
        if not isinstance(teacher, Diffusion):
            raise ValueError(
                f"the teacher is a {teacher.registry_name} ({teacher.family}); distillation needs a "
                "diffusion model (genvision train ddpm ...)"
            )
        if isinstance(teacher, DiffusionStudent):
            raise ValueError("the teacher is itself a distilled model; distil its teacher instead")
        mine, theirs = self.net.state_dict(), teacher.net.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise ValueError(
                "the teacher has another network than this model; "
                "`genvision distill TEACHER_DIR` copies the teacher's settings"
            )
        for field in SHARED_FIELDS:
            theirs, mine = getattr(teacher.config, field), getattr(self.config, field)
            if theirs != mine:
                raise ValueError(
                    f"the teacher has {field}={theirs!r}, this model {mine!r}; "
                    "`genvision distill TEACHER_DIR` copies the teacher's settings"
                )

    def train_defaults(self) -> dict:
        return dict(DISTILL_TRAIN_DEFAULTS)

    def init_from_data(self, batch: torch.Tensor) -> None:
        """The student starts from its teacher's weights (the EMA ones it samples with)."""
        self.net.load_state_dict(self.parent("teacher").net.state_dict())

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """One student DDIM step must land where ``teacher_calls`` teacher ODE steps do.

        Image b draws one of the ``steps`` DDIM intervals ``sigma -> sigma_next`` of the student's
        grid (``samplers.grid``; the last ends at the clean end, 0), its noise
        ``x_t ~ q(x_t | x)`` at ``sigma``, and (conditional) its label dropout, from its own
        generator. The teacher solves the probability-flow ODE from ``x_t`` to ``sigma_next``
        (:func:`samplers.ode_segment`, the teacher's clipping included);
        :func:`losses.ddim_x0_target` turns where it lands into the x0 the student must predict,
        and the loss is the MSE on the objective's output for that x0 (the v objective weighs x0
        errors by 1 + SNR, as in Salimans & Ho, 2022).
        """
        c = self.config
        teacher = self.parent("teacher")
        b, dev = x.shape[0], x.device
        grid = samplers.grid("ddim", self.sigmas, c.steps)  # (K + 1,) float64, ends at 0
        u = seeding.rand((b,), generator, dev)
        i = (u * c.steps).long().clamp(max=c.steps - 1)
        sigma, sigma_next = grid[i], grid[i + 1]  # (B,) each
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        a_t = schedules.alpha_bar_of(sigma).to(x.dtype).view(b, 1, 1, 1)
        a_s = schedules.alpha_bar_of(sigma_next).to(x.dtype).view(b, 1, 1, 1)  # 1 at the clean end
        xt = losses.add_noise(x, eps, a_t)
        labels = self._labels(b, y, generator, dev)
        # the teacher's own sampling denoiser (objective, clipping), unguided, per-image levels
        teacher_x0 = teacher.denoiser(labels, 1.0)
        with torch.no_grad():
            xs = samplers.ode_segment(teacher_x0, xt, sigma, sigma_next, c.teacher_calls, teacher.sigmas)
            x0_target = losses.ddim_x0_target(xt, xs, a_t, a_s)
        pred = self.net(xt, self.timestep(sigma), labels)
        mse = losses.mse_per_image(pred, losses.from_x0(c.objective, x0_target, xt, a_t))
        return {"loss": mse.mean(), "mse": mse.mean().detach()}


# moves to the run layer
