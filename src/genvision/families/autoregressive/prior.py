"""Transformer prior over the code maps of a trained VQ-VAE (van den Oord et al. 2017, sec. 3.2,
with a transformer in place of the PixelCNN as in Esser et al. 2021): config and glue.

    image -> vqvae.encode -> codes (h, w) -> raster sequence c_1..c_N     (training: next-code loss)
    start token -> transformer, code by code (KV cache) -> codes -> vqvae.decode -> image  (sampling)

The VQ-VAE is used only through its contract (``encode``, ``decode``, ``code_shape``,
``config.codebook_size``). It is this model's parent: whoever builds the prior passes it in
(``genvision.load`` reads it from the ``parents`` reference in config.json, checked by hash;
``genvision train vqvae-transformer --set vqvae=DIR`` names it). It is neither trained nor saved
here: the prior's ``model.safetensors`` holds the transformer only, so the two stay separately
versioned, and a retrained VQ-VAE cannot silently mix with an old prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ... import seeding
from ..base import GenerativeModel, ModelConfig
from . import samplers
from .transformer import CausalTransformer


@dataclass
class VQVAETransformerConfig(ModelConfig):
    """Prior settings (the VQ-VAE is a parent, not a setting).

    ``width`` model width, ``heads`` attention heads (divide ``width``), ``num_layers`` blocks;
    ``temperature`` the default sampling temperature.
    """

    width: int = 64
    heads: int = 4
    num_layers: int = 3
    lr: float = 3e-3
    temperature: float = 1.0
    caps: ClassVar[dict[str, int]] = {"width": 4096, "heads": 256, "num_layers": 256}

    def __post_init__(self):
        super().__post_init__()
        if self.width < 1 or self.heads < 1 or self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width}); try width=64 heads=4")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 (got {self.num_layers})")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 3e-3")
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0 (got {self.temperature}); 1 samples the model as trained"
            )


class VQVAETransformer(GenerativeModel):
    """Causal transformer prior over a trained VQ-VAE's codes; samples decode through the VQ-VAE."""

    family = "autoregressive"
    validates = True
    config_class = VQVAETransformerConfig
    sample_options = ("temperature", "cached")

    parents = {"vqvae": "sample"}

    def __init__(self, config: VQVAETransformerConfig, vqvae: GenerativeModel | None = None):
        super().__init__(config, vqvae=vqvae)
        c = config
        if vqvae is None:
            raise ValueError(
                "vqvae-transformer is a prior over a trained VQ-VAE: train one first (genvision train vqvae ...) "
                "and pass --set vqvae=DIR"
            )
        for name in ("encode", "decode", "code_shape"):
            if not hasattr(vqvae, name):
                raise ValueError(
                    f"{vqvae.origin or 'the vqvae parent'} holds a {vqvae.registry_name}, which has no {name}; "
                    "point vqvae at a VQ-VAE"
                )
        if (vqvae.config.image_size, vqvae.config.channels) != (c.image_size, c.channels):
            raise ValueError(
                f"the VQ-VAE in {vqvae.origin or 'vqvae'} models {vqvae.config.channels}x{vqvae.config.image_size}px "
                f"images but this prior is set to {c.channels}x{c.image_size}px; train it on the VQ-VAE's data"
            )
        self.code_shape = tuple(vqvae.code_shape)
        self.codebook_size = vqvae.config.codebook_size
        length = self.code_shape[0] * self.code_shape[1]
        self.net = CausalTransformer(self.codebook_size, length, c.width, c.heads, c.num_layers)

    @property
    def vqvae(self) -> GenerativeModel:
        """The VQ-VAE (frozen), moved to this model's device."""
        return self.parent("vqvae")

    def _start(self, n: int) -> torch.Tensor:
        return torch.full((n, 1), self.codebook_size, dtype=torch.long, device=self.device)

    # -- training -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Next-code cross-entropy (nats per code) on the codes of ``x``, encoded without gradients.

        Args:
            x: (B, C, H, W) images in [-1, 1]; the loss draws no randomness.
        """
        with torch.no_grad():
            codes = self.vqvae.encode(x).flatten(1).to(self.device)  # (B, N)
        inputs = torch.cat([self._start(codes.shape[0]), codes[:, :-1]], dim=1)
        nll = F.cross_entropy(self.net(inputs).transpose(1, 2), codes)  # mean over (B, N)
        return {"loss": nll, "nats_per_code": nll.detach()}

    def train_defaults(self) -> dict:
        """Batch 64, 20 warm-up steps, a short EMA; why (and lr 3e-3): docs/notes/autoregressive.md."""
        return {"batch_size": 64, "warmup": 20, "ema_half_life": 5000}

    @torch.no_grad()
    def code_log_likelihood(self, codes: torch.Tensor) -> torch.Tensor:
        """log P(codes) under the prior, (B,) float64 nats, of code maps int64 (B, h, w)."""
        codes = codes.to(self.device).flatten(1)
        inputs = torch.cat([self._start(codes.shape[0]), codes[:, :-1]], dim=1)
        logp = F.log_softmax(self.net(inputs).double(), dim=-1)
        return logp.gather(-1, codes.unsqueeze(-1)).squeeze(-1).sum(dim=1)

    # -- sampling -------------------------------------------------------------------
    @torch.no_grad()
    def sample_codes(
        self,
        n: int,
        seed: int | None = None,
        generator=None,
        *,
        temperature: float | None = None,
        cached=None,
    ) -> torch.Tensor:
        """Code maps int64 (n, h, w), code by code in raster order; image k's from its own generator.

        ``cached`` True (default) feeds one token per step through a key/value cache; False
        re-runs the whole prefix each step (same codes, slower; for checks).
        """
        t = self.config.temperature if temperature is None else temperature
        if not t > 0:
            raise ValueError(f"temperature must be > 0 (got {t})")
        h, w = self.code_shape
        gens = seeding.resolve(n, seed, generator, self.device)
        u = seeding.rand((n, h * w), gens, self.device, torch.float64)
        with self.eval_mode():
            if cached is None or cached:
                codes = samplers.sequence_cached(self.net.step, self._start(n), u, t)
            else:
                codes = samplers.sequence_naive(self.net, self._start(n), u, t)
        return codes.view(n, h, w)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        y=None,
        seed: int | None = None,
        generator=None,
        *,
        temperature: float | None = None,
        cached: bool | None = None,
        **options,
    ) -> torch.Tensor:
        """Codes from the prior (:meth:`sample_codes`), decoded by the VQ-VAE: (n, C, H, W) in [-1, 1]."""
        self.check_sample_options(options, temperature=temperature)
        self.check_labels(n, y)
        codes = self.sample_codes(n, seed, generator, temperature=temperature, cached=cached)
        return self.vqvae.decode(codes).clamp(-1, 1)

    def describe_start(self, n: int, seed: int | None = 0) -> str:
        h, w = self.code_shape
        return (
            f"code by code, raster order: {n} x {h}x{w} VQ-VAE codes ({self.codebook_size} symbols) "
            f"from the transformer prior, decoded by the VQ-VAE {self.vqvae.origin or ''}".rstrip()
        )
