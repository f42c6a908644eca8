"""VQ-VAE (van den Oord et al., 2017): config and glue.

    x -> CodeEncoder -> z_e (D, h, w) -> nearest code (quantizer.py) -> z_q -> CodeDecoder -> p(x | z_q)
    loss per image = -log p(x | z_q) + commitment * ||z_e - sg(z_q)||^2

The codebook is an EMA of the encoder outputs (``quantizer.py``), with dead-code restarts.
Contract the autoregressive family builds on (a transformer prior over codes):
``encode(x) -> int64 (B, h, w)``, ``decode(codes) -> images in [-1, 1]``, ``config.codebook_size``
and ``code_shape -> (h, w)``.

Until a learned prior exists, ``sample`` draws each position's code independently from a
categorical prior fitted to the training codes: the buffer ``code_counts`` (h, w, K) is an EMA
(``prior_decay`` per step) of the code counts at each position, updated in ``after_step`` and
saved with the weights, so it survives save / load and resume. The same prior gives a true
lower bound log p(x) >= log p(x | c) + log P(c) at c = encode(x) (``elbo`` / ``log_likelihood``),
loose because the per-position prior ignores how codes go together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ... import seeding
from ..base import GenerativeModel, ModelConfig, OptimizerSpec, Phase
from . import losses, nets
from .model import resolve_likelihood
from .quantizer import VectorQuantizer


@dataclass
class VQVAEConfig(ModelConfig):
    """VQ-VAE settings; codes form an (image_size / 2**s)-square map (8x8 -> 4x4, 28x28 -> 7x7)."""

    codebook_size: int = 64
    embedding_dim: int = 16
    likelihood: str = "auto"  # auto | bernoulli | logistic | gaussian | mse (as the VAE)
    base_channels: int = 16
    commitment: float = 0.25  # beta of the commitment term
    codebook_decay: float = (
        0.95  # EMA decay per step of the codebook statistics; why not 0.99: docs/notes/vae.md
    )
    restart_threshold: float = 1.0  # restart codes whose EMA usage (codes per batch) drops below; 0 = off
    prior_decay: float = 0.999  # EMA decay per step of the per-position code counts (the baseline prior)
    lr: float = 1e-3
    caps: ClassVar[dict[str, int]] = {"codebook_size": 65_536, "embedding_dim": 4096, "base_channels": 1024}

    def __post_init__(self):
        super().__post_init__()
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2 (got {self.codebook_size}); try 64 or 512")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1 (got {self.embedding_dim}); try 16 or 64")
        self.likelihood = resolve_likelihood(self.likelihood, self.levels)
        if self.base_channels < 1:
            raise ValueError(f"base_channels must be >= 1 (got {self.base_channels}); try 32")
        if self.commitment < 0:
            raise ValueError(f"commitment must be >= 0 (got {self.commitment}); 0.25 is usual")
        for name in ("codebook_decay", "prior_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1) (got {getattr(self, name)}); try 0.99")
        if self.restart_threshold < 0:
            raise ValueError(
                f"restart_threshold must be >= 0 (got {self.restart_threshold}); 0 turns restarts off"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 1e-3")


#: trainer settings (``model.train_defaults()``; user flags override); no EMA of the weights, whose
#: average would not match the codebook (a buffer, updated by its own EMA)
TRAIN_DEFAULTS = {"batch_size": 128, "ema_half_life": 0.0, "warmup": 50}


class VQVAE(GenerativeModel):
    """VQ-VAE with an EMA codebook; samples from a per-position code prior until a learned one exists."""

    family = "vae"
    config_class = VQVAEConfig
    sample_options = ("pixels",)

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = nets.CodeEncoder(c.channels, c.image_size, c.base_channels, c.embedding_dim)
        out = c.channels * losses.params_per_channel(c.likelihood)
        self.decoder = nets.CodeDecoder(out, c.image_size, c.base_channels, c.embedding_dim)
        self.quantizer = VectorQuantizer(
            c.codebook_size, c.embedding_dim, c.codebook_decay, c.restart_threshold
        )
        side = nets.bottom_side(c.image_size)
        self.register_buffer("code_counts", torch.zeros(side, side, c.codebook_size))  # (h, w, K)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._codes: torch.Tensor | None = None  # the last training batch's codes, for after_step

    @property
    def code_shape(self) -> tuple[int, int]:
        """(h, w) of the code map of one image."""
        return tuple(self.code_counts.shape[:2])

    # -- training -------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y=None, phase: str = "main", generator=None) -> dict:
        """Reconstruction NLL + commitment; logs codebook perplexity and usage of the batch.

        Args:
            x: (B, C, H, W) images in [-1, 1]. The loss draws no randomness.
        """
        c = self.config
        zq, codes, commitment = self.quantizer(self.encoder(x))
        recon = -losses.pixel_log_prob(c.likelihood, self.decoder(zq), x, c.levels)  # (B,) nats
        if self.training:
            self._codes = codes.detach()
        freq = torch.bincount(codes.flatten(), minlength=c.codebook_size).float()
        freq = freq / freq.sum()
        entropy = -(freq * torch.log(freq.clamp(min=1e-12))).sum()
        return {
            "loss": (recon + c.commitment * commitment).mean(),
            "recon": recon.mean().detach(),
            "commitment": commitment.mean().detach(),
            "perplexity": entropy.exp().detach(),  # effective number of codes in the batch
            "usage": (freq > 0).float().mean().detach(),  # fraction of the codebook used in the batch
        }

    def after_step(self, phase: str) -> None:
        """EMA codebook update and dead-code restarts, then the per-position code counts."""
        self.quantizer.update(int(self.step))
        if self._codes is not None:
            onehot = F.one_hot(self._codes, self.config.codebook_size).float().sum(0)  # (h, w, K)
            self.code_counts.mul_(self.config.prior_decay).add_(onehot)
            self._codes = None
        self.step += 1

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Start the codebook at encoder outputs of the first batch, so every code is in use early."""
        with torch.no_grad():
            ze = self.encoder(batch.to(self.device))
            flat = ze.permute(0, 2, 3, 1).reshape(-1, ze.shape[1])
            gen = torch.Generator().manual_seed(0)
            pick = torch.randint(len(flat), (self.config.codebook_size,), generator=gen).to(flat.device)
            self.quantizer.embed.copy_(flat[pick])
            self.quantizer.embed_sum.copy_(flat[pick])
            self.quantizer.cluster_size.fill_(1.0)

    @property
    def phases(self) -> list[Phase]:
        return [Phase("main", list(self.parameters()), OptimizerSpec(kind="adam", lr=self.config.lr))]

    def train_defaults(self) -> dict:
        return dict(TRAIN_DEFAULTS)

    # -- codes ------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices int64 (B, h, w) of images (B, C, H, W) in [-1, 1]."""
        return self.quantizer.nearest(self.encoder(x.to(self.device)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean images (B, C, H, W) in [-1, 1] of code maps int64 (B, h, w)."""
        codes = torch.as_tensor(codes, device=self.device)
        k = self.config.codebook_size
        if codes.dtype not in (torch.int64, torch.int32) or tuple(codes.shape[1:]) != self.code_shape:
            raise ValueError(
                f"decode takes int64 codes of shape (B, {self.code_shape[0]}, {self.code_shape[1]})"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= k):
            raise ValueError(f"codes must be in 0..{k - 1} (codebook_size {k})")
        out = self.decoder(self.quantizer.lookup(codes.long()))
        return losses.pixel_mean(self.config.likelihood, out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)), (B, C, H, W) in [-1, 1]."""
        return self.decode(self.encode(x))

    def code_log_prior(self) -> torch.Tensor:
        """log P(code) at each position, (h, w, K): the fitted counts, add-half smoothed (uniform untrained)."""
        counts = self.code_counts + 0.5
        return torch.log(counts / counts.sum(-1, keepdim=True))

    # -- likelihood bound ---------------------------------------------------------------
    likelihood_note = (
        "lower bound log p(x | c) + log P(c) at c = encode(x), P the per-position code prior fitted to "
        "the training codes; discrete pixel likelihood over the data's grey levels"
    )

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, y=None, *, seed: int = 0) -> torch.Tensor:
        """log p(x | c) + log P(c) at c = encode(x) under the per-position prior; (B,) float64 nats.

        The encoder is deterministic (q is a point mass, zero entropy), so this is the ELBO, and a
        lower bound on the log-likelihood of the model "codes ~ prior, x ~ p(x | codes)".
        """
        if self.config.likelihood == "mse":
            raise ValueError(
                f"{self.registry_name} was trained with likelihood 'mse', not a likelihood of discrete pixels; "
                "retrain with --set likelihood=logistic for a bound"
            )
        c = self.config
        x = x.to(self.device)
        codes = self.encode(x)  # (B, h, w)
        logp = losses.pixel_log_prob(c.likelihood, self.decoder(self.quantizer.lookup(codes)), x, c.levels)
        prior = self.code_log_prior().unsqueeze(0).expand(x.shape[0], -1, -1, -1)
        log_prior = prior.gather(-1, codes.unsqueeze(-1)).flatten(1).sum(1)
        return (logp + log_prior).double()

    def log_likelihood(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """The bound of :meth:`elbo` (deterministic: no samples to draw); (B,) float64 nats."""
        return self.elbo(x, y, seed=seed)

    # -- sampling ---------------------------------------------------------------------
    @torch.no_grad()
    def sample_codes(self, n: int, seed: int | None = None, generator=None) -> torch.Tensor:
        """Code maps int64 (n, h, w) from the per-position prior; image k's from its own generator."""
        h, w = self.code_shape
        k = self.config.codebook_size
        gens = seeding.resolve(n, seed, generator, self.device)
        cdf = self.code_log_prior().exp().reshape(h * w, k).cumsum(-1)  # (hw, K)
        cdf[:, -1] = 1.0
        u = seeding.rand((n, h * w), gens, self.device)  # (n, hw)
        codes = torch.searchsorted(cdf, u.T.contiguous(), right=True).T  # (n, hw), inverse CDF
        return codes.clamp(max=k - 1).reshape(n, h, w)

    @torch.no_grad()
    def sample(
        self, n: int, y=None, seed: int | None = None, generator=None, *, pixels: str | None = None, **options
    ) -> torch.Tensor:
        """Codes from the per-position prior, decoded: (n, C, H, W) in [-1, 1].

        Args:
            pixels: "mean" (default, the decoder's mean image) or "sample" (pixels drawn from
                p(x | codes) on the data's grid, after the codes, from the image's own generator).
        """
        self.check_sample_options(options)
        self.check_labels(n, y)
        pixels = pixels or "mean"
        if pixels not in ("mean", "sample"):
            raise ValueError(f"pixels must be 'mean' or 'sample' (got {pixels!r})")
        c = self.config
        gens = seeding.resolve(n, seed, generator, self.device)
        codes = self.sample_codes(n, generator=gens)
        if pixels == "mean":
            return self.decode(codes)
        out = self.decoder(self.quantizer.lookup(codes))
        u = seeding.rand((n, c.channels, c.image_size, c.image_size), gens, self.device)
        return losses.pixel_sample(c.likelihood, out, c.levels, u)

    def describe_start(self, n: int, seed: int | None = 0) -> str:
        h, w = self.code_shape
        return (
            f"codes ({n}, {h}, {w}) drawn position by position from a categorical prior fitted to the "
            f"training codes ({self.config.codebook_size} codes), decoded to the mean image"
        )
