"""The FID Inception-v3 (2015-12-05 TensorFlow weights) in plain torch, without torchvision.

Heusel et al. (2017) computed FID with the Inception-v3 graph released by TensorFlow on
2015-12-05; pytorch-fid ported its weights to ``pt_inception-2015-12-05-6726825d.pth`` and
torch-fidelity (and so torchmetrics) load the same file. That graph differs from torchvision's
Inception-v3 in four places, reproduced here: 1008 output classes (``fc`` is 2048 -> 1008), the
average-pooling branches do not count padding (``count_include_pad=False``), and the last block
(``Mixed_7c``) pools its pool branch with a 3x3 max instead of an average. Module names follow
the file's keys, so ``state_dict()`` matches it key for key (566 keys, 23,885,486 values; the
table is ``/work/shared/weights/pt_inception-2015-12-05-keys.tsv``) and a real file loads with
``strict=True``.

Input pipeline (follows torch-fidelity's ``FeatureExtractorInceptionV3`` exactly, which is also
torchmetrics' with ``antialias=False``):

    x float (B, C, H, W) in [-1, 1]
      -> uint8 levels 0..255: round((x + 1) * 127.5)    (what saving a PNG does)
      -> grey repeated to 3 channels
      -> resize to 299 x 299 with TensorFlow 1.x ``resize_bilinear`` (align_corners=False,
         no half-pixel centres, no antialiasing) on the 0..255 values
      -> (x - 128) / 128
      -> network -> pool3 features (B, 2048) and logits (B, 1008)

pytorch-fid differs: it resizes with ``F.interpolate(bilinear)`` (half-pixel centres) and scales
by 127.5, so its features differ slightly; every metric card states which pipeline was used.

The weights file cannot be shipped; :func:`load` reads it from ``path``, ``$GENVISION_INCEPTION``
or ``<cache>/weights/pt_inception-2015-12-05-6726825d.pth``, checks its sha256 (skipped only
through an explicit ``verify_hash=False``, for tests with files of random values) and never
unpickles arbitrary objects (``torch.load(weights_only=True)``). :func:`download` fetches it where
there is internet, checking the same hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import pixels

FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
SIZE_BYTES = 95_628_359
URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FILE_NAME
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008
RESIZE = "torch-fidelity (TF1 resize_bilinear, align_corners=False, no antialias), then (x - 128) / 128"


# ----------------------------------------------------------------------------- blocks
class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3, as TensorFlow) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, padding not counted (the 2015 graph's pool branch)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b..5d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, c, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e), ``c7`` inner channels."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        return torch.cat([a, b, c, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b, 7c); ``max_pool`` for 7c's pool branch."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([a, b, c, self.branch_pool(pooled)], 1)


# ----------------------------------------------------------------------------- network
class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the 2015-12-05 graph: images -> (pool3 (B, 2048), logits (B, 1008)).

    ``forward`` takes float images (B, 1 or 3, H, W) in [-1, 1] and runs the whole input
    pipeline of the module docstring; :meth:`network` takes the already resized and scaled
    (B, 3, 299, 299) tensor. Always in eval mode (batch norm uses its stored statistics).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_LOGITS)
        # channels-last convolutions: faster on CPU (oneDNN), same values (docs/notes/metrics.md)
        self.to(memory_format=torch.channels_last)
        self.eval()

    def train(self, mode: bool = True):
        """Stays in eval mode: the FID network is a fixed function."""
        return super().train(False)

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 299, 299) scaled input -> pool3 (B, 2048), logits (B, 1008)."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = block(x)  # ... (B, 768, 17, 17)
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a):
            x = block(x)  # ... (B, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))  # (B, 2048, 8, 8)
        pool = x.mean(dim=(2, 3))  # (B, 2048)
        return pool, self.fc(pool)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(preprocess(x))

    def logits_unbiased(self, pool: torch.Tensor) -> torch.Tensor:
        """Logits without the fc bias (torch-fidelity's and torchmetrics' Inception-Score input)."""
        return pool @ self.fc.weight.T


# ----------------------------------------------------------------------------- input pipeline
def to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> float 0..255 integer levels, round((x + 1) * 127.5)."""
    return pixels.to_levels(x.float(), 256).float()


def resize_tf1_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)``: (B, C, H, W) -> (B, C, size, size).

    Output pixel j samples source coordinate j * (in / out) (no half-pixel offset), clamped to
    the last pixel, interpolating linearly between its floor and the next pixel. This is the
    resize of the original FID code and of torch-fidelity; it does not antialias.
    """

    def axis(n_in: int):
        src = torch.arange(size, dtype=torch.float64) * (n_in / size)  # (size,)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo).to(x.dtype)

    lo_y, hi_y, wy = axis(x.shape[2])
    lo_x, hi_x, wx = axis(x.shape[3])
    rows = x[:, :, lo_y] + (x[:, :, hi_y] - x[:, :, lo_y]) * wy[:, None]  # (B, C, size, W)
    return rows[..., lo_x] + (rows[..., hi_x] - rows[..., lo_x]) * wx  # (B, C, size, size)


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """Images (B, 1|3, H, W) in [-1, 1] -> the network's input (B, 3, 299, 299), see module doc."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"Inception takes images (B, 1 or 3, H, W); got {tuple(x.shape)}")
    x = to_uint8_levels(x)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = resize_tf1_bilinear(x, INPUT_SIZE)
    return (x - 128) / 128


# ----------------------------------------------------------------------------- weights
def default_path() -> Path:
    """``$GENVISION_INCEPTION``, else ``<GENVISION_CACHE or ~/.cache/genvision>/weights/<file>``."""
    env = os.environ.get("GENVISION_INCEPTION")
    if env:
        return Path(env)
    from .judges import cache_root

    return cache_root() / "weights" / FILE_NAME


def available(path: str | Path | None = None) -> bool:
    """Whether a weights file is present (its hash is checked only on :func:`load`)."""
    return Path(path or default_path()).is_file()


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def missing_message(path: Path) -> str:
    return (
        f"Inception weights not found at {path}: put {FILE_NAME} (sha256 {SHA256[:12]}..., "
        f"{SIZE_BYTES:,} bytes, from {URL}) there or set GENVISION_INCEPTION; with internet: "
        "python -c 'from genvision.metrics import inception; inception.download()'"
    )


def load(path: str | Path | None = None, *, verify_hash: bool = True) -> tuple[FIDInceptionV3, dict]:
    """The network with weights from ``path`` (default :func:`default_path`), and its card.

    Args:
        path: a state-dict file in the layout of the 2015-12-05 file (566 keys).
        verify_hash: check the file's sha256 against the real file's; False only for tests
            and experiments with other weights (the card then records the file's own hash).
    Returns:
        (module in eval mode, {"weights": path, "sha256": ..., "hash_verified": bool}).
    Raises:
        FileNotFoundError: no file (the message says where to put it); ValueError: wrong hash
            or a file that is not a state dict of this layout.
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise FileNotFoundError(missing_message(path))
    digest = sha256(path)
    if verify_hash and digest != SHA256:
        raise ValueError(
            f"{path} has sha256 {digest[:12]}..., not the 2015-12-05 FID weights ({SHA256[:12]}...); "
            "replace it with the real file, or pass verify_hash=False for other weights"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:2]
        raise ValueError(
            f"{path} does not match the FID Inception layout: {' '.join(first).strip()}"
        ) from None
    return net.eval(), {"weights": str(path), "sha256": digest, "hash_verified": digest == SHA256}


def write_random_weights(path: str | Path, seed: int = 0) -> Path:
    """Write a state-dict file in the real file's layout with random values (for tests, benchmarks).

    Convolutions get He-normal weights and batch norms statistics near (0, 1), so activations
    keep their scale through the 94 layers and the features have spread. Saved with torch's
    legacy (non-zip) serialisation, like the real file. Its hash is not the real one: load it
    with ``verify_hash=False``.
    """
    from .. import io

    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in FIDInceptionV3().state_dict().items():
        if name.endswith("conv.weight"):
            fan_in = value[0].numel()
            value = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif name.endswith(("bn.running_mean", "bn.bias")):
            value = 0.1 * torch.randn(value.shape, generator=g)
        elif name.endswith(("bn.running_var", "bn.weight")):
            value = 1 + 0.1 * torch.rand(value.shape, generator=g)
        elif name.startswith("fc."):
            value = torch.randn(value.shape, generator=g) / FEATURE_DIM**0.5
        state[name] = value
    return io.atomic_write(path, lambda tmp: torch.save(state, tmp, _use_new_zipfile_serialization=False))


def download(path: str | Path | None = None) -> Path:
    """Fetch the weights from :data:`URL` to ``path`` (default :func:`default_path`), hash-checked."""
    import urllib.request

    from .. import io

    path = Path(path) if path is not None else default_path()
    try:
        with urllib.request.urlopen(URL, timeout=60) as response:  # noqa: S310 (fixed https URL)
            blob = response.read()
    except OSError as e:  # URLError, timeouts, refused connections: offline or blocked
        raise ConnectionError(
            f"could not download {URL} ({getattr(e, 'reason', e)}); without internet, fetch {FILE_NAME} "
            f"(sha256 {SHA256[:12]}...) elsewhere and put it at {path}, or set GENVISION_INCEPTION to its path"
        ) from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != SHA256:
        raise ValueError(f"downloaded file has sha256 {digest[:12]}..., expected {SHA256[:12]}...; not saved")
    return io.write_bytes(path, blob)
