"""Likelihood metrics from a model's capabilities, on the data's test split, for any family.

- ``bpd`` / ``nll``: ``model.log_likelihood(x, y, seed=0, generator=...)`` -> (B,) float64 log p(x)
  in nats per image on the data's discrete grid; nll = -mean, bits/dim = nll / (C H W ln 2).
  Exact for autoregressive models and flows (with their dequantisation), a lower bound for
  diffusion and VAEs: the model's optional ``likelihood_note`` (a string) says which, and how it
  handles the discrete levels; the card copies it.
- ``elbo``: ``model.elbo(x, y, seed=0)`` -> (B,) nats per image, reported like ``bpd``.
- ``reconstruction``: ``model.reconstruct(x)``: mean squared error per pixel on the [-1, 1]
  scale over the test images, and a grid (originals above their reconstructions).

The ``*_metric(inputs)`` functions at the end are these metrics' entries in the metric table
(:mod:`.table`): each returns its ``metrics.json`` entry with its card; bpd and nll share one
pass over the split.

Images go through in batches (memory bounded by one batch), with a progress bar. Image i of the
split draws its noise from generator ``seeding.image_seed(seed, i)`` (``image_generators``), so a
stochastic bound does not depend on the batch size. Conditional models get the test labels.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import seeding
from ..nn import pixels
from .features import progress_batches

if TYPE_CHECKING:
    from .inputs import Inputs

BATCH_SIZE = 100


def _batches(ds, n: int, batch_size: int):
    """(start, x (B, C, H, W) float in [-1, 1], y (B,)) over the first ``n`` images of ``ds``."""
    g = torch.Generator().manual_seed(0)  # the fixed test draw of a binarised split
    for start in range(0, n, batch_size):
        x, y = ds.batch(torch.arange(start, min(start + batch_size, n)), generator=g)
        yield start, x.float(), torch.as_tensor(y).long()


def _labels(model, y):
    return y.to(model.device) if model.config.conditional else None


def _accepts_generator(fn) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def per_image_nats(model, ds, capability: str, *, n=None, seed=0, batch_size=BATCH_SIZE, progress=False):
    """``model.<capability>`` (log_likelihood or elbo) of the first ``n`` images of ``ds``: (N,) float64."""
    fn = getattr(model, capability)
    n = len(ds) if n is None else min(n, len(ds))
    out = []
    desc = f"{capability} on {ds.spec} {ds.split}" if progress else None
    batches = _batches(ds, n, batch_size)
    for _ in progress_batches(range(0, n, batch_size), desc, n, batch_size):
        start, x, y = next(batches)
        kwargs = {"seed": seed}
        if _accepts_generator(fn):
            kwargs = {"generator": seeding.image_generators(len(x), seed, model.device, start=start)}
        value = fn(x.to(model.device), _labels(model, y), **kwargs)
        value = torch.as_tensor(value).detach().double().cpu().reshape(-1)
        if value.shape != (len(x),):
            raise ValueError(
                f"{model.registry_name}.{capability} returned shape {tuple(value.shape)}, not ({len(x)},)"
            )
        out.append(value)
    return torch.cat(out)


def summarise(nats: torch.Tensor, dims: int) -> dict:
    """Mean log-likelihood (nats/image), its standard error, and bits/dim, of per-image values."""
    finite = torch.isfinite(nats)
    if not finite.all():
        raise ValueError(f"{int((~finite).sum())} of {len(nats)} per-image log-likelihoods are not finite")
    mean = float(nats.mean())
    se = float(nats.std() / math.sqrt(len(nats))) if len(nats) > 1 else 0.0
    return {
        "nll_nats": -mean,
        "nll_se": se,
        "bpd": pixels.bits_per_dim(mean, dims),
        "bpd_se": pixels.bits_per_dim(-se, dims),  # bits_per_dim negates; a standard error stays >= 0
        "n": len(nats),
    }


@torch.no_grad()
def reconstruction(
    model, ds, *, n=None, batch_size=BATCH_SIZE, progress=False, keep: list | None = None
) -> tuple[dict, torch.Tensor]:
    """Mean squared reconstruction error of the first ``n`` images, and a (2 * k) image grid batch.

    ``keep``: a list that receives every reconstruction batch (float, CPU, clamped to [-1, 1]).

    Returns:
        ({"mse": per-pixel MSE on the [-1, 1] scale, "mse_se", "n"}, grid images (2k, C, H, W):
        k = min(8, n) originals followed by their reconstructions).
    """
    n = len(ds) if n is None else min(n, len(ds))
    errors, grid = [], None
    desc = f"reconstruct {ds.spec} {ds.split}" if progress else None
    batches = _batches(ds, n, batch_size)
    for _ in progress_batches(range(0, n, batch_size), desc, n, batch_size):
        _, x, _ = next(batches)
        r = torch.as_tensor(model.reconstruct(x.to(model.device))).float().cpu()
        errors.append(((r - x) ** 2).flatten(1).mean(dim=1).double())
        if keep is not None:
            keep.append(r.clamp(-1, 1))
        if grid is None:
            k = min(8, len(x))
            grid = torch.cat([x[:k], r[:k].clamp(-1, 1)])
    e = torch.cat(errors).numpy()
    se = float(e.std(ddof=1) / np.sqrt(len(e))) if len(e) > 1 else 0.0
    return {"mse": float(e.mean()), "mse_se": se, "n": len(e)}, grid


# ----------------------------------------------------------------------------- table entries
def nll_metric(which: str, inputs: Inputs) -> dict:
    """``bpd`` or ``nll`` (``which``) of the test split; one log_likelihood pass serves both."""
    s = _summary(inputs, "log_likelihood")
    card = inputs.once("log_likelihood card", lambda: {**_card(inputs), "n": s["n"]})
    if which == "bpd":
        return {"value": s["bpd"], "se": s["bpd_se"], "card": card}
    return {"value": s["nll_nats"], "se": s["nll_se"], "card": card}


def elbo_metric(inputs: Inputs) -> dict:
    """The evidence lower bound of the test split, nats per image (and its bits/dim)."""
    s = _summary(inputs, "elbo")
    return {
        "value": -s["nll_nats"],
        "se": s["nll_se"],
        "bpd": s["bpd"],
        "card": {**_card(inputs), "n": s["n"]},
    }


def reconstruction_metric(inputs: Inputs) -> dict:
    """Mean squared reconstruction error of the test split, with a picture of the first images, and
    the domain FID of the reconstructions at the evaluation's N (``fid``).

    The FID says how faithful the decoder is that a latent model samples through (its samples
    are decodings too). It is not a strict bound on their FID: decoded samples can score better
    than reconstructions of real images (measured: docs/notes/diffusion.md). It is measured under
    the equal-N protocol on the first ``n`` reconstructions (the evaluation's sample count, at
    most the test split).
    """
    from .sample_metrics import domain_fid_card

    settings, test_ds = inputs.settings, inputs.test_ds
    kept: list = []
    figures, grid = reconstruction(
        inputs.model,
        test_ds,
        n=settings.likelihood_n,
        batch_size=settings.batch_size,
        progress=settings.progress,
        keep=kept,
    )
    picture = None
    if inputs.target is not None:
        from ..viz import save_grid

        picture = "reconstructions.png"
        save_grid(grid, inputs.target / picture, nrow=len(grid) // 2, levels=test_ds.levels)
    card = {**_card(inputs), "n": figures["n"], "units": "mean squared error per pixel, [-1, 1] scale"}
    n_fid = min(figures["n"], settings.n or figures["n"])
    fid_card = domain_fid_card(torch.cat(kept)[:n_fid], inputs.train_ds, test_ds, seed=settings.seed)
    fid = {
        "value": fid_card["fid"],
        "ci": fid_card.get("ci"),
        "floor": fid_card["floor"],
        "floor_std": fid_card["floor_std"],
        "ratio_to_floor": fid_card["fid"] / fid_card["floor"] if fid_card["floor"] > 0 else math.inf,
        "n": fid_card["n"],
        "n_floor": fid_card["n_floor"],
        "equal_n": fid_card["equal_n"],
        "features": "domain judge",
        "note": "FID of the first n test images' reconstructions against the reference half of the "
        "train split: how faithful the decoder is (not a strict bound on decoded samples' FID)",
    }
    return {"value": figures["mse"], "se": figures["mse_se"], "fid": fid, "picture": picture, "card": card}


def _summary(inputs: Inputs, capability: str) -> dict:
    """:func:`summarise` of :func:`per_image_nats` of the test split, computed once per capability."""

    def run():
        s, ds = inputs.settings, inputs.test_ds
        nats = per_image_nats(
            inputs.model,
            ds,
            capability,
            n=s.likelihood_n,
            seed=s.seed,
            batch_size=s.batch_size,
            progress=s.progress,
        )
        return summarise(nats, ds.channels * ds.image_size**2)

    return inputs.once(capability, run)


def _card(inputs: Inputs) -> dict:
    """The likelihood metrics' shared card: the common card plus split, noise, note and units."""
    s, ds = inputs.settings, inputs.test_ds
    return {
        **inputs.common,
        "split": f"{ds.spec} test split",
        "batch_size": s.batch_size,
        "noise": f"image i of the split uses generator seeding.image_seed(seed, i) (seed {s.seed})",
        "likelihood_note": inputs.model.likelihood_note or "not stated by the model",
        "units": "nats per image; bits/dim = nats / (C*H*W*ln 2)",
        "levels": ds.levels,
    }
