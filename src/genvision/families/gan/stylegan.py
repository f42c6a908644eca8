"""StyleGAN (Karras et al. 2019, 2020): a style-based generator, sized for 8-32 px on a CPU.

The generator maps z to an intermediate latent w (mapping network), feeds one w per layer as a
style to modulated, demodulated convolutions that grow a learned constant into the image, adds
per-pixel noise with learned strengths, and sums ToRGB outputs across resolutions (networks in
``stylegan_nets.py``). The discriminator is StyleGAN2's residual D. Objectives come from
``losses.py`` (non-saturating logistic loss by default, R1), DiffAugment from ``augment.py``.

Training is the GAN family's two phases, run by the generic trainer each step:

    discriminator:  ws = styles(z [, z2]) (mixed); fake = G(ws) (no gradient to G)
                    loss = D-loss(D(aug(real)), D(aug(fake)))
                           [+ r1_every * gamma / 2 * R1(real)   every r1_every steps (lazy)]
    generator:      loss = G-loss(D(aug(G(ws))))                  (D's weights get no gradient)
                           [+ pl_every * pl_weight * PL(G, ws)  every pl_every steps (lazy)]
    after the generator step: w_avg <- w_avg + (1 - 0.995) (mean w of the batch - w_avg);
                              pl_mean likewise with pl_decay; step += 1

Style mixing regularisation: with probability ``style_mixing`` an image's styles come from two
latents, ws[:k] = w(z1) and ws[k:] = w(z2), the crossover k uniform in 1..num_ws-1.
Path-length regularisation (StyleGAN2, eq. 4): PL = (|J_w^T y|_2 - a)^2 for y ~ N(0, I) / sqrt(HW)
and a the running mean of the lengths; it keeps a fixed step in w a fixed-size change in the image.
State changes (w_avg, pl_mean, step) happen in ``after_step``, never in ``loss``, so a loss call
outside training (the trainer's FLOP count) changes nothing and resume stays exact.

Randomness: image i's generator draws, in order, z1, z2, the mixing draw u and the crossover
draw, then one noise map per conv layer (then augmentation and the PL probe). Sampling draws z
then the noise maps, so image k of ``sample(n, seed=S)`` depends only on (S, k).

Truncation (``truncation`` psi): w <- w_avg + psi (w - w_avg) around the tracked mean w_avg;
psi = 0 gives w_avg itself (images then differ by noise only), psi = 1 is off.
Style mixing at sampling time: :meth:`StyleGAN.style_mix`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import augment, losses
from .stylegan_nets import MappingNetwork, ResidualDiscriminator, SynthesisNetwork

#: the objectives of losses.py StyleGAN takes (WGAN-GP's penalty is not applied: R1 is)
STYLEGAN_LOSSES = tuple(k for k in losses.LOSSES if k != "wgan-gp")
#: decay of the tracked mean w per generator step (StyleGAN2's w_avg_beta)
W_AVG_BETA = 0.995
#: default widths (``base_channels`` 0): the width at full resolution, doubling per halving
WIDTH_SMALL, WIDTH_LARGE = 32, 16


@dataclass
class StyleGANConfig(ModelConfig):
    """StyleGAN settings; defaults train on 8x8 digits and 28-32 px images on a CPU.

    ``latent_dim`` is the size of z and of w. ``base_channels`` is the conv width at full
    resolution, doubling per halving up to 8x (0 = 32 up to 16 px, 16 above). ``r1_weight`` is
    R1's gamma, applied every ``r1_every`` discriminator steps (scaled by r1_every); likewise
    ``pl_weight`` every ``pl_every`` generator steps (0 = off: it roughly doubles a generator
    step's cost). ``style_mixing`` is the probability that a training image mixes two latents.
    ``truncation`` is the default psi of sampling (1 = off).
    """

    caps: ClassVar[dict[str, int]] = {
        "latent_dim": 4096,
        "mapping_layers": 16,
        "base_channels": 1024,
        "r1_every": 1000,
        "pl_every": 1000,
    }
    latent_dim: int = 64
    mapping_layers: int = 4
    mapping_lr_mul: float = 0.01
    base_channels: int = 0
    loss: str = "ns"  # minimax | ns | wgan | hinge (losses.py); R1 is the regulariser, so no wgan-gp
    lr_g: float = 5e-3  # StyleGAN2: 2.5e-3; the short digits runs: docs/notes/gan.md
    lr_d: float = 5e-3
    betas_g: tuple[float, float] = (0.0, 0.99)
    betas_d: tuple[float, float] = (0.0, 0.99)
    r1_weight: float = 1.0  # gamma
    r1_every: int = 4
    pl_weight: float = 0.0  # StyleGAN2 uses 2; off by default (cost: docs/notes/gan.md)
    pl_every: int = 4
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    tanh_output: bool = True  # tanh on the summed RGB (StyleGAN2: linear; docs/notes/gan.md)
    augment: str = ""  # DiffAugment policies, e.g. "color,translation"; "" = off
    truncation: float = 1.0  # default psi at sampling

    def __post_init__(self):
        super().__post_init__()
        self.betas_g, self.betas_d = tuple(self.betas_g), tuple(self.betas_d)
        self.base_channels = self.base_channels or (WIDTH_SMALL if self.image_size <= 16 else WIDTH_LARGE)
        for name in ("latent_dim", "mapping_layers", "base_channels", "r1_every", "pl_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.loss not in STYLEGAN_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(STYLEGAN_LOSSES)} (got {self.loss!r})")
        for name in ("lr_g", "lr_d", "mapping_lr_mul"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(self, name)})")
        for name in ("betas_g", "betas_d"):
            betas = getattr(self, name)
            if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
                raise ValueError(f"{name} must be two numbers in [0, 1) (got {betas}); try 0,0.99")
        if self.r1_weight < 0 or self.pl_weight < 0:
            raise ValueError(f"r1_weight and pl_weight must be >= 0 (got {self.r1_weight}, {self.pl_weight})")
        if not 0 < self.pl_decay <= 1:
            raise ValueError(f"pl_decay must be in (0, 1] (got {self.pl_decay}); 0.01 is usual")
        if not 0 <= self.style_mixing <= 1:
            raise ValueError(f"style_mixing must be in [0, 1] (got {self.style_mixing}); 0.9 is usual")
        augment.parse_policy(self.augment)
        if not 0 <= self.truncation <= 1:
            raise ValueError(f"truncation must be in [0, 1] (got {self.truncation}); 1 = off")


#: batch 32 and EMA half-life 10k images as StyleGAN2's small configs; measurements: docs/notes/gan.md
TRAIN_DEFAULTS = {"batch_size": 32, "ema_half_life": 10000, "grad_clip": 0.0, "monitor_every": 250}


class StyleGAN(GenerativeModel):
    """Mapping network, synthesis network and a residual discriminator; see the module docstring."""

    family = "gan"
    config_class = StyleGANConfig
    sample_options = ("truncation",)

    def __init__(self, config: StyleGANConfig):
        super().__init__(config)
        c = config
        self.mapping = MappingNetwork(c.latent_dim, c.mapping_layers, c.mapping_lr_mul)
        self.synthesis = SynthesisNetwork(
            c.latent_dim, c.base_channels, c.channels, c.image_size, tanh=c.tanh_output
        )
        self.discriminator = ResidualDiscriminator(c.base_channels, c.channels, c.image_size)
        self.policy = augment.parse_policy(c.augment)
        self.register_buffer("w_avg", torch.zeros(c.latent_dim))  # tracked mean w
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean path length
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # generator steps taken
        self._pending: dict[str, torch.Tensor] = {}  # this step's batch statistics, folded in after_step

    @property
    def num_ws(self) -> int:
        """Style inputs of the synthesis network; crossover indices run over 0..num_ws."""
        return self.synthesis.num_ws

    # -- training -------------------------------------------------------------------
    @property
    def phases(self) -> list[Phase]:
        """Discriminator, then generator (mapping + synthesis), each with its own Adam."""
        c = self.config
        generator = list(self.mapping.parameters()) + list(self.synthesis.parameters())
        return [
            Phase(
                "discriminator",
                list(self.discriminator.parameters()),
                OptimizerSpec("adam", c.lr_d, c.betas_d),
            ),
            Phase("generator", generator, OptimizerSpec("adam", c.lr_g, c.betas_g)),
        ]

    def ema_parameters(self) -> list:
        """The generator's weights (mapping and synthesis): only they are sampled from."""
        return list(self.mapping.parameters()) + list(self.synthesis.parameters())

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        """After the generator's update: fold the batch's mean w and path length in; count the step."""
        if phase != "generator":
            return
        if "w" in self._pending:
            # the first step sets w_avg outright: a zero start would pull psi < 1 towards 0 for
            # the first few hundred steps
            beta = W_AVG_BETA if self.step > 0 else 0.0
            self.w_avg.copy_(self._pending["w"].lerp(self.w_avg, beta))
        if "pl" in self._pending:
            self.pl_mean.lerp_(self._pending["pl"], self.config.pl_decay)
        self._pending = {}
        self.step += 1

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "discriminator", generator=None
    ) -> dict:
        """One phase's loss and diagnostics.

        Args:
            x: (B, C, H, W) real images in [-1, 1] (the generator phase uses only their count).
            y: ignored (StyleGAN here is unconditional).
            phase: "discriminator" or "generator".
            generator: None or B per-image generators (draw order: module docstring).

        Returns:
            {"loss", "d_real", "d_fake"} (D(x) for sigmoid losses, critic scores otherwise),
            "r1" on R1 steps, "pl" and "pl_mean" on path-length steps.
        """
        if phase not in ("discriminator", "generator"):
            raise ValueError(f"unknown phase {phase!r}; StyleGAN phases: discriminator, generator")
        b, dev = x.shape[0], x.device
        ws = self.training_styles(b, generator, dev)
        noise = self.draw_noise(b, generator, dev)
        if phase == "discriminator":
            return self._discriminator_loss(x, ws, noise, generator)
        return self._generator_loss(ws, noise, generator)

    def training_styles(self, b: int, generator, device) -> torch.Tensor:
        """ws (B, num_ws, D) of a training batch, with style mixing regularisation."""
        c, n = self.config, self.num_ws
        z1 = seeding.randn((b, c.latent_dim), generator, device)
        z2 = seeding.randn((b, c.latent_dim), generator, device)
        u = seeding.rand((b,), generator, device)
        cut = seeding.rand((b,), generator, device)
        w1, w2 = self.mapping(torch.cat([z1, z2])).chunk(2)  # (B, D) each
        crossover = 1 + (cut * (n - 1)).long().clamp(max=n - 2)  # (B,) uniform in 1..n-1
        mixed = (torch.arange(n, device=device)[None] >= crossover[:, None]) & (u < c.style_mixing)[:, None]
        self._pending["w"] = w1.detach().mean(dim=0)
        return torch.where(mixed[:, :, None], w2[:, None], w1[:, None])  # (B, n, D)

    def draw_noise(self, b: int, generator, device) -> list[torch.Tensor]:
        """One (B, 1, s, s) standard normal map per conv layer, from the per-image generators."""
        return [seeding.randn((b, *shape), generator, device) for shape in self.synthesis.noise_shapes()]

    def _discriminator_loss(self, x, ws, noise, generator) -> dict:
        c = self.config
        with torch.no_grad():
            fake = self.synthesis(ws, noise)
        real_in = augment.diff_augment(x, self.policy, generator)
        fake_in = augment.diff_augment(fake, self.policy, generator)
        regularise = c.r1_weight > 0 and int(self.step) % c.r1_every == 0
        if regularise:
            real_in = real_in.detach().requires_grad_(True)
        r, f = self.discriminator(real_in), self.discriminator(fake_in)  # (B,) logits each
        loss = losses.discriminator_loss(c.loss, r, f)
        out = self._scores(r, f)
        if regularise:
            r1 = losses.r1_penalty(r, real_in)
            loss = loss + 0.5 * c.r1_weight * c.r1_every * r1
            out["r1"] = r1.detach()
        return {"loss": loss, **out}

    def _generator_loss(self, ws, noise, generator) -> dict:
        c = self.config
        regularise = c.pl_weight > 0 and int(self.step) % c.pl_every == 0
        # D's weights need no gradient here (as in GAN._generator_loss)
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        for p in d_params:
            p.requires_grad_(False)
        try:
            fake = self.synthesis(ws, noise)
            f = self.discriminator(augment.diff_augment(fake, self.policy, generator))
        finally:
            for p in d_params:
                p.requires_grad_(True)
        loss = losses.generator_loss(c.loss, f)
        out = {"d_fake": self._scores(None, f)["d_fake"]}
        if regularise:
            lengths = path_lengths(fake, ws, generator)  # (B,)
            pl = (lengths - self.pl_mean).square().mean()
            loss = loss + c.pl_weight * c.pl_every * pl
            self._pending["pl"] = lengths.detach().mean()
            out.update(pl=pl.detach(), pl_mean=self.pl_mean.clone())
        return {"loss": loss, **out}

    def _scores(self, r, f) -> dict:
        squash = torch.sigmoid if self.config.loss in losses.SIGMOID_LOSSES else (lambda t: t)
        out = {"d_fake": squash(f.detach()).mean()}
        if r is not None:
            out["d_real"] = squash(r.detach()).mean()
        return out

    # -- sampling -------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent z: (latent_dim,), standard normal."""
        return (self.config.latent_dim,)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w_avg + psi (w - w_avg): psi = 1 leaves w, psi = 0 gives the tracked mean w."""
        if not 0 <= psi <= 1:
            raise ValueError(f"truncation must be in [0, 1] (got {psi}); 1 = off")
        return self.w_avg.lerp(w, psi) if psi != 1 else w

    def _psi(self, truncation) -> float:
        return self.config.truncation if truncation is None else float(truncation)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] for latents z (B, latent_dim), without noise inputs
        (a latent alone fixes the image, as interpolation needs); y must be None."""
        self.check_labels(z.shape[0], y)
        with self.eval_mode():
            w = self.mapping(z.to(self.device))
            ws = w[:, None].expand(-1, self.num_ws, -1)
            return self.synthesis(ws, [None] * len(self.synthesis.convs)).clamp(-1, 1)

    @torch.no_grad()
    def sample(
        self, n: int, y=None, seed: int | None = None, generator=None, *, truncation=None, **options
    ) -> torch.Tensor:
        """Draw ``n`` images, (n, C, H, W) in [-1, 1] on the model's device.

        Args:
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            truncation: psi in [0, 1] in w space around the tracked mean w (default
                config.truncation; 1 = off, 0 = the mean w for every image).
        """
        self.check_sample_options(options, truncation=truncation)
        psi = self._psi(truncation)
        self.check_labels(n, y)
        gens = seeding.resolve(n, seed, generator, self.device)
        w, noise = self._draw(n, gens, psi)
        with self.eval_mode():
            return self.synthesis(w[:, None].expand(-1, self.num_ws, -1), noise).clamp(-1, 1)

    def _draw(self, n: int, gens, psi: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each image's (truncated) w (n, D) and noise maps, drawn as :meth:`sample` draws them."""
        z = seeding.randn((n, self.config.latent_dim), gens, self.device)
        noise = self.draw_noise(n, gens, self.device)
        with self.eval_mode():
            return self.truncate(self.mapping(z), psi), noise

    @torch.no_grad()
    def style_mix(self, seeds_a, seeds_b, crossover: int, *, truncation=None) -> torch.Tensor:
        """Images with coarse styles from A and fine styles from B: (len(A), len(B), C, H, W).

        Args:
            seeds_a, seeds_b: image seeds, the seeds of each image's own generator: image k of
                ``sample(n, seed=S)`` has ``seeding.image_seed(S, k)``.
            crossover: k in 0..num_ws: styles ws[:k] (and those layers' noise) come from row
                image A_i, ws[k:] from column image B_j. 0 gives B_j, num_ws gives A_i, each
                exactly as ``sample`` draws it.
            truncation: psi, applied to every w (default config.truncation).
        """
        self.check_sample_options({}, truncation=truncation)
        seeds_a, seeds_b = list(seeds_a), list(seeds_b)
        if not seeds_a or not seeds_b:
            raise ValueError("style mixing needs at least one seed on each side")
        if isinstance(crossover, bool) or not isinstance(crossover, int) or not 0 <= crossover <= self.num_ws:
            raise ValueError(
                f"crossover must be an integer in 0..{self.num_ws} (got {crossover!r}); "
                f"{self.registry_name} has {self.num_ws} style inputs, coarse to fine"
            )
        psi = self._psi(truncation)
        ra, rb = len(seeds_a), len(seeds_b)
        wa, na = self._draw(ra, _generators(seeds_a, self.device), psi)
        wb, nb = self._draw(rb, _generators(seeds_b, self.device), psi)
        ws = torch.cat(
            [
                wa[:, None, None].expand(-1, rb, crossover, -1),
                wb[None, :, None].expand(ra, -1, self.num_ws - crossover, -1),
            ],
            dim=2,
        ).reshape(ra * rb, self.num_ws, -1)  # (A*B, num_ws, D), row-major over (i, j)
        noise = [  # conv layer l takes style l: its noise comes from the same side as its style
            (a[:, None] if layer < crossover else b[None])
            .expand(ra, rb, *a.shape[1:])
            .reshape(ra * rb, *a.shape[1:])
            for layer, (a, b) in enumerate(zip(na, nb))
        ]
        with self.eval_mode():
            images = self.synthesis(ws, noise).clamp(-1, 1)
        return images.reshape(ra, rb, *images.shape[1:])

    def style_mix_picture(self, seed_a: int, seed_b: int, rows: int, cols: int, crossover: int, **kw):
        """The style-mixing figure as a flat grid of (rows + 1) x (cols + 1) images (nrow = cols + 1).

        Row 0: a blank corner, then images 0..cols-1 of ``sample(seed=seed_b)`` (fine styles);
        column 0: images 0..rows-1 of ``sample(seed=seed_a)`` (coarse styles); inside: their mixes.
        """
        a = [seeding.image_seed(seed_a, k) for k in range(rows)]
        b = [seeding.image_seed(seed_b, k) for k in range(cols)]
        mixed = self.style_mix(a, b, crossover, **kw)  # (rows, cols, C, H, W)
        pure_a = self.style_mix(a, b[:1], self.num_ws, **kw)[:, 0]  # (rows, C, H, W)
        pure_b = self.style_mix(a[:1], b, 0, **kw)[0]  # (cols, C, H, W)
        blank = -torch.ones_like(pure_b[:1])
        top = torch.cat([blank, pure_b])[None]  # (1, cols + 1, C, H, W)
        body = torch.cat([pure_a[:, None], mixed], dim=1)  # (rows, cols + 1, C, H, W)
        return torch.cat([top, body]).flatten(0, 1)

    noise_name = "Gaussian latent z"
    start_note = "through the mapping network, then noise maps per layer"

    @property
    def noise_scaling(self) -> str:
        t = self.config.truncation
        return f" truncated in w by {t}" if t != 1 else ""


def _generators(seeds, device) -> list[torch.Generator]:
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**64:
            raise ValueError(f"image seeds must be integers in [0, 2**64) (got {s!r})")
        out.append(torch.Generator(device).manual_seed(s))
    return out


def path_lengths(images: torch.Tensor, ws: torch.Tensor, generator=None) -> torch.Tensor:
    """|J_w^T y|_2 per image for y ~ N(0, I) / sqrt(H W) (StyleGAN2, eq. 4), differentiable.

    Args:
        images: (B, C, H, W) generated from ``ws`` (the graph kept).
        ws: (B, num_ws, D) the styles; the length averages the squared gradient over the num_ws
            copies of w, then takes the root.

    Returns:
        (B,) lengths, with a graph for double backpropagation.
    """
    h, w = images.shape[2:]
    y = seeding.randn(images.shape, generator, images.device, images.dtype) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()
