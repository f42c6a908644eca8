"""Reflow (Liu et al., 2023): a flow-matching student trained on its teacher's own noise-image pairs.

A flow-matching teacher learns straight lines between *independent* noise and images; their
crossings make its ODE paths curved, so sampling needs many steps. Reflow couples them: each
training image of the student is the teacher's ODE solution ``x_0 = ODE(eps)`` from a noise
``eps``, and the student learns the straight line between exactly that pair::

    x_t = (1 - t) x_0 + t eps,   target velocity  v = eps - x_0.

Pairs from one deterministic map do not cross, so the student's paths are straighter than the
teacher's and a few Euler steps get close to what the teacher's many steps give. The pairs are
made on the fly (``teacher_sampler`` in ``teacher_steps`` calls per pair, no gradient), from the
noise each image draws from its own generator, so a run is reproducible and resumable like any
other; the dataset's images are not used (labels are, for a class-conditional teacher).

The student is a ``flow-matching`` model (the teacher's class, network and settings), starts from
the teacher's weights, and samples with ``sampler="euler"`` in ``steps`` calls by default
(``genvision distill RUN --method reflow``; sampling never needs the teacher).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel
from . import losses, samplers
from .continuous import TIME_SCALE, FlowMatching, FlowMatchingConfig

#: trainer settings reflow trains with: the student starts at its teacher, so a short EMA
REFLOW_TRAIN_DEFAULTS = {"batch_size": 64, "ema_half_life": 2000, "warmup": 0}


@dataclass
class ReflowFields:
    """What a reflow student adds to its teacher's flow-matching config (first base, as for the
    consistency students: these defaults and checks come first)."""

    teacher_sampler: str = "heun"  # how the teacher solves its ODE to make each pair
    teacher_steps: int = 10  # the teacher's calls per pair
    sampler: str = "euler"
    steps: int = 2
    caps: ClassVar[dict[str, int]] = {"teacher_steps": 1000}

    def __post_init__(self):
        super().__post_init__()
        spec = samplers.SAMPLERS.get(self.teacher_sampler)
        if spec is None or spec.consistency or spec.every_step or spec.options:
            ok = [n for n, s in samplers.SAMPLERS.items() if not (s.consistency or s.every_step or s.options)]
            raise ValueError(
                f"teacher_sampler must be a deterministic ODE sampler: one of {', '.join(ok)} "
                f"(got {self.teacher_sampler!r})"
            )
        if self.teacher_steps < 1:
            raise ValueError(f"teacher_steps must be >= 1 (got {self.teacher_steps}); 10 is usual")


@dataclass
class ReflowConfig(ReflowFields, FlowMatchingConfig):
    pass


def student_config(teacher: FlowMatching, teacher_steps: int = 10) -> dict:
    """The config fields of a reflow student of ``teacher`` (Euler in 2 calls by default)."""
    config = teacher.config.to_dict()
    config.update(sampler="euler", steps=2, teacher_sampler="heun", teacher_steps=teacher_steps)
    return config


class Reflow(FlowMatching):
    """A flow-matching student of a ``flow-matching`` / ``flow-matching-cond`` teacher, on its pairs."""

    config_class = ReflowConfig
    parents = {"teacher": "train"}

    def __init__(self, config: ReflowConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        if self.has_parent("teacher"):
            self._check_teacher(self.parent("teacher"))

    def _check_teacher(self, teacher: GenerativeModel) -> None:
        if type(teacher) is not FlowMatching:
            raise ValueError(
                f"the teacher is a {teacher.registry_name}; reflow distils a flow-matching model "
                "(genvision distill TEACHER --method reflow)"
            )
        mine, theirs = self.net.state_dict(), teacher.net.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise ValueError(
                "the teacher has another network than this model; "
                "`genvision distill TEACHER_DIR --method reflow` copies the teacher's settings"
            )

    def train_defaults(self) -> dict:
        return dict(REFLOW_TRAIN_DEFAULTS)

    def init_from_data(self, batch: torch.Tensor) -> None:
        """The student starts from its teacher's weights."""
        self.net.load_state_dict(self.parent("teacher").net.state_dict())

    @torch.no_grad()
    def teacher_pairs(self, eps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The teacher's ODE solution (B, C, H, W) from the start noise ``eps`` (its deterministic map)."""
        c, teacher = self.config, self.parent("teacher")
        spec = samplers.SAMPLERS[c.teacher_sampler]
        levels = teacher.sampling_levels(c.teacher_sampler, c.teacher_steps)
        options = {"calls": c.teacher_steps} if spec.second_order else {}
        with teacher.eval_mode():
            denoise = teacher.denoiser(labels, teacher.config.guidance_scale)
            return spec.fn(denoise, eps, levels, None, **options).clamp(-1, 1)

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """The flow-matching loss on the pair (teacher's image, its noise) instead of (x, new noise).

        Each image draws its noise, its time and its label dropout from its own generator; ``x``
        gives only the batch's size (and ``y`` its labels).
        """
        b, dev = x.shape[0], x.device
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        given = self.check_labels(b, y) if self.config.conditional else None
        x0 = self.teacher_pairs(eps, given)
        t = self.draw_times(b, generator, dev)
        tt = t.to(x.dtype).view(b, 1, 1, 1)
        xt = (1 - tt) * x0 + tt * eps
        labels = self._labels(b, y, generator, dev)
        pred = self.net(xt, t * TIME_SCALE, labels)
        mse = losses.mse_per_image(pred, eps - x0)
        return {"loss": mse.mean(), "mse": mse.mean().detach()}
