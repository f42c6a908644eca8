"""Hierarchical VAE (ladder VAE, Sønderby et al. 2016; NVAE-lite, Vahdat & Kautz 2020): config and glue.

    latent layers z_0 (top, coarsest) ... z_{L-1} (finest), spatial maps (c, s_l, s_l)
    prior      p(z) = prod_l p(z_l | z_<l),     each N(mu_p, exp(logvar_p)) from the top-down state
    posterior  q(z | x) = prod_l q(z_l | x, z_<l): N(mu_p + d_mu, exp(logvar_p + d_logvar)), the shift
               and scale computed from the top-down state and the bottom-up features (NVAE's
               residual posterior)
    p(x | z): the VAE's discrete pixel likelihood (``losses.py``: bernoulli for binarised data,
               logistic / gaussian bin masses on the data's grid)
    ELBO = log p(x | z) - sum_l KL_l,   KL_l = KL(q(z_l | x, z_<l) || p(z_l | z_<l)), exact given the
           z_<l drawn from q (one z per image)

Training (``loss``) minimises -log p(x | z) + beta_t * sum_l KL_l with beta_t the KL warm-up
ramp over ``kl_warmup_steps`` (counted by the buffer ``step`` that ``after_step`` advances, as in
the VAE), and free bits per layer: each layer's batch-mean KL is held at >= ``free_bits`` nats, so
a layer under the floor gets no KL gradient (Kingma et al., 2016). Both change only what is
optimised; ``elbo``, ``log_likelihood``, the logged ``elbo`` / ``kl`` / ``kl_<l>`` terms, and the
loss in eval mode (what validation scores) are the true bound (beta = 1, no floor).

``log_likelihood`` is the IWAE bound (Burda et al., 2016) with K = ``iwae_samples`` importance
samples; K = 1 is the ELBO with its KL estimated at the drawn z. ``sample`` takes ``temperature``
(scales every prior standard deviation; 0 gives the prior means, deterministic) and ``pixels``.
:meth:`HierarchicalVAE.layer_picture` shows which layer controls what: row l redraws layer l's
noise and keeps every other layer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ... import seeding
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import hvae_nets, losses
from .model import resolve_likelihood


# Defaults: the measurements behind them are in docs/notes/vae.md ("hvae")
@dataclass
class HVAEConfig(ModelConfig):
    """Hierarchical VAE settings (registry name ``hvae``)."""

    likelihood: str = "auto"  # auto | bernoulli | logistic | gaussian (no mse: it has no bound)
    num_layers: int = 3  # stochastic layers, top (coarsest) first
    latent_channels: int = 16  # channels of each layer's latent map
    base_channels: int = 32  # width of every convolution
    cells: int = 1  # residual cells per resolution in each path
    beta: float = 1.0
    kl_warmup_steps: int = 500  # KL weight ramps 0 -> beta over this many optimiser steps
    free_bits: float = 0.0  # nats per layer (batch mean) kept free of KL pressure
    iwae_samples: int = 50  # K of log_likelihood (the IWAE bound; 1 = the ELBO)
    lr: float = 2e-3
    caps: ClassVar[dict[str, int]] = {
        "num_layers": 6,
        "latent_channels": 1024,
        "base_channels": 1024,
        "cells": 16,
        "iwae_samples": 100_000,
    }

    def __post_init__(self):
        super().__post_init__()
        self.likelihood = resolve_likelihood(self.likelihood, self.levels)
        if self.likelihood == "mse":
            raise ValueError("hvae has no mse likelihood (not a likelihood of the pixels); use auto")
        if not 2 <= self.num_layers <= 6:
            raise ValueError(f"num_layers must be in 2..6 (got {self.num_layers}); one layer is the vae")
        if self.latent_channels < 1 or self.base_channels < 1:
            raise ValueError(
                f"latent_channels and base_channels must be >= 1 (got {self.latent_channels}, "
                f"{self.base_channels}); try 8 and 32"
            )
        if self.cells < 0:
            raise ValueError(f"cells must be >= 0 (got {self.cells}); try 1")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0 (got {self.beta}); use 1.0 for the plain bound")
        if self.kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be >= 0 (got {self.kl_warmup_steps}); 0 turns it off")
        if self.free_bits < 0:
            raise ValueError(f"free_bits must be >= 0 nats per layer (got {self.free_bits}); 0 turns it off")
        if self.iwae_samples < 1:
            raise ValueError(f"iwae_samples must be >= 1 (got {self.iwae_samples}); 1 gives the ELBO")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 2e-3")


#: trainer settings the defaults were tuned with (``model.train_defaults()``; user flags override)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 10000, "warmup": 50}
#: image pixels decoded at once in ``log_likelihood`` (rows x H x W; bounds memory, not the result)
IWAE_PIXELS = 2**19


class HierarchicalVAE(GenerativeModel):
    """Ladder / NVAE-lite VAE with ``num_layers`` spatial latent layers."""

    family = "vae"
    validates = True
    config_class = HVAEConfig
    sample_options = ("temperature", "pixels")
    noise_name = "Gaussian noise of the latent layers (top first, flattened)"
    start_note = "scaled by the prior standard deviations, decoded to the mean image"

    def __init__(self, config: HVAEConfig):
        super().__init__(config)
        c = config
        self.sides = hvae_nets.latent_sides(c.image_size, c.num_layers)
        w = c.base_channels
        self.encoder = hvae_nets.BottomUp(c.channels, c.image_size, w, self.sides, c.cells)
        out = c.channels * losses.params_per_channel(c.likelihood)
        self.decoder = hvae_nets.TopDown(out, c.image_size, w, c.latent_channels, self.sides, c.cells)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # optimiser steps taken

    @property
    def layer_shapes(self) -> list[tuple[int, int, int]]:
        """(c, s, s) of each latent layer, top first."""
        return [(self.config.latent_channels, s, s) for s in self.sides]

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (sum(math.prod(s) for s in self.layer_shapes),)

    def draw_noise(self, n: int, generator, k: int | None = None) -> list[torch.Tensor]:
        """Standard normal noise of every layer, top first: (n, c, s, s) each, or (n, k, c, s, s).

        Image i draws its layers in order from its own generator, so with ``k`` = 1 it draws the
        same numbers as without ``k``.
        """
        lead = (n,) if k is None else (n, k)
        return [seeding.randn((*lead, *shape), generator, self.device) for shape in self.layer_shapes]

    # -- training ---------------------------------------------------------------------
    def kl_weight(self) -> float:
        """beta_t: ``beta`` scaled by the KL warm-up ramp at the current step."""
        c = self.config
        if c.kl_warmup_steps == 0:
            return c.beta
        return c.beta * min(1.0, (int(self.step) + 1) / c.kl_warmup_steps)

    def bound_terms(self, x: torch.Tensor, generator=None, eps: list | None = None) -> dict:
        """One posterior draw per image and the bound's terms, in nats per image.

        Args:
            x: (B, C, H, W) images in [-1, 1] on the data's grid.
            generator: None or B per-image generators (ignored when ``eps`` is given).
            eps: the layers' noise (``draw_noise``), top first; zeros give the posterior means.

        Returns:
            ``log_px`` (B,) log p(x | z); ``kl`` (B, L) the exact KL of each layer given the drawn
            z_<l; ``log_ratio`` (B, L) log q(z_l | ...) - log p(z_l | ...) at the drawn z_l (the
            one-sample KL estimate the IWAE bound uses); ``out`` the decoder output.
        """
        c = self.config
        eps = self.draw_noise(x.shape[0], generator) if eps is None else eps
        out, stats = self.decoder(x.shape[0], eps, self.encoder(x))
        log_px = losses.pixel_log_prob(c.likelihood, out, x, c.levels)
        kl = torch.stack(
            [
                losses.kl_normal(s["mean_q"], s["logvar_q"], s["mean_p"], s["logvar_p"]).flatten(1).sum(1)
                for s in stats
            ],
            dim=1,
        )
        return {"log_px": log_px, "kl": kl, "log_ratio": _log_ratio(stats), "out": out}

    def loss(self, x: torch.Tensor, y=None, phase: str = "main", generator=None) -> dict:
        """Negative ELBO with the KL weight beta_t and per-layer free bits; logs the true terms.

        In eval mode (validation) ``loss`` is the true negative ELBO, so the warm-up ramp does not
        make early weights look best. ``kl_<l>``: layer l's KL (layer 0 the top), batch mean.
        """
        t = self.bound_terms(x, generator)
        recon, kl = -t["log_px"], t["kl"]  # (B,), (B, L)
        if self.training:
            total = recon + self.kl_weight() * losses.free_bits_kl(kl, self.config.free_bits)
        else:
            total = recon + kl.sum(1)
        terms = {
            "loss": total.mean(),
            "recon": recon.mean().detach(),
            "kl": kl.sum(1).mean().detach(),
            "elbo": -(recon + kl.sum(1)).mean().detach(),
        }
        terms.update({f"kl_{i}": v.detach() for i, v in enumerate(kl.mean(0))})
        if self.config.kl_warmup_steps:
            terms["kl_weight"] = torch.tensor(self.kl_weight())
        return terms

    def after_step(self, phase: str) -> None:
        self.step += 1

    @property
    def phases(self) -> list[Phase]:
        return [Phase("main", list(self.parameters()), OptimizerSpec(kind="adam", lr=self.config.lr))]

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    # -- likelihood bounds --------------------------------------------------------------
    @property
    def likelihood_note(self) -> str:
        c = self.config
        return (
            f"log_likelihood: IWAE lower bound (Burda et al. 2016), K={c.iwae_samples} importance samples "
            f"over all {c.num_layers} latent layers; elbo: one z per image, each layer's KL exact given the "
            f"layers above; {c.likelihood} pixel likelihood over the {c.levels} grey levels (true discrete "
            "probabilities)"
        )

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """ELBO log p(x | z) - sum_l KL_l with one z per image; (B,) float64 nats.

        Image i draws its noise from its own generator (``generator[i]``, else
        ``seeding.image_seed(seed, i)``), so the value does not depend on the batch.
        """
        x = x.to(self.device)
        gens = generator if generator is not None else seeding.image_generators(x.shape[0], seed, self.device)
        t = self.bound_terms(x, gens)
        return (t["log_px"] - t["kl"].sum(1)).double()

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None, k: int | None = None
    ) -> torch.Tensor:
        """IWAE lower bound on log p(x) with ``k`` importance samples (default ``iwae_samples``).

        log p(x) >= log (1/K) sum_k p(x | z_k) prod_l p(z_k,l | z_k,<l) / q(z_k,l | x, z_k,<l),
        z_k ~ q(z | x). The encoder runs once per image, the top-down path K times. Image i draws
        its K noise sets from its own generator before any decoding (top layer first), so the value
        depends neither on the batch nor on the chunking, and K = 1 uses the noise ``elbo`` uses.

        Returns:
            (B,) float64 nats; bits/dim = -value / (C H W ln 2).
        """
        c = self.config
        k = c.iwae_samples if k is None else int(k)
        if k < 1:
            raise ValueError(f"k (importance samples) must be >= 1 (got {k})")
        x = x.to(self.device)
        b = x.shape[0]
        gens = generator if generator is not None else seeding.image_generators(b, seed, self.device)
        eps = self.draw_noise(b, gens, k)  # per layer (B, K, c, s, s)
        feats = self.encoder(x)
        log_w = torch.empty(b, k, dtype=torch.float64, device=self.device)
        per_chunk = max(1, IWAE_PIXELS // (b * c.image_size**2))
        for start in range(0, k, per_chunk):
            e = [t[:, start : start + per_chunk] for t in eps]
            kc = e[0].shape[1]
            rows = b * kc  # row i * kc + j: image i, sample start + j
            out, stats = self.decoder(
                rows, [t.reshape(rows, *t.shape[2:]) for t in e], [f.repeat_interleave(kc, 0) for f in feats]
            )
            xs = x.repeat_interleave(kc, 0)
            log_px = losses.pixel_log_prob(c.likelihood, out, xs, c.levels)
            log_wc = log_px - _log_ratio(stats).sum(1)
            log_w[:, start : start + kc] = log_wc.view(b, kc).double()
        return losses.iwae_bound(log_w)

    # -- reconstruction -----------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The mean image at every layer's posterior mean, (B, C, H, W) in [-1, 1]."""
        x = x.to(self.device)
        zeros = [torch.zeros(x.shape[0], *s, device=self.device) for s in self.layer_shapes]
        return losses.pixel_mean(self.config.likelihood, self.bound_terms(x, eps=zeros)["out"])

    # -- sampling -----------------------------------------------------------------------
    @torch.no_grad()
    def decode_noise(self, eps: list, *, temperature=1.0) -> torch.Tensor:
        """Decoder output of prior draws z_l = mu_p + t_l * std_p * eps_l, layers top first.

        Args:
            eps: one (n, c, s_l, s_l) standard normal tensor per layer (``draw_noise``).
            temperature: t_l, one number for every layer or one per layer (``[1, 0, 0]``: the
                top drawn, every layer below at its prior mean given the layers above).
        """
        temps = _per_layer(temperature, len(self.sides))
        return self.decoder(eps[0].shape[0], [e.to(self.device) for e in eps], None, temps)[0]

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
        """Ancestral samples through the layers: (n, C, H, W) in [-1, 1].

        Args:
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            temperature: scale of every prior standard deviation (default 1; 0: the prior means,
                the same image for every seed).
            pixels: "mean" (default: the decoder's mean image) or "sample" (pixels drawn from
                p(x | z) on the data's grid, after the latents, from the image's own generator).
        """
        self.check_sample_options(options, temperature=temperature)
        self.check_labels(n, y)
        temperature = 1.0 if temperature is None else float(temperature)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (got {temperature})")
        pixels = pixels or "mean"
        if pixels not in ("mean", "sample"):
            raise ValueError(f"pixels must be 'mean' or 'sample' (got {pixels!r})")
        c = self.config
        gens = seeding.resolve(n, seed, generator, self.device)
        out = self.decode_noise(self.draw_noise(n, gens), temperature=temperature)
        if pixels == "mean":
            return losses.pixel_mean(c.likelihood, out)
        u = seeding.rand((n, c.channels, c.image_size, c.image_size), gens, self.device)
        return losses.pixel_sample(c.likelihood, out, c.levels, u)

    @torch.no_grad()
    def layer_picture(self, columns: int = 8, *, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Which layer controls what: one row per layer (top first), ``columns`` mean images each.

        Every image keeps the noise of image 0 of ``seed`` in all layers but its row's; there,
        column j uses image j's noise (column 0 is image 0 itself in every row). Rows that vary
        the top layer change the digit; rows further down, finer detail.

        Returns:
            (num_layers * columns, C, H, W) in [-1, 1], row-major (``viz.save_grid`` with
            ``nrow=columns``).
        """
        base = self.draw_noise(1, seeding.image_generators(1, seed, self.device))
        drawn = self.draw_noise(columns, seeding.image_generators(columns, seed, self.device))
        rows = []
        for layer in range(len(self.sides)):
            eps = [e.expand(columns, *e.shape[1:]).clone() for e in base]
            eps[layer] = drawn[layer]
            rows.append(self.decode_noise(eps, temperature=temperature))
        return losses.pixel_mean(self.config.likelihood, torch.cat(rows))


def _log_ratio(stats: list[dict]) -> torch.Tensor:
    """(B, L): log q(z_l | x, z_<l) - log p(z_l | z_<l) at each layer's drawn z."""
    cols = []
    for s in stats:
        z, mean_q, logvar_q, mean_p, logvar_p = (
            s[key].flatten(1) for key in ("z", "mean_q", "logvar_q", "mean_p", "logvar_p")
        )
        cols.append(losses.log_normal(z, mean_q, logvar_q) - losses.log_normal(z, mean_p, logvar_p))
    return torch.stack(cols, dim=1)


def _per_layer(temperature, layers: int) -> list[float]:
    temps = (
        [float(t) for t in temperature]
        if isinstance(temperature, list | tuple)
        else [float(temperature)] * layers
    )
    if len(temps) != layers or any(not (math.isfinite(t) and t >= 0) for t in temps):
        raise ValueError(f"temperature must be one number >= 0 or {layers} of them (got {temperature})")
    return temps
