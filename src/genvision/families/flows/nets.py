"""The multi-scale flow (RealNVP, section 3.6; Glow, figure 2) and the two architectures.

A :class:`MultiScaleFlow` is a list of levels, each a list of invertible layers
(``layers.py``); after every level but the last, half of the channels are factored out and
modelled by a Gaussian prior given the kept half; the last level's output has its own prior:

    z0 (C, H, W) -> level 0 -> [kept | out_0] -> level 1 -> [kept | out_1] -> ... -> level L-1 -> top
                                       |                           |                              |
                       eps_0 = (out_0 - mu_0(kept)) / sigma_0(kept)  ...             eps_top = (top - mu) / sigma

The flow maps z0 to the standardised noise eps of every block, packed back to (C, H, W) by
undoing the squeezes (:meth:`MultiScaleFlow.pack`), so a latent is one tensor of the image's
full dimension and decoding is ``inverse``. log p(z0) = log N(eps; 0, I) + log|det d eps / d z0|,
where the log-determinant sums the layers' and, per block, -sum(log sigma).

Memory: training keeps every layer's activations for the backward pass, dominated by the coupling
nets' hidden maps: about 4 x hidden_channels floats per pixel and coupling at that coupling's
resolution. For the MNIST Glow default (2 levels x 4 steps, hidden 64) that is about 1 MB per
image, under 0.1 GB at batch 64 (an estimate from the shapes, not a measurement). Memory grows linearly
with steps_per_level and hidden_channels; for large configs lower the batch size or wrap each
level in ``torch.utils.checkpoint`` (not done here: the CPU sizes genvision targets fit easily).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import (
    SCALE_CLAMP,
    ActNorm,
    AffineCoupling,
    CouplingNet,
    GaussianPrior,
    InvConv1x1,
    Squeeze,
    squeeze,
    standard_normal_log_prob,
    unsqueeze,
)


class NonFiniteLogDetError(ValueError):
    """A layer produced a non-finite log-determinant (the message names the layer)."""


class MultiScaleFlow(nn.Module):
    """Levels of invertible layers with a Gaussian prior per factored-out block and on top.

    Args:
        shape: (C, H, W) of z0.
        levels: one list of layers per level; a split follows every level but the last.
        learned_prior: Glow's learned priors (split prior from the kept half, learned top)
            instead of N(0, I).
        num_classes: > 0 adds a per-class offset to every prior (class-conditional flow).
    """

    def __init__(self, shape, levels: list[list[nn.Module]], *, learned_prior: bool, num_classes: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        self.levels = nn.ModuleList(nn.ModuleList(level) for level in levels)
        priors, shapes = [], []  # one prior per split, then the top's; shapes of the blocks they model
        c, h, w = self.shape
        for i, level in enumerate(levels):
            for layer in level:
                if isinstance(layer, Squeeze):
                    c, h, w = Squeeze.out_shape((c, h, w))
            if i < len(levels) - 1:
                if c % 2:
                    raise ValueError(f"level {i} ends with {c} channels; a split needs an even count")
                c //= 2
                priors.append(GaussianPrior((c, h, w), c, learned_prior, num_classes))
            else:
                priors.append(GaussianPrior((c, h, w), 0, learned_prior, num_classes))
            shapes.append((c, h, w))
        self.priors = nn.ModuleList(priors)
        self.block_shapes = shapes

    # -- z0 -> eps ------------------------------------------------------------------------
    def forward(self, z0: torch.Tensor, y: torch.Tensor | None = None, *, initialize: bool = False):
        """Map z0 to packed noise.

        Args:
            z0: (B, C, H, W) preprocessed images.
            y: (B,) labels for a class-conditional prior (negative = unlabeled) or None.
            initialize: run every not yet initialised ``ActNorm``'s data-dependent
                initialisation on the values reaching it (the model's ``init_from_data``).

        Returns:
            eps (B, C, H, W) standardised noise, packed; log p(z0) (B,) in nats.

        Raises:
            NonFiniteLogDetError: naming the first layer whose log-determinant is not finite.
        """
        h = z0
        terms: list[tuple[str, torch.Tensor]] = []
        blocks: list[torch.Tensor] = []
        log_prior = z0.new_zeros(z0.shape[0])
        for i, level in enumerate(self.levels):
            for j, layer in enumerate(level):
                if initialize and isinstance(layer, ActNorm):
                    layer.initialize(h)
                h, logdet = layer(h)
                terms.append((f"level {i} layer {j} ({type(layer).__name__})", logdet))
            last = i == len(self.levels) - 1
            kept, out = (None, h) if last else h.chunk(2, dim=1)
            mean, log_std = self.priors[i](out, kept, y)
            eps = (out - mean) * torch.exp(-log_std)
            log_prior = log_prior + standard_normal_log_prob(eps)
            terms.append((f"level {i} prior", -log_std.expand_as(out).flatten(1).sum(1)))
            blocks.append(eps)
            if not last:
                h = kept
        logdet = torch.stack([t for _, t in terms]).sum(0)
        if not torch.isfinite(logdet).all():
            for name, t in terms:
                if not torch.isfinite(t).all():
                    raise NonFiniteLogDetError(
                        f"non-finite log-determinant in {name}; lower the learning rate or add warm-up"
                    )
        return self.pack(blocks), log_prior + logdet

    # -- eps -> z0 ------------------------------------------------------------------------
    def inverse(self, eps: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Map packed noise eps (B, C, H, W) back to z0 (B, C, H, W), exactly inverting ``forward``."""
        blocks = self.unpack(eps)
        h = None
        for i in reversed(range(len(self.levels))):
            kept = h
            like = blocks[i]
            mean, log_std = self.priors[i](like, kept, y)
            out = mean + torch.exp(log_std) * blocks[i]
            h = out if kept is None else torch.cat([kept, out], dim=1)
            for layer in reversed(self.levels[i]):
                h = layer.inverse(h)
        return h

    # -- packing --------------------------------------------------------------------------
    def pack(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        """Blocks (one per split, then the top) -> one (B, C, H, W) tensor, undoing the squeezes."""
        t = blocks[-1]
        for block in reversed(blocks[:-1]):
            while t.shape[-1] < block.shape[-1]:
                t = unsqueeze(t)
            t = torch.cat([t, block], dim=1)
        while t.shape[-1] < self.shape[-1]:
            t = unsqueeze(t)
        return t

    def unpack(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The inverse of :meth:`pack`: (B, C, H, W) -> blocks shaped as ``block_shapes``."""
        blocks = []
        t = z
        for c, h, _ in self.block_shapes[:-1]:
            while t.shape[-1] > h:
                t = squeeze(t)
            t, block = t.split([t.shape[1] - c, c], dim=1)
            blocks.append(block)
        h = self.block_shapes[-1][1]
        while t.shape[-1] > h:
            t = squeeze(t)
        return blocks + [t]


# ----------------------------------------------------------------------------- architectures
def glow(config) -> MultiScaleFlow:
    """Glow: per level squeeze, then ``steps_per_level`` x (actnorm, 1x1 conv, channel coupling)."""
    c = config
    levels = []
    channels = c.channels
    for _ in range(c.num_levels):
        channels *= 4
        level: list[nn.Module] = [Squeeze()]
        for _ in range(c.steps_per_level):
            level += [
                ActNorm(channels),
                InvConv1x1(channels, lu=c.lu_decomposed),
                AffineCoupling(channels, "channel", c.hidden_channels),
            ]
        levels.append(level)
        channels //= 2  # the split
    return MultiScaleFlow(
        (c.channels, c.image_size, c.image_size),
        levels,
        learned_prior=c.learned_prior,
        num_classes=c.num_classes if c.conditional else 0,
    )


def realnvp(config) -> MultiScaleFlow:
    """RealNVP: per scale ``steps_per_level`` checkerboard couplings, squeeze, as many channel
    couplings, split; a final scale of ``steps_per_level + 1`` checkerboard couplings. Masks
    alternate; each coupling follows an actnorm (the paper's batch norm, without batch statistics).
    """
    c = config
    levels = []
    channels = c.channels

    def couplings(n: int, mask: str, ch: int) -> list[nn.Module]:
        out: list[nn.Module] = []
        for k in range(n):
            out += [ActNorm(ch), AffineCoupling(ch, mask, c.hidden_channels, flip=bool(k % 2))]
        return out

    for _ in range(c.num_levels):
        level = couplings(c.steps_per_level, "checkerboard", channels)
        channels *= 4
        level += [Squeeze(), *couplings(c.steps_per_level, "channel", channels)]
        levels.append(level)
        channels //= 2
    levels.append(couplings(c.steps_per_level + 1, "checkerboard", channels))
    return MultiScaleFlow(
        (c.channels, c.image_size, c.image_size),
        levels,
        learned_prior=c.learned_prior,
        num_classes=c.num_classes if c.conditional else 0,
    )


class VariationalDequantizer(nn.Module):
    """q(U | x) of variational dequantisation (Flow++, Ho et al., 2019), in its simplest form.

    U = sigmoid(mu(x) + sigma(x) e), e ~ N(0, I), with (mu, log sigma) from a small conv net of
    the image; log q(U | x) = log N(e) - sum(log sigma) - sum(log sigmoid(s) + log sigmoid(-s)).
    Flow++ uses a conditional flow for q; one conditional affine-sigmoid layer already lets the
    noise follow the image (ink pixels vs background) and tightens the bound over uniform noise.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.clamp = SCALE_CLAMP
        self.net = CouplingNet(channels, 2 * channels, hidden)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) images, e (B, C, H, W) standard normal -> (U in (0, 1), log q(U | x) (B,))."""
        mean, log_sigma = self.net(x).chunk(2, dim=1)
        log_sigma = self.clamp * torch.tanh(log_sigma / self.clamp)
        s = mean + torch.exp(log_sigma) * e
        jac = log_sigma + nn.functional.logsigmoid(s) + nn.functional.logsigmoid(-s)
        return torch.sigmoid(s), standard_normal_log_prob(e) - jac.flatten(1).sum(1)
