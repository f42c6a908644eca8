"""Inception Score (Salimans et al., 2016): exp E_x KL(p(y|x) || p(y)), over splits.

    IS_s = exp( mean_{x in split s} sum_y p(y|x) (log p(y|x) - log p_s(y)) ),  p_s(y) = mean_{x in s} p(y|x)

The images are shuffled once (``randperm(N)`` from a generator seeded with ``seed``, the call
torchmetrics makes on the global generator), cut into ``splits`` chunks (``torch.chunk``), and
the score is the mean and the sample standard deviation (ddof 1, as torchmetrics) of IS_s.
Computed in float64 from logits.

With the Inception file the logits are its 1008-way head without the bias (torch-fidelity's
and torchmetrics' ``logits_unbiased``); without it, the domain judge's class logits, which
measure confident and diverse classes of the dataset itself (at most ``num_classes``): the card
says which.
"""

from __future__ import annotations

import torch

SPLITS = 10


def inception_score(logits, *, splits: int = SPLITS, seed: int = 0) -> dict:
    """IS of class logits (N, K).

    Returns:
        {"value": mean over splits, "std": sample std over splits, "splits", "seed",
         "max_possible": K (the score of confident predictions spread evenly over K classes)}.
    """
    logits = torch.as_tensor(logits).detach().cpu().double()
    if logits.dim() != 2 or len(logits) < splits:
        raise ValueError(f"need logits (N >= splits={splits}, K), got {tuple(logits.shape)}")
    g = torch.Generator().manual_seed(seed)
    logits = logits[torch.randperm(len(logits), generator=g)]
    scores = []
    for chunk in logits.chunk(splits, dim=0):
        log_p = chunk.log_softmax(dim=1)  # (n, K) log p(y|x)
        log_marginal = log_p.exp().mean(dim=0).log()  # (K,) log p_s(y)
        kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)  # (n,)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return {
        "value": float(s.mean()),
        "std": float(s.std()) if len(s) > 1 else 0.0,
        "splits": len(s),
        "seed": seed,
        "max_possible": logits.shape[1],
    }
