"""Consistency distillation (Song et al., 2023): a student that maps any noisy image to the clean end.

The student has its teacher's class, network and settings (``ddpm``, ``flow-matching`` or
``edm``, with or without labels) and starts from its weights; its consistency function is

    f(x, sigma) = c_skip(sigma) x_ve + (1 - c_skip(sigma)) D(x, sigma)

with ``x_ve = x_0 + sigma eps`` the variance-exploding form of ``x``, ``D`` the network read as a
clean-image prediction (the teacher's parameterisation) and
``c_skip = sigma_data^2 / ((sigma - sigma_min)^2 + sigma_data^2)``: at the lowest trained level
``f(x, sigma_min) = x`` exactly (the boundary condition), and from there ``f`` hands over to the
network. Training (:meth:`ConsistencyMixin.loss`) takes a noisy image at a level of a
``intervals``-step EDM grid, moves it one step down that grid with the teacher's Heun step, and
asks ``f`` to agree on both ends; the target side is not differentiated (stop-gradient, as in
Song & Dhariwal, 2024) and the distance is the pseudo-Huber one of that paper.

Sampling (``samplers.consistency``): one call maps the start noise straight to an image; with more
``steps`` the image is re-noised to lower levels of the same grid and mapped again.

A latent teacher (``ldm``, ``ldm-cond``, ``ldm-ddpm``, ``ldm-edm``) gets a latent student
(``ldm-consistency``, ``ldm-ddpm-consistency``, ``ldm-edm-consistency``): the same function on the
teacher's scaled latents, decoded by the teacher's own autoencoder (a second parent, the one
sampling needs), at the teacher's latent scale, with ``sigma_data`` 1 in ``c_skip`` (the latents
have unit variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel
from . import samplers
from .continuous import EDM, EDMConfig, FlowMatching, FlowMatchingConfig
from .denoiser import Denoiser
from .latent import (
    LatentDiffusion,
    LatentDiffusionConfig,
    LatentEDM,
    LatentEDMConfig,
    LatentFlowConfig,
    LatentFlowMatching,
    LatentMixin,
    weights_key,
)
from .model import Diffusion, DiffusionConfig

#: trainer settings consistency distillation trains with (docs/notes/diffusion.md): the EMA
#: half-life is training.ema.WARMUP_ONLY (beyond any run), so the EMA's warm-up bound alone sets
#: the decay and the average spans the last tenth of the run ("the consistency student's EMA")
CONSISTENCY_TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 1e12, "warmup": 0}
SIGMA_DATA = 0.5
#: the top of a new student's grid: above it the noisy input is noise to within 1/GRID_TOP of the
#: data's scale, and a flow teacher's top (999) would spend a third of the grid there
#: (docs/notes/diffusion.md, "the consistency student's grid")
GRID_TOP = 80.0
#: a new student's learning rate (its teacher's is usually 1e-3; docs/notes/diffusion.md)
STUDENT_LR = 2e-4


@dataclass
class ConsistencyFields:
    """What a consistency student adds to its teacher's config (the first base of each student
    config: its field defaults and ``__post_init__`` come before the teacher config's)."""

    intervals: int = 18  # steps of the EDM grid the student is trained across
    grid_top: float = 0.0  # the grid's highest level; 0 = the teacher's (new students: GRID_TOP)
    huber_c: float = 0.0  # pseudo-Huber constant; 0 = 0.00054 * sqrt(pixels) (Song & Dhariwal, 2024)
    sampler: str = "consistency"
    steps: int = 1
    clip_x0: bool = False
    caps: ClassVar[dict[str, int]] = {"intervals": 10_000}

    def __post_init__(self):
        super().__post_init__()  # the teacher config's checks
        if self.intervals < 2:
            raise ValueError(f"intervals must be >= 2 (got {self.intervals}); 18 is usual")
        if self.grid_top < 0:
            raise ValueError(f"grid_top must be >= 0 (got {self.grid_top}); 0 uses the teacher's top level")
        if self.huber_c < 0:
            raise ValueError(f"huber_c must be >= 0 (got {self.huber_c}); 0 picks it from the image size")
        if self.sampler != "consistency":
            raise ValueError(f"a consistency model samples with sampler=consistency (got {self.sampler!r})")
        if not 1 <= self.steps <= self.intervals:
            raise ValueError(f"steps must be in 1..intervals={self.intervals} (got {self.steps})")


@dataclass
class DiffusionConsistencyConfig(ConsistencyFields, DiffusionConfig):
    pass


@dataclass
class FlowConsistencyConfig(ConsistencyFields, FlowMatchingConfig):
    pass


@dataclass
class EDMConsistencyConfig(ConsistencyFields, EDMConfig):
    pass


@dataclass
class LatentFlowConsistencyConfig(ConsistencyFields, LatentFlowConfig):
    pass


@dataclass
class LatentDiffusionConsistencyConfig(ConsistencyFields, LatentDiffusionConfig):
    pass


@dataclass
class LatentEDMConsistencyConfig(ConsistencyFields, LatentEDMConfig):
    pass


def student_config(teacher: Denoiser, intervals: int = 18, grid_top: float = GRID_TOP) -> dict:
    """The config fields of a consistency student of ``teacher`` (one-step sampling by default)."""
    config = teacher.config.to_dict()
    config.update(
        sampler="consistency",
        steps=1,
        eta=0.0,
        clip_x0=False,
        intervals=intervals,
        grid_top=grid_top,
        lr=STUDENT_LR,
    )
    return config


class ConsistencyMixin:
    """The consistency function, its training loss and its sampling, over a teacher's class."""

    parents = {"teacher": "train"}
    capability_notes = {"log_likelihood": "a consistency model has no likelihood bound; measure its teacher"}
    start_note: ClassVar[str] = "mapped to an image by the consistency function"
    teacher_class: ClassVar[type] = Denoiser
    #: the data's standard deviation in ``c_skip``: 0.5 for images in [-1, 1]
    skip_sigma_data: ClassVar[float] = SIGMA_DATA

    def __init__(self, config, **parents: GenerativeModel):
        super().__init__(config, **parents)
        if self.has_parent("teacher"):
            self._check_teacher(self.parent("teacher"))
        lo = self.sigma_range()[0]
        if self.config.grid_top and self.config.grid_top <= lo:
            raise ValueError(
                f"grid_top must be above the lowest level {lo:g} (got {self.config.grid_top}); 80 is usual"
            )

    def _check_teacher(self, teacher: GenerativeModel) -> None:
        """One-line errors for a teacher this student cannot learn from."""
        if type(teacher) is not self.teacher_class:
            raise ValueError(
                f"the teacher is a {teacher.registry_name}; this student distils a "
                f"{self.teacher_class.__name__} model (genvision distill TEACHER --method consistency picks it)"
            )
        mine, theirs = self.net.state_dict(), teacher.net.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise ValueError(
                "the teacher has another network than this model; "
                "`genvision distill TEACHER_DIR --method consistency` copies the teacher's settings"
            )

    def train_defaults(self) -> dict:
        return dict(CONSISTENCY_TRAIN_DEFAULTS)

    def init_from_data(self, batch: torch.Tensor) -> None:
        """The student starts from its teacher's weights (the EMA ones it samples with)."""
        self.net.load_state_dict(self.parent("teacher").net.state_dict())

    def samplers(self) -> list[str]:
        return ["consistency"]

    # -- the consistency function -----------------------------------------------------
    def grid(self) -> torch.Tensor:
        """(intervals + 1,) float64 EDM grid (rho = 7) from ``grid_top`` (or the teacher's top level,
        whichever is lower) down to the teacher's lowest level, then 0."""
        lo, hi = self.sigma_range()
        if self.config.grid_top:
            hi = min(hi, self.config.grid_top)
        return samplers.karras_levels(lo, hi, self.config.intervals)

    def c_skip(self, sigma: torch.Tensor) -> torch.Tensor:
        lo = self.sigma_range()[0]
        sd2 = self.skip_sigma_data**2
        return sd2 / ((sigma - lo) ** 2 + sd2)

    def denoise_x0(self, x: torch.Tensor, sigma, y: torch.Tensor | None = None) -> torch.Tensor:
        """``f(x, sigma)`` of the VP-scaled ``x``: the clean image in one call."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0])
        shape = (-1,) + (1,) * (x.dim() - 1)
        skip = self.c_skip(sigma).to(x.dtype).view(shape)
        x_ve = x * (1 + sigma**2).sqrt().to(x.dtype).view(shape)
        return skip * x_ve + (1 - skip) * super().denoise_x0(x, sigma, y)

    def sampling_levels(self, sampler: str, steps: int) -> torch.Tensor:
        """``steps`` levels of the training grid, evenly spaced in its index from the top (the last
        of ``steps + 1`` such points, the lowest level, left out: re-noising to it changes nothing),
        then 0."""
        grid = self.grid()
        idx = torch.linspace(0, self.config.intervals, steps + 1)[:-1].round().long()
        return torch.cat([grid[idx], grid.new_zeros(1)])

    def check_steps(self, sampler: str, steps: int | None) -> None:
        if steps is not None and not 1 <= steps <= self.config.intervals:
            raise ValueError(f"steps must be in 1..{self.config.intervals} (the training grid's steps)")

    # -- training -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Pseudo-Huber distance between ``f`` at a grid level and the stop-gradient ``f`` one teacher step lower.

        Each image draws its grid step, its noise and its label dropout from its own generator.
        """
        c = self.config
        teacher = self.parent("teacher")
        b, dev = x.shape[0], x.device
        grid = self.grid().to(dev)
        u = seeding.rand((b,), generator, dev)
        i = (u * (c.intervals - 1)).long().clamp(max=c.intervals - 2)  # steps between two positive levels
        hi, lo = grid[i], grid[i + 1]  # (B,) float64, hi > lo > 0
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        labels = self._labels(b, y, generator, dev)
        shape = (b, 1, 1, 1)
        x_hi = (x + hi.to(x.dtype).view(shape) * eps) / (1 + hi**2).sqrt().to(x.dtype).view(
            shape
        )  # VP-scaled
        with torch.no_grad():
            x_lo = heun_step(teacher.denoiser(labels, 1.0), x_hi, hi, lo)
            target = self.denoise_x0(x_lo, lo, labels)
        pred = self.denoise_x0(x_hi, hi, labels)
        dim = x[0].numel()
        huber_c = c.huber_c or 0.00054 * math.sqrt(dim)
        dist = ((pred - target).pow(2).flatten(1).sum(1) + huber_c**2).sqrt() - huber_c  # (B,)
        # the pseudo-Huber distance per pixel, weighted by 1 / (hi - lo) as in Song & Dhariwal (2024)
        weight = (1 / (hi - lo)).to(x.dtype)
        loss = (weight * dist).mean() / math.sqrt(dim)
        return {"loss": loss, "distance": (dist / math.sqrt(dim)).mean().detach()}


def heun_step(denoise, x: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """One Heun step of the probability-flow ODE in ``sigma`` from per-image ``hi`` to ``lo`` (> 0).

    ``x`` is VP-scaled (``samplers``' notation) in and out; ``hi``, ``lo`` are (B,) float64.
    """
    shape = (-1,) + (1,) * (x.dim() - 1)
    s_hi = (1 + hi**2).sqrt().to(x.dtype).view(shape)
    s_lo = (1 + lo**2).sqrt().to(x.dtype).view(shape)
    h, l_ = hi.to(x.dtype).view(shape), lo.to(x.dtype).view(shape)
    x_ve = x * s_hi
    d = (x_ve - denoise(x, hi)) / h
    x_next = x_ve + (l_ - h) * d
    d_next = (x_next - denoise(x_next / s_lo, lo)) / l_
    return (x_ve + (l_ - h) * 0.5 * (d + d_next)) / s_lo


class DiffusionConsistency(ConsistencyMixin, Diffusion):
    """A consistency student of a ``ddpm`` / ``ddpm-cond`` teacher."""

    config_class = DiffusionConsistencyConfig
    teacher_class = Diffusion


class FlowConsistency(ConsistencyMixin, FlowMatching):
    """A consistency student of a ``flow-matching`` / ``flow-matching-cond`` teacher."""

    config_class = FlowConsistencyConfig
    teacher_class = FlowMatching


class EDMConsistency(ConsistencyMixin, EDM):
    """A consistency student of an ``edm`` teacher."""

    config_class = EDMConsistencyConfig
    teacher_class = EDM


class LatentConsistencyMixin(ConsistencyMixin):
    """A consistency student of a latent teacher: on its latents, decoded by its autoencoder."""

    parents = {"teacher": "train", "autoencoder": "sample"}
    start_note: ClassVar[str] = "mapped to a clean latent by the consistency function, then decoded"
    skip_sigma_data: ClassVar[float] = 1.0  # the latents are scaled to unit variance

    def _check_teacher(self, teacher: GenerativeModel) -> None:
        super()._check_teacher(teacher)
        mine, theirs = (
            m.parent("autoencoder") if m.has_parent("autoencoder") else None for m in (self, teacher)
        )
        if mine is not None and theirs is not None and weights_key(mine) != weights_key(theirs):
            raise ValueError(
                "the autoencoder is not the teacher's; the student decodes with the one its teacher "
                "was trained on (`genvision distill TEACHER_DIR --method consistency` passes it)"
            )

    def scale_of(self, latents: torch.Tensor) -> float:
        """The teacher's latent scale: the one its network (this student's start) was trained at."""
        return float(self.parent("teacher").latent_scale)


class LatentFlowConsistency(LatentConsistencyMixin, LatentMixin, FlowMatching):
    """A consistency student of an ``ldm`` / ``ldm-cond`` teacher."""

    config_class = LatentFlowConsistencyConfig
    teacher_class = LatentFlowMatching


class LatentDiffusionConsistency(LatentConsistencyMixin, LatentMixin, Diffusion):
    """A consistency student of an ``ldm-ddpm`` teacher."""

    config_class = LatentDiffusionConsistencyConfig
    teacher_class = LatentDiffusion


class LatentEDMConsistency(LatentConsistencyMixin, LatentMixin, EDM):
    """A consistency student of an ``ldm-edm`` teacher."""

    config_class = LatentEDMConsistencyConfig
    teacher_class = LatentEDM


#: teacher class -> the registry name of its consistency student
STUDENTS = {
    Diffusion: "ddpm-consistency",
    FlowMatching: "flow-matching-consistency",
    EDM: "edm-consistency",
    LatentFlowMatching: "ldm-consistency",
    LatentDiffusion: "ldm-ddpm-consistency",
    LatentEDM: "ldm-edm-consistency",
}
