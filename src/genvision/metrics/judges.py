"""Judges: the small classifiers genvision trains on a dataset to measure things, one recipe for all.

The first is the **domain judge** (INTERFACES.md, "Domain-FID protocol"): Inception-v3 features
mean little on 8x8 or 28x28 grey digits, so FID on small images uses a classifier trained on the
dataset's own train split (task ``"class"``, the dataset's labels), with a fixed recipe and
seed, its test accuracy recorded beside every FID it produces. Later judges (a style, an
attribute or a detector classifier) are the same network and recipe on other targets:
:func:`get_judge` takes a ``task`` name and a ``targets`` function, and caches each judge under its
own key.

Network (one recipe for 8x8 up to 64x64, 1 or 3 channels):

    x (B, C, H, W) -> [avg-pool by H // 32 when H >= 64]
      -> conv3x3(C -> 16) -> ReLU -> [max-pool 2 when the map is >= 12 px]
      -> conv3x3(16 -> 32) -> ReLU -> [max-pool 2 when the map is >= 12 px]
      -> adaptive max-pool 4x4 -> flatten (512) -> linear (128) = features
      -> ReLU -> linear (num_classes) = logits

Features are the 128 pre-activation units of the penultimate layer: no unit is ever dead (a
post-ReLU feature can be exactly 0 on every image, which makes the covariance singular), and they
are closer to Gaussian, which is what FID assumes.

Recipe: Adam, lr 4e-3 decayed linearly to 0, batch 128, max(1 epoch, 250 steps), seed 0, on
the CPU with one torch thread. Widths, pooling and length were chosen by measured accuracy per
CPU second (docs/notes/metrics.md). One thread makes the judge the same whatever the caller's
thread setting, and these small convolutions gain little from more threads but lose many times
over when the cores are oversubscribed.

The trained judge and its test accuracy are cached under ``GENVISION_CACHE`` (default
``~/.cache/genvision``) as ``judges/<key>.safetensors`` + ``judges/<key>.json``, keyed by the
task, the train and test splits' ``identity`` and :data:`RECIPE_VERSION`. Loading never
unpickles. Bump :data:`RECIPE_VERSION` whenever anything above changes. (The FID reference and
floor statistics live in the feature cache of :mod:`.features`, per the equal-N protocol.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import io

RECIPE_VERSION = 2
SEED = 0
WIDTHS = (16, 32)
FEATURE_DIM = 128
BATCH_SIZE = 128
EPOCHS = 1
MIN_STEPS = 250
LR = 4e-3
EVAL_BATCH = 250  # larger batches run slower on CPU (memory-bound)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$GENVISION_CACHE``, else ``~/.cache/genvision``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("GENVISION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "genvision"


class JudgeNet(nn.Module):
    """The judge's network; see the module docstring for its layout."""

    def __init__(self, channels: int, image_size: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        res = image_size
        if image_size >= 64:  # keep the convolutions cheap on large images
            layers.append(nn.AvgPool2d(image_size // 32))
            res = image_size // (image_size // 32)
        cin = channels
        for width in WIDTHS:
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
            if res >= 12:
                layers.append(nn.MaxPool2d(2))
                res //= 2
            cin = width
        layers += [nn.AdaptiveMaxPool2d(4), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.penultimate = nn.Linear(cin * 16, FEATURE_DIM)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.penultimate(self.body(x))  # (B, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.features(x)))  # (B, num_classes)


class Judge:
    """A trained judge: features, logits and its test accuracy.

    Attributes:
        accuracy: test-split accuracy of the classifier, in [0, 1].
        meta: recipe version, task, accuracy, class counts, cache key and path, data descriptions.
    """

    def __init__(self, net: JudgeNet, meta: dict):
        self.net = net.eval()
        self.meta = meta

    @property
    def accuracy(self) -> float:
        return self.meta["test_accuracy"]

    @property
    def task(self) -> str:
        return self.meta.get("task", CLASS_TASK)

    def _check(self, x) -> torch.Tensor:
        return check_images(x, self.meta, "judge")

    @torch.no_grad()
    def features(self, x) -> torch.Tensor:
        """Penultimate-layer features (B, 128) of images (B, C, H, W) in [-1, 1]."""
        return self.net.features(self._check(x))

    @torch.no_grad()
    def logits(self, x) -> torch.Tensor:
        """Class logits (B, num_classes) of images (B, C, H, W) in [-1, 1]."""
        return self.net(self._check(x))

    def info(self) -> dict:
        """Recipe version, task, feature dim, test accuracy, cache key and path, for metric cards."""
        keys = (
            "recipe_version",
            "task",
            "feature_dim",
            "test_accuracy",
            "cache_key",
            "cache_path",
            "train_seconds",
        )
        out = {k: self.meta.get(k) for k in keys}
        out["train_data"], out["test_data"] = self.meta["train_data"], self.meta["test_data"]
        return out


CLASS_TASK = "class"


# ----------------------------------------------------------------------------- public entry
def get_judge(
    train_ds, test_ds, cache_dir: str | Path | None = None, *, task: str = CLASS_TASK, targets=None
) -> Judge:
    """A judge of a dataset: loaded from the cache, else trained (seconds) and cached.

    Args:
        train_ds, test_ds: ``genvision.data`` ImageDatasets of one dataset's train and test splits.
        cache_dir: overrides ``$GENVISION_CACHE``.
        task: what the judge classifies; ``"class"`` (the default, the domain judge) uses the
            dataset's labels. Any other name needs ``targets``; it names the cache entry.
        targets: ``targets(ds) -> LongTensor (len(ds),)`` of class indices >= 0, for both splits.
    Raises:
        ValueError: no targets (an unlabeled dataset for ``"class"``), or fewer than 2 classes.
    """
    if targets is None:
        if task != CLASS_TASK:
            raise ValueError(f"judge task {task!r} needs a targets function")
        if train_ds.num_classes < 2:
            what = "is unlabeled" if train_ds.num_classes == 0 else "has a single class"
            raise ValueError(
                f"domain features need labels, and {train_ds.spec} {what}; "
                "use Inception features (`--features inception`) instead"
            )
    y_train, y_test = _targets(train_ds, targets), _targets(test_ds, targets)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if len(torch.unique(y_train)) < 2:
        raise ValueError(f"judge task {task!r} has a single class on {train_ds.spec}; it needs two or more")
    net, meta = cached(
        cache_key(train_ds, test_ds, task),
        cache_dir,
        what="judge",
        recipe_version=RECIPE_VERSION,
        build=lambda m: JudgeNet(m["channels"], m["image_size"], m["num_classes"]),
        train=lambda: _train(train_ds, test_ds, y_train, y_test, num_classes),
        extra={"task": task},
    )
    return Judge(net, meta)


def cached(key: str, cache_dir, *, what: str, recipe_version: int, build, train, extra: dict) -> tuple:
    """``(net, meta)`` of a small network trained once per dataset and kept under the cache.

    Read from ``judges/<key>.safetensors`` + ``.json`` when both are there and the meta's recipe
    version is ``recipe_version`` (``build(meta)`` makes the empty network); else (or when the
    entry is unreadable: a warning naming it) ``train()`` -> ``(net, meta)`` runs on one thread,
    ``extra`` joins the meta, and both files are written (the JSON last: its presence marks a
    complete entry). Every cached classifier or encoder of the metrics goes through here.
    """
    folder = cache_root(cache_dir) / "judges"
    weights, meta_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.is_file() and meta_path.is_file():
        try:
            return _read(weights, meta_path, recipe_version, build)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            warnings.warn(f"{what} cache {weights} is unreadable ({e}); retraining it", stacklevel=3)
    with one_thread():
        net, meta = train()
    meta.update(extra, cache_key=key, cache_path=str(weights))
    io.save_safetensors(weights, {f"net.{k}": v for k, v in net.state_dict().items()})
    io.write_json(meta_path, meta)
    return net, meta


def check_images(x, meta: dict, who: str) -> torch.Tensor:
    """``x`` as float32 CPU images, checked against the (channels, image_size) a cached net was
    trained on; a one-line ValueError naming ``who`` otherwise."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    want = (meta["channels"], meta["image_size"], meta["image_size"])
    if x.dim() != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(
            f"the {who} takes images of shape (N, {', '.join(map(str, want))}); got {tuple(x.shape)}"
        )
    return x


def cache_key(train_ds, test_ds, task: str = CLASS_TASK) -> str:
    """Hex key of (task, train identity, test identity, recipe version)."""
    text = f"{train_ds.identity}|{test_ds.identity}|recipe-{RECIPE_VERSION}"
    if task != CLASS_TASK:
        text = f"{task}|{text}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _targets(ds, targets) -> torch.Tensor:
    y = torch.as_tensor(targets(ds) if targets is not None else ds.labels, dtype=torch.long)
    if y.shape != (len(ds),) or (y < 0).any():
        raise ValueError(f"judge targets must be {len(ds)} class indices >= 0 for {ds.spec} {ds.split}")
    return y


# ----------------------------------------------------------------------------- training
@contextlib.contextmanager
def one_thread():
    """One torch thread inside the block, the previous count restored after.

    Small convolutions gain nothing from a second thread and lose many times over when the two
    cores of a small machine are shared; the judges train this way, and the tests reuse it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(train_ds, test_ds, y_train, y_test, num_classes: int) -> tuple[JudgeNet, dict]:
    start = time.perf_counter()
    g = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(SEED)
        net = JudgeNet(train_ds.channels, train_ds.image_size, num_classes)
    n = len(train_ds)
    batch = min(BATCH_SIZE, n)
    steps = max(EPOCHS * math.ceil(n / batch), MIN_STEPS)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    net.train()
    step = 0
    while step < steps:
        order = torch.randperm(n, generator=g)
        for i in range(0, n - batch + 1, batch):  # full batches only
            if step == steps:
                break
            idx = order[i : i + batch]
            x, _ = train_ds.batch(idx, generator=g)
            loss = F.cross_entropy(net(x.float()), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
    net.eval()
    seconds = time.perf_counter() - start
    judge = Judge(net, {"channels": train_ds.channels, "image_size": train_ds.image_size})
    correct, confidence = 0, 0.0
    counts = torch.zeros(num_classes, dtype=torch.long)
    for idx, x in _batches(test_ds):
        p = judge.logits(x).softmax(dim=1)
        correct += int((p.argmax(dim=1) == y_test[idx]).sum())
        confidence += float(p.max(dim=1).values.sum())
        counts += torch.bincount(p.argmax(dim=1), minlength=num_classes)
    meta = {
        "recipe_version": RECIPE_VERSION,
        "feature_dim": FEATURE_DIM,
        "test_accuracy": correct / len(test_ds),
        "test_confidence": confidence / len(test_ds),
        "test_class_counts": counts.tolist(),  # judge-predicted classes of the test split
        "train_seconds": round(seconds, 2),
        "train_steps": steps,
        "channels": train_ds.channels,
        "image_size": train_ds.image_size,
        "num_classes": num_classes,
        "train_data": _brief(train_ds),
        "test_data": _brief(test_ds),
    }
    return net, meta


def _batches(ds, batch_size: int = EVAL_BATCH):
    """(indices, float images) of the whole split in order (a fixed generator for stochastic datasets)."""
    g = torch.Generator().manual_seed(SEED)
    for i in range(0, len(ds), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(ds)))
        yield idx, ds.batch(idx, generator=g)[0].float()


def _brief(ds) -> dict:
    return {"spec": ds.spec, "split": ds.split, "n": len(ds), "identity": ds.identity}


def _read(weights: Path, meta_path: Path, recipe_version: int, build) -> tuple:
    from safetensors.torch import load_file

    meta = json.loads(meta_path.read_text())
    meta["cache_path"] = str(weights)
    if meta.get("recipe_version") != recipe_version:
        raise ValueError(f"recipe version {meta.get('recipe_version')} != {recipe_version}")
    tensors = load_file(str(weights))
    net = build(meta)
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    return net, meta
