"""Networks of the autoregressive family: masked convolutions, PixelCNN, Gated PixelCNN, Row LSTM.

Every network maps images (B, C, H, W) in [-1, 1] to output parameters (B, C, P, H, W): P numbers
per sub-pixel (``P = levels`` logits for the softmax head, ``3 * mixtures`` for the discretised
logistic mixture), where the parameters of sub-pixel (c, i, j) depend only on the sub-pixels
before it in raster order, channels R -> G -> B within a pixel.

Masks (``MaskedConv2d``), for a 5x5 kernel; ``c`` is the centre tap::

    1 1 1 1 1
    1 1 1 1 1
    1 1 c 0 0      c: mask A sees earlier channel groups only, mask B also its own group
    0 0 0 0 0
    0 0 0 0 0

Channel groups: a feature tensor of ``n`` channels is split into ``split`` equal chunks, each cut
into ``C`` contiguous blocks; block ``g`` belongs to image channel ``g`` (R, G, B). With one image
channel every feature is in group 0, and mask B's centre tap is a plain connection.

Besides ``forward`` each network offers the pieces its cached sampler needs (see
``samplers.raster_cached``): what can be computed once per row (``begin_row``), and the output
of one pixel given it (``pixel``). Those pieces reuse the same modules, so cached and full evaluation compute the same numbers.

Dropout (training only, as in PixelCNN++, Salimans et al. 2017): on each residual branch
(PixelCNN), on each gated output before its 1x1 convolution (Gated PixelCNN), on the features
before the head (PixelRNN); its masks come from the per-image training generators.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ... import seeding


class Dropout(nn.Module):
    """Inverted dropout whose mask of image k comes from generator k while ``generators`` is set.

    Set by :func:`dropout_generators` for one training forward pass (so the noise is the trainer's
    per-image noise: exact resume, the same on any split of a batch); the global RNG otherwise.
    Identity in eval mode or with ``p == 0``.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p, self.generators = float(p), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = seeding.rand(x.shape, self.generators, x.device) >= self.p
        return x * keep / (1 - self.p)


@contextmanager
def dropout_generators(net: nn.Module, generators):
    """Context: every :class:`Dropout` in ``net`` draws from ``generators`` (a per-image list)."""
    drops = [m for m in net.modules() if isinstance(m, Dropout)]
    for m in drops:
        m.generators = generators
    try:
        yield
    finally:
        for m in drops:
            m.generators = None


def channel_groups(n: int, channels: int, split: int = 1) -> torch.Tensor:
    """Group (image channel) of each of ``n`` features: (n,) int64 in 0..channels-1."""
    if n % split or (n // split) < channels:
        raise ValueError(f"{n} features cannot be split into {split} chunks of {channels} channel groups")
    chunk = n // split
    position = torch.arange(n) % chunk
    return position * channels // chunk


class MaskedConv2d(nn.Conv2d):
    """Convolution that sees only earlier pixels in raster order (PixelCNN, van den Oord et al. 2016).

    ``mask_type`` "A" (first layer: the current sub-pixel is hidden) or "B" (later layers: it is
    seen through the features that already exclude it). Kernels are (kh, kw) with odd kw; rows
    below the centre are masked, so zero padding at the bottom never matters.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        mask_type: str,
        *,
        image_channels: int = 1,
        in_split: int = 1,
        out_split: int = 1,
    ):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if mask_type not in ("A", "B") or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"mask_type must be A or B and kernel sides odd (got {mask_type}, {kh}x{kw})")
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        gin = channel_groups(in_channels, image_channels, in_split)
        gout = channel_groups(out_channels, image_channels, out_split)
        centre = gout[:, None] > gin[None, :] if mask_type == "A" else gout[:, None] >= gin[None, :]
        mask = torch.zeros(out_channels, in_channels, kh, kw)
        mask[:, :, : kh // 2] = 1  # rows above
        mask[:, :, kh // 2, : kw // 2] = 1  # left of the centre in the centre row
        mask[:, :, kh // 2, kw // 2] = centre.float()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def output_head(width: int, hidden: int, channels: int, params: int) -> nn.Sequential:
    """ReLU -> 1x1 (mask B) -> ReLU -> 1x1 (mask B) to ``channels * params`` outputs, groups kept."""
    return nn.Sequential(
        nn.ReLU(),
        MaskedConv2d(width, hidden, 1, "B", image_channels=channels),
        nn.ReLU(),
        MaskedConv2d(hidden, channels * params, 1, "B", image_channels=channels),
    )


def split_params(out: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, C*P, H, W) head output -> (B, C, P, H, W); block c of the channels is sub-pixel c's."""
    b, _, h, w = out.shape
    return out.view(b, channels, -1, h, w)


# ----------------------------------------------------------------------------- PixelCNN
class ResidualBlock(nn.Module):
    """PixelCNN residual block (van den Oord et al. 2016a, fig. 5): 2h -> h (1x1) -> h (kxk) -> 2h."""

    def __init__(self, width: int, kernel: int, channels: int, dropout: float = 0.0):
        super().__init__()
        half = width // 2
        self.drop = Dropout(dropout)
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(width, half, 1, "B", image_channels=channels),
            nn.ReLU(),
            MaskedConv2d(half, half, kernel, "B", image_channels=channels),
            nn.ReLU(),
            MaskedConv2d(half, width, 1, "B", image_channels=channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.net(x))


class PixelCNNNet(nn.Module):
    """PixelCNN: a 7x7 mask-A convolution, residual blocks of mask-B convolutions, a 1x1 head.

    Output (i, j) depends on input rows i - ``reach`` .. i and columns j - ``reach`` .. j + ``reach``
    only, so the cached sampler evaluates that window per pixel instead of the whole image.
    """

    def __init__(
        self,
        channels: int,
        params: int,
        width: int,
        num_layers: int,
        kernel: int,
        head: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels = channels
        self.first = MaskedConv2d(channels, width, 7, "A", image_channels=channels)
        self.blocks = nn.Sequential(
            *[ResidualBlock(width, kernel, channels, dropout) for _ in range(num_layers)]
        )
        self.head = output_head(width, head, channels, params)
        self.reach = 3 + num_layers * (kernel // 2)  # rows up (and columns aside) that reach an output

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, C, P, H, W) output parameters."""
        return split_params(self.head(self.blocks(self.first(x))), self.channels)

    def begin_row(self, x: torch.Tensor, i: int, state, y=None):
        """Nothing is kept between rows: each pixel re-evaluates a window around it."""
        return None

    def pixel(self, x: torch.Tensor, i: int, j: int, state, y=None) -> torch.Tensor:
        """Output parameters of pixel (i, j), (B, C, P), from the window of rows i - reach .. i and
        columns j - reach .. j + reach of ``x``: every input its output depends on. Features near
        the window's cut edges are wrong, but none of them reaches (i, j)."""
        top, left = max(0, i - self.reach), max(0, j - self.reach)
        window = x[:, :, top : i + 1, left : j + self.reach + 1]
        return self.forward(window)[..., i - top, j - left]


# ----------------------------------------------------------------------------- Gated PixelCNN
def shift_down(v: torch.Tensor) -> torch.Tensor:
    """Move every row one down (row 0 becomes zeros): row i then holds what row i-1 saw."""
    return F.pad(v, (0, 0, 1, 0))[:, :, :-1]


class GatedLayer(nn.Module):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016b, fig. 2), blind-spot free.

    Vertical stack: a (k//2 + 1) x k convolution over the rows up to and including the current
    one; it feeds the horizontal stack only shifted one row down, so row i sees rows < i through
    it. Horizontal stack: a masked 1 x k convolution over the current row (mask A in the first
    layer), plus the vertical link, gated ``tanh(a) * sigmoid(b)``, a 1x1 convolution and a
    residual connection (not in the first layer). A class embedding biases both gates.
    """

    def __init__(
        self,
        in_ch: int,
        width: int,
        kernel: int,
        channels: int,
        first: bool,
        num_classes: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.first, self.kernel, self.width = first, kernel, width
        self.drop = Dropout(dropout)
        k = kernel
        self.vconv = nn.Conv2d(in_ch, 2 * width, (k // 2 + 1, k))
        mask = "A" if first else "B"
        self.hconv = MaskedConv2d(in_ch, 2 * width, (1, k), mask, image_channels=channels, out_split=2)
        self.link = nn.Conv2d(2 * width, 2 * width, 1)  # vertical -> horizontal (rows above only)
        self.hout = MaskedConv2d(width, width, 1, "B", image_channels=channels)
        self.cond = nn.Embedding(num_classes, 4 * width) if num_classes else None

    def class_bias(self, y: torch.Tensor | None):
        """(vertical, horizontal) gate biases (B, 2w, 1, 1) of labels ``y``, or (0, 0)."""
        if self.cond is None or y is None:
            return 0.0, 0.0
        return self.cond(y)[:, :, None, None].chunk(2, dim=1)

    def vertical(self, v: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertical pre-activation (B, 2w, H, W) and the next layer's vertical input (B, w, H, W)."""
        k = self.kernel
        pre = self.vconv(F.pad(v, (k // 2, k // 2, k // 2, 0))) + self.class_bias(y)[0]
        return pre, gate(pre)

    def horizontal(self, h: torch.Tensor, link: torch.Tensor, y=None) -> torch.Tensor:
        """Next horizontal features from ``h`` (B, in, R, W) and the linked vertical rows (B, 2w, R, W)."""
        out = self.hout(self.drop(gate(self.hconv(h) + link + self.class_bias(y)[1])))
        return out if self.first else h + out


def gate(pre: torch.Tensor) -> torch.Tensor:
    """Gated activation tanh(a) * sigmoid(b) of the two channel halves of ``pre``."""
    a, b = pre.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNNNet(nn.Module):
    """Gated PixelCNN: ``num_layers`` gated layers (first kernel 7, then ``kernel``) and a 1x1 head.

    Cached sampling: at the start of row i the vertical stack runs once over rows < i; each pixel
    of the row then only re-evaluates the horizontal stack on that one row.
    """

    def __init__(
        self,
        channels: int,
        params: int,
        width: int,
        num_layers: int,
        kernel: int,
        head: int,
        num_classes: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels = channels
        self.layers = nn.ModuleList(
            GatedLayer(
                channels if i == 0 else width,
                width,
                7 if i == 0 else kernel,
                channels,
                i == 0,
                num_classes,
                dropout,
            )
            for i in range(num_layers)
        )
        self.head = output_head(width, head, channels, params)

    def links(self, x: torch.Tensor, y=None) -> list[torch.Tensor]:
        """Every layer's vertical link (B, 2w, H, W); row i holds what rows < i contribute."""
        v, out = x, []
        for layer in self.layers:
            pre, v = layer.vertical(v, y)
            out.append(layer.link(shift_down(pre)))
        return out

    def horizontal(self, x: torch.Tensor, links: list[torch.Tensor], y=None) -> torch.Tensor:
        """Output parameters (B, C, P, R, W) of the rows of ``x`` (B, C, R, W) given their links."""
        h = x
        for layer, link in zip(self.layers, links):
            h = layer.horizontal(h, link, y)
        return split_params(self.head(h), self.channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] (and labels (B,) when conditional) -> (B, C, P, H, W)."""
        return self.horizontal(x, self.links(x, y), y)

    def begin_row(self, x: torch.Tensor, i: int, state, y=None) -> list[torch.Tensor]:
        """Links of row ``i`` (B, 2w, 1, W) per layer, from the vertical stack over rows < i.

        The stack runs on rows 0..i; after the shift, row i's link depends on rows < i only.
        """
        return [link[:, :, -1:] for link in self.links(x[:, :, : i + 1], y)]

    def pixel(self, x: torch.Tensor, i: int, j: int, state, y=None) -> torch.Tensor:
        """Output parameters of pixel (i, j), (B, C, P): the horizontal stack on row i only."""
        return self.horizontal(x[:, :, i : i + 1], state, y)[..., 0, j]


# ----------------------------------------------------------------------------- PixelRNN
class RowLSTMLayer(nn.Module):
    """Row LSTM (van den Oord et al. 2016a, sec. 3.1): one LSTM step per row, all columns at once.

    Input-to-state is a masked 1 x k convolution along the row (mask B); state-to-state a 1-D
    convolution of width k over the previous row's hidden state, giving the triangular receptive
    field of the paper. Gates i, f, o, g; a residual connection around the layer.
    """

    def __init__(self, width: int, kernel: int, channels: int):
        super().__init__()
        self.width = width
        self.input_to_state = MaskedConv2d(
            width, 4 * width, (1, kernel), "B", image_channels=channels, out_split=4
        )
        self.state_to_state = nn.Conv1d(width, 4 * width, kernel, padding=kernel // 2)

    def step(self, x_row: torch.Tensor, hc: tuple[torch.Tensor, torch.Tensor]):
        """One row: ``x_row`` (B, w, W) input, ``hc`` previous row's (h, c) (B, w, W) -> new (h, c)."""
        h, c = hc
        pre = self.input_to_state(x_row.unsqueeze(2)).squeeze(2) + self.state_to_state(h)
        i, f, o, g = pre.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PixelRNNNet(nn.Module):
    """PixelRNN with Row LSTM layers: 7x7 mask-A convolution, ``num_layers`` Row LSTMs, 1x1 head.

    The LSTMs run row by row; cached sampling keeps every layer's (h, c) of the previous row and
    re-evaluates only the current row per pixel.
    """

    def __init__(
        self,
        channels: int,
        params: int,
        width: int,
        num_layers: int,
        kernel: int,
        head: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels, self.width = channels, width
        self.drop = Dropout(dropout)
        self.first = MaskedConv2d(channels, width, 7, "A", image_channels=channels)
        self.layers = nn.ModuleList(RowLSTMLayer(width, kernel, channels) for _ in range(num_layers))
        self.head = output_head(width, head, channels, params)

    def _zeros(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        z = x.new_zeros(x.shape[0], self.width, x.shape[-1])
        return [(z, z) for _ in self.layers]

    def _row_features(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """First-layer features of row ``i`` (B, w, W), from rows i-3 .. i (the 7x7 kernel's reach)."""
        return self.first(x[:, :, max(0, i - 3) : i + 1])[:, :, -1]

    def _step(self, features: torch.Tensor, states: list):
        """All layers on one row: (B, w, W) features and previous states -> (top output, new states)."""
        out, new = features, []
        for layer, hc in zip(self.layers, states):
            h, c = layer.step(out, hc)
            out = out + h
            new.append((h, c))
        return out, new

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, C, P, H, W); the LSTMs take one step per row."""
        features = self.first(x)  # (B, w, H, W)
        states, rows = self._zeros(x), []
        for i in range(x.shape[2]):
            out, states = self._step(features[:, :, i], states)
            rows.append(out)
        return split_params(self.head(self.drop(torch.stack(rows, dim=2))), self.channels)

    def begin_row(self, x: torch.Tensor, i: int, state, y=None) -> list:
        """States after row i-1: advance ``state`` (after row i-2) by the finished row i-1."""
        if i == 0:
            return self._zeros(x)
        return self._step(self._row_features(x, i - 1), state)[1]

    def pixel(self, x: torch.Tensor, i: int, j: int, state, y=None) -> torch.Tensor:
        """Output parameters of pixel (i, j), (B, C, P): row i's step from the states after row i-1."""
        out, _ = self._step(self._row_features(x, i), state)
        return split_params(self.head(out.unsqueeze(2)), self.channels)[..., 0, j]
