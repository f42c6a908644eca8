"""Anomaly scores: one number per image, higher = more anomalous, from any model that can give one.

    genvision score RUN --data SPEC [--anomalies SPEC] [--method NAME] [--background RUN] --out scores.csv

Methods (each needs a capability of the model, never a family name):

- ``bpd``: bits/dim, -log p(x) / (C H W ln 2), from ``log_likelihood`` (exact for flows and
  autoregressive models, the IWAE bound for VAEs, the variational bound for diffusion: slow there,
  a pass of every training step per image). ``nll`` is the same in nats per image.
- ``recon``: mean squared reconstruction error per pixel, from ``reconstruct`` (autoencoders,
  VAEs, latent models).
- ``typicality``: |log p(x) - mean log p of training images| (Nalisnick et al., 2019, per image):
  an image can be too likely as well as too unlikely, which is how likelihood models rate
  simple out-of-distribution images.
- ``ratio``: log p_background(x) - log p_model(x) (Ren et al., 2019). The background model is the
  same kind of model trained on the same data with a fraction of its pixels replaced by noise
  (``--set train.pixel_noise=0.2``), so it learns the population's pixel statistics and not its
  shapes; the ratio cancels what both share (smooth backgrounds, the number of dark pixels) and
  keeps what only the shape model knows. A model's ratio with itself is 0.
- ``diffusion``: diffusion reconstruction: noise the image to a few levels (sigma in
  ``DIFFUSION_LEVELS``, one seeded draw each), take the model's clean estimate, measure the mean
  squared change in pixel space (latent models noise the latent and decode the estimate).

Scores of the normal set (``--data``, its test split by default: images the model never saw) and
of the anomalies (``--anomalies``, all of its images) give AUROC, AUPRC and FPR at 95% TPR
(:mod:`genvision.metrics.roc`) and a ROC plot.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from .. import data as gvdata
from .. import seeding
from ..families.base import has
from ..metrics import likelihood, roc

#: method -> (capability it needs, what the score is)
METHODS = {
    "bpd": ("log_likelihood", "bits/dim under the model"),
    "nll": ("log_likelihood", "negative log-likelihood, nats per image"),
    "recon": ("reconstruct", "mean squared reconstruction error per pixel ([-1, 1] scale)"),
    "typicality": ("log_likelihood", "|log p(x) - mean log p of training images|, nats"),
    "ratio": ("log_likelihood", "log p_background(x) - log p_model(x), nats"),
    "diffusion": ("denoise_x0", "mean squared change of the clean estimate from noised copies, per pixel"),
}
#: the method a model gets when none is asked for: the first it can run (bpd on a diffusion model
#: is the full variational bound, hundreds of network calls per image, so diffusion comes first)
DEFAULT_ORDER = ("diffusion", "bpd", "recon")
#: noise levels (sigma of the variance-exploding view) of the diffusion score
DIFFUSION_LEVELS = (0.25, 0.5, 1.0)
#: training images behind the typicality reference
TYPICAL_N = 1000
SPLITS = ("test", "train", "all")
BATCH_SIZE = 100


def image_shape(model) -> tuple[int, int, int]:
    c = model.config
    return (c.channels, c.image_size, c.image_size)


def methods_for(model) -> list[str]:
    """The methods ``model`` can score with (``ratio`` also needs a background model)."""
    return [m for m, (cap, _) in METHODS.items() if has(model, cap)]


def default_method(model, background=None) -> str:
    if background is not None:
        return "ratio"
    for m in DEFAULT_ORDER:
        if m in methods_for(model):
            return m
    raise ValueError(
        f"{model.registry_name} ({model.family}) gives no anomaly score: it has no likelihood, "
        "reconstruction or denoiser; use a flow, autoregressive, VAE, autoencoder or diffusion model"
    )


def check_method(model, method: str, background=None) -> None:
    """One-line errors: unknown method, a method the model cannot run, ratio without a background."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    can = methods_for(model)
    if method not in can:
        raise ValueError(
            f"{model.registry_name} cannot score with {method} (it needs {METHODS[method][0]}); "
            f"it can use: {', '.join(can) or 'none'}"
        )
    if method == "ratio":
        if background is None:
            raise ValueError(
                "--method ratio needs --background RUN: the same model trained with train.pixel_noise"
            )
        if not has(background, "log_likelihood"):
            raise ValueError(f"the background model {background.registry_name} has no log_likelihood")
        if image_shape(background) != image_shape(model):
            raise ValueError(
                f"the background model's images are {image_shape(background)}, the model's "
                f"{image_shape(model)}; train it on the same data"
            )


# ----------------------------------------------------------------------------- scores
def score(
    model,
    ds,
    method: str | None = None,
    *,
    background=None,
    reference=None,
    n=None,
    seed=0,
    batch_size=BATCH_SIZE,
    progress=False,
) -> np.ndarray:
    """Anomaly scores (N,) float64 of the first ``n`` images of dataset ``ds`` (higher = stranger).

    ``reference``: typicality's training set (a dataset; default: ``TYPICAL_N`` images of the
    model's own training data are needed, so pass it). ``background``: ratio's background model.
    """
    method = method or default_method(model, background)
    check_method(model, method, background)
    check_compatible(model, ds)
    n = len(ds) if n is None else min(int(n), len(ds))
    if method in ("bpd", "nll", "typicality", "ratio"):
        logp = _logp(model, ds, n, seed, batch_size, progress)
        if method == "bpd":
            return (-logp / (math.prod(image_shape(model)) * math.log(2))).numpy()
        if method == "nll":
            return (-logp).numpy()
        if method == "ratio":
            return (_logp(background, ds, n, seed, batch_size, progress) - logp).numpy()
        if reference is None:
            raise ValueError("typicality needs the training images as reference (reference=dataset)")
        ref = _logp(model, reference, min(TYPICAL_N, len(reference)), seed, batch_size, progress)
        return (logp - ref.mean()).abs().numpy()
    if method == "recon":
        keep = []
        likelihood.reconstruction(model, ds, n=n, batch_size=batch_size, progress=progress, keep=keep)
        x = _first(ds, n)
        r = torch.cat(keep)
        return ((r - x) ** 2).flatten(1).mean(dim=1).double().numpy()
    return diffusion_scores(model, ds, n=n, seed=seed, batch_size=batch_size)


def _logp(model, ds, n, seed, batch_size, progress) -> torch.Tensor:
    return likelihood.per_image_nats(
        model, ds, "log_likelihood", n=n, seed=seed, batch_size=batch_size, progress=progress
    )


def _first(ds, n) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)  # as likelihood's batches: the fixed draw of a binarised set
    return torch.cat(
        [ds.batch(torch.arange(s, min(s + BATCH_SIZE, n)), generator=g)[0] for s in range(0, n, BATCH_SIZE)]
    )


@torch.no_grad()
def diffusion_scores(model, ds, *, n, seed=0, batch_size=BATCH_SIZE, levels=DIFFUSION_LEVELS) -> np.ndarray:
    """Mean over ``levels`` of the squared pixel change of the clean estimate from a noised copy.

    Image i at level j draws its noise from ``seeding.image_generators`` keyed by (seed + j, i),
    so a score does not depend on the batch size.
    """
    latent = hasattr(model, "latent_scale") and model.has_parent("autoencoder")
    out = []
    with model.eval_mode():
        for start in range(0, n, batch_size):
            x = ds.batch(torch.arange(start, min(start + batch_size, n)))[0].to(model.device)
            z = model.parent("autoencoder").encode(x) * model.latent_scale if latent else x
            total = torch.zeros(len(x), dtype=torch.float64)
            for j, sigma in enumerate(levels):
                gens = seeding.image_generators(len(x), seed + j, model.device, start=start)
                eps = torch.stack([torch.randn(z.shape[1:], generator=g, device=model.device) for g in gens])
                zt = (z + sigma * eps) / math.sqrt(1 + sigma**2)  # VP-scaled, as the samplers' x
                xhat = model.finish(model.denoise_x0(zt, sigma)).clamp(-1, 1)  # a latent model decodes
                total += ((xhat - x) ** 2).flatten(1).mean(dim=1).double().cpu()
            out.append(total / len(levels))
    return torch.cat(out).numpy()


def check_compatible(model, ds) -> None:
    """The images must have the model's shape and levels (one line naming both)."""
    want, got = image_shape(model), (ds.channels, ds.image_size, ds.image_size)
    if want != got:
        raise ValueError(
            f"{ds.spec} gives {got[0]}x{got[1]}x{got[2]} images but the model takes "
            f"{want[0]}x{want[1]}x{want[2]}; give data of that size and channels"
        )
    if getattr(model.config, "levels", ds.levels) != ds.levels:
        raise ValueError(
            f"{ds.spec} has {ds.levels} levels per pixel but the model was trained on "
            f"{model.config.levels}; score data quantised like its training data"
        )


# ----------------------------------------------------------------------------- the command
def load_split(spec: str, split: str, image_size: int):
    """One split of ``spec`` at ``image_size``; ``"all"`` joins train and test."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    if split != "all":
        return gvdata.load(spec, split, image_size=image_size)
    parts = []
    for s in ("train", "test"):
        try:
            parts.append(gvdata.load(spec, s, image_size=image_size))
        except ValueError as e:  # a small folder may have no test image
            if "has no images" not in str(e):
                raise
    if not parts:
        raise ValueError(f"{spec} holds no images")
    return join(parts)


def join(parts):
    """One dataset of the images of ``parts`` (same shape and levels), in order."""
    first = parts[0]
    if len(parts) == 1:
        return first
    keys = None if any(p.keys is None for p in parts) else [k for p in parts for k in p.keys]
    files = None if any(p.files is None for p in parts) else [f for p in parts for f in p.files]
    return gvdata.ImageDataset(
        torch.cat([p.images for p in parts]),
        torch.cat([torch.as_tensor(p.labels) for p in parts]),
        levels=first.levels,
        num_classes=first.num_classes,
        spec=first.spec,
        split="all",
        binarize=first.binarize,
        files=files,
        keys=keys,
        class_names=first.class_names,
    )


def score_run(
    source,
    data: str,
    *,
    anomalies: str | None = None,
    method: str | None = None,
    background=None,
    split: str = "test",
    anomaly_split: str = "all",
    n: int | None = None,
    out=None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Score ``data`` (and ``anomalies``) with a model directory; write a CSV and a ROC plot.

    Returns ``{"method", "what", "scores": {"normal": array, "anomalies": array or None},
    "summary": detection_summary or None, "csv": Path or None, "plot": Path or None}``.
    """
    from ..model_dir import load_model_dir, read_config

    model = load_model_dir(source)
    bg = load_model_dir(background) if background is not None else None
    method = method or default_method(model, bg)
    check_method(model, method, bg)
    size = model.config.image_size
    normal = load_split(data, split, size)
    odd = load_split(anomalies, anomaly_split, size) if anomalies else None
    for ds in (normal, odd):
        if ds is not None:
            check_compatible(model, ds)
    reference = None
    if method == "typicality":
        spec = (read_config(source).get("data") or {}).get("spec")
        if not spec:
            raise ValueError(f"{source} does not record its training data; typicality needs it")
        reference = gvdata.load(spec, "train", image_size=size)
    kw = {"background": bg, "reference": reference, "n": n, "seed": seed, "progress": progress}
    s_normal = score(model, normal, method, **kw)
    s_odd = score(model, odd, method, **kw) if odd is not None else None
    summary = roc.detection_summary(s_normal, s_odd) if s_odd is not None else None
    csv_path = plot_path = None
    if out is not None:
        csv_path = write_csv(out, [("normal", normal, s_normal)] + ([("anomaly", odd, s_odd)] if odd else []))
        if summary is not None:
            plot_path = write_roc(
                csv_path.with_name(csv_path.stem + "_roc.png"), s_normal, s_odd, method, summary
            )
    return {
        "method": method,
        "what": METHODS[method][1],
        "scores": {"normal": s_normal, "anomalies": s_odd},
        "summary": summary,
        "csv": csv_path,
        "plot": plot_path,
    }


def write_csv(out, sets) -> Path:
    """``set,index,name,label,score`` per image (name: file or key where the dataset has one)."""
    from .. import io

    out = Path(out)
    if out.suffix != ".csv":
        raise ValueError(f"--out must end in .csv (got {out.name})")

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["set", "index", "name", "label", "score"])
            for name, ds, scores in sets:
                names = ds.files or ds.keys or [""] * len(ds)
                for i, s in enumerate(scores):
                    w.writerow([name, i, names[i], int(ds.labels[i]), f"{float(s):.6g}"])

    return io.atomic_write(out, write)


def write_roc(path: Path, s_normal, s_odd, method: str, summary: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import io

    fpr, tpr, _ = roc.roc_curve(s_normal, s_odd)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.plot(fpr, tpr, lw=1.5, label=f"{method}: AUROC {summary['auroc']:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(
        xlabel="false-positive rate (normal images flagged)", ylabel="true-positive rate (anomalies caught)"
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png")

    try:
        return io.atomic_write(path, write)
    finally:
        plt.close(fig)
