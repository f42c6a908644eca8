"""Denoising diffusion (Ho et al., 2020) with DDIM sampling (Song et al., 2021) and classifier-free
guidance (Ho & Salimans, 2022): config and model glue.

The pieces live beside this file: ``schedules.py`` (alpha_bar), ``losses.py`` (objectives,
conversions, likelihood bound), ``samplers.py`` (ddpm, ddim, dpm++2m), ``guidance.py``; the network is
``nn.unet.UNet``. Training draws ``t``, the noise and the label dropout from the per-image
generators the trainer passes (else the global RNG); sampling draws only from per-image
generators (``seed``) or the one given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ... import seeding
from ...nn.unet import UNet
from ..base import GenerativeModel, ModelConfig
from . import losses, samplers, schedules
from .guidance import with_guidance


def default_channel_mults(image_size: int) -> tuple[int, ...]:
    """UNet levels for a square image: halve while the side stays even and >= 4 (at most 4 levels).

    The first halving doubles the width; later levels keep it (8 -> (1, 2); 16, 28 -> (1, 2, 2);
    32, 64 -> (1, 2, 2, 2)).
    """
    mults = [1]
    side = image_size
    while len(mults) < 4 and side % 2 == 0 and side // 2 >= 4:
        mults.append(2)
        side //= 2
    return tuple(mults)


# How the defaults were chosen (8x8 digits, 1347 train images, CPU). Domain FID of 1000 samples
# against the train split, in a small CNN judge's features (test-vs-train floor 3.59 at this N;
# per-pixel independent baseline 292). Batch 128, AdamW, warm-up 100, grad clip 1, EMA 25k images;
# step time on 2 quiet cores, base 32: 0.13 s (base 48: 0.28 s, base 64: 0.45 s).
#   base 32, (1, 2), 2 blocks, cosine, lr 1e-3 (lr 2e-4 and 2e-3 were worse; a linear schedule
#   too; 1 block per level 0.87x the step time but worse at equal steps; attention at 4x4 1.6x slower)
#   Objective and sampler, 1400 steps (the demo recipe), two training seeds each (2026-11-24):
#                     DDPM-1000   DDIM-50     DDIM-10       DPM++2M-10   DPM++2M-20
#     eps objective   2.42 / -    5.92 / 4.90 21.2 / 16.4   11.2 / 9.5   - / 5.48
#     v objective     1.98 / -    3.94 / 6.36 11.1 / 14.1   3.36 / 5.33  2.97 / 4.69
#   (DPM++2M at 15 and 30 steps: 3.01 / 4.69 and 2.95 / 5.30, so 20 is past the knee.)
#   v is the default: an eps network's x0 at the first step (sqrt(alpha_bar) ~ 1e-4 on the cosine
#   schedule) is its noise error amplified 10^4 times, which the clip turns into a random +-1 image
#   that DDIM then carries (replacing that one x0 by 0 took eps DDIM-10 from 21.2 to 9.1); v
#   predicts x0 directly where the signal vanishes. dpm++2m with 20 calls is the default sampler:
#   better than DDIM-50 at 2.5x fewer calls. DDPM-1000 (ancestral) is still the best and 50x slower.
#   conditional, guidance 1 / 1.5 / 2 / 3: 0.6 / 2.4 / 4.7 / 11.5 (eps, DDIM-50, older judge)
#   Few-step distillation (`genvision distill`, teacher_calls 4, the teacher's lr 1e-3, 600 steps,
#   222 s on 2 loaded cores) of the demo-recipe v model, N = 1000, sampling seeds 0 / 1 / 2
#   (benchmarks/sampling_speed.py full mode, 2026-11-24):
#     DDPM-1000 1.98 / 4.25 / 6.77 (mean 4.34)   DDIM-10 11.14 / 12.80 / 11.88 (11.94)
#     DPM++2M-10 3.36 / 5.66 / 4.74 (4.59)        distilled student DDIM-10 4.80 / 5.72 / 5.06 (5.19)
#   The ODE itself (DPM++2M-100) scores 3.37 / 4.84 / 4.33 (4.18): a faithful student cannot beat
#   it, and it does not beat DDPM-1000 on every seed. 4 vs 8 teacher calls at equal time score the
#   same (lr 5e-4, seeds 0 / 1: 4.28 / 6.07 after 600 steps with 4, 4.26 / 6.13 after 300 with 8);
#   the loss levels off after ~200 steps.
@dataclass
class DiffusionConfig(ModelConfig):
    """Diffusion model settings; the defaults are tuned for 8x8 digits on a CPU (numbers above).

    ``steps`` is the number of denoiser calls of the ``dpm++2m`` and ``ddim`` samplers; ``ddpm``
    always takes every one of the ``num_train_timesteps``.
    """

    supports_conditional: ClassVar[bool] = True
    objective: str = "v"  # v | eps | x0: what the UNet predicts
    schedule: str = "cosine"  # linear | cosine
    num_train_timesteps: int = 1000
    base_channels: int = 32
    # () = by image size: 8 -> (1, 2), 16/28 -> (1, 2, 2), 32+ -> (1, 2, 2, 2)
    channel_mults: tuple[int, ...] = ()
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = ()
    attention_heads: int = 4
    dropout: float = 0.0
    cond_drop_prob: float = 0.1  # label dropout for classifier-free guidance (conditional only)
    guidance_scale: float = 1.0  # default for sampling a conditional model; 1 = no guidance
    sampler: str = "dpm++2m"  # dpm++2m | ddim | ddpm
    steps: int = 20  # denoiser calls of dpm++2m / ddim
    eta: float = 0.0  # ddim noise: 0 deterministic, 1 = ddpm's posterior noise
    lr: float = 1e-3
    clip_x0: bool = True  # clamp predicted x0 to [-1, 1] at every sampling step
    # few-step distillation (``genvision distill``): a trained diffusion directory whose
    # probability-flow ODE this model learns to follow in ``steps`` DDIM steps
    teacher: str = ""
    teacher_calls: int = 4  # teacher denoiser calls per student step

    def __post_init__(self):
        super().__post_init__()
        self.channel_mults = tuple(self.channel_mults) or default_channel_mults(self.image_size)
        self.attention_resolutions = tuple(self.attention_resolutions)
        T = self.num_train_timesteps
        if self.objective not in losses.OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(losses.OBJECTIVES)} (got {self.objective!r})"
            )
        if self.schedule not in schedules.SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(schedules.SCHEDULES)} (got {self.schedule!r})"
            )
        if T < 2:
            raise ValueError(f"num_train_timesteps must be >= 2 (got {T}); 1000 is usual")
        if self.base_channels < 4:
            raise ValueError(f"base_channels must be >= 4 (got {self.base_channels}); try 32 or 64")
        if any(m < 1 for m in self.channel_mults):
            raise ValueError(
                f"channel_mults must be ints >= 1, or () for the size-based default (got {self.channel_mults})"
            )
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**(len(channel_mults)-1) = {factor}; "
                f"use fewer channel_mults or a size divisible by {factor}"
            )
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1 (got {self.num_res_blocks})")
        sides = [self.image_size // 2**i for i in range(len(self.channel_mults))]
        bad = [r for r in self.attention_resolutions if r not in sides]
        if bad:
            raise ValueError(
                f"attention_resolutions {bad} are not feature-map sides of this UNet; choose from {sides} or ()"
            )
        if self.attention_heads < 1:
            raise ValueError(f"attention_heads must be >= 1 (got {self.attention_heads})")
        for r in self.attention_resolutions:
            width = self.base_channels * self.channel_mults[sides.index(r)]
            if width % self.attention_heads:
                raise ValueError(
                    f"attention_heads ({self.attention_heads}) must divide the width {width} at side {r}; "
                    "change attention_heads or base_channels"
                )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.cond_drop_prob < 1:
            raise ValueError(f"cond_drop_prob must be in [0, 1) (got {self.cond_drop_prob}); 0.1 is usual")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0 (got {self.guidance_scale}); 1 means no guidance")
        if self.sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(samplers.SAMPLERS)} (got {self.sampler!r})")
        if not 1 <= self.steps <= T:
            raise ValueError(f"steps must be in 1..num_train_timesteps={T} (got {self.steps}); lower steps")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0 (got {self.eta}); 0 is deterministic DDIM")
        if self.eta > 0 and self.sampler != "ddim":
            raise ValueError(
                f"eta applies to the ddim sampler only (sampler is {self.sampler!r}); set sampler=ddim"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")
        if self.teacher_calls < 1:
            raise ValueError(f"teacher_calls must be >= 1 (got {self.teacher_calls}); 4 is usual")
        if self.teacher:
            self.teacher = str(Path(self.teacher).expanduser().resolve())
            if self.sampler != "ddim" or self.eta != 0:
                raise ValueError(
                    f"a distilled model learns deterministic DDIM steps (sampler=ddim, eta=0), not "
                    f"sampler={self.sampler} eta={self.eta}; set sampler=ddim eta=0"
                )


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 25000, "warmup": 100}
#: the same for few-step distillation (the student starts from the teacher's weights)
DISTILL_TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 5000, "warmup": 0}


class Diffusion(GenerativeModel):
    """DDPM / DDIM over a UNet; class-conditional with classifier-free guidance when configured."""

    family = "diffusion"
    config_class = DiffusionConfig
    sample_options = ("sampler", "steps", "eta", "guidance_scale", "variance")

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        c = config
        self.net = UNet(
            c.channels,
            c.image_size,
            base_channels=c.base_channels,
            channel_mults=c.channel_mults,
            num_res_blocks=c.num_res_blocks,
            attention_resolutions=c.attention_resolutions,
            num_classes=c.num_classes if c.conditional else 0,
            dropout=c.dropout,
            heads=c.attention_heads,
        )
        # derived from the config, so not saved with the weights
        self.register_buffer(
            "alpha_bar", schedules.alpha_bar(c.schedule, c.num_train_timesteps), persistent=False
        )
        if c.teacher:
            # a student is trained at its K DDIM timesteps only: its network is no longer a
            # denoiser at the others, so the likelihood bound (which calls every one) means nothing
            self.log_likelihood = None
            self.capability_notes = {
                "log_likelihood": f"a distilled student ({c.steps} DDIM steps) has no meaningful likelihood "
                f"bound; measure its teacher {c.teacher}"
            }

    # -- training -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Simple loss: MSE between the UNet output and the objective's target at a random t.

        Args:
            x: (B, C, H, W) clean images in [-1, 1].
            y: (B,) labels (conditional models; negative = unlabeled) or None.
            generator: None (global RNG) or a list of B per-image generators; each image draws
                its timestep, its noise and its label dropout from it, in that order.
        """
        c = self.config
        if c.teacher:
            return self._distillation_loss(x, y, generator)
        b, dev = x.shape[0], x.device
        u = seeding.rand((b,), generator, dev)  # (B,) uniform -> timestep
        t = (u * c.num_train_timesteps).long().clamp(max=c.num_train_timesteps - 1)
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        a = self.alpha_bar[t].view(b, 1, 1, 1)
        xt = losses.add_noise(x, eps, a)
        labels = self._labels(b, y, generator, dev)
        pred = self.net(xt, t, labels)
        mse = losses.mse_per_image(pred, losses.target(c.objective, x, eps, a))  # (B,)
        return {"loss": mse.mean(), "mse": mse.mean().detach()}

    def _labels(self, b: int, y, generator, dev) -> torch.Tensor | None:
        """Training labels: the null class where unlabelled or dropped (classifier-free guidance)."""
        c = self.config
        if not c.conditional:
            return None
        null = torch.full((b,), c.num_classes, dtype=torch.long, device=dev)
        labels = null if y is None else y.to(dev).long()
        drop = seeding.rand((b,), generator, dev) < c.cond_drop_prob
        return torch.where(drop | (labels < 0), null, labels)

    # -- few-step distillation ----------------------------------------------------------
    @property
    def teacher(self) -> Diffusion:
        """The frozen teacher of a distilled model (loaded on first use, kept out of the weights)."""
        c = self.config
        if not c.teacher:
            raise ValueError("this model has no teacher; distil one with `genvision distill TEACHER_DIR`")
        if getattr(self, "_teacher", None) is None:
            from ...model_dir import load_model_dir  # temporary: the run layer injects it

            teacher = load_model_dir(c.teacher)
            if getattr(teacher, "family", None) != "diffusion":
                raise ValueError(
                    f"teacher {c.teacher} holds a {teacher.registry_name}; point it at a diffusion model"
                )
            mine, theirs = self.net.state_dict(), teacher.net.state_dict()
            if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
                raise ValueError(
                    f"teacher {c.teacher} has another network than this model; "
                    "`genvision distill TEACHER_DIR` copies the teacher's settings"
                )
            for field in ("objective", "schedule", "num_train_timesteps", "conditional"):
                if getattr(teacher.config, field) != getattr(c, field):
                    raise ValueError(
                        f"teacher {c.teacher} has {field}={getattr(teacher.config, field)!r}, this model "
                        f"{getattr(c, field)!r}; `genvision distill TEACHER_DIR` copies the teacher's settings"
                    )
            # outside the module tree: not a parameter, not saved, never trained
            object.__setattr__(self, "_teacher", teacher.eval().requires_grad_(False))
        return self._teacher.to(self.device)

    def init_from_data(self, batch: torch.Tensor) -> None:
        """A distilled model starts from its teacher's weights (the EMA ones it samples with)."""
        if self.config.teacher:
            self.net.load_state_dict(self.teacher.net.state_dict())

    def _distillation_loss(self, x, y, generator) -> dict:
        """One student DDIM step must land where ``teacher_calls`` teacher ODE steps do.

        Image b draws one of the ``steps`` DDIM intervals ``t -> s`` of the student's sampler
        (``samplers.timesteps``; after the last comes the clean end), its noise ``x_t ~ q(x_t | x)``
        at ``t``, and (conditional) its label dropout, from its own generator. The teacher solves
        the probability-flow ODE from ``x_t`` to ``s`` (:func:`samplers.ode_segment`, the teacher's
        clipping included); :func:`losses.ddim_x0_target` turns where it lands into the x0 the
        student must predict, and the loss is the MSE on the objective's output for that x0 (the
        v objective weighs x0 errors by 1 + SNR, as in Salimans & Ho, 2022).
        """
        c = self.config
        b, dev = x.shape[0], x.device
        grid = torch.tensor(samplers.timesteps(c.num_train_timesteps, c.steps) + [-1], device=dev)
        u = seeding.rand((b,), generator, dev)
        i = (u * c.steps).long().clamp(max=c.steps - 1)
        t, s = grid[i], grid[i + 1]
        eps = seeding.randn(x.shape, generator, dev, x.dtype)
        a_t = self.alpha_bar[t].view(b, 1, 1, 1)
        a_s = torch.where(s < 0, 1.0, self.alpha_bar[s.clamp(min=0)]).view(b, 1, 1, 1)  # -1: clean
        xt = losses.add_noise(x, eps, a_t)
        labels = self._labels(b, y, generator, dev)
        # the teacher's own sampling denoiser (objective, clipping), unguided, per-image timesteps
        teacher_x0 = self.teacher._denoiser(labels, 1.0)
        with torch.no_grad():
            xs = samplers.ode_segment(teacher_x0, xt, self.alpha_bar, t, s, c.teacher_calls)
            x0_target = losses.ddim_x0_target(xt, xs, a_t, a_s)
        pred = self.net(xt, t, labels)
        mse = losses.mse_per_image(pred, losses.from_x0(c.objective, x0_target, xt, a_t))
        return {"loss": mse.mean(), "mse": mse.mean().detach()}

    def train_defaults(self) -> dict:
        """Trainer settings the defaults were tuned with (notes above DiffusionConfig)."""
        return dict(DISTILL_TRAIN_DEFAULTS if self.config.teacher else TRAIN_DEFAULTS)

    # -- sampling -------------------------------------------------------------------
    def denoise_x0(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted clean image at timestep ``t`` from the UNet, not clipped; y=None is the null class.

        ``t``: an int, or a (B,) long tensor of per-image timesteps (distillation's teacher).
        """
        if not torch.is_tensor(t):
            t = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        pred = self.net(x, t, y)
        a = self.alpha_bar[t].view(-1, *([1] * (x.dim() - 1)))
        return losses.to_x0(self.config.objective, pred, x, a)

    def _denoiser(self, labels: torch.Tensor | None, scale: float):
        """The sampler's (x_t, t) -> x0: guidance when labelled, then clipping to [-1, 1] if configured."""
        guided = with_guidance(self.denoise_x0, labels, scale) if labels is not None else self.denoise_x0
        if not self.config.clip_x0:
            return guided
        return lambda x, t: guided(x, t).clamp(-1, 1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        y=None,
        seed: int | None = None,
        generator=None,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        variance: str | None = None,
        **options,
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1] on the model's device.

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image from
                its own generator (after its start noise), so image k stays fixed by (seed, k).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            sampler: "ddim", "dpm++2m" or "ddpm" (default: config.sampler).
            steps: denoiser calls of ddim / dpm++2m (default config.steps); ddpm always uses
                num_train_timesteps.
            eta: ddim noise level (default config.eta).
            guidance_scale: classifier-free guidance of a conditional model (default config.guidance_scale).
            variance: ddpm step variance, "posterior" (default) or "beta".
        """
        self.check_sample_options(options)
        c = self.config
        T = c.num_train_timesteps
        sampler = c.sampler if sampler is None else sampler
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(samplers.SAMPLERS)}")
        if steps is not None and not 1 <= steps <= T:
            raise ValueError(f"steps must be in 1..{T} (num_train_timesteps) (got {steps})")
        if sampler == "ddpm":
            if steps is not None and steps != T:
                raise ValueError(
                    f"the ddpm sampler takes all {T} steps; use sampler='dpm++2m' or 'ddim' for fewer steps"
                )
        elif variance is not None:
            raise ValueError("variance applies to the ddpm sampler only; use sampler='ddpm'")
        if eta is not None and sampler != "ddim":
            raise ValueError("eta applies to the ddim sampler only; use sampler='ddim'")
        labels = self.check_labels(n, y)
        if guidance_scale is not None and not c.conditional:
            raise ValueError("guidance_scale applies to conditional models only (e.g. ddpm-cond); drop it")
        scale = c.guidance_scale if guidance_scale is None else guidance_scale

        was_training = self.training
        self.eval()
        try:
            gens = seeding.resolve(n, seed, generator, self.device)
            x = seeding.randn((n, c.channels, c.image_size, c.image_size), gens, self.device)
            if c.conditional and labels is None:
                # no labels given: a uniform class per image, drawn from the image's own generator
                labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
            denoise = self._denoiser(labels, scale)
            if sampler == "ddpm":
                x = samplers.ddpm(
                    denoise, x, self.alpha_bar, variance=variance or "posterior", generator=gens
                )
            elif sampler == "ddim":
                steps = steps or c.steps
                x = samplers.ddim(
                    denoise, x, self.alpha_bar, steps, eta=c.eta if eta is None else eta, generator=gens
                )
            else:
                x = samplers.SAMPLERS[sampler](denoise, x, self.alpha_bar, steps or c.steps, generator=gens)
        finally:
            self.train(was_training)
        return x.clamp(-1, 1)

    @property
    def likelihood_note(self) -> str:
        """How ``log_likelihood`` treats the discrete levels (copied onto bpd/nll metric cards)."""
        return (
            f"variational lower bound (Ho et al. 2020, eq. 5) with a discretised Gaussian decoder on "
            f"{self.config.levels} levels; each image draws its noise from its own generator"
        )

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """Variational lower bound on log p(x), nats per image (Ho et al., 2020, eq. 5).

        The model is the ``ddpm`` sampler's (posterior variance, predicted x0 clipped when
        ``clip_x0``) down to the step where the noise is a quarter of a grey level, then a
        discretised Gaussian decoder on ``config.levels`` levels (``losses.variational_bound``).
        About one UNet call per training step for each batch; each image draws its noise from its
        own generator (``seed``), so the value does not depend on the batch.

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            y: labels for a conditional model (None = the null class).

        Returns:
            (B,) float64 lower bound on log p(x) in nats (bits per dim = -value / (C*H*W*ln 2)).
        """
        x = x.to(self.device)
        labels = None if y is None else self.check_labels(x.shape[0], y)
        gens = generator if generator is not None else seeding.image_generators(x.shape[0], seed, self.device)

        denoise = self._denoiser(labels, 1.0)
        was_training = self.training
        self.eval()
        try:
            return losses.variational_bound(denoise, x, self.alpha_bar, self.config.levels, generator=gens)
        finally:
            self.train(was_training)

    def describe_start(self, n: int, seed: int | None = 0) -> str:
        """What ``sample(n, seed=seed)`` starts from: the noise shape and image 0's first values."""
        c = self.config
        shape = f"Gaussian noise ({n}, {c.channels}, {c.image_size}, {c.image_size})"
        if seed is None:
            return f"{shape} from the given generator"
        gens = seeding.image_generators(1, seed, self.device)
        first = seeding.randn((1, c.channels, c.image_size, c.image_size), gens, self.device)
        values = ", ".join(f"{v:.4f}" for v in first.flatten()[:4].tolist())
        return f"{shape}, first values [{values}, ...]"
