"""Validation while training: a held-out slice's loss, the best weights, an overfitting warning.

Likelihood models (``GenerativeModel.validates``: the autoregressive family, flows, VAEs) train on
the negative log-likelihood or its bound, which keeps falling on the training images while the
model overfits them. With ``validate_every`` > 0 (their default :data:`EVERY`; 0 elsewhere) the run
trains on the train split minus its validation slice (``data.load(spec, "val")``, a stable hash
band, ``data/datasets.py``) and every ``validate_every`` steps (and at the last step) this hook:

- scores the validation slice (at most :data:`MAX_IMAGES`) with the training loss, using the
  weights that are sampled (EMA where on), in eval mode, under ``torch.no_grad``; image k's
  randomness comes from its own generator, the same at every check, and the global RNG is put
  back, so the curve is deterministic and resume stays exact;
- logs ``val_loss`` (a record of its own in ``metrics.jsonl``, the progress bar, TensorBoard);
- keeps a CPU copy of the weights with the lowest validation loss: with ``keep="best"`` they are
  what ``model.safetensors`` holds (``Checkpoints.save`` writes :meth:`Validation.kept`) and
  what the final grid is drawn with, while ``training_state/`` holds the last weights for exact
  resume, plus the best weights and this hook's counters; ``config.json`` records the best
  value and step (:meth:`Validation.record`);
- warns once (a printed line and a ``warning`` field) when the validation loss has stayed above
  its best for :data:`PATIENCE` checks in a row while the training loss (mean since the previous
  check) is below its value at the best check: the model is fitting its training images only.

With fewer than :data:`MIN_IMAGES` validation images (a tiny data set: the slice is about 11% of
train) validation is switched off with a printed note, and training uses the whole train split;
asked for explicitly (``--set train.validate_every=N``), that is an error instead.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext

import torch

from .. import data as gdata
from ..model_dir import model_state
from .order import mix

#: steps between validation checks for models with ``validates`` (each costs about one step)
EVERY = 100
#: validation images scored per check (the first of the slice): bounds the cost on large data
MAX_IMAGES = 512
#: fewer validation images than this: validation off (its loss would be too noisy to choose by)
MIN_IMAGES = 16
#: checks in a row above the best validation loss before the overfitting warning
PATIENCE = 3


def train_defaults(model) -> dict:
    """Trainer defaults of the validation settings for ``model`` (below the family's own)."""
    return {"validate_every": EVERY} if model.validates else {}


def split_data(train, cfg, *, given: dict, image_size: int | None):
    """(training set, validation set or None, cfg) for a run on ``train`` (the whole train split).

    With ``cfg.validate_every`` > 0: train minus the validation slice, and the slice. Too small a
    slice turns validation off (a note; an error when the user ``given`` validate_every), and cfg
    says so. ``--keep best`` given without validation is an error.
    """
    explicit = "validate_every" in given
    if not cfg.validate_every:
        if given.get("keep") == "best":
            raise ValueError(
                "--keep best needs validation, which is off for this run; "
                "add --set train.validate_every=N (steps) or drop --keep"
            )
        return train, None, cfg
    load = dict(strict=cfg.strict, image_size=image_size)
    try:
        val = gdata.load(train.spec, "val", **load)
    except ValueError as e:
        if "no images" not in str(e):
            raise
        val = None
    n = 0 if val is None else len(val)
    if n < MIN_IMAGES:
        why = (
            f"{train.spec} has {n} validation image(s) (the validation slice is about 11% of the "
            f"{len(train)} train images; at least {MIN_IMAGES} are needed)"
        )
        if explicit:
            raise ValueError(f"validation: {why}; add images or drop --set train.validate_every")
        print(f"validation off: {why}; training on all of train and keeping the last weights")
        return train, None, dataclasses.replace(cfg, validate_every=0)
    return gdata.load(train.spec, "train", validation=True, **load), val, cfg


def validation_generators(seed: int, start: int, count: int, device) -> list[torch.Generator]:
    """Generators of validation images ``start .. start+count-1``: the same at every check."""
    return [torch.Generator(device).manual_seed(mix(seed, start + i, 4)) for i in range(count)]


class Validation:
    """The hook (module docstring); inactive (every method a no-op) without a validation set."""

    def __init__(self, fit, dataset):
        self.fit, self.dataset = fit, dataset
        self.every = fit.cfg.validate_every if dataset is not None else 0
        self.keep_best = bool(self.every) and fit.cfg.keep == "best"
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.latest: float | None = None
        self.above = 0  # checks in a row above the best
        self.warned = False
        self.train_sum, self.train_count = 0.0, 0
        self.train_at_best: float | None = None

    # -- the loop's calls ------------------------------------------------------------
    def after_step(self, terms: dict[str, float], last: bool) -> None:
        """Accumulate the training loss; validate on every ``every``-th step and the last."""
        if not self.every:
            return
        key = "loss" if "loss" in terms else next((k for k in terms if k.endswith("/loss")), None)
        if key is not None:
            self.train_sum, self.train_count = self.train_sum + terms[key], self.train_count + 1
        if self.fit.step % self.every == 0 or last:
            self.check()

    def check(self) -> None:
        fit = self.fit
        value = self.loss()
        train = self.train_sum / self.train_count if self.train_count else None
        self.train_sum, self.train_count, self.latest = 0.0, 0, value
        rec = {"step": fit.step, "images": fit.images, "elapsed": round(fit.elapsed, 3), "val_loss": value}
        if self.best is None or value < self.best:
            self.best, self.best_step, self.above, self.train_at_best = value, fit.step, 0, train
            if self.keep_best:
                ema = fit.ema.state() if fit.ema is not None else None
                self.best_weights = {k: v.cpu() for k, v in model_state(fit.model, ema).items()}
        else:
            self.above += 1
            falling = train is not None and self.train_at_best is not None and train < self.train_at_best
            if self.above >= PATIENCE and falling and not self.warned:
                self.warned = True
                rec["warning"] = (
                    f"overfitting: validation loss {value:.4f} has been above its best {self.best:.4f} "
                    f"(step {self.best_step}) for {self.above} checks while the training loss fell "
                    f"({self.train_at_best:.4f} -> {train:.4f}); "
                    + (
                        f"model.safetensors keeps the step-{self.best_step} weights"
                        if self.keep_best
                        else "--keep best would keep the best weights"
                    )
                    + "; more data or regularisation would help"
                )
        if fit.ctx.main:
            with open(fit.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if fit.log.writer is not None:
                fit.log.writer.add_scalar("val_loss", value, fit.step)
            if "warning" in rec:
                fit.log.say(f"step {fit.step}: {rec['warning']}")

    @torch.no_grad()
    def loss(self) -> float:
        """Mean training loss over the validation images (sampled weights, eval mode, fixed noise)."""
        fit, model, ds = self.fit, self.fit.model, self.dataset
        n = min(len(ds), MAX_IMAGES)
        cpu = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state() if fit.device.type == "cuda" else None
        swapped = fit.ema.swapped_in() if fit.ema is not None else nullcontext()
        total = 0.0
        try:
            with model.eval_mode(), swapped:
                for start in range(0, n, fit.cfg.batch_size):
                    idx = torch.arange(start, min(n, start + fit.cfg.batch_size))
                    x, y = ds.batch(idx)
                    x = x.to(fit.device)
                    y = y.to(fit.device) if ds.num_classes > 0 else None
                    gens = validation_generators(fit.cfg.seed, start, len(idx), fit.device)
                    phase = fit.phases[0].name
                    total += float(model.loss(x, y, phase=phase, generator=gens)["loss"]) * len(idx)
        finally:
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda)
        return total / n

    # -- what is kept ------------------------------------------------------------------
    def kept(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weights for ``model.safetensors``: the best with ``keep="best"``, else ``weights``."""
        return self.best_weights if self.keep_best and self.best_weights is not None else weights

    def load_kept(self) -> None:
        """Put the kept (best) weights into the model and its EMA (after the final checkpoint)."""
        fit = self.fit
        if not (self.keep_best and self.best_weights is not None):
            return
        fit.model.load_state_dict(self.best_weights)
        if fit.ema is not None:
            fit.ema.load_state({k: self.best_weights[k] for k in fit.ema.names}, fit.ema.updates)

    def record(self) -> dict:
        """The ``config.json`` entry: best validation loss, its step, which weights are kept."""
        if not self.every:
            return {}
        kept = "best" if self.keep_best and self.best_weights is not None else "last"
        return {
            "validation": {
                "best_val_loss": self.best,
                "best_step": self.best_step,
                "last_val_loss": self.latest,
                "kept": kept,
                "images": len(self.dataset),
                "overfitting_warning": self.warned,
            }
        }

    # -- resume --------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors (the best weights, prefixed ``best.``) and JSON meta for ``training_state/``."""
        tensors = {f"best.{k}": v for k, v in (self.best_weights or {}).items()}
        meta = {
            "best": self.best,
            "best_step": self.best_step,
            "latest": self.latest,
            "above": self.above,
            "warned": self.warned,
            "train_sum": self.train_sum,
            "train_count": self.train_count,
            "train_at_best": self.train_at_best,
        }
        return tensors, meta

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict | None) -> None:
        if not meta:
            return
        for k in (
            "best",
            "best_step",
            "latest",
            "above",
            "warned",
            "train_sum",
            "train_count",
            "train_at_best",
        ):
            setattr(self, k, meta[k])
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        self.best_weights = best or None
