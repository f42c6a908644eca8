"""Structure maps of images, and how faithfully an output follows one.

The control branch of a structure-conditioned model (ControlNet-like) is trained on pairs made
from the data alone: an image and a structure map extracted from it. This module is the
extractor and the yardstick, written for images only (no model), so that training, sampling and
the fidelity measure all use one definition of each kind:

- ``edges``: a Canny-style edge map of the grey image: Sobel gradients, non-maximum suppression
  along the gradient direction (four orientations), then hysteresis (weak edges kept only where
  they connect to strong ones). Thresholds are fractions of the largest gradient a [-1, 1] image
  can have, so a faint image has few edges rather than amplified noise.
- ``sketch``: the edge map thinned to one-pixel lines (Zhang and Suen's thinning, 1984), the
  kind of line a person draws.
- ``mask``: the foreground: pixels whose colour differs from the image's background colour (the
  median of its border pixels) by more than a threshold; ink on digits, the drawing on an emoji.
- ``lowres``: the image averaged over 4x4 blocks and enlarged back by repetition.

Every map is a float tensor (N, C, H, W) in [-1, 1] of the image's size: one channel for the
binary maps (+1 on the structure), the image's channels for ``lowres``. Fidelity compares the
map extracted from an output with the map it was asked to follow: edge F1 with a one-pixel
tolerance (``edges``, ``sketch``), intersection over union (``mask``), PSNR of the low-resolution
images in dB (``lowres``, data range [-1, 1] taken as 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("edges", "sketch", "mask", "lowres")
#: hysteresis thresholds of ``edges``, as fractions of the largest Sobel magnitude of a [-1, 1] image
EDGE_LOW, EDGE_HIGH = 0.1, 0.2
#: ``mask``: a pixel is foreground when it differs from the background colour by more than this
#: (mean absolute difference over channels, on the [-1, 1] scale)
MASK_THRESHOLD = 0.5
LOWRES_FACTOR = 4
#: edge F1's tolerance: an edge pixel within this many pixels (Chebyshev) of the other map's matches
TOLERANCE = 1
_SOBEL_MAX = 8.0 * math.sqrt(2.0)  # |gx| and |gy| reach 4 x 2 each on a [-1, 1] step


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown control {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def channels_of(kind: str, image_channels: int) -> int:
    """Channels of a ``kind`` map of images with ``image_channels`` channels."""
    return image_channels if check_kind(kind) == "lowres" else 1


def _images(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().float()
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"structure maps take images (N, 1 or 3, H, W) in [-1, 1]; got {tuple(x.shape)}")
    return x


def extract(kind: str, images) -> torch.Tensor:
    """The ``kind`` map (N, C', H, W) in [-1, 1] of ``images`` (N, C, H, W) in [-1, 1]."""
    x = _images(images)
    binary = {"edges": edges, "sketch": sketch, "mask": mask}
    if check_kind(kind) == "lowres":
        return lowres(x)
    return binary[kind](x).float() * 2 - 1


# ----------------------------------------------------------------------------- extractors
def grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luminance-like mean of the channels."""
    return x.mean(dim=1, keepdim=True)


def sobel(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel gradients of (N, 1, H, W), edges replicated at the border."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=g.dtype)
    padded = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx.view(1, 1, 3, 3))
    gy = F.conv2d(padded, kx.t().contiguous().view(1, 1, 3, 3))
    return gx, gy


def _neighbours(t: torch.Tensor) -> torch.Tensor:
    """The 8 neighbours of each pixel of (N, 1, H, W), zero outside: (N, 8, H, W) in the order
    P2..P9 of Zhang-Suen (north, then clockwise)."""
    p = F.pad(t, (1, 1, 1, 1))
    h, w = t.shape[-2:]
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    return torch.cat([p[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets], dim=1)


def edges(x: torch.Tensor) -> torch.Tensor:
    """Canny-style edges, bool (N, 1, H, W); see the module docstring."""
    gx, gy = sobel(grey(_images(x)))
    mag = torch.sqrt(gx**2 + gy**2) / _SOBEL_MAX
    # non-maximum suppression: keep a pixel that is no smaller than both neighbours across the edge
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180
    # rows grow downwards, so a gradient at 45 degrees points south-east
    sector = ((angle + 22.5) // 45).long() % 4  # 0: along x, 1: 45 (SE), 2: along y, 3: 135 (SW)
    nb = _neighbours(mag)  # N, NE, E, SE, S, SW, W, NW
    pairs = {0: (2, 6), 1: (3, 7), 2: (0, 4), 3: (1, 5)}  # gradient direction -> neighbours along it
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for s, (a, b) in pairs.items():
        local = (mag >= nb[:, a : a + 1]) & (mag >= nb[:, b : b + 1])
        keep |= (sector == s) & local
    thin = mag * keep
    strong, weak = thin >= EDGE_HIGH, thin >= EDGE_LOW
    # hysteresis: grow the strong edges through 8-connected weak pixels until nothing changes
    edge = strong
    for _ in range(edge.shape[-1] * edge.shape[-2]):
        grown = (F.max_pool2d(edge.float(), 3, stride=1, padding=1) > 0) & weak
        if torch.equal(grown, edge):
            break
        edge = grown
    return edge


def thin(binary: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of a bool (N, 1, H, W) map to one-pixel lines."""
    img = binary.clone().bool()
    for _ in range(img.shape[-1] * img.shape[-2]):
        changed = False
        for step in (0, 1):
            nb = _neighbours(img.float())  # P2..P9
            count = nb.sum(dim=1, keepdim=True)
            ring = torch.cat([nb, nb[:, :1]], dim=1)
            transitions = ((ring[:, :-1] == 0) & (ring[:, 1:] == 1)).sum(dim=1, keepdim=True)
            p2, p4, p6, p8 = nb[:, 0:1], nb[:, 2:3], nb[:, 4:5], nb[:, 6:7]
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = img & (count >= 2) & (count <= 6) & (transitions == 1) & c
            if remove.any():
                img = img & ~remove
                changed = True
        if not changed:
            break
    return img


def sketch(x: torch.Tensor) -> torch.Tensor:
    """Edges thinned to one-pixel lines, bool (N, 1, H, W)."""
    return thin(edges(x))


def background(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1) median colour of each image's border pixels."""
    x = _images(x)
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], dim=-1)
    return border.median(dim=-1).values[..., None, None]


def mask(x: torch.Tensor) -> torch.Tensor:
    """Foreground, bool (N, 1, H, W): colour farther than MASK_THRESHOLD from the background."""
    x = _images(x)
    return (x - background(x)).abs().mean(dim=1, keepdim=True) > MASK_THRESHOLD


def lowres(x: torch.Tensor) -> torch.Tensor:
    """4x4 block means enlarged back by repetition, (N, C, H, W); H and W must divide by 4."""
    x = _images(x)
    h, w = x.shape[-2:]
    if h % LOWRES_FACTOR or w % LOWRES_FACTOR:
        raise ValueError(f"lowres needs sides divisible by {LOWRES_FACTOR}; got {h}x{w}")
    small = F.avg_pool2d(x, LOWRES_FACTOR)
    return F.interpolate(small, scale_factor=LOWRES_FACTOR, mode="nearest")


# ----------------------------------------------------------------------------- fidelity
def _dilate(b: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return b
    return F.max_pool2d(b.float(), 2 * radius + 1, stride=1, padding=radius) > 0


def edge_f1(pred: torch.Tensor, true: torch.Tensor, tolerance: int = TOLERANCE) -> dict:
    """Precision, recall and F1 of edge maps (bool (N, 1, H, W)), pooled over the images; a pixel
    matches when the other map has an edge within ``tolerance`` pixels."""
    pred, true = pred.bool(), true.bool()
    tp_p = (pred & _dilate(true, tolerance)).sum().item()
    tp_r = (true & _dilate(pred, tolerance)).sum().item()
    n_pred, n_true = pred.sum().item(), true.sum().item()
    precision = tp_p / n_pred if n_pred else float(n_true == 0)
    recall = tp_r / n_true if n_true else float(n_pred == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Intersection over union of bool maps, pooled over the images (1.0 when both are empty)."""
    pred, true = pred.bool(), true.bool()
    union = (pred | true).sum().item()
    return (pred & true).sum().item() / union if union else 1.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of [-1, 1] images (data range 2), over all pixels of all images."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def fidelity(kind: str, control: torch.Tensor, outputs) -> dict:
    """How faithfully ``outputs`` (N, C, H, W) follow ``control`` (their ``kind`` maps).

    Returns ``{"kind", "measure", "value", ...}``: edge F1 (with precision and recall) for
    ``edges`` and ``sketch``, IoU for ``mask``, PSNR (dB) for ``lowres``.
    """
    got = extract(kind, outputs)
    control = torch.as_tensor(control).float()
    if control.shape != got.shape:
        raise ValueError(f"control maps {tuple(control.shape)} do not match the outputs' {tuple(got.shape)}")
    if kind in ("edges", "sketch"):
        scores = edge_f1(got > 0, control > 0)
        return {
            "kind": kind,
            "measure": "edge F1",
            "value": scores["f1"],
            **scores,
            "tolerance_px": TOLERANCE,
        }
    if kind == "mask":
        return {"kind": kind, "measure": "IoU", "value": iou(got > 0, control > 0)}
    return {"kind": kind, "measure": "PSNR (dB)", "value": psnr(got, control)}


# ----------------------------------------------------------------------------- reading
def read_images(source: str, channels: int, size: int) -> torch.Tensor:
    """Structure maps from ``source`` (an image file, ``npz:FILE`` or ``folder:DIR``: what
    ``inputs.read_inputs`` reads) as float (N, channels, size, size) in [-1, 1], resized (bilinear,
    antialiased) where their size differs."""
    from .inputs import read_inputs, resize

    return resize(read_inputs(source, channels), size)
