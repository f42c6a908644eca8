"""An invisible, keyed spread-spectrum watermark on the PNG files genvision writes, and its detector.

**The mark.** A key (default :data:`PUBLIC_KEY`) seeds a pseudo-random sign ``s_k = +-1`` for every
coefficient ``k`` of a frequency band of the 2-D DCT of a canonical ``G x G`` frame
(:data:`G`, :data:`BAND`: mid frequencies, from a few cycles per image to about the Nyquist
frequency of a 28-pixel image). The spatial pattern (inverse DCT of the signs) is resized to the
image, scaled to an RMS of ``strength`` grey levels (adaptive by default: :func:`mark`) and added to
every channel; the result is rounded and clipped to 8 bits.
It is defined over the whole frame in relative coordinates, so resizing the image leaves it in
place, and the detector also tries small crops (:data:`MARGINS` of the frame cut from the top
and from the left).

**Detection** (:func:`detect`). The image's luma, resized to ``G x G``, gives band coefficients
``r``; for a crop hypothesis, the linear map from the signs to those coefficients is known, so
``t = A^T r`` and ``z = sum_k w_k t_k s_k / sqrt(sum_k w_k^2 t_k^2)`` (``w_k`` the squared
radial frequency, a fixed whitening of images' falling spectrum). For an image made without
this key, the signs are independent of ``t``, so over keys ``z`` is a sum of terms with random
signs and unit variance: sub-Gaussian, ``P(z >= t) <= exp(-t^2 / 2)`` whatever the image. The
p-value is that bound times the number of crop hypotheses (Bonferroni); "detected" means
p < 0.01. For the one public key the false-positive rate on real images is measured (tests,
``benchmarks/provenance.py``).

**What it is not.** The default key is public: anyone can check "made by genvision", and anyone
who wants to can remove or forge the mark (subtract the pattern, or add it). A private key
(``GENVISION_WATERMARK_KEY`` or ``key=``) makes removal and forgery much harder but not
impossible. Images smaller than :data:`MIN_SIDE` pixels are not marked (too few coefficients
for the mark to be found reliably); ``.npz`` outputs and tensors are never marked. Robustness to
JPEG, crops and resizing is measured in ``benchmarks/provenance.py``, not promised.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np

#: the canonical frame the mark is defined on and detected in
G = 64
#: the band of DCT radii (in G-grid index units: index k is k / 2 cycles per image)
BAND = (10.0, 28.0)
#: the public default key
PUBLIC_KEY = "genvision-public-watermark-v1"
#: RMS of the added pattern in grey levels: the first try (2.55: a PSNR of 40 dB), and the most
#: the adaptive embedding goes to (about 28.5 dB) to reach :data:`Z_TARGET`
STRENGTH = 2.55
STRENGTH_MAX = 9.5
#: the detection statistic an adaptive embedding aims at on the unmodified image (p about 3e-6
#: over the crop hypotheses), leaving room for what JPEG, crops and resizing take away
Z_TARGET = 5.5
#: images with a side below this are not marked
MIN_SIDE = 28
#: fractions of the frame cut from each side that the detector tries (all combinations)
MARGINS = (0.0, 0.04, 0.08)
#: p-value below which a mark is reported as detected
ALPHA = 0.01

_LUMA = np.array([0.299, 0.587, 0.114])


def key_of(key: str | None = None) -> str:
    return key or os.environ.get("GENVISION_WATERMARK_KEY") or PUBLIC_KEY


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n, n): row k is the k-th basis vector."""
    i = np.arange(n)
    m = np.cos(np.pi * (i[None, :] + 0.5) * i[:, None] / n) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


_C = _dct_matrix(G)
_RADIUS = np.hypot(*np.meshgrid(np.arange(G), np.arange(G), indexing="ij"))
_MASK = (_RADIUS >= BAND[0]) & (_RADIUS <= BAND[1])
_WEIGHT = np.where(_MASK, _RADIUS**2, 0.0)


def signs(key: str | None = None) -> np.ndarray:
    """(G, G) float64: +-1 on the band, 0 elsewhere, from the key's SHA-256."""
    seed = int.from_bytes(hashlib.sha256(key_of(key).encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    return np.where(_MASK, rng.choice([-1.0, 1.0], size=(G, G)), 0.0)


def _interp_matrix(n_out: int, n_in: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights: output pixel i samples the input at the relative
    position ``lo + (hi - lo) * (i + 0.5) / n_out`` (pixel centres; edges clamped)."""
    pos = (lo + (hi - lo) * (np.arange(n_out) + 0.5) / n_out) * n_in - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    j0 = np.floor(pos).astype(int)
    j1 = np.minimum(j0 + 1, n_in - 1)
    f = pos - j0
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), j0] += 1 - f
    m[np.arange(n_out), j1] += f
    return m


def pattern(h: int, w: int, key: str | None = None) -> np.ndarray:
    """The mark's spatial pattern at (h, w), RMS 1."""
    frame = _C.T @ signs(key) @ _C  # (G, G)
    p = _interp_matrix(h, G) @ frame @ _interp_matrix(w, G).T
    return p / np.sqrt((p**2).mean())


def can_mark(h: int, w: int) -> bool:
    return min(h, w) >= MIN_SIDE


def embed(arr: np.ndarray, key: str | None = None, strength: float | None = None) -> np.ndarray:
    """uint8 (H, W) or (H, W, C) -> the same with the mark added (rounded, clipped); see :func:`mark`."""
    return mark(arr, key, strength)[0]


def mark(
    arr: np.ndarray, key: str | None = None, strength: float | None = None
) -> tuple[np.ndarray, float, float]:
    """(marked image, strength used, z of the marked image as saved).

    ``strength`` None: adaptive. Content and clipping decide how much of the pattern survives (a
    black background keeps only its positive half), so the strength starts at :data:`STRENGTH`
    (40 dB) and grows by 25% steps until the saved image's ``z`` reaches :data:`Z_TARGET` or the
    strength reaches :data:`STRENGTH_MAX`: each image pays only the cost its content asks for.
    """
    a = np.asarray(arr)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise ValueError(f"the watermark marks uint8 images (H, W[, C]); got {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    if not can_mark(h, w):
        raise ValueError(f"images smaller than {MIN_SIDE}x{MIN_SIDE} are not marked (got {w}x{h})")
    base = pattern(h, w, key)
    if a.ndim == 3:
        base = base[..., None]
    tries = [strength] if strength is not None else _ladder()
    for st in tries:
        out = np.clip(np.round(a.astype(np.float64) + base * st), 0, 255).astype(np.uint8)
        z = _z_uncropped(out, key)
        if z >= Z_TARGET:
            break
    return out, float(st), z


def _ladder() -> list[float]:
    out, st = [], STRENGTH
    while st < STRENGTH_MAX:
        out.append(st)
        st *= 1.25
    return [*out, STRENGTH_MAX]


def _z_uncropped(arr: np.ndarray, key: str | None) -> float:
    y = _luma(arr)
    y = y - y.mean()
    h, w = y.shape
    r = np.where(_MASK, _C @ (_interp_matrix(G, h) @ y @ _interp_matrix(G, w).T) @ _C.T, 0.0)
    return _statistic(r, _C @ _interp_matrix(G, G) @ _C.T, _C @ _interp_matrix(G, G) @ _C.T, signs(key))


def _statistic(r: np.ndarray, my: np.ndarray, mx: np.ndarray, s: np.ndarray) -> float:
    t = my.T @ r @ mx  # A^T r on the frame's coefficients
    wt = np.where(_MASK, _WEIGHT * t, 0.0)
    norm = math.sqrt(float((wt**2).sum()))
    return float((wt * s).sum()) / norm if norm > 0 else 0.0


def _luma(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] >= 3:
        return a[..., :3] @ _LUMA
    return a[..., 0] if a.ndim == 3 else a


def detect(arr: np.ndarray, key: str | None = None) -> dict:
    """Look for the mark of ``key`` in an 8-bit image (H, W[, C]) of any size.

    Returns {"z", "p_value", "detected", "hypotheses", "margins"} (``margins``: top, bottom,
    left, right of the best crop hypothesis) or {"marked": False, "reason"} for small images.
    """
    y = _luma(arr)
    h, w = y.shape
    if min(h, w) < MIN_SIDE // 2:
        return {"detected": False, "reason": f"too small to carry a mark ({w}x{h})"}
    y = y - y.mean()
    r = _C @ (_interp_matrix(G, h) @ y @ _interp_matrix(G, w).T) @ _C.T  # observed frame's DCT
    r = np.where(_MASK, r, 0.0)
    s = signs(key)
    best, hypotheses = None, 0
    for top in MARGINS:
        my = _C @ _interp_matrix(G, G, top, 1.0) @ _C.T  # frame DCT -> observed DCT, rows
        for left in MARGINS:
            mx = _C @ _interp_matrix(G, G, left, 1.0) @ _C.T
            z = _statistic(r, my, mx, s)
            hypotheses += 1
            if best is None or z > best[0]:
                best = (z, (top, left))
    z, margins = best
    # a sum of terms with independent random signs is sub-Gaussian: P(z >= t) <= exp(-t^2 / 2)
    p = min(1.0, hypotheses * math.exp(-(max(z, 0.0) ** 2) / 2))
    return {"z": z, "p_value": p, "detected": p < ALPHA, "hypotheses": hypotheses, "margins": margins}


def describe(result: dict) -> str:
    """One line for ``genvision inspect``."""
    if "z" not in result:
        return f"watermark: not checked ({result.get('reason')})"
    verdict = "DETECTED" if result["detected"] else "not detected"
    return (
        f"watermark: {verdict} (z = {result['z']:.2f}, p = {result['p_value']:.2g} over "
        f"{result['hypotheses']} crop hypotheses; key: {'public' if key_of() == PUBLIC_KEY else 'your own'})"
    )
