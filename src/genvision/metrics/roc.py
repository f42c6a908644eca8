"""Detection figures from per-image scores: ROC curve, AUROC, average precision, FPR at 95% TPR.

Convention: a higher score means "more anomalous" (or "more likely generated"); the positives are
the anomalies. Ties are handled as scikit-learn does: tied scores form one step of the curve, so
AUROC counts a tied (positive, negative) pair as one half.

    summary = detection_summary(scores_normal, scores_anomalous)
    summary["auroc"], summary["auprc"], summary["fpr_at_95_tpr"]
"""

from __future__ import annotations

import numpy as np


def _as_arrays(normal, anomalous) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels (1 = anomaly), checked: both sets non-empty and finite."""
    neg = np.asarray(normal, dtype=np.float64).reshape(-1)
    pos = np.asarray(anomalous, dtype=np.float64).reshape(-1)
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("a detection figure needs at least one normal and one anomalous score")
    if not (np.isfinite(neg).all() and np.isfinite(pos).all()):
        raise ValueError("scores must be finite (a model returned NaN or inf for some image)")
    scores = np.concatenate([neg, pos])
    labels = np.concatenate([np.zeros(len(neg)), np.ones(len(pos))])
    return scores, labels


def roc_curve(normal, anomalous) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, from the highest down, after (0, 0).

    A point (fpr[i], tpr[i]) is the rates of calling every score >= thresholds[i] an anomaly.
    """
    scores, labels = _as_arrays(normal, anomalous)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each run of ties
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (len(y) - y.sum())]
    return fpr, tpr, np.r_[np.inf, s[last]]


def auroc(normal, anomalous) -> float:
    """Area under the ROC curve (trapezoids: ties count one half)."""
    fpr, tpr, _ = roc_curve(normal, anomalous)
    return float(np.trapezoid(tpr, fpr))


def average_precision(normal, anomalous) -> float:
    """Area under the precision-recall curve as a step sum (scikit-learn's average precision)."""
    fpr, tpr, _ = roc_curve(normal, anomalous)
    scores, labels = _as_arrays(normal, anomalous)
    p, q = labels.sum(), len(labels) - labels.sum()
    tp, fp = tpr[1:] * p, fpr[1:] * q
    precision = tp / np.maximum(tp + fp, 1)
    return float(np.sum(np.diff(tpr) * precision))


def fpr_at_tpr(normal, anomalous, tpr_level: float = 0.95) -> float:
    """The smallest false-positive rate at which at least ``tpr_level`` of the anomalies are caught."""
    fpr, tpr, _ = roc_curve(normal, anomalous)
    return float(fpr[np.searchsorted(tpr, tpr_level - 1e-12)])


def detection_summary(normal, anomalous) -> dict:
    """AUROC, average precision (AUPRC), FPR at 95% TPR and the counts, as one dict."""
    return {
        "auroc": auroc(normal, anomalous),
        "auprc": average_precision(normal, anomalous),
        "fpr_at_95_tpr": fpr_at_tpr(normal, anomalous, 0.95),
        "n_normal": int(np.size(normal)),
        "n_anomalous": int(np.size(anomalous)),
    }
