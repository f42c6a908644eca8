"""Memorization: how close generated images come to training images, against real data's closeness.

In the extractor's feature space (Euclidean), for every generated image its nearest training
image (distance d_gen) and, as the yardstick, for every test image its nearest training image
(d_test): real images the model never saw show how close a *new* image typically falls.

    threshold  = the 5th percentile of d_test
    share      = fraction of generated images with d_gen < threshold   (~0.05 for a model
                 whose samples are as novel as fresh real data; near 1 for one that copies)
    ratio      = median d_gen / median d_test                          (< 1: closer than real)

The picture pairs the 8 generated images nearest to the training set (top row) with their
nearest training images (bottom row), so a reader sees whether "close" means "copied".
A training set larger than the reference cache's stored sample is searched through that sample
(the card says how many training images were searched).
"""

from __future__ import annotations

import numpy as np
import torch

from . import manifold

QUANTILE = 0.05
PAIRS = 8


def memorization(gen_features, test_features, train_features) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Memorization figures and, for the picture, the pair order and nearest-train positions.

    Args:
        gen_features: (M, D) generated; test_features: (T, D) test split; train_features: (N, D).
    Returns:
        (figures dict, order (k,) indices of the generated images nearest to train, nearest (k,)
        positions in ``train_features`` of their neighbours).
    """
    d_gen, nearest = manifold.nearest(gen_features, train_features)
    d_test, _ = manifold.nearest(test_features, train_features)
    threshold = float(torch.quantile(d_test, QUANTILE))
    order = torch.argsort(d_gen)[:PAIRS]
    figures = {
        "value": float((d_gen < threshold).double().mean()),
        "expected_for_real_data": QUANTILE,
        "threshold": threshold,
        "threshold_definition": f"{QUANTILE:.0%} quantile of test-to-train nearest-neighbour distances",
        "median_ratio": float(d_gen.median() / d_test.median())
        if float(d_test.median()) > 0
        else float("inf"),
        "nearest_distance_quantiles": {
            q: float(np.quantile(d_gen.numpy(), float(q))) for q in ("0.01", "0.05", "0.5")
        },
        "copies": int((d_gen <= 1e-3 * d_test.median()).sum()),  # equal up to feature round-off
        "n_generated": len(d_gen),
        "n_test": len(d_test),
        "n_train_searched": len(train_features),
    }
    return figures, order, nearest[order]
