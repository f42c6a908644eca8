"""What every model of the diffusion family shares: a UNet denoiser, its labels, its sampling.

A diffusion-family model (DDPM, flow matching, EDM, their latent and consistency variants) is a
network that, given a noisy image and its noise level, predicts the clean image. The models
differ in how they train it (objective, noise levels, weighting) and in how they read its output
back as a clean image (:meth:`Denoiser.denoise_x0`); the samplers (``samplers.py``) see only
that clean-image prediction on a grid of continuous noise levels ``sigma`` (the notation of
``samplers``), so every sampler runs on every model.

:class:`DenoiserConfig` holds the fields of the network, the labels and sampling;
:class:`Denoiser` builds the UNet, draws training labels (classifier-free guidance's dropout),
and samples: start noise, labels, the model's level grid for the chosen sampler
(:meth:`Denoiser.sampling_levels`), guidance and clipping, then the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ...nn.unet import UNet
from ..base import GenerativeModel, ModelConfig
from . import samplers, schedules
from .guidance import with_guidance

#: the most denoiser calls a continuous-time model's sampler may take
MAX_STEPS = 10_000


def default_channel_mults(image_size: int) -> tuple[int, ...]:
    """UNet levels for a square image: halve while the side stays even and >= 4 (at most 4 levels).

    The first halving doubles the width; later levels keep it (8 -> (1, 2); 16, 28 -> (1, 2, 2);
    32, 64 -> (1, 2, 2, 2)). A 7x7 latent gets (1,): no halving.
    """
    mults = [1]
    side = image_size
    while len(mults) < 4 and side % 2 == 0 and side // 2 >= 4:
        mults.append(2)
        side //= 2
    return tuple(mults)


@dataclass
class DenoiserConfig(ModelConfig):
    """The network, labels and sampling settings every diffusion-family model has.

    ``steps`` is the number of denoiser calls of a sampler (``ddpm`` on a discrete model always
    takes every training step).
    """

    supports_conditional: ClassVar[bool] = True
    caps: ClassVar[dict[str, int]] = {
        "base_channels": 1024,
        "channel_mults": 16,
        "num_res_blocks": 32,
        "attention_heads": 64,
        "steps": MAX_STEPS,
    }
    lr: float = 1e-3
    cond_drop_prob: float = 0.1  # label dropout for classifier-free guidance (conditional only)
    # the network (nn.unet.UNet)
    base_channels: int = 32
    # () = by the network's side: 8 -> (1, 2), 16/28 -> (1, 2, 2), 32+ -> (1, 2, 2, 2)
    channel_mults: tuple[int, ...] = ()
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = ()
    attention_heads: int = 4
    dropout: float = 0.0
    # sampling defaults (``sample`` options override them)
    sampler: str = "dpm++2m"  # a name in samplers.SAMPLERS
    steps: int = 20  # denoiser calls
    eta: float = 0.0  # ddim noise: 0 deterministic, 1 = ddpm's posterior noise
    guidance_scale: float = 1.0  # default for sampling a conditional model; 1 = no guidance
    clip_x0: bool = True  # clamp predicted x0 to [-1, 1] at every sampling step

    #: the side and channels the UNet works at (the image's; a latent model's are its latent's)
    @property
    def net_side(self) -> int:
        return self.image_size

    def __post_init__(self):
        super().__post_init__()
        self.channel_mults = tuple(self.channel_mults) or default_channel_mults(self.net_side)
        self.attention_resolutions = tuple(self.attention_resolutions)
        if self.base_channels < 4:
            raise ValueError(f"base_channels must be >= 4 (got {self.base_channels}); try 32 or 64")
        if any(m < 1 for m in self.channel_mults):
            raise ValueError(
                f"channel_mults must be ints >= 1, or () for the size-based default (got {self.channel_mults})"
            )
        self.check_network()
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1 (got {self.num_res_blocks})")
        if self.attention_heads < 1:
            raise ValueError(f"attention_heads must be >= 1 (got {self.attention_heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.cond_drop_prob < 1:
            raise ValueError(f"cond_drop_prob must be in [0, 1) (got {self.cond_drop_prob}); 0.1 is usual")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0 (got {self.guidance_scale}); 1 means no guidance")
        if self.sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(samplers.SAMPLERS)} (got {self.sampler!r})")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0 (got {self.eta}); 0 is deterministic DDIM")
        if self.eta > 0 and "eta" not in samplers.SAMPLERS[self.sampler].options:
            raise ValueError(
                f"eta applies to the ddim sampler only (sampler is {self.sampler!r}); set sampler=ddim"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")

    def check_network(self) -> None:
        """The UNet's levels and attention against the side it works at."""
        side = self.net_side
        factor = 2 ** (len(self.channel_mults) - 1)
        if side % factor:
            raise ValueError(
                f"the network's side {side} must be divisible by 2**(len(channel_mults)-1) = {factor}; "
                f"use fewer channel_mults or a size divisible by {factor}"
            )
        sides = [side // 2**i for i in range(len(self.channel_mults))]
        bad = [r for r in self.attention_resolutions if r not in sides]
        if bad:
            raise ValueError(
                f"attention_resolutions {bad} are not feature-map sides of this UNet; choose from {sides} or ()"
            )
        for r in self.attention_resolutions:
            width = self.base_channels * self.channel_mults[sides.index(r)]
            if width % self.attention_heads:
                raise ValueError(
                    f"attention_heads ({self.attention_heads}) must divide the width {width} at side {r}; "
                    "change attention_heads or base_channels"
                )


class Denoiser(GenerativeModel):
    """Base of the diffusion family: a UNet denoiser sampled through :data:`samplers.SAMPLERS`.

    Subclasses define the training ``loss``, :meth:`denoise_x0` (the clean-image prediction at a
    VP-scaled ``x`` and level ``sigma``), :meth:`sigma_range` and :meth:`sampling_levels`.
    """

    family = "diffusion"
    trains_on_unlabeled = True  # the null class of classifier-free guidance
    config_class = DenoiserConfig
    sample_options = ("sampler", "steps", "eta", "guidance_scale", "variance")
    start_note = "denoised by the sampler"

    def __init__(self, config: DenoiserConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        channels, side = self.net_io()
        self.net = UNet(channels, side, **self.unet_options())

    def unet_options(self) -> dict:
        """The UNet's keyword arguments from the config (a text model adds its cross-attention)."""
        c = self.config
        return dict(
            base_channels=c.base_channels,
            channel_mults=c.channel_mults,
            num_res_blocks=c.num_res_blocks,
            attention_resolutions=c.attention_resolutions,
            num_classes=c.num_classes if c.conditional else 0,
            dropout=c.dropout,
            heads=c.attention_heads,
        )

    def net_io(self) -> tuple[int, int]:
        """(channels, side) of what the UNet denoises: the image's here, a latent's in ``latent.py``."""
        return self.config.channels, self.config.image_size

    @property
    def noise_shape(self) -> tuple[int, ...]:
        channels, side = self.net_io()
        return (channels, side, side)

    # -- training -------------------------------------------------------------------
    def _labels(self, b: int, y, generator, dev) -> torch.Tensor | None:
        """Training labels: the null class where unlabelled or dropped (classifier-free guidance)."""
        c = self.config
        if not c.conditional:
            return None
        null = torch.full((b,), c.num_classes, dtype=torch.long, device=dev)
        labels = null if y is None else y.to(dev).long()
        drop = seeding.rand((b,), generator, dev) < c.cond_drop_prob
        return torch.where(drop | (labels < 0), null, labels)

    # -- what subclasses define ------------------------------------------------------
    def denoise_x0(self, x: torch.Tensor, sigma, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted clean image (not clipped) of the VP-scaled ``x`` at level ``sigma`` (float or (B,))."""
        raise NotImplementedError

    def sigma_range(self) -> tuple[float, float]:
        """(lowest, highest) noise level the network was trained at."""
        raise NotImplementedError

    def sampling_levels(self, sampler: str, steps: int) -> torch.Tensor:
        """The (N + 1,) float64 level grid ``sampler`` runs on for ``steps`` denoiser calls."""
        raise NotImplementedError

    def check_steps(self, sampler: str, steps: int | None) -> None:
        """Refuse a ``steps`` this model cannot sample with (one line naming the range)."""
        if steps is not None and not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be in 1..{MAX_STEPS} (got {steps})")

    def karras_levels(self, steps: int, sampler: str) -> torch.Tensor:
        """The EDM grid (rho = 7) over this model's trained range for ``steps`` calls of ``sampler``."""
        lo, hi = self.sigma_range()
        return samplers.karras_levels(lo, hi, samplers.SAMPLERS[sampler].intervals(steps))

    # -- sampling -------------------------------------------------------------------
    def denoiser(self, labels: torch.Tensor | None, scale: float, clip_x0: bool | None = None):
        """The sampler's (x, sigma) -> x0: guidance when labelled, then clipping to [-1, 1] if
        ``clip_x0`` (default: the config's)."""
        guided = with_guidance(self.denoise_x0, labels, scale) if labels is not None else self.denoise_x0
        if not (self.config.clip_x0 if clip_x0 is None else clip_x0):
            return guided
        return lambda x, sigma: guided(x, sigma).clamp(-1, 1)

    def sampler_options(self, sampler: str, steps: int | None, given: dict) -> dict:
        """Check ``sampler``, ``steps`` and the per-sampler options; the options to pass."""
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(self.samplers())}")
        if sampler not in self.samplers():
            raise ValueError(
                f"{self.registry_name} does not sample with {sampler}; use one of {', '.join(self.samplers())}"
            )
        self.check_steps(sampler, steps)
        samplers.check_options(sampler, given)
        spec = samplers.SAMPLERS[sampler]
        options = {k: v for k, v in given.items() if v is not None}
        # options the config holds a default for (eta)
        options.update(
            {k: getattr(self.config, k) for k in spec.options if k not in options and hasattr(self.config, k)}
        )
        return options

    def samplers(self) -> list[str]:
        """The sampler names this model takes (consistency sampling is for consistency models)."""
        return [n for n, s in samplers.SAMPLERS.items() if not s.consistency]

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
        prompts=None,
        constraint=None,
        resample: int = 0,
        init: torch.Tensor | None = None,
        strength: float | None = None,
        noise: torch.Tensor | None = None,
        clip_x0: bool | None = None,
        **options,
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1] on the model's device.

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image from
                its own generator (after its start noise), so image k stays fixed by (seed, k).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            sampler: a name in ``samplers.SAMPLERS`` (default: config.sampler).
            steps: denoiser calls (default config.steps); ``ddpm`` on a discrete model always
                takes every training step.
            eta: ddim noise level (default config.eta).
            guidance_scale: classifier-free guidance of a conditional model (default config.guidance_scale).
            variance: ddpm step variance, "posterior" (default) or "beta".
            prompts: text models (``takes_prompts``): one string per image, or one for all; not
                with ``y``. None: a class-conditional text model draws classes as above (their
                template captions), any other samples with the empty prompt.
            constraint: restoration's zero-shot route (``apps/restore.py``): a function that
                projects a clean-image estimate (n, C, H, W) in pixels onto the images consistent
                with a measurement; every denoiser output passes through it (:meth:`constrained`),
                and the samplers then read their noise estimate from the projected image.
            resample: with a constraint, RePaint's resampling (``samplers.repaint``): ancestral
                steps on the sampler's level grid, each repeated R more times after diffusing
                back (the filled region re-harmonises with the given one; each R costs a pass).
            init, strength: SDEdit (``apps/translation.py``): start from the images ``init`` (n, C, H,
                W) in [-1, 1] noised to the level at flow time ``strength`` times the grid's top
                (snapped down to a level of the grid), and run the rest of the grid from there:
                0 returns ``init``, 1 ignores it. The noise is image k's own draw, as in sampling.
            noise: the start (n, *noise_shape) instead of a fresh draw, e.g. :meth:`invert`'s.
            clip_x0: clip the clean estimates to [-1, 1] (default: the config's); an inversion is
                reconstructed without clipping, as it was inverted.
        """
        self.check_sample_options(options, steps=steps, eta=eta, guidance_scale=guidance_scale)
        c = self.config
        sampler = c.sampler if sampler is None else sampler
        opts = self.sampler_options(sampler, steps, {"eta": eta, "variance": variance})
        labels = self.check_labels(n, y)
        if prompts is not None:
            if not self.takes_prompts:
                raise ValueError(
                    f"{self.registry_name} takes no prompts; text models do (ddpm-text, ldm-text)"
                )
            if labels is not None:
                raise ValueError("give labels or prompts, not both")
            prompts = self.check_prompts(n, prompts)
        if guidance_scale is not None and not (c.conditional or self.takes_prompts):
            raise ValueError("guidance_scale applies to conditional models only (e.g. ddpm-cond); drop it")
        scale = c.guidance_scale if guidance_scale is None else guidance_scale
        steps = steps or c.steps
        spec = samplers.SAMPLERS[sampler]
        if spec.second_order:
            opts["calls"] = steps

        if (init is None) != (strength is None):
            raise ValueError("SDEdit needs both init (the images) and strength (0..1)")
        if strength is not None and not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1] (got {strength}); 0 keeps the input, 1 ignores it")
        if (init is not None or noise is not None) and (constraint is not None or resample):
            raise ValueError("init / noise do not combine with a restoration constraint")

        with self.eval_mode():
            gens = seeding.resolve(n, seed, generator, self.device)
            x = seeding.randn((n, *self.noise_shape), gens, self.device)
            if noise is not None:
                x = self._check_state(noise, n, "noise").to(self.device, x.dtype)
            if c.conditional and labels is None and prompts is None:
                # no labels given: a uniform class per image, drawn from the image's own generator
                labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
            levels = self.sampling_levels(sampler, steps)
            if init is not None:
                levels = samplers.from_strength(levels, strength)
                if len(levels) < 2:  # strength 0 (or below the lowest level): the input itself
                    return init.to(self.device).float().clamp(-1, 1)
                z0 = self._check_state(self.sampler_state(init.to(self.device).float()), n, "init")
                top = float(levels[0])
                x = (z0 + top * x) / (1 + top**2) ** 0.5  # VP-scaled at the start level
                opts.pop("calls", None)  # second order on every step of the shorter grid
            cond = prompts if prompts is not None else labels
            denoise = self.denoiser(cond, scale, clip_x0)
            if constraint is not None:
                denoise = self.constrained(denoise, constraint)
            if resample and constraint is None:
                raise ValueError("resample applies with a constraint (restoration) only")
            if resample:  # RePaint: ancestral steps on the sampler's grid, each repeated
                x = samplers.repaint(denoise, x, levels, gens, resample=resample)
            else:
                x = spec.fn(denoise, x, levels, gens, **opts)
            x = self.finish(x)
        return x.clamp(-1, 1)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The sampler's output as images (a latent model decodes it)."""
        return x

    def sampler_state(self, images: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [-1, 1] as the clean state the sampler works on (a latent model
        encodes them); the inverse of :meth:`finish`."""
        return images

    def _check_state(self, z: torch.Tensor, n: int, what: str) -> torch.Tensor:
        z = torch.as_tensor(z)
        if tuple(z.shape) != (n, *self.noise_shape):
            raise ValueError(
                f"{what} must have the shape {(n, *self.noise_shape)} for {n} images of {self.registry_name} "
                f"(got {tuple(z.shape)})"
            )
        return z

    @torch.no_grad()
    def invert(
        self,
        images: torch.Tensor,
        y=None,
        *,
        steps: int | None = None,
        iterations: int = 3,
        prompts=None,
        guidance_scale: float | None = None,
    ) -> torch.Tensor:
        """The start noise from which the deterministic Euler sampler (flow ODE = DDIM) in ``steps``
        calls, without clipping, returns ``images``: (n, *noise_shape), VP-scaled at the top level.

        Each step of the sampler's grid is run backwards by solving the sampler's own update for
        its start: ``h_b = h_a + (t_b - t_a) d(h_b, b)`` by ``iterations`` fixed-point iterations
        from the explicit step (0 iterations: plain DDIM inversion, which evaluates ``d`` where the
        step starts). ``sample(n, noise=z, sampler="euler", steps=steps, clip_x0=False)`` with the
        same labels or prompts then reconstructs the images; how closely is measured, not promised
        (``apps/translation.py`` reports the PSNR).
        """
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0 (got {iterations})")
        c = self.config
        n = len(images)
        labels = self.check_labels(n, y)
        if prompts is not None:
            prompts = self.check_prompts(n, prompts)
        scale = c.guidance_scale if guidance_scale is None else guidance_scale
        steps = steps or c.steps
        self.check_steps("euler", steps)
        levels = schedules.level_list(self.sampling_levels("euler", steps))[::-1]  # 0 first
        with self.eval_mode():
            cond = prompts if prompts is not None else labels
            denoise = self.denoiser(cond, scale, clip_x0=False)
            h = self.sampler_state(images.to(self.device).float())  # flow coordinates at level 0

            def slope(h, level):
                s, t = samplers.to_coordinates("flow", level)
                return (h - denoise(h / s, level)) / t

            for a, b in zip(levels, levels[1:]):
                ta, tb = samplers.to_coordinates("flow", a)[1], samplers.to_coordinates("flow", b)[1]
                start = h
                h_b = start + (tb - ta) * slope(h, a if a > 0 else b)
                for _ in range(iterations):
                    if a == 0:  # the last sampling step lands on the clean estimate: x0(h_b) = h_a
                        h_b = h_b + (start - denoise(h_b / samplers.to_coordinates("flow", b)[0], b))
                    else:
                        h_b = start + (tb - ta) * slope(h_b, b)
                h = h_b
            return h / samplers.to_coordinates("flow", levels[-1])[0]

    def constrained(self, denoise, constraint):
        """``denoise`` with every clean estimate projected by ``constraint`` (pixels: directly)."""
        return lambda x, sigma: constraint(denoise(x, sigma))
