"""The contract every model family implements, and its configs.

A model is an ``nn.Module`` with a dataclass ``config`` and:

- ``loss(x, y=None, phase="main", generator=None) -> dict`` with key ``"loss"`` (what is
  optimised) plus terms worth logging. ``x`` is a float batch in [-1, 1], NCHW; ``y`` int64
  labels or None. ``generator`` is None (global RNG) or a list of per-image generators (use
  ``genvision.seeding.randn``/``rand``): the trainer derives image i's generator from
  (seed, step, phase, global image index), so the training noise does not depend on how a
  batch is split across processes and resume needs no RNG state.
- ``phases``: the optimisation phases (``Phase``) with their parameters and optimiser settings.
  The trainer runs every phase in order each step, each ``repeats`` times on a fresh batch.
- ``sample(n, y=None, seed=None, generator=None, **options) -> Tensor`` in [-1, 1]; a text model
  (``takes_prompts``) also takes ``prompts=[...]`` (one string per image) in place of ``y``, a
  structure-conditioned one (``takes_control``) ``control=`` maps (one per image, or one for all).
- Optional capabilities, present only where the family has them: ``log_likelihood(x)``,
  ``encode(x)``, ``decode(z)``, ``reconstruct(x)``. Ask with :func:`require`.
- Optional trainer hooks: ``ema_parameters()``, ``after_step(phase)``, ``init_from_data(batch)``,
  ``training_data(dataset, out)`` (what the trainer draws batches from: a latent model's encoded
  training set).
- ``parents``: the models this one is built on (a prior's VQ-VAE, a student's teacher), passed to
  ``__init__`` by whoever builds it; a family never loads a directory itself.

Saving and loading model directories lives in :mod:`genvision.model_dir`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from .. import seeding
from .typed_configs import (  # noqa: F401 (re-exported: the configs' helpers)
    build_dataclass,
    check_cap,
    check_fields,
    check_known,
    check_value,
    class_caps,
    describe_type,
    field_types,
    parse_field,
    parse_value,
)


# ----------------------------------------------------------------------------- configs
@dataclass
class ModelConfig:
    """Fields every model has; families subclass it. Validation lives in ``__post_init__``."""

    image_size: int = 8
    channels: int = 1
    num_classes: int = 0  # 0 = unconditional / unlabeled
    levels: int = 256  # grey levels of the data (17 for digits, 2 for binary MNIST)
    conditional: bool = False  # class-conditional; only where the config sets supports_conditional
    #: whether the family has a class-conditional variant
    supports_conditional: ClassVar[bool] = False
    #: hard upper bounds of the size fields (each subclass adds its own; see :meth:`all_caps`):
    #: generous for real use, they keep a hostile or mistyped config.json or --set from
    #: exhausting memory before anything is built
    caps: ClassVar[dict[str, int]] = {"image_size": 256, "num_classes": 10_000, "levels": 65_536}

    def __post_init__(self):
        check_fields(self)
        if not 4 <= self.image_size <= 256:
            raise ValueError(f"image_size must be in 4..256 (got {self.image_size})")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3 (got {self.channels})")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (got {self.num_classes})")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2 (got {self.levels})")
        if self.conditional and not self.supports_conditional:
            raise ValueError(f"{type(self).__name__} has no class-conditional variant; drop conditional=True")
        if self.conditional and self.num_classes < 1:
            raise ValueError(
                "conditional=True needs num_classes >= 1 (got 0); set num_classes "
                "(genvision train fills it from the data)"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def all_caps(cls) -> dict[str, int]:
        """Field -> cap of this config and its bases (``caps`` merged along the class hierarchy)."""
        return class_caps(cls)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return build_dataclass(cls, values, what="model config")


OPTIMIZERS = ("adamw", "adam", "rmsprop")


@dataclass
class OptimizerSpec:
    """Optimiser settings of one phase; trainer flags (``--lr``) override or scale them."""

    kind: str = "adamw"  # adamw | adam | rmsprop (betas[1] is RMSprop's smoothing alpha)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self):
        check_fields(self)
        if self.kind not in OPTIMIZERS:
            raise ValueError(f"optimizer kind must be one of {', '.join(OPTIMIZERS)} (got {self.kind!r})")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be > 0 (got {self.lr})")


@dataclass
class Phase:
    """One optimisation phase: ``repeats`` updates of ``params`` on ``loss(x, y, phase=name)``."""

    name: str
    params: list
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    repeats: int = 1


# ----------------------------------------------------------------------------- contract
class GenerativeModel(nn.Module):
    """Base class of every genvision model. Subclasses set ``family`` and ``config_class``.

    Everything a caller may ask of a model is declared here with a default, so no caller needs
    ``getattr``: ``config.conditional``, ``parents``, ``latent_shape``, ``noise_shape``,
    ``likelihood_note`` and ``capability_notes``.
    """

    family: ClassVar[str] = "base"
    config_class: ClassVar[type] = ModelConfig
    #: sampling options this family accepts (beyond n, y, seed, generator)
    sample_options: ClassVar[tuple[str, ...]] = ()
    #: models this one is built on, by role: "sample" (needed to sample, e.g. a prior's VQ-VAE) or
    #: "train" (needed only to train or resume, e.g. a distilled student's teacher). The run layer
    #: loads them from the directories named in config.json and passes them to ``__init__``.
    parents: ClassVar[dict[str, str]] = {}
    #: how ``log_likelihood`` treats the discrete levels (copied onto bpd/nll metric cards)
    likelihood_note: ClassVar[str] = ""
    #: capability -> why this model lacks it although its class has the method
    capability_notes: ClassVar[dict[str, str]] = {}
    #: whether a class-conditional model trains on images labelled -1 (unlabeled) too; where not,
    #: the run layer refuses data holding any
    trains_on_unlabeled: ClassVar[bool] = False
    #: shape of one image's latent z where the model has a Gaussian prior over one (VAE, GAN, flow)
    latent_shape: ClassVar[tuple[int, ...] | None] = None
    #: whether ``sample`` draws from a learned model of the data; False for a model that only
    #: encodes and decodes (an autoencoder), which ``genvision compare`` leaves out
    samples_the_data: ClassVar[bool] = True
    #: whether training validates on a held-out slice by default (likelihood models, whose
    #: training loss is the negative log-likelihood or its bound; ``training/validation.py``)
    validates: ClassVar[bool] = False
    #: whether ``sample`` takes ``prompts`` (text-conditioned models)
    takes_prompts: ClassVar[bool] = False
    #: whether ``sample`` takes ``control`` structure maps (a control branch; ``config.control``
    #: names the kind)
    takes_control: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, **parents: GenerativeModel):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        unknown = sorted(set(parents) - set(self.parents))
        if unknown:
            known = ", ".join(self.parents) or "none"
            raise ValueError(
                f"{type(self).__name__} takes no parent {', '.join(unknown)}; its parents: {known}"
            )
        self.config = config
        self.registry_name = type(self).__name__.lower()  # set by genvision.create / load
        self.origin: Path | None = None  # the model directory it was loaded from (set by load)
        # a plain dict: parents are not submodules, so they are neither saved nor trained here
        self._parents: dict[str, GenerativeModel] = {}
        for role, model in parents.items():
            if model is not None:
                self._parents[role] = model.eval().requires_grad_(False)

    def parent(self, role: str) -> GenerativeModel:
        """The frozen parent model ``role`` on this model's device (one-line error when absent)."""
        if role not in self._parents:
            raise ValueError(
                f"{self.registry_name} needs its {role} model for this; load it with genvision.load(DIR) "
                "(which loads the parents config.json names) or pass it to genvision.create"
            )
        parent = self._parents[role]
        # a model built on the meta device is a size estimate (registry.create): leave the parent be
        return parent if self.device.type == "meta" else parent.to(self.device)

    def has_parent(self, role: str) -> bool:
        return role in self._parents

    def parent_origins(self) -> dict[str, Path | None]:
        """role -> the model directory each parent was loaded from (None: never saved)."""
        return {role: m.origin for role, m in self._parents.items()}

    # -- required -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        raise NotImplementedError

    def train_defaults(self) -> dict:
        """Trainer settings this model trains best with (batch_size, ema_half_life, warmup...).

        Trainer flags given by the user override them; ``TrainConfig`` defaults fill the rest.
        """
        return {}

    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        raise NotImplementedError

    @property
    def phases(self) -> list[Phase]:
        """Default: one phase over every parameter with the config's learning rate if it has one."""
        spec = OptimizerSpec(lr=getattr(self.config, "lr", OptimizerSpec.lr))
        return [Phase("main", [p for p in self.parameters() if p.requires_grad], spec)]

    # -- optional trainer hooks ------------------------------------------------------
    def ema_parameters(self) -> list[nn.Parameter]:
        """Parameters whose exponential moving average is kept and sampled with."""
        return list(self.parameters())

    def after_step(self, phase: str) -> None:
        """Non-gradient updates after a phase's optimiser step (e.g. VQ codebook EMA)."""

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Data-dependent initialisation, run once before step 1 (e.g. actnorm)."""

    def training_data(self, dataset, out: Path | None = None, *, validation: bool = False):
        """What the trainer draws batches from: ``dataset`` itself, unless the model trains on a
        transform of it (a latent model: the encoded images, cached in the run directory ``out``).
        ``validation``: the held-out slice (transformed alike, measuring nothing on it)."""
        return dataset

    # -- helpers ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        return torch.device("cpu")

    def eval_mode(self):
        """Context: the model in eval mode inside, its previous mode restored after."""
        return eval_mode(self)

    def check_sample_options(self, options: dict, **named) -> None:
        """Refuse options this family does not use, naming the ones it accepts, and non-finite numbers.

        ``options``: the ``**options`` ``sample`` did not name; ``named``: the options it names
        in its signature (``temperature=temperature``), checked for finite values too.
        """
        check_finite_options({**options, **named})
        unknown = sorted(k for k, v in options.items() if v is not None and k not in self.sample_options)
        if unknown:
            accepted = ", ".join(self.sample_options) or "none"
            raise ValueError(
                f"{self.registry_name} ({self.family}) does not take sampling option(s) "
                f"{', '.join(unknown)}; it accepts: {accepted}"
            )

    def check_prompts(self, n: int, prompts) -> list[str]:
        """Validate/expand prompts for sampling (text models override; others take none)."""
        raise ValueError(f"{self.registry_name} takes no prompts; text models do (ddpm-text, ldm-text)")

    def check_labels(self, n: int, y) -> torch.Tensor | None:
        """Validate/expand class labels for sampling: int -> n copies; None for unconditional."""
        k = self.config.num_classes
        if y is None:
            return None
        if not self.config.conditional:
            raise ValueError(f"{self.registry_name} is unconditional; drop the label(s)")
        y = torch.as_tensor(y, dtype=torch.long)
        if y.dim() == 0:
            y = y.expand(n)
        if y.shape != (n,):
            raise ValueError(f"need {n} labels, got shape {tuple(y.shape)}")
        if (y < 0).any() or (y >= k).any():
            raise ValueError(f"labels must be in 0..{k - 1}")
        return y.to(self.device)

    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        """Shape of one image's Gaussian start noise for ``sample`` (None: it starts from no noise)."""
        return self.latent_shape

    #: how :meth:`describe_start` names the start noise, and what ``sample`` does with it
    noise_name: ClassVar[str] = "Gaussian noise"
    start_note: ClassVar[str] = ""

    @property
    def noise_scaling(self) -> str:
        """How the start noise is scaled before use, for :meth:`describe_start` ("" = not scaled)."""
        return ""

    def describe_start(self, n: int, seed: int | None = 0) -> str:
        """One line for ``genvision sample``: the start noise's shape and image 0's first values."""
        shape = self.noise_shape
        if shape is None:
            return f"{n} images from {self.registry_name}"
        text = f"{self.noise_name} ({n}, {', '.join(map(str, shape))}){self.noise_scaling}"
        if seed is None:
            return f"{text} from the given generator"
        first = seeding.randn((1, *shape), seeding.image_generators(1, seed, self.device), self.device)
        values = ", ".join(f"{v:.4f}" for v in first.flatten()[:4].tolist())
        line = f"{text}, first values [{values}, ...]"
        return f"{line}, {self.start_note}" if self.start_note else line


@contextmanager
def eval_mode(module: nn.Module):
    """Put ``module`` in eval mode for the ``with`` block; restore its previous mode after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def has(model, capability: str) -> bool:
    """Whether ``model`` offers ``capability`` (a method it has and no capability note withdraws)."""
    notes = model.capability_notes if isinstance(model, GenerativeModel) else {}
    return callable(getattr(model, capability, None)) and capability not in notes


def require(model, capability: str, families: str = "") -> None:
    """Raise a clear error when ``model`` lacks ``capability``."""
    if not has(model, capability):
        if isinstance(model, GenerativeModel) and capability in model.capability_notes:
            raise ValueError(
                f"{model.registry_name} has no {capability}(): {model.capability_notes[capability]}"
            )
        hint = f"; models that have it: {families}" if families else ""
        raise ValueError(f"{model.registry_name} ({model.family}) has no {capability}(){hint}")


def sample_in_batches(
    model: GenerativeModel,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
    labels=None,
    options=None,
    prompts: list[str] | None = None,
    controls: torch.Tensor | None = None,
    ramp: bool = False,
    on_batch=None,
) -> torch.Tensor:
    """``n`` samples on the CPU, float (n, C, H, W) in [-1, 1], drawn ``batch_size`` at a time.

    Image k uses its own generator (``seeding.image_seed(seed, k)``), so the set does not depend on
    ``batch_size``. ``labels``: (n,) int64 for a conditional model, or None; ``prompts``: n strings
    for a text model, or None. ``ramp``: batches of 1, 2, 4, ... up to ``batch_size`` (the first
    image is ready soonest); ``on_batch(start, images)`` is called as each batch finishes.
    """
    chunks = []
    with torch.no_grad():
        for start, b in batch_ranges(n, batch_size, ramp):
            gens = seeding.image_generators(b, seed, model.device, start=start)
            y = labels[start : start + b] if labels is not None else None
            extra = {"prompts": list(prompts[start : start + b])} if prompts is not None else {}
            if controls is not None:  # a controlnet's structure maps, image k's with image k
                extra["control"] = controls[start : start + b]
            chunks.append(
                model.sample(b, y=y, generator=gens, **extra, **(options or {})).detach().float().cpu()
            )
            if on_batch is not None:
                on_batch(start, chunks[-1])
    return torch.cat(chunks)


def batch_ranges(n: int, batch_size: int, ramp: bool = False) -> list[tuple[int, int]]:
    """(start, size) of each batch of ``n`` images: ``batch_size`` each, or 1, 2, 4, ... when ``ramp``."""
    out, start, size = [], 0, 1 if ramp else batch_size
    while start < n:
        b = min(size, batch_size, n - start)
        out.append((start, b))
        start, size = start + b, size * 2
    return out


def check_finite_options(options: dict) -> None:
    """Refuse a sampling option that is a non-finite number (NaN passes every ``x < 0`` check)."""
    for name, value in options.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise ValueError(f"sampling option {name} must be a finite number (got {value})")
