"""genvision: deep generative models of images with one API and one CLI.

import genvision as gv
model = gv.create("ddpm", image_size=8, channels=1)
gv.train(model, data="digits", steps=2000, out="runs/ddpm-digits")
model = gv.load("runs/ddpm-digits")
images = model.sample(64, seed=0)            # (64, 1, 8, 8) in [-1, 1]; image k fixed by (seed, k)
gv.save_grid(images, "grid.png")
report = gv.evaluate(model, data="digits")   # every metric that applies, each with its card
"""

from .version import __version__

__all__ = [
    "create",
    "load",
    "train",
    "sample",
    "distill",
    "evaluate",
    "interpolate",
    "compare",
    "list_models",
    "save_grid",
    "__version__",
]


def create(name: str, **config):
    """Build registry model ``name`` with config overrides (``image_size=``, ``channels=``, ...).

    A model built on another takes it by role, as a model or a model directory
    (``gv.create("vqvae-transformer", vqvae="runs/vq")``).
    """
    from .model_dir import build

    return build(name, **config)


def load(directory, device="cpu"):
    """Load a model directory (``config.json`` + ``model.safetensors``), never unpickling."""
    from .model_dir import load_model_dir

    return load_model_dir(directory, device=device)


def train(model, data="digits", out=None, **train_config):
    """Train ``model`` (a model or registry name) on dataset spec ``data``; returns the run directory."""
    from .training.staged import train as _train

    return _train(model, data=data, out=out, **train_config)


def sample(source, n, *, seed=0, labels=None, out=None, batch_size=256, device="auto", **options):
    """Draw ``n`` images (image k fixed by (seed, k)) from a model directory or model; write ``out``
    (.png grid or .npz) with its metadata record; returns a dict (see ``genvision.sampling.sample``)."""
    from .sampling import sample as _sample

    return _sample(
        source, n, seed=seed, labels=labels, out=out, batch_size=batch_size, device=device, **options
    )


def distill(teacher, out=None, method="progressive", sampling_steps=None, **options):
    """Distil the diffusion model in ``teacher`` into a few-step student: ``method="progressive"``
    (``sampling_steps`` DDIM steps, default 10) or ``"consistency"`` (one step by default);
    returns its run directory (see ``training.recipes``)."""
    from .training.recipes import distill as _distill

    return _distill(teacher, out=out, method=method, sampling_steps=sampling_steps, **options)


def evaluate(source, data="digits", metrics=None, n=None, out=None, **options):
    """Evaluate a model, model directory, ``npz:FILE`` or ``folder:DIR`` against dataset ``data``."""
    from .metrics.evaluate import evaluate as _evaluate

    return _evaluate(source, data=data, metrics=metrics, n=n, out=out, **options)


def interpolate(model, x0, x1, frames=8, mode="linear"):
    """Decoded latent path between images x0 and x1 (C, H, W): (frames, C, H, W) in [-1, 1].

    Needs a model with a continuous ``encode`` and ``decode`` (VAE, flows); see ``genvision.apps.interpolate``.
    """
    from .apps.interpolate import interpolate as _interpolate

    return _interpolate(model, x0, x1, frames=frames, mode=mode)


def compare(
    data=None,
    models=None,
    minutes=None,
    seeds=None,
    out=None,
    *,
    resume=False,
    quick=False,
    n=None,
    **options,
):
    """Train each model on ``data`` for the same wall-clock budget, evaluate all alike, and write one
    leaderboard (``out/report.md``, ``leaderboard.json``, pictures); see ``genvision.comparison.runner``.

    ``options``: ``steps=`` (a length in steps instead of minutes), ``model_config={name: {...}}``
    (config overrides, e.g. tiny models in tests), ``progress=``.
    """
    from .comparison.runner import compare as _compare

    return _compare(data, models, minutes, seeds, out, resume=resume, quick=quick, n=n, **options)


def list_models():
    """Registry names with their family and one-line summary."""
    from .registry import list_models as _list

    return _list()


def save_grid(images, path, nrow=None, levels=None, watermark=None):
    """Write a PNG grid of images in [-1, 1] (N, C, H, W) with its provenance record and, for
    images of 28 px and more, the invisible watermark (``watermark=False``: without it)."""
    from .viz import save_grid as _save_grid

    return _save_grid(images, path, nrow=nrow, levels=levels, watermark=watermark)


def __getattr__(name: str):
    """``gv.apps`` (the applications: ``gv.apps.inpaint``, ``gv.apps.translate``, ...), imported on first use."""
    if name == "apps":
        import importlib

        return importlib.import_module(".apps", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
