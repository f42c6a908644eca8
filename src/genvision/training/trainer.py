"""The one trainer: every family, driven by ``model.phases`` and the optional hooks.

One step runs every phase in order, each ``repeats`` times, each repeat on a fresh global batch:

    for phase in model.phases:                       # e.g. [main]  or  [critic x5, generator]
        for _ in range(phase.repeats):
            x, y  = next global batch (this rank's shard)
            loss  = model.loss(x, y, phase=phase.name, generator=per-image generators)
            backward -> average gradients across ranks -> clip -> warm-up lr -> optimiser step
            model.after_step(phase.name)
    EMA update of model.ema_parameters(); log (+ mode-collapse monitor, monitor.py); sample grid; checkpoint

Randomness is a pure function of (seed, batch draw, global image index): the data order comes
from a seeded permutation per epoch and every image's noise from its own generator, so
(1) resume is exact without replaying anything, and (2) N processes on disjoint shards of a
global batch compute the same update as one process on the whole batch.

The trainer never asks which family it trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from .. import io
from ..families.base import GenerativeModel, build_dataclass
from ..model_dir import model_state, read_config, save_model_dir, write_config
from . import checkpoint, distributed
from .ema import EMA


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, ...); the message says why and what was kept."""


# ----------------------------------------------------------------------------- config
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

    def __post_init__(self):
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
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (got {self.grad_clip}); 0 disables clipping")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16 (got {self.precision!r})")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda (got {self.device!r})")

    @property
    def length(self) -> str:
        for k in ("steps", "images", "minutes"):
            if getattr(self, k) is not None:
                return f"{getattr(self, k)} {k}"
        return "?"


LENGTH_KEYS = ("steps", "images", "minutes")
#: seconds to pause inside every update (tests only: lets a test kill a run mid-step)
_STEP_DELAY = float(os.environ.get("GENVISION_TEST_STEP_DELAY", "0") or 0)
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
)


# ----------------------------------------------------------------------------- data order
def mix(*ints: int) -> int:
    """A 63-bit seed from a tuple of integers (stable across runs and machines)."""
    h = hashlib.blake2b(repr(ints).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


class BatchStream:
    """Global batches of indices: a fresh seeded permutation per epoch, read in order."""

    def __init__(self, n: int, seed: int, epoch: int = 0, offset: int = 0):
        self.n, self.seed, self.epoch, self.offset = n, seed, epoch, offset
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(mix(self.seed, epoch, 1)))

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.offset == self.n:
                self.epoch, self.offset = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
            m = min(k, self.n - self.offset)
            out.append(self._perm[self.offset : self.offset + m])
            self.offset += m
            k -= m
        return torch.cat(out)


def image_generators(seed: int, draw: int, start: int, count: int, device) -> list[torch.Generator]:
    """Generators of global images ``start .. start+count-1`` of batch draw ``draw``."""
    return [torch.Generator(device).manual_seed(mix(seed, draw, start + i, 2)) for i in range(count)]


# ----------------------------------------------------------------------------- helpers
def default_run_dir(name: str, data: str) -> Path:
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in data.split(":")[0])
    return Path("runs") / f"{name}-{tag}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def sample_labels(model: GenerativeModel, n: int):
    """Labels for a grid of a conditional model (cycling 0..K-1), else None."""
    if model.config.conditional and model.config.num_classes > 0:
        return torch.arange(n) % model.config.num_classes
    return None


def count_flops_per_image(model: GenerativeModel, phases, x, y) -> float | None:
    """Forward+backward FLOPs per training image, summed over phases (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    rng = torch.get_rng_state()
    try:
        counter = FlopCounterMode(display=False)
        gens = image_generators(0, -1, 0, x.shape[0], x.device)
        with counter:
            for phase in phases:
                model.loss(x, y, phase=phase.name, generator=gens)["loss"].backward()
        total = counter.get_total_flops()
    except Exception:  # the count is informative only; never fail a run over it
        total = None
    finally:
        torch.set_rng_state(rng)
        model.zero_grad(set_to_none=True)
    return total / x.shape[0] if total else None


def _prepare_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` (and then only a genvision run directory)."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} exists and is not empty; pass --resume to continue it or --overwrite"
            )
        if not (out / "config.json").is_file():
            raise FileExistsError(
                f"{out} is not a genvision run directory; refusing to overwrite it, choose --out"
            )
        shutil.rmtree(out)


def _resolve_train_config(given: dict, model: GenerativeModel, stored: dict | None) -> TrainConfig:
    """Defaults < model.train_defaults() < stored (resume) < user-given values."""
    values = dict(model.train_defaults())
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


def _fill_from_data(name: str, dataset, model_config: dict):
    from ..registry import create

    cfg = dict(model_config)
    for key in ("image_size", "channels", "num_classes", "levels"):
        cfg.setdefault(key, getattr(dataset, key))
    return create(name, **cfg)


def _check_model_fits_data(model: GenerativeModel, dataset) -> None:
    c = model.config
    for key in ("image_size", "channels"):
        if getattr(c, key) != getattr(dataset, key):
            raise ValueError(
                f"model has {key}={getattr(c, key)} but the data has {getattr(dataset, key)}; "
                f"build the model with {key}={getattr(dataset, key)} (or --set {key}=...)"
            )
    if c.conditional:
        if dataset.num_classes == 0:
            raise ValueError(f"{model.registry_name} is class-conditional but {dataset.spec} has no labels")
        if c.num_classes != dataset.num_classes:
            raise ValueError(
                f"model has num_classes={c.num_classes} but the data has {dataset.num_classes}; "
                f"set num_classes={dataset.num_classes}"
            )


# ----------------------------------------------------------------------------- the loop
def train(
    model: GenerativeModel | str,
    data: str = "digits",
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model_config: dict | None = None,
    **train_values,
) -> Path:
    """Train ``model`` (an instance or a registry name) on dataset spec ``data``.

    Args:
        model: a ``GenerativeModel`` or a registry name (then built with fields from the data
            and ``model_config``).
        data: dataset spec (INTERFACES.md), train split.
        out: run directory; default ``runs/<model>-<data>-<time>``.
        resume: continue the run in ``out`` from its last checkpoint.
        overwrite: replace an existing run directory.
        **train_values: ``TrainConfig`` fields given by the user (override model defaults).

    Returns:
        The run directory (a model directory ``genvision.load`` accepts).
    """
    from .. import data as gdata

    stored_train = None
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the run to continue)")
        meta = read_config(out)  # one-line errors for a missing directory or a damaged config.json
        if isinstance(model, str) and model != meta.get("registry_name"):
            raise ValueError(f"--resume: {out} trains {meta.get('registry_name')}, not {model}")
        stored_data = meta.get("data", {}).get("spec", data)
        if data not in (None, stored_data):
            raise ValueError(f"--resume: {out} trains on {stored_data}, not {data}; drop --data")
        data = stored_data
        stored_train = meta.get("train_config", {})
        stored_model = meta.get("model_config", {})
        if model_config:
            from ..registry import config_for

            name = meta.get("registry_name")
            was = config_for(name, **stored_model).to_dict()
            now = config_for(name, **{**stored_model, **model_config}).to_dict()
            conflicts = {k: v for k, v in now.items() if was.get(k) != v}
            if conflicts:
                raise ValueError(f"--resume: model settings {conflicts} differ from the run's; drop --set")
        model_config = stored_model
    data = data or "digits"

    strict = bool(train_values.get("strict", (stored_train or {}).get("strict", False)))
    # Only an explicit --set image_size resizes the data; a built model must fit the data as it is.
    image_size = (model_config or {}).get("image_size") if isinstance(model, str) else None
    if image_size is not None:
        from ..families.base import parse_value

        image_size = parse_value(int, str(image_size), "image_size")
    dataset = gdata.load(data, "train", strict=strict, image_size=image_size)

    if isinstance(model, str):
        seed = train_values.get("seed", (stored_train or {}).get("seed", 0))
        torch.manual_seed(int(seed))  # the same initial weights for the same seed
        model = _fill_from_data(model, dataset, model_config or {})
    _check_model_fits_data(model, dataset)

    cfg = _resolve_train_config(train_values, model, stored_train)
    ctx = distributed.setup(cfg.device)
    if cfg.batch_size % ctx.world:
        raise ValueError(f"--batch-size {cfg.batch_size} must divide evenly over {ctx.world} processes")

    out = Path(out) if out is not None else default_run_dir(model.registry_name, data)
    if ctx.main:
        if not resume:
            _prepare_dir(out, overwrite=overwrite)
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_stale_temporaries(out)
    distributed.barrier(ctx)
    return _Loop(model, dataset, cfg, out, ctx, resume).run()


class _Loop:
    """State of one training run; ``run()`` is the algorithm box of the module docstring."""

    def __init__(self, model, dataset, cfg: TrainConfig, out: Path, ctx, resume: bool):
        self.model, self.dataset, self.cfg, self.out, self.ctx = model, dataset, cfg, out, ctx
        self.device = ctx.device
        self.model.to(self.device).train()
        self.local_batch = cfg.batch_size // ctx.world
        self.phases = model.phases
        self.images_per_step = cfg.batch_size * sum(p.repeats for p in self.phases)  # real images drawn
        self.optimizers = [self._make_optimizer(p) for p in self.phases]
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        self.step = self.images = self.draws = 0
        self.elapsed = 0.0
        self.stream = BatchStream(len(dataset), cfg.seed)
        self.last_saved = None
        self.stop_signal = None
        self.flops_per_image = None
        self.monitor = None
        if not resume:
            torch.manual_seed(cfg.seed)
            if ctx.main:
                x, _ = self._batch(self.stream_peek(), -1)
                model.init_from_data(x)
            distributed.broadcast_module(model, ctx)
        self.ema = None
        if cfg.ema_half_life > 0:
            names = {id(p): n for n, p in model.named_parameters()}
            self.ema = EMA([(names[id(p)], p) for p in model.ema_parameters()], cfg.ema_half_life)
        if resume:
            self._restore()

    # -- setup ------------------------------------------------------------------------------
    def stream_peek(self) -> torch.Tensor:
        return BatchStream(len(self.dataset), self.cfg.seed).take(min(len(self.dataset), 256))

    def _make_optimizer(self, phase) -> torch.optim.Optimizer:
        spec = phase.optimizer
        lr = spec.lr
        if self.cfg.lr is not None:
            lr = self.cfg.lr * spec.lr / self.phases[0].optimizer.lr
        cls = torch.optim.AdamW if spec.kind == "adamw" else torch.optim.Adam
        return cls(phase.params, lr=lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay)

    def _restore(self) -> None:
        tensors, meta = checkpoint.load(self.out)
        model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.model.load_state_dict(model_sd)
        for i, opt in enumerate(self.optimizers):
            opt.load_state_dict(checkpoint.unflatten_optimizer(f"opt{i}", tensors, meta["optimizers"][i]))
        if self.ema is not None:
            ema_sd = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
            if not ema_sd:
                raise ValueError(f"{self.out} was trained without EMA; resume without --ema-half-life")
            self.ema.load_state(ema_sd, meta["ema_updates"])
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        self.step, self.images, self.draws = meta["step"], meta["images"], meta["draws"]
        self.elapsed = meta["elapsed"]
        self.stream = BatchStream(len(self.dataset), self.cfg.seed, meta["epoch"], meta["offset"])
        self.last_saved = self.step
        self.flops_per_image = meta.get("flops_per_image")
        log = self.out / "metrics.jsonl"
        if log.is_file():  # keep the log consistent with the state: drop steps after the checkpoint
            lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
            keep = []
            for ln in lines:
                try:
                    rec = json.loads(ln)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                if rec.get("step", 0) <= self.step:
                    keep.append(ln)
            io.write_text(log, "".join(k + "\n" for k in keep))

    def _write_config(self, status: str) -> None:
        write_config(
            self.model,
            self.out,
            {
                "train_config": dataclasses.asdict(self.cfg),
                "data": self.dataset.describe(),
                "status": status,
                "world_size": self.ctx.world,
            },
        )

    # -- the loop ---------------------------------------------------------------------------
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

    def run(self) -> Path:
        cfg, ctx = self.cfg, self.ctx
        if ctx.main:
            self._write_config("training")
        if self.flops_per_image is None and ctx.main:
            x, y = self._batch(self.stream_peek()[: self.local_batch], self.draws)
            self.flops_per_image = count_flops_per_image(self.model, self.phases, x, y)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        handle_signals = ctx.main and threading.current_thread() is threading.main_thread()
        if handle_signals:
            for s in previous:
                signal.signal(s, self._on_signal)
        if cfg.monitor_every and ctx.main:
            self._start_monitor()
        bar = self._progress_bar()
        sums: dict[str, float] = {}
        count = 0
        window_start, window_images = time.perf_counter(), 0
        try:
            while not self.done():
                t0 = time.perf_counter()
                terms = self._train_step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                window_images += self.images_per_step
                if self.ema is not None:
                    self.ema.update(cfg.batch_size)
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                t0 = time.perf_counter()
                last = self.done()
                check = bool(cfg.monitor_every) and (self.step % cfg.monitor_every == 0 or last)
                if self.step % cfg.log_every == 0 or last or check:
                    now = time.perf_counter()
                    img_s = window_images / max(now - window_start, 1e-9)
                    self._log(
                        distributed.mean_across({k: v / count for k, v in sums.items()}, ctx),
                        img_s,
                        bar,
                        check=check,
                    )
                    sums, count = {}, 0
                    window_start, window_images = now, 0
                if cfg.sample_every and self.step % cfg.sample_every == 0 and not last:
                    self._sample_grid()
                if cfg.save_every and self.step % cfg.save_every == 0 and not last:
                    self._save()
                self.elapsed += time.perf_counter() - t0
                if self._should_stop():
                    break
                if bar is not None:
                    bar.update(1 if self.total_steps() else min(self.elapsed, bar.total) - bar.n)
        finally:
            if bar is not None:
                bar.close()
            if handle_signals:
                for s, h in previous.items():
                    signal.signal(s, h)
        interrupted = self.stop_signal is not None
        self._save()
        self._sample_grid(final=True)
        if ctx.main:
            self._write_config("interrupted" if interrupted else "finished")
            from ..metrics.report import write_report

            write_report(self.out)
            if interrupted:
                print(
                    f"stopped by {self.stop_signal} at step {self.step}; checkpoint saved in {self.out}; "
                    f"continue with --resume --out {self.out}"
                )
        distributed.shutdown(ctx)
        return self.out

    def _batch(self, local_idx: torch.Tensor, draw: int):
        x, y = self.dataset.batch(
            local_idx, generator=torch.Generator().manual_seed(mix(self.cfg.seed, draw, 3))
        )
        x = x.to(self.device)
        y = y.to(self.device) if self.dataset.num_classes > 0 else None
        return x, y

    def _train_step(self) -> dict[str, float]:
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
                x, y = self._batch(idx[start : start + self.local_batch], self.draws)
                gens = image_generators(cfg.seed, self.draws, start, self.local_batch, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    out = self.model.loss(x, y, phase=phase.name, generator=gens)
                loss = out["loss"]
                if not distributed.all_finite(loss.detach(), ctx):
                    self._diverged(phase.name, loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if _STEP_DELAY:  # fault-injection for the kill-mid-step test: widen the window
                    time.sleep(_STEP_DELAY)
                distributed.average_gradients(phase.params, ctx)
                if cfg.grad_clip:
                    norm = torch.nn.utils.clip_grad_norm_(phase.params, cfg.grad_clip)
                    if not torch.isfinite(norm):
                        self._diverged(phase.name, norm, what="gradient norm")
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

    def _diverged(self, phase: str, value, what: str = "loss") -> None:
        kept = (
            f"the last good checkpoint (step {self.last_saved}) is kept"
            if self.last_saved
            else "no checkpoint yet"
        )
        raise TrainingError(
            f"{what} became {float(value.detach())} at step {self.step + 1} (phase {phase}); training stopped, "
            f"{kept} in {self.out}; lower --lr, add warm-up (--set train.warmup=N) or use --precision fp32"
        )

    def _on_signal(self, signum, frame) -> None:
        if self.stop_signal is not None:  # second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.stop_signal = signal.Signals(signum).name

    def _should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self.stop_signal else 0.0])
        if self.ctx.active:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if self.cfg.minutes is not None:  # rank 0's clock decides, so every rank stops together
                t = torch.tensor([self.elapsed], dtype=torch.float64)
                torch.distributed.broadcast(t, src=0)
                self.elapsed = float(t)
        if flag.item() and self.stop_signal is None:
            self.stop_signal = "peer signal"
        return bool(flag.item())

    def _progress_bar(self):
        if not (self.cfg.progress and self.ctx.main):
            return None
        from tqdm.auto import tqdm

        total = self.total_steps()
        desc = f"train {self.model.registry_name}"
        if total is None:  # --minutes: the bar counts training seconds
            budget = self.cfg.minutes * 60
            return tqdm(
                total=budget,
                initial=min(self.elapsed, budget),
                desc=desc,
                unit="s",
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]",
            )
        return tqdm(total=total, initial=self.step, desc=desc, unit="step", dynamic_ncols=True)

    def _log(self, terms: dict[str, float], img_s: float, bar, check: bool = False) -> None:
        rec = {
            "step": self.step,
            "images": self.images,
            "elapsed": round(self.elapsed, 3),
            "img_per_s": img_s,
        }
        rec.update(terms)
        if self.flops_per_image:
            rec["flops_per_image"] = self.flops_per_image
            rec["gflop_per_s"] = self.flops_per_image * img_s / 1e9
        if not self.ctx.main:
            return
        if check and self.monitor is not None and self.monitor.active:
            rec.update(self.monitor.measure(self._generated(self.cfg.monitor_samples), final=self.done()))
            if "warning" in rec:
                self._say(f"step {self.step}: {rec['warning']}", bar)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if bar is not None:
            post = {
                "loss": f"{terms.get('loss', next(iter(terms.values()), 0.0)):.4f}",
                "img/s": f"{img_s:.0f}",
            }
            if self.cfg.minutes is not None:
                post["left"] = f"{max(0.0, self.cfg.minutes * 60 - self.elapsed):.0f}s"
            bar.set_postfix(post, refresh=False)

    def _start_monitor(self) -> None:
        """Build the mode-collapse monitor (trains or loads the domain judge); off on unlabeled data."""
        from .monitor import CollapseMonitor

        self.monitor = CollapseMonitor(self.dataset, self.cfg.collapse_threshold)
        if not self.monitor.active:
            print(f"mode-collapse monitor off: {self.monitor.reason}")

    @staticmethod
    def _say(line: str, bar) -> None:
        """Print a line without breaking the progress bar."""
        if bar is not None:
            bar.write(line)
        else:
            print(line)

    def _generated(self, n: int) -> torch.Tensor:
        """``n`` samples with seed 0 (EMA weights where on) for the monitor, as the grids draw them."""
        from ..families.base import sample_in_batches

        model = self.model
        was_training = model.training
        model.eval()
        try:
            ctx_mgr = self.ema.swapped_in() if self.ema is not None else nullcontext()
            with ctx_mgr, torch.no_grad():
                return sample_in_batches(model, n, seed=0, labels=sample_labels(model, n))
        finally:
            model.train(was_training)

    def _sample_grid(self, final: bool = False) -> None:
        if not self.ctx.main:
            return
        from ..viz import save_grid

        model = self.model
        was_training = model.training
        model.eval()
        try:
            ctx_mgr = self.ema.swapped_in() if self.ema is not None else nullcontext()
            with ctx_mgr, torch.no_grad():
                n = self.cfg.num_samples
                images = model.sample(n, y=sample_labels(model, n), seed=0)
        finally:
            model.train(was_training)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        save_grid(images, path, levels=model.config.levels)
        if final:
            save_grid(images, self.out / "grid.png", levels=model.config.levels)

    def _save(self) -> None:
        if not self.ctx.main:
            self.last_saved = self.step
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        groups = []
        for i, opt in enumerate(self.optimizers):
            flat, g = checkpoint.flatten_optimizer(f"opt{i}", opt)
            tensors.update(flat)
            groups.append(g)
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state().items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {
            "step": self.step,
            "images": self.images,
            "draws": self.draws,
            "epoch": self.stream.epoch,
            "offset": self.stream.offset,
            "elapsed": self.elapsed,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizers": groups,
            "flops_per_image": self.flops_per_image,
        }
        checkpoint.save(self.out, tensors, meta)
        weights = model_state(self.model, self.ema.state() if self.ema is not None else None)
        save_model_dir(self.model, self.out, state=weights)
        self.last_saved = self.step
