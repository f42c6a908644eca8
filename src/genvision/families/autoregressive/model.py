"""Autoregressive pixel models: PixelCNN, Gated PixelCNN and PixelRNN (Row LSTM); config and glue.

p(x) = prod over sub-pixels in raster order (rows, then columns, then R -> G -> B) of
p(x_sub | everything before it), each a distribution over the data's ``levels`` grey levels
(softmax head, or a discretised logistic mixture, ``losses.py``). The likelihood is exact:
``log_likelihood`` is log p(x) in nats per image on the data's grid, one network pass.

The networks are in ``layers.py``; sampling (naive and cached raster order, completion) in
``samplers.py``; the transformer prior over VQ-VAE codes in ``prior.py``. Papers: van den Oord et
al. 2016a (PixelRNN / PixelCNN), 2016b (Gated / conditional PixelCNN), Salimans et al. 2017
(PixelCNN++ likelihood).

Known limits: sampling costs one (row) evaluation per sub-pixel, so it is slow next to its
training throughput; PixelRNN trains row by row and is the slow baseline by design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch

from ... import seeding
from ...nn import pixels
from ..base import GenerativeModel, ModelConfig
from . import layers, losses, samplers


# Defaults: logistic head, lr 3e-3 (PixelCNN width 64 x 5, Gated 32 x 6); measurements: docs/notes/autoregressive.md
@dataclass
class PixelCNNConfig(ModelConfig):
    """PixelCNN settings (van den Oord et al. 2016a); defaults sized for a short CPU run on digits.

    ``width`` features per layer, ``num_layers`` residual blocks of ``kernel`` x ``kernel`` masked
    convolutions after a 7x7 mask-A convolution; ``head_width`` hidden units of the 1x1 output
    layers; ``head`` "softmax" (one logit per level) or "logistic" (``mixtures`` discretised
    logistics, PixelCNN++); ``temperature`` the default sampling temperature; ``dropout`` the
    training dropout rate (``layers.Dropout``, as in PixelCNN++; 0 = off).
    """

    width: int = 64
    num_layers: int = 5
    kernel: int = 3
    head_width: int = 64
    head: str = "logistic"
    mixtures: int = 5
    lr: float = 3e-3
    temperature: float = 1.0
    dropout: float = 0.2
    caps: ClassVar[dict[str, int]] = {
        "width": 4096,
        "num_layers": 256,
        "kernel": 31,
        "head_width": 4096,
        "mixtures": 100,
    }

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout}); 0 turns it off")
        if self.width < 2 * self.channels or self.width % (2 * self.channels):
            raise ValueError(
                f"width must be a positive multiple of 2 * channels = {2 * self.channels} (got {self.width}); try 64"
            )
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 (got {self.num_layers})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd number >= 1 (got {self.kernel}); try 3")
        if self.head_width < self.channels or self.head_width % self.channels:
            raise ValueError(f"head_width must be a positive multiple of channels (got {self.head_width})")
        if self.head not in losses.HEADS:
            raise ValueError(f"head must be one of {', '.join(losses.HEADS)} (got {self.head!r})")
        if self.mixtures < 1:
            raise ValueError(f"mixtures must be >= 1 (got {self.mixtures}); PixelCNN++ uses 5-10")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}); try 3e-3")
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0 (got {self.temperature}); 1 samples the model as trained"
            )


@dataclass
class GatedPixelCNNConfig(PixelCNNConfig):
    """Gated PixelCNN settings (van den Oord et al. 2016b): ``num_layers`` gated layers.

    ``conditional`` adds a class embedding to every gate (needs ``num_classes``).
    """

    width: int = 32
    num_layers: int = 6
    supports_conditional: ClassVar[bool] = True


@dataclass
class PixelRNNConfig(PixelCNNConfig):
    """PixelRNN settings (Row LSTM, van den Oord et al. 2016a): ``num_layers`` Row LSTM layers."""

    width: int = 32
    num_layers: int = 2


class _RasterModel(GenerativeModel):
    """What every pixel-level autoregressive model shares: likelihood, sampling, completion.

    Subclasses build ``self.net``: ``forward(x, y) -> (B, C, P, H, W)`` and the cached-sampling
    pieces ``begin_row(x, i, state, y)`` and ``row(x, i, state, y)`` (``layers.py``).
    """

    family = "autoregressive"
    validates = True
    sample_options = ("temperature", "cached")
    likelihood_note = "exact: log p(x) summed over sub-pixels in raster order, on the data's levels grid"

    @property
    def dims(self) -> int:
        c = self.config
        return c.channels * c.image_size**2

    def _labels(self, y):
        return y if self.config.conditional else None

    # -- training -------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """Negative log-likelihood per dimension (nats), the exact objective; randomness: dropout only.

        Args:
            x: (B, C, H, W) images in [-1, 1] on the ``levels`` grid.
            y: (B,) labels (conditional models) or None.
        """
        if self.config.conditional and (y is None or (y < 0).any()):
            raise ValueError(f"{self.registry_name} is class-conditional: every training image needs a label")
        with layers.dropout_generators(self.net, generator):
            params = self.net(x, self._labels(y))
        ll = losses.image_log_likelihood(self.config.head, params, x, self.config.levels).float()  # (B,) nats
        return {"loss": -ll.mean() / self.dims, "bpd": pixels.bits_per_dim(ll.mean().detach(), self.dims)}

    def train_defaults(self) -> dict:
        """Batch 64 and 100 warm-up steps up to 16 px, batch 32 and 20 above (docs/notes/autoregressive.md)."""
        small = self.config.image_size <= 16
        return {"batch_size": 64 if small else 32, "warmup": 100 if small else 20, "ema_half_life": 5000}

    # -- likelihood -------------------------------------------------------------------
    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y=None, *, seed: int = 0, generator=None) -> torch.Tensor:
        """Exact log p(x) in nats per image on the ``levels`` grid; no randomness (seed unused).

        A conditional model given no labels returns the marginal log (1/K) sum_y p(x | y), with
        K network passes.

        Args:
            x: (B, C, H, W) images in [-1, 1] (snapped to the nearest grid level).
            y: (B,) labels for a conditional model, or None.
        Returns:
            (B,) float64 log p(x) (bits per dim = -value / (C*H*W*ln 2)).
        """
        x = x.to(self.device)
        c = self.config
        with self.eval_mode():
            if not c.conditional or y is not None:
                labels = None if y is None else self.check_labels(x.shape[0], y)
                return losses.image_log_likelihood(c.head, self.net(x, labels), x, c.levels)
            per_class = [
                losses.image_log_likelihood(
                    c.head, self.net(x, torch.full((x.shape[0],), k, device=x.device)), x, c.levels
                )
                for k in range(c.num_classes)
            ]
            return torch.logsumexp(torch.stack(per_class), dim=0) - math.log(c.num_classes)

    # -- sampling -------------------------------------------------------------------
    def _raster(self, x, known, u, labels, temperature, cached) -> torch.Tensor:
        c = self.config
        t = c.temperature if temperature is None else temperature
        if not t > 0:
            raise ValueError(f"temperature must be > 0 (got {t})")
        with self.eval_mode():
            if cached is None or cached:
                return samplers.raster_cached(
                    partial(self.net.begin_row, y=labels),
                    partial(self.net.pixel, y=labels),
                    c.head,
                    x,
                    known,
                    u,
                    c.levels,
                    t,
                )
            return samplers.raster_naive(partial(self.net, y=labels), c.head, x, known, u, c.levels, t)

    def _draws(self, n: int, y, seed, generator):
        """Per-image uniforms (n, C, H, W) float64, then labels (drawn per image when y is None)."""
        c = self.config
        labels = self.check_labels(n, y)
        gens = seeding.resolve(n, seed, generator, self.device)
        u = seeding.rand((n, c.channels, c.image_size, c.image_size), gens, self.device, torch.float64)
        if c.conditional and labels is None:
            labels = seeding.uniform_labels(n, c.num_classes, gens, self.device)
        return u, labels

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
        """Draw ``n`` images pixel by pixel in raster order, (n, C, H, W) on the levels grid in [-1, 1].

        Args:
            y: conditional models: an int or (n,) labels; None draws a uniform class per image
                from its own generator (after its pixel uniforms).
            seed: per-image seeds (image k is the same whatever n); or give ``generator``.
            temperature: > 0, default ``config.temperature``; divides the log-probabilities.
            cached: True (default) recomputes only the current row per sub-pixel; False
                re-evaluates the whole network (same samples, much slower; for checks).
        """
        self.check_sample_options(options, temperature=temperature)
        c = self.config
        u, labels = self._draws(n, y, seed, generator)
        x = torch.zeros(n, c.channels, c.image_size, c.image_size, device=self.device)
        known = torch.zeros_like(x, dtype=torch.bool)
        return self._raster(x, known, u, labels, temperature, cached)

    @torch.no_grad()
    def complete(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        y=None,
        *,
        seed: int | None = None,
        generator=None,
        temperature: float | None = None,
        cached: bool | None = None,
    ) -> torch.Tensor:
        """Fill the sub-pixels where ``mask`` is False, in raster order, given the rest.

        Each missing sub-pixel is drawn from p(x_sub | all sub-pixels before it), given or drawn;
        given sub-pixels after it are not looked at (that is what an autoregressive model can do
        exactly). Image k draws from its own generator as in :meth:`sample`.

        Args:
            x: (B, C, H, W) images in [-1, 1]; given values are snapped to the levels grid.
            mask: bool, broadcastable to x (e.g. (B, 1, H, W)); True = given.
            y: labels for a conditional model (None draws them like ``sample``).
        Returns:
            (B, C, H, W) completed images.
        """
        c = self.config
        x = x.to(self.device)
        known = torch.as_tensor(mask, device=self.device).bool().expand_as(x)
        u, labels = self._draws(x.shape[0], y, seed, generator)
        x = pixels.snap(x, c.levels)
        return self._raster(x, known, u, labels, temperature, cached)

    def describe_start(self, n: int, seed: int | None = 0) -> str:
        c = self.config
        return (
            f"pixel by pixel, raster order: {n} x {c.channels}x{c.image_size}x{c.image_size} "
            f"sub-pixels over {c.levels} levels ({c.head} head)"
        )


class PixelCNN(_RasterModel):
    """PixelCNN (van den Oord et al. 2016a): masked convolutions, exact likelihood."""

    config_class = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config)
        c = config
        params = losses.num_params(c.head, c.levels, c.mixtures)
        self.net = layers.PixelCNNNet(
            c.channels, params, c.width, c.num_layers, c.kernel, c.head_width, c.dropout
        )


class GatedPixelCNN(_RasterModel):
    """Gated PixelCNN (van den Oord et al. 2016b): vertical + horizontal stacks, optional classes."""

    config_class = GatedPixelCNNConfig

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__(config)
        c = config
        params = losses.num_params(c.head, c.levels, c.mixtures)
        classes = c.num_classes if c.conditional else 0
        self.net = layers.GatedPixelCNNNet(
            c.channels, params, c.width, c.num_layers, c.kernel, c.head_width, classes, c.dropout
        )


class PixelRNN(_RasterModel):
    """PixelRNN with Row LSTM layers (van den Oord et al. 2016a): the sequential baseline."""

    config_class = PixelRNNConfig

    def __init__(self, config: PixelRNNConfig):
        super().__init__(config)
        c = config
        params = losses.num_params(c.head, c.levels, c.mixtures)
        self.net = layers.PixelRNNNet(
            c.channels, params, c.width, c.num_layers, c.kernel, c.head_width, c.dropout
        )
