"""The trainers the benchmarks race: genvision's default and the peer recipes (diffusers' DDPM in
pixel space, diffusers' latent pipeline built from its parts, pythae's VAE).

Peers at their best: a peer runs its defaults and, where its documentation gives a better
configuration, that one too, and a benchmark counts the better of the two (recording both). For
diffusers see :data:`DIFFUSERS_CONFIGS` and :class:`DiffusersLatent`; for pythae
:data:`PYTHAE_CONFIGS` (its benchmark convolutional networks where they fit the data, and its
Gaussian-mixture sampler beside the prior).

Models trained in two stages (genvision's ``ldm``, :class:`DiffusersLatent`) split their budget
with :func:`stage_targets`: the first ``ae_fraction`` of the training time trains the
autoencoder, the rest the latent model (genvision's default fraction: :func:`ae_fraction`).

Each is a small class with the same calls, so a benchmark can train every trainer in turns
(round-robin slices of a wall-clock budget, so that a change in the machine's load hits all of
them alike) and sample them the same way:

    peer = DiffusersDDPM(train_ds, seed=0, widths=(32, 64))   # or any class below
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
    # stage 2 of DiffusersLatent: the best recipe on latents. Latents are not in [-1, 1], so no
    # dynamic thresholding and no clipping of x0 or of the result ("clip": False)
    "diffusers-latent": {
        "prediction_type": "v_prediction",
        "beta_schedule": "squaredcos_cap_v2",
        "samplers": [("dpm++2m", 20)],
        "dpm_options": {"lambda_min_clipped": -5.1},
        "clip": False,
        "what": "diffusers' latent pipeline from its parts: AutoencoderKL (stage 1, trained as "
        "diffusers' train_autoencoderkl.py example trains it) + UNet2DModel on its latents scaled "
        "to unit variance, v-prediction, cosine betas (squaredcos_cap_v2), "
        "DPMSolverMultistepScheduler 20 steps",
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


#: pythae's VAE configurations, by network name: its default MLP (any input size), and the
#: convolutional networks of its benchmarks (``pythae.models.nn.benchmarks``; its README's "Using
#: benchmark neural nets", and its example configs: latent_dim 16 for MNIST and CIFAR), which fit
#: 1x28x28 (the MNIST nets) and 3x32x32 (the CIFAR nets) only. Each is sampled from the prior and
#: with pythae's GaussianMixtureSampler (10 components, its README's example; its README lists it
#: for every model and links the ex-post density estimation of Ghosh et al. 2020); every sampler
#: is scored and the best counts.
PYTHAE_CONFIGS = {
    "mlp": {"latent_dim": 10, "what": "pythae VAE, its default MLP networks (latent_dim 10, its default)"},
    "conv": {
        "latent_dim": 16,
        "what": "pythae VAE with its benchmark convolutional networks (Encoder_Conv_VAE_MNIST / "
        "Decoder_Conv_AE_MNIST at 1x28x28, the _CIFAR ones at 3x32x32), latent_dim 16 as its "
        "benchmark configs",
    },
}
#: how many training images the Gaussian-mixture sampler is fitted on (encoding all of MNIST
#: through the convolutional encoder would cost minutes of sampling time)
GMM_FIT_IMAGES = 10_000
#: what a benchmark's JSON says about pythae's configuration
PYTHAE_NOTE = (
    "pythae's best documented configuration for the data: its benchmark convolutional networks "
    "where they fit (1x28x28, 3x32x32; else its default MLP), binary cross-entropy, and its "
    "GaussianMixtureSampler (10 components) beside the prior; the best sampler counts"
)


def pythae_arch(channels: int, image_size: int) -> str:
    """The best pythae network for images of this shape: "conv" where its benchmark nets fit, else "mlp"."""
    return "conv" if (channels, image_size) in ((1, 28), (3, 32)) else "mlp"


# ----------------------------------------------------------------------------- two-stage budgets
def ae_fraction(spec: str, model: str = "ldm", model_config: dict | None = None) -> float:
    """genvision's share of a staged model's budget spent on its autoencoder on dataset ``spec``
    (the function ``genvision train ldm`` splits its length with)."""
    from genvision.training.staged import ae_fraction as genvision_fraction

    return genvision_fraction(model, spec, dict(model_config or {}))


def stage_targets(spent: float, total: float, fraction: float) -> tuple[float, float]:
    """Cumulative training seconds of (stage 1, stage 2) once ``spent`` of ``total`` seconds are spent.

    Stage 1 (the autoencoder) gets the first ``fraction * total`` seconds, stage 2 the rest, as
    ``genvision train ldm`` splits ``--minutes`` (``training/run.py``: ``split_length``). A
    round-robin race hands out the budget in slices; each slice continues whichever stage the
    cumulative time falls in (a slice may end one stage and start the next).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1) (got {fraction})")
    spent = min(max(spent, 0.0), total)
    first = min(spent, fraction * total)
    return first, spent - first


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
        self.train_until(self.budget + seconds)

    def train_until(self, seconds: float) -> None:
        """Continue training until the run's training time reaches ``seconds`` (no-op when it has)."""
        if seconds <= self.budget and self.budget > 0:
            return
        first, self.budget = self.budget == 0, seconds
        self._train(first, minutes=self.budget / 60)

    @property
    def started(self) -> bool:
        return self.budget > 0

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


class GenvisionStaged:
    """genvision's latent model (``ldm``) trained in its two stages through ``genvision.train``.

    What ``genvision train ldm --minutes M`` does (``training/run.py``: ``train_staged``), in
    slices a round-robin race can interleave: the ``autoencoder`` with its own defaults for the
    first ``ae_fraction`` of the budget (genvision's default, :func:`ae_fraction`), then ``ldm``
    with its own defaults on it (``autoencoder=DIR``). The two stages are sibling run directories
    under ``out`` (``autoencoder/`` and ``ldm/``) so each continues with ``resume=True``.

    Args:
        spec: dataset spec.
        seed: training seed.
        out: folder for the two runs.
        total_seconds: the whole training budget (the split needs it up front).
        model_config: config overrides for both stages (``image_size`` for a resized folder).
        model: the latent model's registry name.
    """

    name = "genvision"

    def __init__(
        self,
        spec: str,
        seed: int,
        out: Path,
        total_seconds: float,
        model_config: dict | None = None,
        model: str = "ldm",
    ):
        config = dict(model_config or {})
        self.model, self.total, self.fraction = model, float(total_seconds), ae_fraction(spec, model, config)
        self.ae = Genvision(spec, seed, Path(out) / "autoencoder", model="autoencoder", model_config=config)
        self.main = Genvision(
            spec,
            seed,
            Path(out) / model,
            model=model,
            model_config={**config, "autoencoder": str(Path(out) / "autoencoder")},
        )
        self.spent = 0.0

    def train_for(self, seconds: float) -> None:
        self.spent += seconds
        first, second = stage_targets(self.spent, self.total, self.fraction)
        if first > 0:
            self.ae.train_until(first)
        if second > 0:
            self.main.train_until(second)

    @property
    def ready(self) -> bool:
        """Whether the latent model has trained (before that there is nothing to sample)."""
        return self.main.started

    def _stages(self) -> list:
        return [self.ae] + ([self.main] if self.main.started else [])

    @property
    def steps(self) -> int:
        """Optimiser steps of both stages together (:meth:`stages` has each)."""
        return sum(g.steps for g in self._stages())

    @property
    def images(self) -> int:
        return sum(g.images for g in self._stages())

    @property
    def elapsed(self) -> float:
        return sum(g.elapsed for g in self._stages())

    def stages(self) -> dict:
        """Steps and training seconds of each stage, and the split, for the JSON."""
        return {
            "ae_fraction": self.fraction,
            **{g.model: {"steps": g.steps, "train_seconds": round(g.elapsed, 1)} for g in self._stages()},
        }

    def load(self):
        return self.main.load()

    @torch.no_grad()
    def sample(self, n: int, seed: int, **options):
        return self.main.sample(n, seed, **options)


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
            out.append(x.clamp(-1, 1) if self.recipe.get("clip", True) else x)
        return torch.cat(out)


#: stage 1 of :class:`DiffusersLatent` as diffusers' ``examples/research_projects/autoencoderkl/
#: train_autoencoderkl.py`` trains an AutoencoderKL: its loss terms, their weights and its AdamW
#: settings (its learning rate, 4.5e-6, is for fine-tuning a pretrained VAE: here every peer gets
#: :data:`PEER_TRAIN`)
AUTOENCODERKL_RECIPE = {
    "reconstruction": "l2: squared error summed over pixels, mean over the batch (its --rec_loss default)",
    "kl_scale": 1e-6,
    "perceptual": "left out: its LPIPS term (weight 0.5) needs pretrained VGG weights, which nothing "
    "here may download",
    "adversarial": "off: its patch discriminator starts at step 50,001 (--disc_start), beyond any budget here",
    "optimizer": {"name": "AdamW", "betas": (0.9, 0.999), "weight_decay": 1e-2, "eps": 1e-8},
    "ema": "none (its --use_ema is off by default)",
}


class _Latents:
    """A training set as posterior means and spreads: ``batch`` draws one posterior sample per
    image, scaled (what diffusers' training scripts do with ``latent_dist.sample() *
    scaling_factor`` each step, with the frozen encoder run once beforehand)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, scale: float):
        self.mean, self.std, self.scale = mean, std, scale
        self.channels, self.image_size = mean.shape[1], mean.shape[2]

    def __len__(self) -> int:
        return len(self.mean)

    def batch(self, idx: torch.Tensor, generator=None):
        eps = torch.randn(self.mean[idx].shape, generator=generator)
        return (self.mean[idx] + self.std[idx] * eps) * self.scale, None


class DiffusersLatent:
    """diffusers' latent pipeline built from its own parts, trained in two stages in one budget.

    Stage 1: ``AutoencoderKL`` shaped like genvision's ``autoencoder`` at this size (its widths,
    one block per level, 4 latent channels, the same halvings), trained as
    :data:`AUTOENCODERKL_RECIPE` says. Stage 2: the training set encoded once (posterior means and
    spreads; not counted as training time, as genvision's latent cache is not), the scaling factor
    1 / std of one posterior sample per image (unit variance, as Stable Diffusion's factor was
    measured), then :class:`DiffusersDDPM` in the ``diffusers-latent`` configuration on those
    latents (a ``UNet2DModel`` shaped like genvision's ``ldm`` network at this size). The budget
    is split as genvision's ``ldm`` splits it (:func:`stage_targets` with :func:`ae_fraction`).
    Samples: DPM-Solver++ 20 steps from the per-image start noise, latents divided by the factor
    and decoded.

    Args:
        dataset: training images.
        seed: seed of the weights, the data order and the noise.
        total_seconds: the whole training budget (the split needs it up front).
        fraction: stage 1's share (default: genvision's ``ldm`` default).
    """

    name = "diffusers-latent"

    def __init__(self, dataset, seed: int, total_seconds: float, fraction: float | None = None):
        from diffusers import AutoencoderKL

        self.dataset, self.seed, self.total = dataset, seed, float(total_seconds)
        ae = gv.create("autoencoder", image_size=dataset.image_size, channels=dataset.channels).config
        self.ae_widths = tuple(ae.base_channels * 2**i for i in range(ae.downsample + 1))
        ldm = gv.create("ldm", image_size=dataset.image_size, channels=dataset.channels).config
        self.fraction = ldm.ae_fraction if fraction is None else fraction  # genvision's split on this data
        self.unet_widths = tuple(ldm.base_channels * m for m in ldm.channel_mults)
        torch.manual_seed(seed)
        levels = len(self.ae_widths)
        self.vae = AutoencoderKL(
            in_channels=dataset.channels,
            out_channels=dataset.channels,
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=self.ae_widths,
            layers_per_block=ae.num_res_blocks,
            latent_channels=ae.latent_channels,
            norm_num_groups=8,  # diffusers' default 32 does not divide genvision's width 16
            sample_size=dataset.image_size,
        )
        o = AUTOENCODERKL_RECIPE["optimizer"]
        self.optimizer = torch.optim.AdamW(
            self.vae.parameters(),
            lr=PEER_TRAIN["lr"],
            betas=o["betas"],
            weight_decay=o["weight_decay"],
            eps=o["eps"],
        )
        self.stream = _BatchStream(dataset, PEER_TRAIN["batch_size"], seed)
        self.noise = torch.Generator().manual_seed(seed + 2)
        self.ae_steps, self.ae_elapsed, self.spent = 0, 0.0, 0.0
        self.unet, self.scale, self.encode_seconds = None, None, None

    # -- training -------------------------------------------------------------------
    def ae_step(self) -> dict:
        """One optimiser step of stage 1; returns its loss terms (floats)."""
        x = self.stream.next()  # (B, C, H, W) in [-1, 1]
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample(generator=self.noise)).sample
        rec = F.mse_loss(recon, x, reduction="none").sum() / len(x)
        kl = posterior.kl().sum() / len(x)
        loss = rec + AUTOENCODERKL_RECIPE["kl_scale"] * kl
        warm = min(1.0, (self.ae_steps + 1) / PEER_TRAIN["warmup"])
        for g in self.optimizer.param_groups:
            g["lr"] = PEER_TRAIN["lr"] * warm
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.vae.parameters(), PEER_TRAIN["grad_clip"])
        self.optimizer.step()
        return {"loss": loss.item(), "rec": rec.item(), "kl": kl.item()}

    def train_for(self, seconds: float) -> None:
        """Train until ``seconds`` more of the budget are spent, in whichever stage it falls."""
        self.spent += seconds
        first, second = stage_targets(self.spent, self.total, self.fraction)
        while self.ae_elapsed < first:
            t0 = time.perf_counter()
            self.ae_step()
            self.ae_steps += 1
            self.ae_elapsed += time.perf_counter() - t0
        if second > 0:
            if self.unet is None:
                self.start_latents()
            if second > self.unet.elapsed:
                self.unet.train_for(second - self.unet.elapsed)

    @torch.no_grad()
    def start_latents(self, batch_size: int = 500) -> None:
        """Freeze the autoencoder, encode the training set, measure the scale, build stage 2."""
        t0 = time.perf_counter()
        self.vae.eval()
        means, stds = [], []
        for start in range(0, len(self.dataset), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(self.dataset)))
            posterior = self.vae.encode(self.dataset.batch(idx)[0]).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
        mean, std = torch.cat(means), torch.cat(stds)
        draw = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(self.seed + 3))
        self.scale = 1.0 / float(draw.std().clamp(min=1e-6))
        self.encode_seconds = time.perf_counter() - t0
        latents = _Latents(mean, std, self.scale)
        self.unet = DiffusersDDPM(latents, self.seed, self.unet_widths, config="diffusers-latent")

    # -- what a race reads ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether stage 2 has started (before that there is nothing to sample)."""
        return self.unet is not None

    @property
    def steps(self) -> int:
        return self.ae_steps + (self.unet.steps if self.unet else 0)

    @property
    def images(self) -> int:
        return self.steps * PEER_TRAIN["batch_size"]

    @property
    def elapsed(self) -> float:
        return self.ae_elapsed + (self.unet.elapsed if self.unet else 0.0)

    def stages(self) -> dict:
        out = {
            "ae_fraction": self.fraction,
            "autoencoder": {"steps": self.ae_steps, "train_seconds": round(self.ae_elapsed, 1)},
        }
        if self.unet is not None:
            out["unet"] = {"steps": self.unet.steps, "train_seconds": round(self.unet.elapsed, 1)}
            out["encode_seconds"] = round(self.encode_seconds, 1)
            out["scaling_factor"] = self.scale
        return out

    def settings(self) -> dict:
        """The configuration worth recording in a benchmark's JSON."""
        return {
            **diffusers_settings("diffusers-latent"),
            "autoencoder": {
                "block_out_channels": list(self.ae_widths),
                "layers_per_block": self.vae.config.layers_per_block,
                "latent_channels": self.vae.config.latent_channels,
                "norm_num_groups": self.vae.config.norm_num_groups,
                "recipe": AUTOENCODERKL_RECIPE,
            },
            "unet_block_out_channels": list(self.unet_widths),
            "budget_split": f"autoencoder {self.fraction:g} of the training time, as genvision's ldm",
        }

    @torch.no_grad()
    def sample(self, n: int, seed: int, *, batch_size: int = 250):
        """``n`` images, float (n, C, H, W) in [-1, 1]: DPM-Solver++ 20 steps on latents, decoded."""
        if self.unet is None:
            raise RuntimeError("stage 2 has not started: train for more than the autoencoder's share first")
        sampler, steps = self.unet.recipe["samplers"][0]
        z = self.unet.sample(n, seed, sampler=sampler, steps=steps, batch_size=batch_size)
        self.vae.eval()
        return torch.cat([self.vae.decode(c / self.scale).sample for c in z.split(batch_size)]).clamp(-1, 1)


class PythaeVAE(_Peer):
    """pythae's ``VAE`` in the configuration :data:`PYTHAE_CONFIGS` names ``arch``.

    ``"mlp"``: the networks pythae builds when none are given (one hidden layer of 512, sigmoid
    output, any input size), latent_dim 10. ``"conv"``: the convolutional encoder and decoder of
    pythae's benchmarks for MNIST (1x28x28) or CIFAR (3x32x32), latent_dim 16. Both with binary
    cross-entropy on pixels in [0, 1] rather than pythae's default ``"mse"`` (which its benchmark
    configs keep): pythae's mse term is half the squared error, so on [0, 1] data the KL term
    outweighs it and samples are mean images; BCE is the better of its two choices here. Adam at
    :data:`PEER_TRAIN`. Samples decode z from the prior N(0, I) (``sample``) or from pythae's
    ``GaussianMixtureSampler`` fitted to the training embeddings (``sample_gmm``), one generator
    per image either way.

    Args:
        arch: "mlp", "conv" or None (:func:`pythae_arch` of the data's shape).
    """

    name = "pythae-vae"

    def __init__(self, dataset, seed: int, arch: str | None = None):
        from pythae.models import VAE, VAEConfig

        super().__init__(dataset, seed)
        self.dataset = dataset
        self.arch = arch or pythae_arch(dataset.channels, dataset.image_size)
        if self.arch not in PYTHAE_CONFIGS:
            raise ValueError(f"arch must be one of {sorted(PYTHAE_CONFIGS)} (got {self.arch!r})")
        torch.manual_seed(seed)
        self.config = VAEConfig(
            input_dim=self.shape,
            latent_dim=PYTHAE_CONFIGS[self.arch]["latent_dim"],
            reconstruction_loss="bce",
        )
        self.net = VAE(self.config, **self._networks())
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=PEER_TRAIN["lr"])
        self.gmm = None

    def _networks(self) -> dict:
        if self.arch == "mlp":
            return {}
        if self.shape == (1, 28, 28):
            from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST as Dec
            from pythae.models.nn.benchmarks.mnist import Encoder_Conv_VAE_MNIST as Enc
        elif self.shape == (3, 32, 32):
            from pythae.models.nn.benchmarks.cifar import Decoder_Conv_AE_CIFAR as Dec
            from pythae.models.nn.benchmarks.cifar import Encoder_Conv_VAE_CIFAR as Enc
        else:
            raise ValueError(f"pythae's benchmark networks take 1x28x28 or 3x32x32 images, not {self.shape}")
        return {"encoder": Enc(self.config), "decoder": Dec(self.config)}

    def settings(self) -> dict:
        return {
            **PYTHAE_CONFIGS[self.arch],
            "arch": self.arch,
            "reconstruction_loss": "bce",
            "note": PYTHAE_NOTE,
        }

    def step(self) -> None:
        from pythae.data.datasets import DatasetOutput

        x = (self.stream.next() + 1) / 2  # pythae's decoder ends in a sigmoid: data in [0, 1]
        loss = self.net(DatasetOutput(data=x)).loss
        self.set_lr(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), PEER_TRAIN["grad_clip"])
        self.optimizer.step()
        self.gmm = None  # a fitted mixture belongs to the weights it was fitted on

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means of latents z (n, latent_dim), float (n, C, H, W) in [-1, 1]."""
        self.net.eval()
        x = torch.cat([self.net.decoder(c)["reconstruction"] for c in z.split(500)])
        self.net.train()
        return x.reshape(len(z), *self.shape) * 2 - 1

    def sample(self, n: int, seed: int):
        """``n`` decoder means from the prior N(0, I), float (n, C, H, W) in [-1, 1]."""
        return self.decode(seeding.randn((n, self.config.latent_dim), seeding.image_generators(n, seed)))

    def fit_gmm(self) -> None:
        """Fit pythae's ``GaussianMixtureSampler`` (10 components) on up to :data:`GMM_FIT_IMAGES`
        training images (the first ones of a seeded shuffle)."""
        from pythae.samplers import GaussianMixtureSampler, GaussianMixtureSamplerConfig

        g = torch.Generator().manual_seed(self.stream.generator.initial_seed() + 7)
        idx = torch.randperm(len(self.dataset), generator=g)[:GMM_FIT_IMAGES]
        x = (self.dataset.batch(idx)[0] + 1) / 2
        sampler = GaussianMixtureSampler(
            model=self.net, sampler_config=GaussianMixtureSamplerConfig(n_components=10)
        )
        self.net.eval()
        with torch.random.fork_rng():  # its encoder draws z ~ q(z | x): keep the global RNG as it was
            torch.manual_seed(self.stream.generator.initial_seed())
            sampler.fit(x)
        self.net.train()
        m = sampler.gmm
        self.gmm = {
            "weights": torch.as_tensor(m.weights_, dtype=torch.float64),
            "means": torch.as_tensor(m.means_, dtype=torch.float32),
            "chol": torch.linalg.cholesky(torch.as_tensor(m.covariances_, dtype=torch.float64)).float(),
        }

    def sample_gmm(self, n: int, seed: int):
        """``n`` decoder means of latents from the fitted mixture (fitted first if needed): image k
        picks its component and its noise with generator k."""
        if self.gmm is None:
            self.fit_gmm()
        cdf = self.gmm["weights"].cumsum(0) / self.gmm["weights"].sum()
        z = []
        for gen in seeding.image_generators(n, seed):
            k = min(
                int(torch.searchsorted(cdf, torch.rand(1, generator=gen, dtype=torch.float64))), len(cdf) - 1
            )
            eps = torch.randn(self.config.latent_dim, generator=gen)
            z.append(self.gmm["means"][k] + self.gmm["chol"][k] @ eps)
        return self.decode(torch.stack(z))
