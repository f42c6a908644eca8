"""Variational autoencoder (Kingma & Welling, 2014) and beta-VAE (Higgins et al., 2017): config and glue.

    q(z | x) = N(mean(x), diag exp(logvar(x)))      p(z) = N(0, I)      p(x | z): ``likelihood``
    loss per image = -log p(x | z) + beta_t * KL(q(z | x) || p(z)),   z = mean + exp(logvar / 2) eps

beta_t ramps linearly from 0 to ``beta`` over ``kl_warmup_steps`` optimiser steps (KL annealing,
Bowman et al., 2016), counted by the buffer ``step`` that ``after_step`` advances (saved with the
weights, so a resumed run continues the ramp exactly). ``free_bits`` keeps each latent
dimension's batch-mean KL at a floor (Kingma et al., 2016). Both change only what is optimised;
``elbo`` and ``log_likelihood`` always report the true bound (beta = 1).

Likelihoods (``losses.py``): ``bernoulli`` for binarised data (levels = 2), ``logistic`` or
``gaussian`` discretised over ``config.levels`` grey levels (true discrete likelihoods, so
bits/dim compare with PixelCNN and flows), ``mse`` (a fixed-variance Gaussian density; not a
likelihood of the discrete pixels, so ``elbo`` / ``log_likelihood`` refuse it). The default,
``auto``, picks bernoulli for 2 levels and logistic otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import losses, nets


def default_latent_dim(image_size: int) -> int:
    """16 latent dimensions for 8x8 images, 32 for larger ones."""
    return 16 if image_size <= 8 else 32


def resolve_likelihood(likelihood: str, levels: int) -> str:
    """``auto`` -> bernoulli for binary data, logistic otherwise; other names are checked."""
    if likelihood == "auto":
        return "bernoulli" if levels == 2 else "logistic"
    if likelihood not in losses.LIKELIHOODS:
        raise ValueError(
            f"likelihood must be auto or one of {', '.join(losses.LIKELIHOODS)} (got {likelihood!r})"
        )
    if likelihood == "bernoulli" and levels != 2:
        raise ValueError(
            f"likelihood 'bernoulli' needs binary data (levels=2, got {levels}); use logistic or gaussian"
        )
    return likelihood


# Defaults: base_channels 16, batch 128, Adam 1e-3; the measurements behind them: docs/notes/vae.md
@dataclass
class VAEConfig(ModelConfig):
    """Gaussian-latent VAE settings; ``beta`` > 1 is a beta-VAE (registry name ``beta-vae``)."""

    latent_dim: int | None = None  # None = by image size: 16 for 8x8, 32 above
    likelihood: str = "auto"  # auto | bernoulli | logistic | gaussian | mse
    base_channels: int = 16
    hidden: int = 256
    beta: float = 1.0
    kl_warmup_steps: int = 0  # KL weight ramps 0 -> beta over this many optimiser steps
    free_bits: float = 0.0  # nats per latent dimension kept free of KL pressure
    iwae_samples: int = 50  # K of log_likelihood (the IWAE bound; 1 = the ELBO); cost: docs/notes/vae.md
    lr: float = 1e-3
    caps: ClassVar[dict[str, int]] = {
        "latent_dim": 4096,
        "base_channels": 1024,
        "hidden": 16_384,
        "iwae_samples": 100_000,
    }

    def __post_init__(self):
        super().__post_init__()
        if self.latent_dim is None:
            self.latent_dim = default_latent_dim(self.image_size)
        if self.latent_dim <= 0:
            raise ValueError(f"latent_dim must be > 0 (got {self.latent_dim}); try 16 or 32")
        self.likelihood = resolve_likelihood(self.likelihood, self.levels)
        if self.base_channels < 1 or self.hidden < 1:
            raise ValueError(
                f"base_channels and hidden must be >= 1 (got {self.base_channels}, {self.hidden}); try 32 and 256"
            )
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0 (got {self.beta}); use 1.0 for a plain VAE")
        if self.kl_warmup_steps < 0:
            raise ValueError(
                f"kl_warmup_steps must be >= 0 (got {self.kl_warmup_steps}); 0 turns annealing off"
            )
        if self.free_bits < 0:
            raise ValueError(
                f"free_bits must be >= 0 nats per dimension (got {self.free_bits}); 0 turns it off"
            )
        if self.iwae_samples < 1:
            raise ValueError(f"iwae_samples must be >= 1 (got {self.iwae_samples}); 1 gives the ELBO")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 10000, "warmup": 50}
#: latents decoded at once in ``log_likelihood`` (bounds memory; the result does not depend on it)
IWAE_CHUNK = 4096


class VAE(GenerativeModel):
    """Convolutional Gaussian-latent VAE; beta-VAE when ``beta`` != 1."""

    family = "vae"
    validates = True
    config_class = VAEConfig
    sample_options = ("temperature", "pixels")
    noise_name = "Gaussian latent z"
    start_note = "decoded to the mean image"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.encoder = nets.GaussianEncoder(c.channels, c.image_size, c.base_channels, c.hidden, c.latent_dim)
        out = c.channels * losses.params_per_channel(c.likelihood)
        self.decoder = nets.Decoder(out, c.image_size, c.base_channels, c.hidden, c.latent_dim)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # optimiser steps taken

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    # -- training -------------------------------------------------------------------
    def kl_weight(self) -> float:
        """beta_t: ``beta`` scaled by the KL warm-up ramp at the current step."""
        c = self.config
        if c.kl_warmup_steps == 0:
            return c.beta
        return c.beta * min(1.0, (int(self.step) + 1) / c.kl_warmup_steps)

    def loss(self, x: torch.Tensor, y=None, phase: str = "main", generator=None) -> dict:
        """Negative ELBO with the KL weight beta_t and free bits; logs the true ELBO terms.

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            generator: None or B per-image generators; image i draws its eps ~ N(0, I) from its own.
        """
        c = self.config
        mean, logvar = self.encoder(x)  # (B, D) each
        eps = seeding.randn(mean.shape, generator, x.device, mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        recon = -losses.pixel_log_prob(c.likelihood, self.decoder(z), x, c.levels)  # (B,) nats
        kl_dims = losses.kl_to_standard_normal(mean, logvar)  # (B, D)
        kl = kl_dims.sum(1)
        total = recon + self.kl_weight() * losses.free_bits_kl(kl_dims, c.free_bits)
        terms = {"loss": total.mean(), "recon": recon.mean().detach(), "kl": kl.mean().detach()}
        if c.likelihood != "mse":
            terms["elbo"] = -(recon + kl).mean().detach()
        if c.kl_warmup_steps:
            terms["kl_weight"] = torch.tensor(self.kl_weight())
        return terms

    def after_step(self, phase: str) -> None:
        self.step += 1

    @property
    def phases(self) -> list[Phase]:
        return [Phase("main", list(self.parameters()), OptimizerSpec(kind="adam", lr=self.config.lr))]

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    # -- latent capabilities ------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means, (B, D), of images (B, C, H, W) in [-1, 1]."""
        return self.encoder(x.to(self.device))[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean images (B, C, H, W) in [-1, 1] of latents (B, D) (Bernoulli: 2 p - 1)."""
        return losses.pixel_mean(self.config.likelihood, self.decoder(z.to(self.device)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): the mean image at the posterior mean, (B, C, H, W) in [-1, 1]."""
        return self.decode(self.encode(x))

    # -- likelihood bounds ------------------------------------------------------------
    @property
    def likelihood_note(self) -> str:
        """How ``log_likelihood`` is computed, for metric cards."""
        c = self.config
        if c.likelihood == "mse":
            return "none: trained with the mse density, not a likelihood of discrete pixels"
        return (
            f"log_likelihood: IWAE lower bound (Burda et al. 2016), K={c.iwae_samples} importance samples; "
            f"elbo: one z per image, exact KL; {c.likelihood} pixel likelihood over the {c.levels} grey "
            "levels (true discrete probabilities)"
        )

    def _check_likelihood(self) -> None:
        if self.config.likelihood == "mse":
            raise ValueError(
                f"{self.registry_name} was trained with likelihood 'mse', a Gaussian density that is not a "
                "likelihood of discrete pixels; retrain with --set likelihood=logistic for a bound"
            )

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """ELBO E_q[log p(x | z)] - KL(q || p) with one z per image (KL exact); (B,) float64 nats.

        Image i draws its z from its own generator (``generator[i]``, else ``seeding.image_seed(seed, i)``), so
        the value does not depend on the batch. bits/dim = -value / (C H W ln 2).
        """
        self._check_likelihood()
        c = self.config
        x = x.to(self.device)
        gens = generator if generator is not None else seeding.image_generators(x.shape[0], seed, self.device)
        mean, logvar = self.encoder(x)
        z = mean + torch.exp(0.5 * logvar) * seeding.randn(mean.shape, gens, self.device)
        logp = losses.pixel_log_prob(c.likelihood, self.decoder(z), x, c.levels)
        return (logp - losses.kl_to_standard_normal(mean, logvar).sum(1)).double()

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None, k: int | None = None
    ) -> torch.Tensor:
        """IWAE lower bound on log p(x) with ``k`` importance samples (default ``iwae_samples``).

        log p(x) >= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),  z_k ~ q(z | x)
        (Burda et al., 2016): the ELBO for K = 1, rising towards log p(x) with K. Cost: K decoder
        passes per image. Image i draws its K latents from its own generator (``generator[i]``,
        else ``seeding.image_seed(seed, i)``), so the value does not depend on the batch.

        Returns:
            (B,) float64 nats; bits/dim = -value / (C H W ln 2).
        """
        self._check_likelihood()
        c = self.config
        k = c.iwae_samples if k is None else int(k)
        if k < 1:
            raise ValueError(f"k (importance samples) must be >= 1 (got {k})")
        x = x.to(self.device)
        b = x.shape[0]
        gens = generator if generator is not None else seeding.image_generators(b, seed, self.device)
        mean, logvar = self.encoder(x)  # (B, D)
        eps = seeding.randn((b, k, c.latent_dim), gens, self.device)  # (B, K, D), image i's own
        log_w = torch.empty(b, k, dtype=torch.float64, device=self.device)
        per_chunk = max(1, IWAE_CHUNK // b)
        for start in range(0, k, per_chunk):
            e = eps[:, start : start + per_chunk]  # (B, k', D)
            kc = e.shape[1]
            z = mean.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * e
            out = self.decoder(z.reshape(b * kc, -1))
            xs = x.unsqueeze(1).expand(b, kc, *x.shape[1:]).reshape(b * kc, *x.shape[1:])
            logp = losses.pixel_log_prob(c.likelihood, out, xs, c.levels).view(b, kc)
            log_q = losses.log_normal(z, mean.unsqueeze(1), logvar.unsqueeze(1))
            log_w[:, start : start + kc] = (logp + losses.log_standard_normal(z) - log_q).double()
        return losses.iwae_bound(log_w)

    # -- sampling ---------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        y=None,
        seed: int | None = None,
        generator=None,
        *,
        temperature: float | None = None,
        pixels: str | None = None,
        **options,
    ) -> torch.Tensor:
        """Decode z ~ N(0, temperature^2 I): (n, C, H, W) in [-1, 1].

        Args:
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            temperature: scale of the prior's standard deviation (default 1).
            pixels: "mean" (default: the decoder's mean image) or "sample" (pixels drawn from
                p(x | z) on the data's grid, after z, from the image's own generator).
        """
        self.check_sample_options(options, temperature=temperature)
        self.check_labels(n, y)
        temperature = 1.0 if temperature is None else float(temperature)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        pixels = pixels or "mean"
        if pixels not in ("mean", "sample"):
            raise ValueError(f"pixels must be 'mean' or 'sample' (got {pixels!r})")
        c = self.config
        gens = seeding.resolve(n, seed, generator, self.device)
        z = seeding.randn((n, c.latent_dim), gens, self.device) * temperature
        out = self.decoder(z)
        if pixels == "mean":
            return losses.pixel_mean(c.likelihood, out)
        u = seeding.rand((n, c.channels, c.image_size, c.image_size), gens, self.device)
        return losses.pixel_sample(c.likelihood, out, c.levels, u)
