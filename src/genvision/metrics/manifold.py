"""k-NN manifold metrics: precision and recall (Kynkäänniemi et al., 2019), density and coverage
(Naeem et al., 2020), and nearest-neighbour search, all chunked so no N x M matrix is held.

Notation: R = real features (N, D), F = fake (generated) features (M, D), d = Euclidean distance,
r_k(a) = distance from a to its k-th nearest neighbour in its own set (itself excluded),
B(a, r) = the open ball around a.

    precision = share of f in F inside some B(r, r_k(r)), r in R      (fidelity)
    recall    = share of r in R inside some B(f, r_k(f)), f in F      (diversity)
    density   = (1 / (k M)) sum_f #{r : f in B(r, r_k(r))}            (fidelity, ~1 for real data)
    coverage  = share of r in R whose nearest f lies in B(r, r_k(r))  (diversity)

These are the definitions of the ``prdc`` package (its k-th value counts the point itself, at
distance 0, as the first neighbour; so do we), which the tests check against. Distances are
computed in float64 in row chunks of ``chunk`` x N (fewer rows when N is large: at most 16 M
distances, 128 MB, at a time), so 10,000 x 10,000 never needs its 800 MB matrix; k-th values use
``torch.topk``.
"""

from __future__ import annotations

import torch

NEAREST_K = 5
CHUNK = 1024
CHUNK_VALUES = 16_000_000  # at most this many distances (128 MB float64) held at once


def _rows(chunk: int, width: int) -> int:
    """Rows per chunk: ``chunk``, fewer when the other set is so wide that chunk x width is too big."""
    return max(1, min(chunk, CHUNK_VALUES // max(width, 1)))


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(x).detach().cpu().double()


def distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)) in float64; ||a||^2 + ||b||^2 - 2 a.b, clipped at 0."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return sq.clamp_min(0).sqrt()


def kth_distances(x, k: int = NEAREST_K, chunk: int = CHUNK) -> torch.Tensor:
    """r_k(x_i) for every row of x (N, D): distance to the k-th nearest other row, (N,) float64."""
    x = _as64(x)
    if len(x) <= k:
        raise ValueError(f"need more than k={k} feature vectors, got {len(x)}")
    step = _rows(chunk, len(x))
    out = [
        distances(x[i : i + step], x).topk(k + 1, dim=1, largest=False).values[:, -1]
        for i in range(0, len(x), step)
    ]
    return torch.cat(out)


def nearest(queries, pool, chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the distance to and index of its nearest row of ``pool``: (Q,), (Q,)."""
    queries, pool = _as64(queries), _as64(pool)
    dist, index = [], []
    step = _rows(chunk, len(pool))
    for i in range(0, len(queries), step):
        d, j = distances(queries[i : i + step], pool).min(dim=1)
        dist.append(d)
        index.append(j)
    return torch.cat(dist), torch.cat(index)


def prdc(real, fake, k: int = NEAREST_K, chunk: int = CHUNK) -> dict:
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D).

    Returns:
        {"precision", "recall", "density", "coverage": floats, "k": k, "n_real": N, "n_fake": M}.
    """
    real, fake = _as64(real), _as64(fake)
    r_real = kth_distances(real, k, chunk)  # (N,)
    r_fake = kth_distances(fake, k, chunk)  # (M,)
    inside_count = torch.zeros(len(fake), dtype=torch.float64)  # per fake: real balls containing it
    recalled = torch.zeros(len(real), dtype=torch.bool)
    covered = torch.zeros(len(real), dtype=torch.bool)
    step = _rows(chunk, len(fake))
    for i in range(0, len(real), step):
        d = distances(real[i : i + step], fake)  # (c, M)
        radius = r_real[i : i + step, None]
        inside_count += (d < radius).sum(dim=0)
        recalled[i : i + step] = (d < r_fake[None, :]).any(dim=1)
        covered[i : i + step] = d.min(dim=1).values < r_real[i : i + step]
    return {
        "precision": float((inside_count > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(inside_count.mean() / k),
        "coverage": float(covered.double().mean()),
        "k": k,
        "n_real": len(real),
        "n_fake": len(fake),
    }
