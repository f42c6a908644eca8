"""Mode-collapse monitor: the class histogram of a fixed set of samples under the domain judge.

Any model can switch it on with ``TrainConfig.monitor_every`` (GANs do in their
``train_defaults``). Every ``monitor_every`` steps the trainer draws the same ``monitor_samples``
images (seed 0, EMA weights where on, labels cycling 0..K-1 for conditional models), classifies
them with the dataset's domain judge (:mod:`genvision.metrics.judges`, trained once and cached,
so only the first check pays for it; its cost: docs/notes/training.md) and logs

    monitor/class_entropy    entropy of the predicted-class histogram, nats (max log K)
    monitor/top_class_share  fraction of the samples in the most frequent class

A generator that covers every class evenly scores log K (2.30 nats for 10 digits); one that
collapses onto a few modes scores far less. When the entropy falls under
``collapse_threshold * log K`` after having been above it, or is still under it at the last
check of the run, the record gets a ``warning`` and the trainer prints it (a fresh generator's
first checks are often under the line: that is not yet a collapse).
Unlabeled data has no judge: the monitor then turns itself off with one printed note and
training goes on.
"""

from __future__ import annotations

import math

import torch


class CollapseMonitor:
    """Judge-based class histogram of generated images.

    Args:
        train_ds: the training split (an ``ImageDataset``); its test split is loaded for the judge.
        threshold: warn when the entropy is under ``threshold * log(num_classes)``.
    """

    def __init__(self, train_ds, threshold: float):
        from .. import data as gdata
        from ..metrics import judges

        self.threshold = threshold
        self.best = -math.inf  # highest entropy seen so far
        self.judge = None
        self.reason = ""
        self.levels = train_ds.levels
        try:
            test_ds = gdata.load(train_ds.spec, "test")
            if test_ds.image_size != train_ds.image_size:
                test_ds = gdata.load(train_ds.spec, "test", image_size=train_ds.image_size)
            self.judge = judges.get_judge(train_ds, test_ds)
        except (ValueError, FileNotFoundError) as e:  # unlabeled or single-class data
            self.reason = str(e)

    @property
    def active(self) -> bool:
        return self.judge is not None

    def measure(self, images: torch.Tensor, final: bool = False) -> dict:
        """Log entries for generated ``images`` (N, C, H, W) in [-1, 1].

        Images are rounded to the data's grey levels first, as saving them would. ``final``
        marks the run's last check (a warning then if the entropy is under the line at all).
        """
        from ..data import to_float, to_levels

        x = to_float(to_levels(images.detach().float().cpu().clamp(-1, 1), self.levels), self.levels)
        logits = torch.cat([self.judge.logits(x[i : i + 500]) for i in range(0, len(x), 500)])
        k = logits.shape[1]
        counts = torch.bincount(logits.argmax(dim=1), minlength=k).double()
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * p.log()).sum()) + 0.0  # + 0.0 turns -0.0 (one class) into 0.0
        out = {
            "monitor/class_entropy": entropy,
            "monitor/top_class_share": float(counts.max() / counts.sum()),
        }
        limit = self.threshold * math.log(k)
        if entropy < limit and (self.best >= limit or final):
            how = f"fell from {self.best:.2f} to" if self.best >= limit else "ended at"
            out["warning"] = (
                f"possible mode collapse: class-histogram entropy {how} {entropy:.2f} nats < {limit:.2f} "
                f"({self.threshold:g} x log {k}); samples concentrate on few classes"
            )
        self.best = max(self.best, entropy)
        return out
