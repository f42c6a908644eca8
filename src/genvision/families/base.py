"""The contract every model family implements, its configs, and model directories.

A model is an ``nn.Module`` with a dataclass ``config`` and:

- ``loss(x, y=None, phase="main", generator=None) -> dict`` with key ``"loss"`` (what is
  optimised) plus terms worth logging. ``x`` is a float batch in [-1, 1], NCHW; ``y`` int64
  labels or None. ``generator`` is None (global RNG) or a list of per-image generators (use
  ``genvision.seeding.randn``/``rand``): the trainer derives image i's generator from
  (seed, step, phase, global image index), so the training noise does not depend on how a
  batch is split across processes and resume needs no RNG state.
- ``phases``: the optimisation phases (``Phase``) with their parameters and optimiser settings.
  The trainer runs every phase in order each step, each ``repeats`` times on a fresh batch.
- ``sample(n, y=None, seed=None, generator=None, **options) -> Tensor`` in [-1, 1].
- Optional capabilities, present only where the family has them: ``log_likelihood(x)``,
  ``encode(x)``, ``decode(z)``, ``reconstruct(x)``. Ask with :func:`require`.
- Optional trainer hooks: ``ema_parameters()``, ``after_step(phase)``, ``init_from_data(batch)``.

A model directory is ``config.json`` (registry name, family, model config, train config, data
description, genvision version) plus ``model.safetensors``. Loading builds the class named by
the registry entry, so a directory can only build classes genvision ships, and never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .. import io

CAPABILITIES = ("log_likelihood", "encode", "decode", "reconstruct", "complete")


# ----------------------------------------------------------------------------- configs
@dataclass
class ModelConfig:
    """Fields every model has; families subclass it. Validation lives in ``__post_init__``."""

    image_size: int = 8
    channels: int = 1
    num_classes: int = 0  # 0 = unconditional / unlabeled
    levels: int = 256  # grey levels of the data (17 for digits, 2 for binary MNIST)

    def __post_init__(self):
        if not 4 <= self.image_size <= 256:
            raise ValueError(f"image_size must be in 4..256 (got {self.image_size})")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3 (got {self.channels})")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (got {self.num_classes})")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2 (got {self.levels})")
        # families with a class-conditional variant declare a ``conditional`` field
        if getattr(self, "conditional", False) and self.num_classes < 1:
            raise ValueError(
                "conditional=True needs num_classes >= 1 (got 0); set num_classes "
                "(genvision train fills it from the data)"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return build_dataclass(cls, values, what="model config")


@dataclass
class OptimizerSpec:
    """Optimiser settings of one phase; trainer flags (``--lr``) override or scale them."""

    kind: str = "adamw"  # adamw | adam
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.kind not in ("adamw", "adam"):
            raise ValueError(f"optimizer kind must be 'adamw' or 'adam' (got {self.kind!r})")
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
    """Base class of every genvision model. Subclasses set ``family`` and ``config_class``."""

    family: ClassVar[str] = "base"
    config_class: ClassVar[type] = ModelConfig
    #: sampling options this family accepts (beyond n, y, seed, generator)
    sample_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self.config = config
        self.registry_name = type(self).__name__.lower()  # set by genvision.create / load

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

    # -- helpers ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        return torch.device("cpu")

    def check_sample_options(self, options: dict) -> None:
        """Refuse options this family does not use, naming the ones it accepts."""
        unknown = sorted(k for k, v in options.items() if v is not None and k not in self.sample_options)
        if unknown:
            accepted = ", ".join(self.sample_options) or "none"
            raise ValueError(
                f"{self.registry_name} ({self.family}) does not take sampling option(s) "
                f"{', '.join(unknown)}; it accepts: {accepted}"
            )

    def check_labels(self, n: int, y) -> torch.Tensor | None:
        """Validate/expand class labels for sampling: int -> n copies; None for unconditional."""
        k = self.config.num_classes
        if y is None:
            return None
        if not getattr(self.config, "conditional", False):
            raise ValueError(f"{self.registry_name} is unconditional; drop the label(s)")
        y = torch.as_tensor(y, dtype=torch.long)
        if y.dim() == 0:
            y = y.expand(n)
        if y.shape != (n,):
            raise ValueError(f"need {n} labels, got shape {tuple(y.shape)}")
        if (y < 0).any() or (y >= k).any():
            raise ValueError(f"labels must be in 0..{k - 1}")
        return y.to(self.device)

    def describe_start(self, n: int, seed: int | None = None) -> str:
        """One line for ``genvision sample``: what sampling starts from."""
        return f"{n} images from {self.registry_name}"


def has(model, capability: str) -> bool:
    return callable(getattr(model, capability, None))


def require(model, capability: str, families: str = "") -> None:
    """Raise a clear error when ``model`` lacks ``capability``."""
    if not has(model, capability):
        hint = f"; models that have it: {families}" if families else ""
        raise ValueError(f"{model.registry_name} ({model.family}) has no {capability}(){hint}")


def sample_in_batches(
    model: GenerativeModel, n: int, *, seed: int = 0, batch_size: int = 256, labels=None, options=None
) -> torch.Tensor:
    """``n`` samples on the CPU, float (n, C, H, W) in [-1, 1], drawn ``batch_size`` at a time.

    Image k uses its own generator (``seeding.image_seed(seed, k)``), so the set does not depend on
    ``batch_size``. ``labels``: (n,) int64 for a conditional model, or None.
    """
    from ..seeding import image_generators

    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            gens = image_generators(b, seed, model.device, start=start)
            y = labels[start : start + b] if labels is not None else None
            chunks.append(model.sample(b, y=y, generator=gens, **(options or {})).detach().float().cpu())
    return torch.cat(chunks)


# ----------------------------------------------------------------------------- typed configs
def parse_value(tp, raw: str, name: str):
    """Parse the string ``raw`` (from ``--set``) into the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(inner[0], raw, name)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(str, args))} (got {raw!r})")
        return raw
    if origin in (tuple, list):
        parts = [
            p for p in raw.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")
        ]
        inner = args[0] if args else str
        vals = [parse_value(inner, p.strip(), name) for p in parts if p.strip()]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false (got {raw!r})")
    if tp in (int, float, str):
        try:
            return tp(raw)
        except ValueError:
            raise ValueError(f"{name} must be {tp.__name__} (got {raw!r})") from None
    return raw


def field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def build_dataclass(cls, values: dict, what: str = "config"):
    """Build ``cls`` from a dict, refusing unknown keys (naming the known ones); strings are parsed."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ValueError(f"unknown {what} key(s) {', '.join(unknown)}; known: {', '.join(sorted(types_))}")
    parsed = {}
    for k, v in values.items():
        tp = types_[k]
        if isinstance(v, str) and tp is not str:
            v = parse_value(tp, v, k)
        elif isinstance(v, list) and typing.get_origin(tp) is tuple:
            v = tuple(v)
        parsed[k] = v
    return cls(**parsed)


# ----------------------------------------------------------------------------- model directories
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def model_state(model: GenerativeModel, params_override: dict | None = None) -> dict:
    """The model's state dict, with ``params_override`` (name -> tensor, e.g. EMA) substituted."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, value in (params_override or {}).items():
        state[name] = value.detach().clone()
    return state


def write_config(model: GenerativeModel, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` atomically; fields of an existing one not in ``extra`` are kept."""
    from .. import __version__

    path = Path(directory) / CONFIG_FILE
    meta: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    meta.update(
        {
            "registry_name": model.registry_name,
            "family": model.family,
            "model_config": model.config.to_dict(),
            "genvision_version": __version__,
        }
    )
    meta.update(extra or {})
    return io.write_json(path, meta)


def save_model_dir(
    model: GenerativeModel,
    directory: str | Path,
    *,
    state: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model.safetensors`` then ``config.json`` atomically into ``directory``.

    ``state`` replaces the model's own state dict (the trainer passes EMA weights); ``extra``
    (train config, data description) is merged into config.json.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    io.save_safetensors(directory / WEIGHTS_FILE, state if state is not None else model_state(model))
    write_config(model, directory, extra)
    return directory


def read_config(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model directory {directory} does not exist; train one with `genvision train`"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a genvision model directory")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); restore it or retrain") from None


def load_model_dir(directory: str | Path, device: str | torch.device = "cpu") -> GenerativeModel:
    """Build the model named in ``config.json`` and load ``model.safetensors`` (no unpickling)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .. import registry

    directory = Path(directory)
    meta = read_config(directory)
    name = meta.get("registry_name")
    if name is None:
        raise ValueError(f"{directory / CONFIG_FILE} names no registry_name; it was not written by genvision")
    model = registry.create(name, **meta.get("model_config", {}))
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; the run saved no checkpoint yet (resume or retrain)")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{weights} is not a readable safetensors file ({e}); restore it or retrain"
        ) from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not match {name}'s config (missing {len(missing)} keys, "
            f"unexpected {len(unexpected)}; e.g. {(missing or unexpected)[:3]})"
        )
    return model.to(device).eval()
