"""The short runs behind the restoration task models' quality test, shared with the calibration.

``tests/families/diffusion/test_restoration_models.py`` trains each task model once (seed 0) and
checks its bar; ``tests/calibrate_quality.py restoration`` trains each over several seeds to set
the bars (``tests/calibration.json``). :func:`measure` restores held-out test images and returns
the judge-feature distance (``apps.restore.feature_distance``, the domain judge's penultimate
features) and the mean squared error of the model and of the simple baselines:

- ``inpaint`` (digits, the centre box): the hole filled with the known pixels' mean (``mean_fill``)
  and by harmonic fill (``harmonic``); errors over the hole;
- ``sr`` (digits, scale 2): nearest-neighbour and bicubic enlargement; errors over the image;
- ``colorize`` (emoji at 16x16): the luma copied to grey, and the training set's mean chroma per
  luma bin (``apps.restore.MeanChroma``); errors over the image.
"""

from __future__ import annotations

from pathlib import Path

import torch

import genvision as gv
from genvision import data
from genvision.apps import restore
from genvision.data import degrade
from genvision.metrics import fid, judges
from genvision.metrics.features import domain_extractor, reference
from genvision.metrics.sources import quantise

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}
NET = {"base_channels": 16, "num_res_blocks": 1, "steps": 10}
EMOJI = f"folder:{data.shared_path('datasets', 'emoji', 'twemoji')}"
#: task -> (data spec, image size or None, model config, training steps, batch size)
RUNS = {
    "inpaint": ("digits", None, {}, 150, 32),
    "sr": ("digits", None, {"scale": 2}, 100, 32),
    "colorize": (EMOJI, 16, {}, 100, 32),
}
N = 200  # held-out test images restored


def splits(task: str):
    spec, size = RUNS[task][:2]
    return data.load(spec, "train", image_size=size), data.load(spec, "test", image_size=size)


def train(task: str, out: Path, seed: int = 0) -> Path:
    spec, size, config, steps, batch_size = RUNS[task]
    return gv.train(
        task,
        data=spec,
        out=out,
        steps=steps,
        batch_size=batch_size,
        lr=2e-3,
        ema_half_life=4000,
        seed=seed,
        model_config={**NET, **config, **({"image_size": size} if size else {})},
        **QUIET,
    )


def baselines(task: str, x: torch.Tensor, mask, scale: int, train_x: torch.Tensor) -> dict:
    """The simple restorations of test images ``x`` that the model has to beat."""
    y = degrade.degrade(task, x, mask=mask, scale=scale)
    if task == "inpaint":
        known = 1 - mask
        mean = (x * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
        return {
            "mean_fill": degrade.keep_known(mean.expand_as(x), x, mask),
            "harmonic": restore.harmonic_fill(y, mask),
        }
    if task == "sr":
        return {"nearest": degrade.enlarge(y, scale), "bicubic": restore.bicubic(y, scale)}
    return {"grey": y.expand(-1, 3, -1, -1), "mean_chroma": restore.MeanChroma(train_x)(y)}


def measure(task: str, out: Path, *, n: int = N) -> dict:
    """Restore ``n`` test images with the run in ``out``; feature distance and MSE of it and the baselines."""
    model = gv.load(out)
    train, test = splits(task)
    x = test.batch(torch.arange(min(n, len(test))))[0]
    scale = getattr(model.config, "scale", 4)
    mask = degrade.center_mask(len(x), x.shape[-1]) if task == "inpaint" else None
    y = x if task == "inpaint" else degrade.degrade(task, x, scale=scale)
    outputs = {"model": model.restore(y, mask, seed=0).cpu()}
    outputs.update(baselines(task, x, mask, scale, train.batch(torch.arange(min(2000, len(train))))[0]))
    judge = judges.get_judge(train, test)
    ref = reference(train, domain_extractor(train, test))
    region = mask if task == "inpaint" else torch.ones_like(x[:, :1])
    figures = {}
    for name, restored in outputs.items():
        err = ((restored - x) ** 2 * region).sum(dim=(1, 2, 3)) / (region.sum(dim=(1, 2, 3)) * x.shape[1])
        figures[f"{name}_mse"] = float(err.mean())
        figures[f"{name}_feature_distance"] = float(restore.feature_distance(restored, x, judge).mean())
        features = fid.extract(judge, quantise(restored, train.levels))
        figures[f"{name}_fid"] = fid.frechet_distance(*fid.statistics(features), ref.mu, ref.sigma)
        if task == "colorize":  # Hasler & Suesstrunk: a washed-out colouring scores low
            figures[f"{name}_colourfulness"] = restore.colourfulness(restored)
    if task == "colorize":
        figures["real_colourfulness"] = restore.colourfulness(x)
    return figures


def run(task: str, out: Path, seed: int = 0) -> dict:
    train(task, out, seed)
    return measure(task, out)
