"""The trainers the benchmarks race: genvision's default and the peer recipes (diffusers' DDPM,
pythae's VAE).

Peers at their best: a peer runs its defaults and, where its documentation gives a better
configuration, that one too, and a benchmark counts the better of the two (recording both). For
diffusers see :data:`DIFFUSERS_CONFIGS`; pythae documents no configuration better than its
defaults for this use, so its VAE runs those (:data:`PYTHAE_NOTE`).

Each is a small class with the same calls, so a benchmark can train every trainer in turns
(round-robin slices of a wall-clock budget, so that a change in the machine's load hits all of
them alike) and sample them the same way:

    peer = DiffusersDDPM(train_ds, seed=0, widths=(32, 64))
    peer.train_for(30.0)          # train until 30 more seconds of training time are spent
    images = peer.sample(1000, seed=0)   # float (N, C, H, W) in [-1, 1], image k from seed S's k-th generator

Training time counts the training steps only (data batch, forward, backward, optimiser, EMA),
as genvision's trainer counts its ``--minutes`` budget. Both peers get genvision's tuned
optimisation settings (batch 128, lr 1e-3, 100 warm-up steps, gradient clipping at 1): a generous
choice for the peers (their own examples use lr 1e-4), so that the comparison measures the model,
the noise schedule and the sampler rather than a learning rate.

Per-image seeds: the start noise of image k is ``seeding.randn`` from generator ``seeding.image_seed(S, k)``
(INTERFACES.md), the same tensor genvision starts from, so the diffusion peers begin at the same
noise as genvision's default.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

import genvision as gv
from genvision import seeding
from genvision.families.base import sample_in_batches

#: optimisation settings every peer gets (genvision's tuned defaults for 8x8 digits)
PEER_TRAIN = {"batch_size": 128, "lr": 1e-3, "warmup": 100, "grad_clip": 1.0}

#: the diffusers configurations a benchmark trains, by trainer name. "diffusers" is the default
#: recipe (``examples/unconditional_image_generation``: epsilon prediction, linear betas, sampled
#: with DDIM-50). "diffusers-best" is the best configuration diffusers documents for a small
#: pixel-space model: v-prediction and the cosine schedule (``squaredcos_cap_v2``), sampled with
#: ``DPMSolverMultistepScheduler`` (DPM-Solver++, 25 steps; order 2, and order 3, which its docs
#: recommend for unconditional sampling) with ``lambda_min_clipped=-5.1`` (documented as critical
#: for the cosine schedule; the value of diffusers' own cosine-schedule pipeline configs) and
#: dynamic thresholding at 1 (the docs' tip for pixel-space models; clips x0 to [-1, 1] as DDIM
#: does), and with DDIM-50 as well. ``samplers`` are what ``quality_budget.py`` scores; every one
#: is recorded and the best counts.
DIFFUSERS_CONFIGS = {
    "diffusers": {
        "prediction_type": "epsilon",
        "beta_schedule": "linear",
        "samplers": [("ddim", 50)],
        "dpm_options": {},
        "what": "diffusers' default recipe: epsilon prediction, linear betas, DDIM-50",
    },
    "diffusers-best": {
        "prediction_type": "v_prediction",
        "beta_schedule": "squaredcos_cap_v2",
        "samplers": [("dpm++2m", 25), ("dpm++3m", 25), ("ddim", 50)],
        "dpm_options": {"lambda_min_clipped": -5.1, "thresholding": True, "sample_max_value": 1.0},
        "what": "diffusers' best documented configuration: v-prediction, cosine betas "
        "(squaredcos_cap_v2), DPMSolverMultistepScheduler 25 steps (orders 2 and 3) and DDIM-50",
    },
}


def diffusers_settings(config: str) -> dict:
    """A :data:`DIFFUSERS_CONFIGS` entry as a benchmark's JSON records it."""
    c = DIFFUSERS_CONFIGS[config]
    return {
        "what": c["what"],
        "prediction_type": c["prediction_type"],
        "beta_schedule": c["beta_schedule"],
        "dpm_solver_options": c["dpm_options"],
        "samplers": [f"{s.upper()}-{k}" for s, k in c["samplers"]],
    }


#: why pythae runs its defaults only
PYTHAE_NOTE = "pythae documents no configuration better than its defaults; its VAE runs those only"


def unet2d(image_size: int, channels: int, widths: tuple[int, ...]):
    """diffusers' ``UNet2DModel`` shaped like genvision's UNet: one level per width, 2 blocks each.

    Everything else is diffusers' default (GroupNorm with 32 groups, attention in the middle
    block, positional timestep embedding of width 4 * widths[0]).
    """
    from diffusers import UNet2DModel

    levels = len(widths)
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(widths),
        layers_per_block=2,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
    )


def unet2d_config(net) -> dict:
    """The few UNet2DModel settings worth recording in a benchmark's JSON."""
    keys = ("sample_size", "block_out_channels", "layers_per_block", "add_attention", "norm_num_groups")
    return {k: net.config[k] for k in keys}


class Genvision:
    """genvision's default model trained through ``genvision.train`` with its own defaults.

    Every ``train_for`` call continues the run directory with ``resume=True`` and a larger
    ``minutes`` budget (the trainer counts training time across resumes); checkpoints and sample
    grids are written only at the end of each slice, outside the budget, as for the peers.

    Args:
        spec: dataset spec.
        seed: training seed (initial weights, data order, noise).
        out: run directory (created; must not hold another run).
        model: registry name.
        model_config: config overrides (none: the default model).
    """

    name = "genvision"

    def __init__(
        self, spec: str, seed: int, out: Path, model: str = "ddpm", model_config: dict | None = None
    ):
        self.spec, self.seed, self.out, self.model = spec, seed, Path(out), model
        self.model_config = model_config or {}
        self.budget = 0.0

    def train_for(self, seconds: float) -> None:
        """Continue training until ``seconds`` more of training time are spent."""
        self.budget += seconds
        self._train(self.budget == seconds, minutes=self.budget / 60)

    def train_steps(self, steps: int) -> None:
        """Train a fresh run for ``steps`` optimiser steps (a length that does not depend on the load)."""
        self._train(True, steps=steps)

    def _train(self, first: bool, **length) -> None:
        gv.train(
            self.model,
            data=self.spec,
            out=self.out,
            resume=not first,
            overwrite=first,
            seed=self.seed,
            sample_every=0,
            save_every=0,
            progress=False,
            **length,
            **({"model_config": self.model_config} if first and self.model_config else {}),
        )

    def last_record(self) -> dict:
        """The run's last training record (step, images, elapsed, flops_per_image, ...)."""
        import common

        return common.training_records(self.out)[-1]

    @property
    def steps(self) -> int:
        return self.last_record()["step"]

    @property
    def images(self) -> int:
        return self.last_record()["images"]

    @property
    def elapsed(self) -> float:
        return self.last_record()["elapsed"]

    def load(self):
        return gv.load(self.out)

    @torch.no_grad()
    def sample(self, n: int, seed: int, **options):
        """``n`` images, float (n, C, H, W) in [-1, 1], from the saved (EMA) weights; options go to ``sample``."""
        return sample_in_batches(self.load(), n, seed=seed, batch_size=250, options=options)


class _BatchStream:
    """Seeded random epochs over a dataset: ``next()`` gives a (B, C, H, W) batch in [-1, 1]."""

    def __init__(self, dataset, batch_size: int, seed: int):
        self.dataset, self.batch_size = dataset, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.pos = torch.randperm(len(dataset), generator=self.generator), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.order):
            self.order, self.pos = torch.randperm(len(self.dataset), generator=self.generator), 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.dataset.batch(idx, generator=self.generator)[0]


class _Peer:
    """Shared loop: ``step()`` runs one optimiser step; ``train_for`` times them."""

    name = "peer"

    def __init__(self, dataset, seed: int):
        self.shape = (dataset.channels, dataset.image_size, dataset.image_size)
        self.stream = _BatchStream(dataset, PEER_TRAIN["batch_size"], seed)
        self.steps, self.elapsed = 0, 0.0

    def set_lr(self, optimizer) -> None:
        warm = min(1.0, (self.steps + 1) / PEER_TRAIN["warmup"])
        for g in optimizer.param_groups:
            g["lr"] = PEER_TRAIN["lr"] * warm

    def train_for(self, seconds: float) -> None:
        """Train until ``seconds`` more of training time are spent (the last step may overrun it)."""
        stop = self.elapsed + seconds
        while self.elapsed < stop:
            self._timed_step()

    def train_steps(self, steps: int) -> None:
        """Train ``steps`` more optimiser steps."""
        for _ in range(steps):
            self._timed_step()

    def _timed_step(self) -> None:
        t0 = time.perf_counter()
        self.step()
        self.steps += 1
        self.elapsed += time.perf_counter() - t0

    @property
    def images(self) -> int:
        return self.steps * PEER_TRAIN["batch_size"]


class DiffusersDDPM(_Peer):
    """The diffusers recipe: ``UNet2DModel`` + ``DDPMScheduler`` + AdamW, sampled with ``DDIMScheduler``.

    As in diffusers' ``examples/unconditional_image_generation``: the scheduler's defaults (1000
    steps, clipped x0 when sampling) with the prediction type and beta schedule of ``config``
    (:data:`DIFFUSERS_CONFIGS`; the default: epsilon, linear), AdamW with betas (0.95, 0.999) and
    weight decay 1e-6, and ``EMAModel`` with warm-up (inv_gamma 1, power 3/4, max decay 0.9999)
    whose weights are sampled. Learning rate, warm-up, clipping and batch size are
    :data:`PEER_TRAIN`. With v-prediction the loss is the mean squared error to the scheduler's
    ``get_velocity`` target (as diffusers' training examples do).

    Args:
        config: a name in :data:`DIFFUSERS_CONFIGS`; it is also the trainer's name.
    """

    def __init__(self, dataset, seed: int, widths: tuple[int, ...], config: str = "diffusers"):
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel

        super().__init__(dataset, seed)
        self.name, self.recipe = config, DIFFUSERS_CONFIGS[config]
        torch.manual_seed(seed)
        self.net = unet2d(dataset.image_size, dataset.channels, widths)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=1000,
            beta_schedule=self.recipe["beta_schedule"],
            prediction_type=self.recipe["prediction_type"],
        )
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=PEER_TRAIN["lr"], betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8
        )
        self.ema = EMAModel(
            self.net.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75
        )
        self.noise = torch.Generator().manual_seed(seed + 1)

    def step(self) -> None:
        x = self.stream.next()  # (B, C, H, W) in [-1, 1]
        eps = torch.randn(x.shape, generator=self.noise)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x.shape[0],), generator=self.noise)
        xt = self.scheduler.add_noise(x, eps, t)
        target = (
            self.scheduler.get_velocity(x, eps, t)
            if self.recipe["prediction_type"] == "v_prediction"
            else eps
        )
        loss = F.mse_loss(self.net(xt, t).sample, target)
        self.set_lr(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), PEER_TRAIN["grad_clip"])
        self.optimizer.step()
        self.ema.step(self.net.parameters())

    def settings(self) -> dict:
        """The configuration worth recording in a benchmark's JSON."""
        return diffusers_settings(self.name)

    @torch.no_grad()
    def sample(self, n: int, seed: int, *, sampler: str = "ddim", steps: int = 50, batch_size: int = 250):
        """``n`` images, float (n, C, H, W) in [-1, 1], with the EMA weights.

        Args:
            sampler: "ddim" (``DDIMScheduler`` from the training config, eta 0), "dpm++2m" /
                "dpm++3m" (``DPMSolverMultistepScheduler``: DPM-Solver++, second / third order,
                with the configuration's ``dpm_options``) or "ddpm" (``DDPMScheduler``, every one
                of its 1000 steps; ``steps`` is ignored).
            steps: DDIM / DPM-Solver steps.
        """
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

        net = unet2d(self.shape[1], self.shape[0], tuple(self.net.config.block_out_channels))
        self.ema.copy_to(net.parameters())
        net.eval()
        out = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            gens = seeding.image_generators(b, seed, start=start)
            x = seeding.randn((b, *self.shape), gens)
            if sampler == "ddpm":
                sched = DDPMScheduler.from_config(self.scheduler.config)
                sched.set_timesteps(sched.config.num_train_timesteps)
            elif sampler in ("dpm++2m", "dpm++3m"):
                sched = DPMSolverMultistepScheduler.from_config(
                    self.scheduler.config, solver_order=int(sampler[5]), **self.recipe["dpm_options"]
                )
                sched.set_timesteps(steps)
            elif sampler == "ddim":
                sched = DDIMScheduler.from_config(self.scheduler.config)
                sched.set_timesteps(steps)
            else:
                raise ValueError(f"unknown sampler {sampler!r}: ddim, dpm++2m, dpm++3m or ddpm")
            for t in sched.timesteps:
                x = sched.step(net(x, t).sample, t, x, generator=gens).prev_sample
            out.append(x.clamp(-1, 1))
        return torch.cat(out)


class PythaeVAE(_Peer):
    """pythae's ``VAE`` with its default networks (the MLP encoder and decoder pythae builds when
    none are given: one hidden layer of 512, sigmoid output, so any input size works).

    Config: pythae's defaults (latent_dim 10) except the reconstruction loss, binary cross-entropy
    on pixels in [0, 1] (the ``"mse"`` default weighs the reconstruction so lightly against the KL
    term on [0, 1] data that samples are mean images; BCE is the better of pythae's two choices
    here). Adam at :data:`PEER_TRAIN`. Samples decode z ~ N(0, I), one generator per image.
    """

    name = "pythae-vae"

    def __init__(self, dataset, seed: int):
        from pythae.models import VAE, VAEConfig

        super().__init__(dataset, seed)
        torch.manual_seed(seed)
        self.config = VAEConfig(input_dim=self.shape, reconstruction_loss="bce")
        self.net = VAE(self.config)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=PEER_TRAIN["lr"])

    def step(self) -> None:
        from pythae.data.datasets import DatasetOutput

        x = (self.stream.next() + 1) / 2  # pythae's decoder ends in a sigmoid: data in [0, 1]
        loss = self.net(DatasetOutput(data=x)).loss
        self.set_lr(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), PEER_TRAIN["grad_clip"])
        self.optimizer.step()

    @torch.no_grad()
    def sample(self, n: int, seed: int):
        """``n`` decoder means from the prior, float (n, C, H, W) in [-1, 1]."""
        self.net.eval()
        z = seeding.randn((n, self.config.latent_dim), seeding.image_generators(n, seed))
        x = self.net.decoder(z)["reconstruction"].reshape(n, *self.shape)
        self.net.train()
        return x * 2 - 1
