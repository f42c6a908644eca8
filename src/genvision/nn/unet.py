"""A UNet for denoising (Ronneberger et al., 2015, in the form of Ho et al., 2020 and Dhariwal &
Nichol, 2021): residual blocks with GroupNorm and SiLU, a sinusoidal timestep embedding through an
MLP, optional class embedding (with a "null" class for classifier-free guidance), optional
self-attention at chosen resolutions, and optional cross-attention to text tokens (``context_dim``:
after the blocks at the lowest sides and in the middle, with the tokens' mean joining the
timestep embedding).

Picture for ``image_size=8, channel_mults=(1, 2), num_res_blocks=2`` (C = base_channels):

    x (B, ch, 8, 8) -> conv -> (C, 8x8) -> [Res C]x2 -> down -> (C, 4x4) -> [Res 2C]x2
                                                                                |
                                                                        middle: Res, (Attn), Res
                                                                                |
    out (B, ch, 8, 8) <- conv <- [Res C]x3 <- up <- [Res 2C]x3  <------ (2C, 4x4)
    every Res on the way up takes the matching skip from the way down (concatenated).

The embedding (time + class) enters every residual block as a per-channel scale and shift of
the second GroupNorm ("adaptive group norm", Dhariwal & Nichol, 2021). Last convolutions of
each block and of the network start at zero, so a new UNet outputs zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossAttention2d, SelfAttention2d, group_norm
from .embeddings import ClassEmbedding, TimestepMLP


@dataclass
class Cond:
    """What conditions one UNet call: every part optional, each filled by the model that needs it.

    - ``labels``: (B,) int64 class labels (``num_classes`` or negative = the null class).
    - ``image``: (B, cond_channels, H, W) extra input channels concatenated to the noisy image
      (image-to-image conditioning: a masked image, a low-resolution one, a grey one).
    - ``context``: (B, L, D) tokens for cross-attention (text), with ``context_mask`` (B, L) bool
      (True = a real token; None = all real). Only a UNet built with ``context_dim`` takes them.
    - ``residuals``: tensors added to the skips and the middle (a control branch's output), one
      per entry of :meth:`UNet.residual_shapes`.
    """

    labels: torch.Tensor | None = None
    image: torch.Tensor | None = None
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    residuals: list[torch.Tensor] | None = None


def as_cond(cond) -> Cond:
    """A :class:`Cond` from a ``Cond``, a (B,) labels tensor (the short form) or None."""
    if cond is None or isinstance(cond, Cond):
        return cond or Cond()
    if isinstance(cond, torch.Tensor):
        return Cond(labels=cond)
    raise TypeError(f"cond must be a Cond, a labels tensor or None (got {type(cond).__name__})")


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GN -> SiLU -> conv -> GN * (1 + scale) + shift -> SiLU -> dropout -> conv, plus skip.

    (B, cin, H, W), (B, emb_dim) -> (B, cout, H, W).
    """

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``emb`` is the embedding after its SiLU (the UNet applies it once for every block)."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, cout, H, W)
        scale, shift = self.emb(emb).chunk(2, dim=1)  # (B, cout) each
        h = adaptive_group_norm(h, self.norm2, scale, shift)
        h = self.conv2(self.dropout(F.silu(h)))
        h += self.skip(x)  # in place: the conv's backward keeps its input, not its output
        return h


def adaptive_group_norm(
    h: torch.Tensor, norm: nn.GroupNorm, scale: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """``norm(h) * (1 + scale) + shift`` with per-image ``scale``/``shift`` of shape (B, C), in one kernel.

    The FiLM is folded into GroupNorm's affine: image b gets weight ``gamma * (1 + scale[b])`` and
    bias ``beta * (1 + scale[b]) + shift[b]``, and the batch is normalised as one sample of B * C
    channels in B * groups groups (the same groups, since they never straddle images). The same
    function as the three-step form, without two full-size element-wise passes forward and
    backward (the saving: docs/notes/nn.md).
    """
    b, c = h.shape[:2]
    gain = 1 + scale  # (B, C)
    weight = norm.weight * gain
    bias = norm.bias * gain + shift
    out = F.group_norm(
        h.reshape(1, b * c, *h.shape[2:]), b * norm.num_groups, weight.reshape(-1), bias.reshape(-1), norm.eps
    )
    return out.view_as(h)


class Downsample(nn.Module):
    """Strided 3x3 conv: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then 3x3 conv: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """Denoising UNet: ``(x_t, t, y) -> prediction`` with the shape of ``x_t``.

    Args:
        channels: image channels (1 or 3), in and out.
        image_size: side of the square input; must be divisible by ``2 ** (len(channel_mults) - 1)``.
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one entry per resolution level; each level after the first halves H and W.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: feature-map sides (e.g. ``(8,)``, ``(16, 8)``) that get self-attention;
            the middle block gets attention when the lowest resolution is listed.
        num_classes: 0 for unconditional; else a class embedding with a null class ``num_classes``.
        dropout: dropout inside residual blocks.
        heads: attention heads.
        cond_channels: extra input channels taken from ``Cond.image`` (0: none).
        context_dim: width of ``Cond.context`` tokens (0: no text). Then every residual block at
            the ``cross_attention_resolutions`` (default: the two lowest sides) and in the middle is
            followed by cross-attention to the tokens, and the mean of the real tokens, projected,
            joins the timestep embedding.
        cross_attention_resolutions: feature-map sides with cross-attention (context_dim > 0).
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 8,
        *,
        base_channels: int = 64,
        channel_mults: tuple[int, ...] = (1, 2),
        num_res_blocks: int = 2,
        attention_resolutions: tuple[int, ...] = (),
        num_classes: int = 0,
        dropout: float = 0.0,
        heads: int = 4,
        cond_channels: int = 0,
        context_dim: int = 0,
        cross_attention_resolutions: tuple[int, ...] = (),
    ):
        super().__init__()
        self.cond_channels = cond_channels
        self.context_dim = context_dim
        levels = len(channel_mults)
        if image_size % 2 ** (levels - 1):
            raise ValueError(
                f"image_size {image_size} must be divisible by 2**(len(channel_mults)-1) = {2 ** (levels - 1)}"
            )
        emb_dim = 4 * base_channels
        self.time_embed = TimestepMLP(base_channels, emb_dim)
        self.class_embed = ClassEmbedding(num_classes, emb_dim) if num_classes > 0 else None
        self.null_class = num_classes if num_classes > 0 else None
        sides = [image_size // 2**i for i in range(levels)]
        cross_sides = set(cross_attention_resolutions or sides[-2:]) if context_dim > 0 else set()
        self.context_embed = nn.Linear(context_dim, emb_dim) if context_dim > 0 else None

        def attn(ch: int, res: int) -> nn.Module:
            return SelfAttention2d(ch, heads) if res in attention_resolutions else nn.Identity()

        def cross(ch: int, res: int) -> list[nn.Module]:
            return [CrossAttention2d(ch, context_dim, heads)] if res in cross_sides else []

        self.conv_in = nn.Conv2d(channels + cond_channels, base_channels, 3, padding=1)

        # -- down: remember each output's width for the matching skip on the way up
        self.down = nn.ModuleList()
        skip_widths, ch, res = [base_channels], base_channels, image_size
        for i, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(nn.ModuleList([ResBlock(ch, base_channels * mult, emb_dim, dropout)]))
                ch = base_channels * mult
                self.down[-1].append(attn(ch, res))
                self.down[-1].extend(cross(ch, res))
                skip_widths.append(ch)
            if i < levels - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                res //= 2
                skip_widths.append(ch)

        # -- middle, at the lowest resolution
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = attn(ch, res)
        self.mid_cross = CrossAttention2d(ch, context_dim, heads) if context_dim > 0 else None
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        # -- up: num_res_blocks + 1 blocks per level, each eating one skip
        self.up = nn.ModuleList()
        for i, mult in reversed(list(enumerate(channel_mults))):
            for j in range(num_res_blocks + 1):
                block = ResBlock(ch + skip_widths.pop(), base_channels * mult, emb_dim, dropout)
                ch = base_channels * mult
                self.up.append(nn.ModuleList([block, attn(ch, res), *cross(ch, res)]))
                if i > 0 and j == num_res_blocks:
                    self.up[-1].append(Upsample(ch))
                    res *= 2

        self.norm_out = group_norm(ch)
        self.conv_out = _zero(nn.Conv2d(ch, channels, 3, padding=1))

    def embed(
        self, t: torch.Tensor, y: torch.Tensor | None, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,) timesteps, (B,) labels or None and (B, context_dim) pooled text or None -> (B, 4 * base_channels)."""
        emb = self.time_embed(t)
        if pooled is not None:
            emb = emb + self.context_embed(pooled.to(emb.dtype))
        if self.class_embed is not None:
            emb = emb + self.class_embed(y, t.shape[0], t.device)
        elif y is not None:
            raise ValueError("this UNet has no class embedding (num_classes=0); pass y=None")
        return emb

    def _context(self, cond: Cond, b: int):
        """(tokens, mask, pooled) of ``cond`` checked against this UNet (all None without text)."""
        if self.context_dim == 0:
            if cond.context is not None:
                raise ValueError(
                    "this UNet has no cross-attention (context_dim=0); it takes no context tokens"
                )
            return None, None, None
        if cond.context is None:
            raise ValueError("this UNet is text-conditioned; it needs context tokens (Cond.context)")
        context = cond.context
        if context.dim() != 3 or context.shape[0] != b or context.shape[2] != self.context_dim:
            raise ValueError(f"context must be (B={b}, L, {self.context_dim}); got {tuple(context.shape)}")
        mask = cond.context_mask
        if mask is None:
            mask = torch.ones(context.shape[:2], dtype=torch.bool, device=context.device)
        if mask.shape != context.shape[:2]:
            raise ValueError(f"context_mask must be {tuple(context.shape[:2])}; got {tuple(mask.shape)}")
        mask = mask.to(torch.bool)
        if not mask.any(dim=1).all():
            raise ValueError("every context needs at least one real token (context_mask all False)")
        m = mask.to(context.dtype).unsqueeze(-1)
        pooled = (context * m).sum(1) / m.sum(1)  # (B, D) mean of the real tokens
        return context, mask, pooled

    def residual_shapes(self, image_size: int) -> list[tuple[int, int, int]]:
        """(C, H, W) of each tensor ``Cond.residuals`` adds: every skip in order, then the middle."""
        shapes, side = [], image_size
        ch = self.conv_in.out_channels
        shapes.append((ch, side, side))
        for layers in self.down:
            if isinstance(layers[0], ResBlock):
                ch = layers[0].conv2.out_channels
            else:
                side //= 2
            shapes.append((ch, side, side))
        shapes.append((ch, side, side))  # the middle
        return shapes

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        """
        Args:
            x: (B, channels, H, W) noisy images.
            t: (B,) timesteps (int or float).
            cond: a :class:`Cond`, or (B,) int64 labels (``num_classes`` or negative for "no
                label"), or None (unconditional / all null).

        Returns:
            (B, channels, H, W) prediction (noise, velocity or clean image: the caller decides).
        """
        cond = as_cond(cond)
        residuals = list(cond.residuals) if cond.residuals is not None else None
        if residuals is not None and len(residuals) != len(self.down) + 2:
            raise ValueError(f"residuals must hold {len(self.down) + 2} tensors (got {len(residuals)})")
        skips, h, emb, context, mask = self._encode(x, t, cond)
        if residuals is not None:  # a control branch's additions, to the skips and the middle
            skips = [s + r for s, r in zip(skips, residuals[:-1])]
            h = h + residuals[-1]
        for layers in self.up:
            h = layers[0](torch.cat([h, skips.pop()], dim=1), emb)  # (B, c_h + c_skip, ...) -> (B, c, ...)
            h = self._after(h, layers[1:], context, mask)
        return self.conv_out(F.silu(self.norm_out(h)))

    def encode(self, x: torch.Tensor, t: torch.Tensor, cond=None, *, added=None) -> list[torch.Tensor]:
        """The encoder's outputs, every skip in order then the middle (the shapes of
        :meth:`residual_shapes`); ``added`` (B, base_channels, H, W) joins the input convolution's
        output (a control branch's embedded structure map)."""
        skips, h, *_ = self._encode(x, t, as_cond(cond), added)
        return [*skips, h]

    def _encode(self, x: torch.Tensor, t: torch.Tensor, cond: Cond, added=None):
        """(skips, middle output, activated embedding, context tokens, context mask)."""
        context, mask, pooled = self._context(cond, x.shape[0])
        if (cond.image is None) != (self.cond_channels == 0):
            raise ValueError(
                f"this UNet takes {self.cond_channels} conditioning image channels; "
                f"got {'none' if cond.image is None else cond.image.shape[1]}"
            )
        if cond.image is not None:
            if cond.image.shape[0] != x.shape[0] or cond.image.shape[1:] != (
                self.cond_channels,
                *x.shape[2:],
            ):
                raise ValueError(
                    f"the conditioning image must be (B, {self.cond_channels}, {x.shape[2]}, {x.shape[3]}); "
                    f"got {tuple(cond.image.shape)}"
                )
            x = torch.cat([x, cond.image.to(x.dtype)], dim=1)
        emb = F.silu(self.embed(t, cond.labels, pooled))  # (B, E), activated once for every block
        h = self.conv_in(x)  # (B, C, H, W)
        if added is not None:
            h = h + added
        skips = [h]
        for layers in self.down:
            if isinstance(layers[0], ResBlock):
                h = self._after(layers[0](h, emb), layers[1:], context, mask)
            else:
                h = layers[0](h)  # Downsample: (B, c, h, w) -> (B, c, h/2, w/2)
            skips.append(h)
        h = self.mid_attn(self.mid1(h, emb))
        if self.mid_cross is not None:
            h = self.mid_cross(h, context, mask)
        h = self.mid2(h, emb)
        return skips, h, emb, context, mask

    @staticmethod
    def _after(h: torch.Tensor, extras, context, mask) -> torch.Tensor:
        """Self-attention (or identity), cross-attention, Upsample, in order."""
        for extra in extras:
            h = extra(h, context, mask) if isinstance(extra, CrossAttention2d) else extra(h)
        return h
