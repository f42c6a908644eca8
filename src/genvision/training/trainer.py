"""The fit loop: every family, driven by ``model.phases`` and the optional hooks of the contract.

One step runs every phase in order, each ``repeats`` times, each repeat on a fresh global batch:

    for phase in model.phases:                       # e.g. [main]  or  [critic x5, generator]
        for _ in range(phase.repeats):
            x, y  = next global batch (this rank's shard)
            loss  = model.loss(x, y, phase=phase.name, generator=per-image generators)
            backward -> average gradients across ranks -> clip -> warm-up lr -> optimiser step
            model.after_step(phase.name)
    EMA update of model.ema_parameters(); then the hooks (hooks.py): log (progress bar,
    metrics.jsonl, TensorBoard, mode-collapse monitor), sample grid, checkpoint

Randomness is a pure function of (seed, batch draw, global image index) (``order.py``), so resume
is exact and N processes on shards of a global batch compute what one process computes on the
whole batch. The loop never asks which family it trains, and knows nothing of run directories
beyond the folder its hooks write to: building, resuming and reporting a run is ``run.py``'s job.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from ..data.transforms import perturb_pixels
from . import distributed, hooks
from .config import TrainConfig
from .ema import EMA
from .hooks import TrainingError
from .order import BatchStream, augmentation_generator, pixel_noise_generator, training_generators
from .validation import Validation

#: seconds to pause inside every update (tests only: lets a test kill a run mid-step)
_STEP_DELAY = float(os.environ.get("GENVISION_TEST_STEP_DELAY", "0") or 0)


def make_optimizer(phase, lr: float | None, first_lr: float) -> torch.optim.Optimizer:
    """The optimiser of one phase; a trainer ``lr`` scales every phase's own lr alike."""
    spec = phase.optimizer
    rate = spec.lr if lr is None else lr * spec.lr / first_lr
    if spec.kind == "rmsprop":  # betas[1] is the squared-gradient smoothing (alpha); no momentum
        return torch.optim.RMSprop(phase.params, lr=rate, alpha=spec.betas[1], weight_decay=spec.weight_decay)
    cls = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
    return cls(phase.params, lr=rate, betas=tuple(spec.betas), weight_decay=spec.weight_decay)


def grad_norm(params) -> torch.Tensor:
    """Global L2 norm of the gradients of ``params`` (0 when none has one)."""
    norms = [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


class Fit:
    """State of one training run's optimisation; ``run()`` is the algorithm box above."""

    def __init__(self, model, dataset, cfg: TrainConfig, out: Path, ctx, *, resume: bool, val_dataset=None):
        self.model, self.dataset, self.cfg, self.out, self.ctx = model, dataset, cfg, Path(out), ctx
        self.device = ctx.device
        model.to(self.device).train()
        self.local_batch = cfg.batch_size // ctx.world
        self.phases = model.phases
        self.images_per_step = cfg.batch_size * sum(p.repeats for p in self.phases)  # real images drawn
        first_lr = self.phases[0].optimizer.lr
        self.optimizers = [make_optimizer(p, cfg.lr, first_lr) for p in self.phases]
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        self.step = self.images = self.draws = 0
        self.elapsed = 0.0
        self.stream = BatchStream(len(dataset), cfg.seed)
        self.flops_per_image = None
        if not resume:
            torch.manual_seed(cfg.seed)
            if ctx.main:
                x, _ = self.batch(self.first_indices(), -1)
                model.init_from_data(x)
            distributed.broadcast_module(model, ctx)
        self.ema = None
        if cfg.ema_half_life > 0:
            names = {id(p): n for n, p in model.named_parameters()}
            self.ema = EMA([(names[id(p)], p) for p in model.ema_parameters()], cfg.ema_half_life)
        self.validation = Validation(self, val_dataset)  # before restore: it keeps the best weights
        self.checkpoints = hooks.Checkpoints(self)
        if resume:
            self.checkpoints.restore()
        self.grids = hooks.SampleGrids(self)
        self.log = hooks.Log(self, resume=resume)

    # -- data -------------------------------------------------------------------------------
    def first_indices(self) -> torch.Tensor:
        """The first indices of the data order (data-dependent init, the FLOP count)."""
        return BatchStream(len(self.dataset), self.cfg.seed).take(min(len(self.dataset), 256))

    def batch(self, local_idx: torch.Tensor, draw: int):
        x, y = self.dataset.batch(local_idx, generator=augmentation_generator(self.cfg.seed, draw))
        if self.cfg.pixel_noise > 0:
            levels = getattr(self.dataset, "levels", None)
            if levels is None:
                raise TrainingError(
                    "train.pixel_noise perturbs image pixels; this model trains on latents, not images"
                )
            x = perturb_pixels(x, self.cfg.pixel_noise, levels, pixel_noise_generator(self.cfg.seed, draw))
        x = x.to(self.device)
        y = y.to(self.device) if self.dataset.num_classes > 0 else None
        return x, y

    # -- length -----------------------------------------------------------------------------
    def done(self) -> bool:
        c = self.cfg
        if c.steps is not None:
            return self.step >= c.steps
        if c.images is not None:
            return self.images >= c.images
        return self.elapsed >= c.minutes * 60

    def total_steps(self) -> int | None:
        c = self.cfg
        if c.steps is not None:
            return c.steps
        if c.images is not None:
            return math.ceil(c.images / self.images_per_step)
        return None

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> str | None:
        """Train until the length is reached or a signal stops it; returns the stopping signal or None."""
        cfg, ctx = self.cfg, self.ctx
        if self.flops_per_image is None and ctx.main:
            x, y = self.batch(self.first_indices()[: self.local_batch], self.draws)
            self.flops_per_image = hooks.count_flops_per_image(self.model, self.phases, x, y)
        with hooks.StopSignals(ctx) as signals, self.log:
            while not self.done():
                t0 = time.perf_counter()
                terms = self.train_step()
                if self.ema is not None:
                    self.ema.update(cfg.batch_size)
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                t0 = time.perf_counter()
                last = self.done()
                self.log.after_step(terms, last)
                self.validation.after_step(terms, last)
                if cfg.sample_every and self.step % cfg.sample_every == 0 and not last:
                    self.grids.save()
                if cfg.save_every and self.step % cfg.save_every == 0 and not last:
                    self.checkpoints.save()
                self.elapsed += time.perf_counter() - t0
                if signals.should_stop(self):
                    break
                self.log.advance()
        self.checkpoints.save()
        self.validation.load_kept()  # the final grid shows the kept (best) weights
        self.grids.save(final=True)
        return signals.name

    def train_step(self) -> dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        terms: dict[str, float] = {}
        multi = len(self.phases) > 1
        warm = min(1.0, (self.step + 1) / cfg.warmup) if cfg.warmup else 1.0
        for phase, opt, base in zip(self.phases, self.optimizers, self.base_lrs):
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * warm
            for _ in range(phase.repeats):
                idx = self.stream.take(cfg.batch_size)
                start = ctx.rank * self.local_batch
                x, y = self.batch(idx[start : start + self.local_batch], self.draws)
                gens = training_generators(cfg.seed, self.draws, start, self.local_batch, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    out = self.model.loss(x, y, phase=phase.name, generator=gens)
                loss = out["loss"]
                if not distributed.all_finite(loss.detach(), ctx):
                    self.diverged(phase.name, loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if _STEP_DELAY:  # fault-injection for the kill-mid-step test: widen the window
                    time.sleep(_STEP_DELAY)
                distributed.average_gradients(phase.params, ctx)
                # the NaN guard, whatever the clipping: a non-finite gradient never reaches the weights
                if cfg.grad_clip:
                    norm = torch.nn.utils.clip_grad_norm_(phase.params, cfg.grad_clip)
                else:
                    norm = grad_norm(phase.params)
                if not torch.isfinite(norm):
                    self.diverged(phase.name, norm, what="gradient norm")
                key = f"{phase.name}/grad_norm" if multi else "grad_norm"
                terms[key] = terms.get(key, 0.0) + float(norm) / phase.repeats
                opt.step()
                self.model.after_step(phase.name)
                self.draws += 1
                self.images += cfg.batch_size
                for k, v in out.items():  # logged terms: mean over the phase's repeats
                    key = f"{phase.name}/{k}" if multi else k
                    terms[key] = terms.get(key, 0.0) + float(v.detach()) / phase.repeats
        terms["lr"] = self.optimizers[0].param_groups[0]["lr"]
        return terms

    def diverged(self, phase: str, value, what: str = "loss") -> None:
        saved = self.checkpoints.last_saved
        kept = f"the last good checkpoint (step {saved}) is kept" if saved else "no checkpoint yet"
        raise TrainingError(
            f"{what} became {float(value.detach())} at step {self.step + 1} (phase {phase}); training stopped, "
            f"{kept} in {self.out}; lower --lr, add warm-up (--set train.warmup=N) or use --precision fp32"
        )
