"""The small jobs the fit loop calls: logging, sample grids, checkpoints, signals, the FLOP count.

Each hook holds a reference to the :class:`~genvision.training.trainer.Fit` it serves and reads
its counters (``step``, ``images``, ``elapsed``, ...); none of them changes what is trained.

- :class:`Log`: the progress bar (tqdm), ``metrics.jsonl`` (one JSON object per logged step),
  optional TensorBoard (``--tensorboard``, when the ``tensorboard`` package is installed) and the
  mode-collapse monitor (``monitor.py``) on its steps.
- :class:`SampleGrids`: ``samples/step_NNNNNN.png`` and the final ``grid.png`` (seed 0, EMA weights).
- :class:`Checkpoints`: ``training_state/`` for exact resume and ``model.safetensors`` to sample with.
- :class:`StopSignals`: Ctrl-C / SIGTERM end the run at the next step boundary, with a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from contextlib import nullcontext

import torch

from .. import io
from ..families.base import has, sample_in_batches
from ..model_dir import WEIGHTS_FILE, model_state, weights_sha256
from . import checkpoint, distributed
from .order import BatchStream, training_generators


def grid_labels(model, n: int):
    """Labels for a grid of a conditional model (cycling 0..K-1), else None."""
    if model.config.conditional and model.config.num_classes > 0:
        return torch.arange(n) % model.config.num_classes
    return None


def count_flops_per_image(model, phases, x, y) -> float | None:
    """Forward+backward FLOPs per training image, summed over phases (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    rng = torch.get_rng_state()
    try:
        counter = FlopCounterMode(display=False)
        gens = training_generators(0, -1, 0, x.shape[0], x.device)
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


class SampleGrids:
    """Sample grids with seed 0 and the EMA weights where on (labels cycling for conditional models)."""

    def __init__(self, fit):
        self.fit = fit

    def generated(self, n: int, batch_size: int = 256) -> torch.Tensor:
        """``n`` samples with seed 0 (image k fixed by (0, k)), float (n, C, H, W) on the CPU."""
        fit, model = self.fit, self.fit.model
        swapped = fit.ema.swapped_in() if fit.ema is not None else nullcontext()
        with model.eval_mode(), swapped, torch.no_grad():
            return sample_in_batches(model, n, seed=0, batch_size=batch_size, labels=grid_labels(model, n))

    def save(self, final: bool = False) -> None:
        fit = self.fit
        if not fit.ctx.main:
            return
        from ..viz import save_grid

        n = fit.cfg.num_samples
        images = self.generated(n, batch_size=n)
        levels = fit.model.config.levels
        save_grid(images, fit.out / "samples" / f"step_{fit.step:06d}.png", levels=levels)
        if final:
            save_grid(images, fit.out / "grid.png", levels=levels)
            if has(fit.model, "style_mix"):  # StyleGAN: coarse styles of seed 0, fine of seed 1
                self.save_style_mix()

    def save_style_mix(self, rows: int = 6) -> None:
        """``style_mix.png``: the style-mixing picture of seeds 0 and 1 at the middle crossover."""
        fit, model = self.fit, self.fit.model
        from ..viz import save_grid

        swapped = fit.ema.swapped_in() if fit.ema is not None else nullcontext()
        with model.eval_mode(), swapped, torch.no_grad():
            images = model.style_mix_picture(0, 1, rows, rows, model.num_ws // 2).cpu()
        save_grid(images, fit.out / "style_mix.png", nrow=rows + 1, levels=fit.model.config.levels)


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, ...); the message says why and what was kept."""


class Checkpoints:
    """``training_state/state.safetensors`` (everything to resume bit for bit) and ``model.safetensors``.

    A save first checks that every weight (and its EMA) is finite, so a diverged step never
    replaces the last good checkpoint. The state is written first and records the sha256 of the
    weights it goes with; ``model.safetensors`` follows. A kill between the two leaves the previous
    weights beside the new state, which :meth:`restore` notices and repairs.
    """

    def __init__(self, fit):
        self.fit = fit
        self.last_saved: int | None = None

    def weights(self) -> dict:
        """The weights to sample with: EMA where on, the best by validation loss where kept."""
        fit = self.fit
        return fit.validation.kept(model_state(fit.model, fit.ema.state() if fit.ema is not None else None))

    def check_finite(self) -> None:
        fit = self.fit
        tensors = list(fit.model.parameters()) + (
            list(fit.ema.state().values()) if fit.ema is not None else []
        )
        bad = sum(int(not torch.isfinite(t).all()) for t in tensors)
        if bad:
            kept = (
                f"the last good checkpoint (step {self.last_saved}) is kept"
                if self.last_saved
                else "no checkpoint yet"
            )
            raise TrainingError(
                f"{bad} weight tensor(s) became non-finite by step {fit.step}; nothing was saved, {kept} in "
                f"{fit.out}; lower --lr, add warm-up (--set train.warmup=N) or clipping (--set train.grad_clip=1)"
            )

    def save(self) -> None:
        fit = self.fit
        self.check_finite()
        if not fit.ctx.main:
            self.last_saved = fit.step
            return
        tensors = {f"model.{k}": v for k, v in fit.model.state_dict().items()}
        groups = []
        for i, opt in enumerate(fit.optimizers):
            flat, g = checkpoint.flatten_optimizer(f"opt{i}", opt)
            tensors.update(flat)
            groups.append(g)
        if fit.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in fit.ema.state().items()})
        best, validation = fit.validation.state()
        tensors.update(best)
        tensors["rng.cpu"] = torch.get_rng_state()
        if fit.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {
            "step": fit.step,
            "images": fit.images,
            "draws": fit.draws,
            "epoch": fit.stream.epoch,
            "offset": fit.stream.offset,
            "elapsed": fit.elapsed,
            "ema_updates": fit.ema.updates if fit.ema is not None else 0,
            "optimizers": groups,
            "flops_per_image": fit.flops_per_image,
            "validation": validation,
        }
        weights = io.safetensors_bytes(self.weights())
        meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
        checkpoint.save(fit.out, tensors, meta)
        io.write_bytes(fit.out / WEIGHTS_FILE, weights)
        self.last_saved = fit.step

    def restore(self) -> None:
        fit = self.fit
        tensors, meta = checkpoint.load(fit.out)
        fit.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for i, opt in enumerate(fit.optimizers):
            opt.load_state_dict(checkpoint.unflatten_optimizer(f"opt{i}", tensors, meta["optimizers"][i]))
        if fit.ema is not None:
            ema_sd = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
            if not ema_sd:
                raise ValueError(f"{fit.out} was trained without EMA; resume without --ema-half-life")
            fit.ema.load_state(ema_sd, meta["ema_updates"])
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        fit.step, fit.images, fit.draws = meta["step"], meta["images"], meta["draws"]
        fit.elapsed = meta["elapsed"]
        fit.stream = BatchStream(len(fit.dataset), fit.cfg.seed, meta["epoch"], meta["offset"])
        fit.flops_per_image = meta.get("flops_per_image")
        fit.validation.restore(tensors, meta.get("validation"))
        self.last_saved = fit.step
        expected = meta.get("weights_sha256")
        path = fit.out / WEIGHTS_FILE
        if fit.ctx.main and expected and (not path.is_file() or weights_sha256(fit.out) != expected):
            # killed between the state and the weights: write the weights that go with the state
            io.write_bytes(path, io.safetensors_bytes(self.weights()))
            print(f"repaired {path}: it was older than the checkpoint at step {fit.step}")


class StopSignals:
    """Context: SIGINT / SIGTERM to any rank ask every rank to stop at the next step boundary.

    Every rank installs the handler (a launcher may signal one rank only); :meth:`should_stop`
    shares the flag, so all ranks leave the loop together and rank 0 writes the final checkpoint.
    """

    def __init__(self, ctx):
        self.ctx, self.name = ctx, None
        self.installed = threading.current_thread() is threading.main_thread()
        self.previous = {}

    def __enter__(self):
        if self.installed:
            for s in (signal.SIGINT, signal.SIGTERM):
                self.previous[s] = signal.getsignal(s)
                signal.signal(s, self._on_signal)
        return self

    def __exit__(self, *exc):
        for s, h in self.previous.items():
            signal.signal(s, h)
        return False

    def _on_signal(self, signum, frame) -> None:
        if self.name is not None:  # second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name

    def should_stop(self, fit) -> bool:
        """Whether any rank was signalled (all ranks agree; rank 0's clock rules a --minutes run)."""
        flag = torch.tensor([1.0 if self.name else 0.0])
        if self.ctx.active:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if fit.cfg.minutes is not None:
                t = torch.tensor([fit.elapsed], dtype=torch.float64)
                torch.distributed.broadcast(t, src=0)
                fit.elapsed = float(t)
        if flag.item() and self.name is None:
            self.name = "peer signal"
        return bool(flag.item())


class Log:
    """Context: progress bar, metrics.jsonl, TensorBoard and the collapse monitor, every ``log_every``."""

    def __init__(self, fit, *, resume: bool):
        self.fit = fit
        self.sums: dict[str, float] = {}
        self.count = 0
        self.bar = self.writer = self.monitor = None
        self.path = fit.out / "metrics.jsonl"
        if resume and fit.ctx.main and self.path.is_file():
            # keep the log consistent with the restored state: drop steps after the checkpoint
            keep = [r for r in io.read_jsonl(self.path) if r.get("step", 0) <= fit.step]
            io.write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))

    def __enter__(self):
        fit, cfg = self.fit, self.fit.cfg
        self.window = (time.perf_counter(), 0)  # (start, images) of the current logging window
        if not fit.ctx.main:
            return self
        if cfg.monitor_every:
            from .monitor import CollapseMonitor

            self.monitor = CollapseMonitor(fit.dataset, cfg.collapse_threshold)
            if not self.monitor.active:
                print(f"mode-collapse monitor off: {self.monitor.reason}")
        if cfg.tensorboard:
            self.writer = _tensorboard_writer(fit.out / "tensorboard")
        if cfg.progress:
            self.bar = _progress_bar(fit)
        return self

    def __exit__(self, *exc):
        for closable in (self.bar, self.writer):
            if closable is not None:
                closable.close()
        return False

    def advance(self) -> None:
        fit = self.fit
        if self.bar is not None:
            self.bar.update(1 if fit.total_steps() else min(fit.elapsed, self.bar.total) - self.bar.n)

    def say(self, line: str) -> None:
        """Print a line without breaking the progress bar."""
        (self.bar.write if self.bar is not None else print)(line)

    def after_step(self, terms: dict[str, float], last: bool) -> None:
        fit, cfg = self.fit, self.fit.cfg
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        start, images = self.window
        self.window = (start, images + fit.images_per_step)
        check = bool(cfg.monitor_every) and (fit.step % cfg.monitor_every == 0 or last)
        if not (fit.step % cfg.log_every == 0 or last or check):
            return
        now = time.perf_counter()
        img_s = self.window[1] / max(now - start, 1e-9)
        means = distributed.mean_across({k: v / self.count for k, v in self.sums.items()}, fit.ctx)
        self.sums, self.count, self.window = {}, 0, (now, 0)
        if fit.ctx.main:
            self.write(means, img_s, check, last)

    def write(self, terms: dict[str, float], img_s: float, check: bool, last: bool) -> None:
        fit = self.fit
        rec = {"step": fit.step, "images": fit.images, "elapsed": round(fit.elapsed, 3), "img_per_s": img_s}
        rec.update(terms)
        if fit.flops_per_image:
            rec["flops_per_image"] = fit.flops_per_image
            rec["gflop_per_s"] = fit.flops_per_image * img_s / 1e9
        if check and self.monitor is not None and self.monitor.active:
            rec.update(self.monitor.measure(fit.grids.generated(fit.cfg.monitor_samples), final=last))
            if "warning" in rec:
                self.say(f"step {fit.step}: {rec['warning']}")
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.writer is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.writer.add_scalar(k, v, fit.step)
            self.writer.flush()
        if self.bar is not None:
            post = {
                "loss": f"{terms.get('loss', next(iter(terms.values()), 0.0)):.4f}",
                "img/s": f"{img_s:.0f}",
            }
            if fit.validation.latest is not None:
                post["val"] = f"{fit.validation.latest:.4f}"
            if fit.cfg.minutes is not None:
                post["left"] = f"{max(0.0, fit.cfg.minutes * 60 - fit.elapsed):.0f}s"
            self.bar.set_postfix(post, refresh=False)


def _progress_bar(fit):
    from tqdm.auto import tqdm

    total = fit.total_steps()
    desc = f"train {fit.model.registry_name}"
    if total is None:  # --minutes: the bar counts training seconds
        budget = fit.cfg.minutes * 60
        return tqdm(
            total=budget,
            initial=min(fit.elapsed, budget),
            desc=desc,
            unit="s",
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]",
        )
    return tqdm(total=total, initial=fit.step, desc=desc, unit="step", dynamic_ncols=True)


def _tensorboard_writer(directory):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(
            "--tensorboard needs the tensorboard package; pip install tensorboard (or drop --tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(directory))
