"""Feature extractors for the sample metrics, and the cache of real-data reference features.

Three kinds, one interface (:class:`Extractor`: images float (B, C, H, W) in [-1, 1] ->
features (B, D), optional class logits (B, K), and a card describing it):

- ``domain``: the dataset's judge (:mod:`genvision.metrics.judges`): 128-d penultimate
  features, class logits; needs labelled data. The default for small images and whenever the
  Inception file is absent.
- ``inception``: the FID Inception-v3 (:mod:`genvision.metrics.inception`): 2048-d pool
  features, 1008 bias-free logits (for the Inception Score). ``inception:PATH`` names the file.
- any ``nn.Module`` (``FILE.py:Class`` on the command line, built with no arguments): its
  output, flattened, is the feature; no logits.

Reference cache (``<GENVISION_CACHE>/reference/<name>.npz``, one file per dataset split and
extractor): the features of the split's images (every image when N x D <= :data:`KEEP_VALUES`,
else a seeded random subset of KEEP_VALUES / D images) with their labels and split indices, and
the float64 mean and covariance (streamed) of the train split's *reference half*
(:mod:`.protocol`, the equal-N protocol: the other half gives the floor). A test split is not
halved. Each file records what it was computed from (dataset identity, extractor identity, image
count, halving, format version); a file whose record does not match the request is stale: it is
reported with a warning naming the difference and recomputed, never silently used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import io
from . import fid, inception, judges, protocol

CACHE_VERSION = 2
KEEP_VALUES = 32_000_000  # stored reference features: at most this many floats (128 MB)
BATCH_SIZE = 250


# ----------------------------------------------------------------------------- extractors
@dataclass
class Extractor:
    """A feature function with its description.

    Attributes:
        name: "domain", "inception" or "module:<Class>".
        run: images (B, C, H, W) in [-1, 1] -> (features (B, D), logits (B, K) or None).
        card: what a metric card records (weights, hash, resize, input scaling, dims).
        identity: string that changes whenever the features would (cache key).
        batch_size: images per forward pass.
        has_logits: whether ``run`` returns class logits (needed by the Inception Score).
    """

    name: str
    run: object
    card: dict
    identity: str
    batch_size: int = BATCH_SIZE
    has_logits: bool = True
    judge: object = field(default=None, repr=False)

    @torch.no_grad()
    def extract(
        self, images: torch.Tensor, progress: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (N, D) float32 and logits (N, K) or None of images (N, C, H, W), in batches."""
        feats, logits = [], []
        for start in progress_batches(
            range(0, len(images), self.batch_size), progress, len(images), self.batch_size
        ):
            f, lg = self.run(images[start : start + self.batch_size])
            feats.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
        f = torch.cat(feats) if feats else torch.zeros(0, 0)
        return f, (torch.cat(logits) if logits else None)


def domain_extractor(train_ds, test_ds) -> Extractor:
    """The dataset's judge as an extractor (trained and cached on first use)."""
    judge = judges.get_judge(train_ds, test_ds)
    card = {
        "extractor": "domain",
        "feature": f"judge penultimate layer ({judges.FEATURE_DIM}-d, pre-activation)",
        "logits": f"judge class logits ({train_ds.num_classes} classes)",
        "resize": "none (native resolution)",
        "input_scaling": "[-1, 1] floats, the library convention",
        "judge": judge.info(),
    }
    identity = f"domain|{judge.meta['cache_key']}|recipe-{judges.RECIPE_VERSION}"
    return Extractor("domain", lambda x: (judge.features(x), judge.logits(x)), card, identity, judge=judge)


def inception_extractor(path: str | Path | None = None, *, verify_hash: bool = True) -> Extractor:
    """The FID Inception-v3 from a weights file (see :func:`genvision.metrics.inception.load`)."""
    net, weights = inception.load(path, verify_hash=verify_hash)

    def run(x):
        pool, _ = net(torch.as_tensor(x).float())
        return pool, net.logits_unbiased(pool)

    card = {
        "extractor": "inception",
        "feature": "Inception-v3 2015-12-05 pool3 (2048-d)",
        "logits": "1008-way fc without bias (torch-fidelity logits_unbiased)",
        "resize": inception.RESIZE,
        "input_scaling": "[-1, 1] -> uint8 levels round((x + 1) * 127.5); grey repeated to 3 channels",
        **weights,
    }
    return Extractor(
        "inception", run, card, f"inception|{weights['sha256']}|{inception.RESIZE}", batch_size=50
    )


def module_extractor(module: nn.Module, name: str | None = None) -> Extractor:
    """Any module mapping images (B, C, H, W) in [-1, 1] to features (B, ...), flattened."""
    module = module.eval()
    name = name or type(module).__qualname__
    h = hashlib.sha256(name.encode())
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    card = {
        "extractor": f"module:{name}",
        "feature": "the module's output, flattened",
        "logits": "none",
        "resize": "none (the module's own)",
        "input_scaling": "[-1, 1] floats, the library convention",
        "state_sha256": h.hexdigest(),
    }
    return Extractor(
        f"module:{name}",
        lambda x: (module(x).flatten(1), None),
        card,
        f"module|{h.hexdigest()}",
        has_logits=False,
    )


def get_extractor(spec, train_ds, test_ds) -> Extractor:
    """``spec``: an Extractor, an ``nn.Module``, "domain", "inception", "inception:PATH" or "FILE.py:Class"."""
    if isinstance(spec, Extractor):
        return spec
    if isinstance(spec, nn.Module):
        return module_extractor(spec)
    if spec == "domain":
        return domain_extractor(train_ds, test_ds)
    if spec == "inception" or str(spec).startswith("inception:"):
        return inception_extractor(str(spec)[10:] or None)
    if isinstance(spec, str) and re.fullmatch(r".+\.py:\w+", spec):
        file, _, cls = spec.rpartition(":")
        return module_extractor(_load_class(file, cls)(), name=cls)
    raise ValueError(f"unknown features {spec!r}; use domain, inception, inception:PATH or FILE.py:Class")


def default_features(train_ds) -> str:
    """Inception for 32 px and up when its file is present, else the domain judge when labelled."""
    if inception.available() and train_ds.image_size >= 32:
        return "inception"
    if train_ds.num_classes >= 2 or not inception.available():
        return "domain"
    return "inception"


def _load_class(file: str, cls: str):
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} does not exist; give FILE.py:Class")
    spec = importlib.util.spec_from_file_location(f"genvision_user_features_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, cls):
        raise ValueError(f"{path} defines no {cls!r}")
    return getattr(module, cls)


# ----------------------------------------------------------------------------- reference cache
@dataclass
class Reference:
    """Real-data features of one split: the reference half's statistics and the stored features.

    Attributes:
        mu, sigma: float64 mean (D,) and covariance (D, D) of the reference half (train split;
            the whole split for a split that is not halved).
        features: float32 (K, D) stored features; labels (K,) int64; index (K,) split indices;
            in_reference (K,) bool: the row belongs to the reference half.
        record: what it was computed from (see module docstring); path: the cache file.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    in_reference: torch.Tensor
    record: dict
    path: Path | None = None

    @property
    def n(self) -> int:
        """Images of the split used (both halves)."""
        return self.record["n"]

    @property
    def n_reference(self) -> int:
        """Images in the reference half (all statistics are of these)."""
        return self.record["n_reference"]

    @property
    def n_held(self) -> int:
        """Images in the held half (the floor's pool); 0 for a split that is not halved."""
        return self.n - self.n_reference

    @property
    def reference_features(self) -> torch.Tensor:
        """Stored features of the reference half."""
        return self.features[self.in_reference]

    @property
    def reference_labels(self) -> torch.Tensor:
        return self.labels[self.in_reference]

    @property
    def held_features(self) -> torch.Tensor:
        """Stored features of the held half (the floor's real images)."""
        return self.features[~self.in_reference]

    @property
    def all_stored(self) -> bool:
        """Whether every image's features are stored (else a seeded subset)."""
        return len(self.features) == self.n


def reference(
    ds, extractor: Extractor, *, n: int | None = None, cache_dir=None, progress: bool = False
) -> Reference:
    """Reference features of dataset split ``ds`` (its first ``n`` images, default all), cached.

    A train split is halved (:func:`.protocol.halves`): ``mu`` / ``sigma`` describe the reference
    half; the held half's stored features give the floor.
    """
    n = len(ds) if n is None else min(n, len(ds))
    halved = ds.split == "train"
    record = {
        "version": CACHE_VERSION,
        "data_spec": ds.spec,
        "split": ds.split,
        "data_identity": ds.identity,
        "extractor": extractor.identity,
        "n": n,
        "halves": f"seeded halves (seed {protocol.SPLIT_SEED})" if halved else "none",
        "n_reference": int(protocol.halves(n).sum()) if halved else n,
    }
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{ds.spec}-{ds.split}-{extractor.name}")[-120:]
    path = judges.cache_root(cache_dir) / "reference" / f"{slug}.npz"
    if path.is_file():
        cached = _read(path)
        if cached is not None:
            stale = [k for k in record if cached.record.get(k) != record[k]]
            if not stale:
                return cached
            warnings.warn(
                f"stale reference statistics {path} ({', '.join(stale)} changed: "
                f"{', '.join(f'{cached.record.get(k)!r} -> {record[k]!r}' for k in stale)}); recomputing",
                stacklevel=2,
            )
    ref = _compute(ds, extractor, n, record, progress)
    ref.path = path
    _write(path, ref)
    return ref


@torch.no_grad()
def _compute(ds, extractor: Extractor, n: int, record: dict, progress: bool) -> Reference:
    stats = fid.RunningStats()
    in_ref = protocol.halves(n) if record["halves"] != "none" else torch.ones(n, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)  # fixed Bernoulli draw for a binarised split
    d = None
    keep_all = True
    kept_f, kept_idx = [], []
    keep_set = None
    desc = f"features of {ds.spec} {ds.split}" if progress else None
    step = extractor.batch_size
    for start in progress_batches(range(0, n, step), desc, n, step):
        idx = torch.arange(start, min(start + step, n))
        x, _ = ds.batch(idx, generator=g)
        f, _ = extractor.run(x.float())
        f = f.float().cpu()
        if in_ref[idx].any():
            stats.update(f[in_ref[idx]])
        if d is None:
            d = f.shape[1]
            keep = max(2, KEEP_VALUES // d)
            keep_all = n <= keep
            if not keep_all:  # a seeded subset, chosen before any feature is seen
                keep_set = torch.zeros(n, dtype=torch.bool)
                keep_set[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:keep]] = True
        mask = torch.ones(len(idx), dtype=torch.bool) if keep_all else keep_set[idx]
        kept_f.append(f[mask])
        kept_idx.append(idx[mask])
    mu, sigma = stats.result()
    index = torch.cat(kept_idx)
    labels = (
        torch.as_tensor(ds.labels)[index].long() if ds.labels is not None else torch.full((len(index),), -1)
    )
    return Reference(mu, sigma, torch.cat(kept_f), labels, index, in_ref[index], dict(record))


def _write(path: Path, ref: Reference) -> None:
    def save(tmp):
        with open(tmp, "wb") as f:
            np.savez(
                f,
                mu=ref.mu,
                sigma=ref.sigma,
                features=ref.features.numpy(),
                labels=ref.labels.numpy(),
                index=ref.index.numpy(),
                in_reference=ref.in_reference.numpy(),
                record=np.array(json.dumps(ref.record)),
            )

    io.atomic_write(path, save)


def _read(path: Path) -> Reference | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            record = json.loads(str(z["record"]))
            return Reference(
                z["mu"],
                z["sigma"],
                torch.from_numpy(z["features"]),
                torch.from_numpy(z["labels"]),
                torch.from_numpy(z["index"]),
                torch.from_numpy(z["in_reference"]) if "in_reference" in z.files else None,
                record,
                path,
            )
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"reference cache {path} is unreadable ({e}); recomputing", stacklevel=3)
        return None


def progress_batches(iterable, desc: str | None, total_items: int, step: int):
    """Batch starts of ``iterable``, with a tqdm bar counting images when ``desc`` is given (stderr)."""
    if not desc:
        return iterable
    from tqdm.auto import tqdm

    return _ItemBar(
        iterable, tqdm(total=total_items, desc=desc, unit="img", dynamic_ncols=True), step, total_items
    )


class _ItemBar:
    """Iterate batch starts while advancing a progress bar by the batch's image count."""

    def __init__(self, starts, bar, step, total):
        self.starts, self.bar, self.step, self.total = starts, bar, step, total

    def __iter__(self):
        try:
            for start in self.starts:
                yield start
                self.bar.update(min(self.step, self.total - start))
        finally:
            self.bar.close()
