"""Trainer settings: ``TrainConfig`` and how given, stored (resume) and model defaults combine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..families.base import build_dataclass, check_fields


@dataclass
class TrainConfig:
    """Trainer settings. Exactly one of ``steps`` / ``images`` / ``minutes`` sets the length."""

    steps: int | None = None
    images: int | None = None
    minutes: float | None = None
    batch_size: int = 64
    lr: float | None = None  # one phase: its lr; several: scales them all (first phase's becomes lr)
    seed: int = 0
    ema_half_life: float = 0.0  # in images; 0 = no EMA
    warmup: int = 0  # linear learning-rate warm-up, in steps
    grad_clip: float = 1.0  # max global grad norm per phase; 0 = off
    save_every: int = 500  # steps between checkpoints (also at the end and on Ctrl-C / SIGTERM)
    sample_every: int = 500  # steps between sample grids; 0 = only at the end
    log_every: int = 10
    num_samples: int = 64  # images in each sample grid
    monitor_every: int = 0  # steps between mode-collapse checks (training/monitor.py); 0 = off
    monitor_samples: int = 500  # generated images per check
    collapse_threshold: float = 0.8  # warn when their class entropy < this x log(num_classes)
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    device: str = "auto"  # auto | cpu | cuda
    strict: bool = False  # corrupt data files are an error instead of skipped
    progress: bool = True
    tensorboard: bool = False  # also log to DIR/tensorboard (needs the tensorboard package)
    # validation (validation.py): steps between checks, 0 = off (default 100 for likelihood
    # models, set by validation.train_defaults); keep: model.safetensors = best | last weights
    validate_every: int = 0
    keep: str = "best"
    # fraction of training pixels replaced by uniform random levels at every batch (the background
    # model of the anomaly score's likelihood ratio, `genvision score --method ratio`); 0 = off
    pixel_noise: float = 0.0
    #: hard upper bounds (a batch or a grid past them exhausts memory; see families.base.check_fields)
    caps: ClassVar[dict[str, int]] = {"batch_size": 65_536, "num_samples": 4096, "monitor_samples": 100_000}

    def __post_init__(self):
        check_fields(self)  # types, finite numbers, caps
        lengths = [k for k in ("steps", "images", "minutes") if getattr(self, k) is not None]
        if len(lengths) > 1:
            raise ValueError(f"give one of --steps, --images, --minutes (got {', '.join(lengths)})")
        for k in ("steps", "images"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise ValueError(f"--{k} must be >= 1 (got {v})")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"--minutes must be > 0 (got {self.minutes})")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1 (got {self.batch_size})")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive number (got {self.lr})")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0 (got {self.seed})")
        if self.ema_half_life < 0:
            raise ValueError(
                f"--ema-half-life must be >= 0 images (got {self.ema_half_life}); 0 disables EMA"
            )
        for k in ("warmup", "save_every", "sample_every", "monitor_every"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0 (got {getattr(self, k)})")
        if self.log_every < 1 or self.num_samples < 1 or self.monitor_samples < 1:
            raise ValueError("log_every, num_samples and monitor_samples must be >= 1")
        if not 0 < self.collapse_threshold <= 1:
            raise ValueError(
                f"collapse_threshold must be in (0, 1] (got {self.collapse_threshold}); it is a fraction of log K"
            )
        if not 0 <= self.pixel_noise < 1:
            raise ValueError(
                f"train.pixel_noise must be in [0, 1) (got {self.pixel_noise}); it is a fraction of pixels"
            )
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (got {self.grad_clip}); 0 disables clipping")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16 (got {self.precision!r})")
        if self.validate_every < 0 or self.keep not in ("best", "last"):
            raise ValueError(
                f"validate_every must be >= 0 (0 = off) and --keep best or last "
                f"(got {self.validate_every}, {self.keep!r})"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda (got {self.device!r})")


LENGTH_KEYS = ("steps", "images", "minutes")
#: settings that may differ on --resume without breaking the run's meaning
RESUME_FREE_KEYS = LENGTH_KEYS + (
    "progress",
    "device",
    "save_every",
    "sample_every",
    "log_every",
    "strict",
    "monitor_every",
    "monitor_samples",
    "collapse_threshold",
    "tensorboard",
    "keep",
)


def resolve_train_config(given: dict, model_defaults: dict, stored: dict | None = None) -> TrainConfig:
    """Defaults < the model's ``train_defaults()`` < stored (resume) < user-given values."""
    values = dict(model_defaults)
    if stored is not None:
        for k, v in given.items():
            if k not in RESUME_FREE_KEYS and k in stored and stored[k] != v:
                raise ValueError(
                    f"--resume: {k}={v!r} conflicts with the run's {k}={stored[k]!r}; drop the option"
                )
        values.update(stored)
        if any(k in given for k in LENGTH_KEYS):
            for k in LENGTH_KEYS:
                values[k] = None
    values.update(given)
    if all(values.get(k) is None for k in LENGTH_KEYS):
        values["steps"] = 1000
    return build_dataclass(TrainConfig, values, what="train config")
