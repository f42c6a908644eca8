"""The restoration task models ``inpaint``, ``sr``, ``colorize``: exactness, errors, quality.

Exactness is checked on untrained networks with perturbed weights (the final projection must hold
whatever the network says); quality on short runs (``restoration_recipes.py``) that must beat the
simple baselines on the domain judge's feature distance (per image) and on domain FID (of the
restored set) by the margins calibrated in ``tests/calibration.json`` ("restoration"): ratios to
the baseline's figure, worst of five seeds plus a margin, each below 1.
"""

from __future__ import annotations

import pytest
import torch
from families.diffusion import restoration_recipes as recipes
from gvtest import one_line, one_thread, skip_or_fail

import genvision as gv
from genvision import data
from genvision.data import degrade

TINY = {"base_channels": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "steps": 2, "levels": 17}
#: (task, baseline, measure) -> the most the model's figure may be, as a fraction of the
#: baseline's (calibration.json "restoration": worst of five seeds plus a margin): the judge-feature
#: distance to the originals (per image) and the domain FID of the restored set
BARS = {
    ("inpaint", "mean_fill", "feature_distance"): 0.88,
    ("inpaint", "harmonic", "fid"): 0.4,
    ("sr", "nearest", "feature_distance"): 0.8,
    ("sr", "bicubic", "feature_distance"): 0.62,
    ("sr", "bicubic", "fid"): 0.25,
    ("colorize", "grey", "feature_distance"): 0.9,
    ("colorize", "mean_chroma", "fid"): 0.7,
}
#: colourisation's colourfulness (Hasler & Suesstrunk) within this fraction of the test set's
COLOURFULNESS_BAR = 0.2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small convolutions: one thread, since two fight over a busy CPU."""
    with one_thread():
        yield


def _perturbed(name: str, **fields):
    torch.manual_seed(0)
    model = gv.create(name, **TINY, **fields)
    with torch.no_grad():  # not a no-op: the zero-initialised output layer says something
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _images(channels: int, n: int = 6) -> torch.Tensor:
    if channels == 1:
        return data.load("digits", "test").batch(torch.arange(n))[0]
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_inpainting_keeps_every_known_pixel_exactly():
    model = _perturbed("inpaint")
    x = _images(1)
    mask = degrade.random_masks(len(x), 8, [torch.Generator().manual_seed(k) for k in range(len(x))])
    out = model.restore(torch.where(mask > 0, 0.7, x), mask, seed=0)  # hole values are ignored
    known = mask == 0
    assert torch.equal(out[known.expand_as(out)], x[known.expand_as(x)])
    assert out.abs().max() <= 1 and (out[~known.expand_as(out)] != x[~known.expand_as(x)]).any()


@pytest.mark.parametrize("scale", [2, 4])
def test_super_resolution_downsamples_back_to_its_input(scale):
    model = _perturbed("sr", scale=scale)
    low = degrade.downsample(_images(1), scale)
    out = model.restore(low, seed=0)
    assert out.shape == (6, 1, 8, 8) and out.abs().max() <= 1
    assert (degrade.downsample(out, scale) - low).abs().max() < 1e-5


def test_colourisation_keeps_the_luma():
    model = _perturbed("colorize")
    luma = degrade.luminance(_images(3))
    out = model.restore(luma, seed=0)
    assert out.shape == (6, 3, 8, 8) and out.abs().max() <= 1
    assert (degrade.luminance(out) - luma).abs().max() < 1e-5


@pytest.mark.parametrize("name", ["inpaint", "sr", "colorize"])
def test_image_k_depends_only_on_the_seed_and_k(name):
    model = _perturbed(name)
    x = _images(model.config.channels)
    mask = degrade.center_mask(len(x), 8) if name == "inpaint" else None
    y = x if name == "inpaint" else degrade.degrade(name, x, scale=4)
    whole = model.restore(y, mask, seed=3)
    first = model.restore(y[:2], None if mask is None else mask[:2], seed=3)
    assert torch.allclose(whole[:2], first, atol=1e-5)
    assert not torch.allclose(whole, model.restore(y, mask, seed=4), atol=1e-3)


def test_sampling_restores_the_first_training_batch():
    model = _perturbed("sr", scale=2)
    batch = _images(1, 5)
    model.init_from_data(batch)
    images = model.sample(7, seed=0)  # image k: stored image k mod 64 (the batch cycled)
    stored = batch[torch.arange(7) % 5]
    assert (degrade.downsample(images, 2) - degrade.downsample(stored, 2)).abs().max() < 1e-5
    with pytest.raises(ValueError) as e:
        model.sample(2, y=torch.zeros(2, dtype=torch.long), seed=0)
    assert "unconditional" in one_line(e)


def test_training_pairs_come_from_the_per_image_generators():
    model = _perturbed("inpaint")
    x = _images(1, 4)

    def gens():
        return [torch.Generator().manual_seed(k) for k in range(4)]

    assert torch.equal(model.loss(x, generator=gens())["loss"], model.loss(x, generator=gens())["loss"])
    y, mask = model.measure(x, gens())
    assert torch.equal(mask, degrade.random_masks(4, 8, gens()))
    assert torch.equal(y, x * (1 - mask))


# ----------------------------------------------------------------------------- one-line errors
def test_a_scale_that_does_not_divide_the_size_is_a_one_line_error():
    with pytest.raises(ValueError) as e:
        gv.create("sr", image_size=8, scale=3)
    assert "scale must be >= 2 and divide image_size 8 (got 3)" in one_line(e)


def test_colourisation_of_greyscale_data_is_a_one_line_error_naming_the_fix():
    with pytest.raises(ValueError) as e:
        gv.create("colorize", channels=1)
    message = one_line(e)
    assert "colorize needs RGB data (channels=3, got 1)" in message and "--data" in message
    with pytest.raises(ValueError) as e:
        gv.train("colorize", data="digits", steps=1, progress=False)
    assert "colorize needs RGB data" in one_line(e)


def test_restore_refuses_inputs_of_the_wrong_shape_in_one_line():
    inpaint = _perturbed("inpaint")
    x = _images(1, 2)
    for bad in (torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 8, 8), torch.zeros(2, 8, 8, 1)):
        with pytest.raises(ValueError) as e:
            inpaint.restore(x, bad)
        assert "the mask must be (2, 1, 8, 8)" in one_line(e)
    with pytest.raises(ValueError) as e:
        inpaint.restore(x)
    assert "needs a mask" in one_line(e)
    sr = _perturbed("sr", scale=2)
    with pytest.raises(ValueError) as e:
        sr.restore(x)
    assert "restores low-res images of shape (B, 1, 4, 4); got (2, 1, 8, 8)" in one_line(e)
    with pytest.raises(ValueError) as e:
        sr.restore(degrade.downsample(x, 2), torch.zeros(2, 1, 8, 8))
    assert "a mask is for inpainting" in one_line(e)
    with pytest.raises(ValueError) as e:
        _perturbed("colorize").restore(torch.zeros(2, 3, 8, 8))
    assert "restores luma images of shape (B, 1, 8, 8)" in one_line(e)


# ----------------------------------------------------------------------------- quality
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {}


def _figures(task: str, runs: dict, tmp_path_factory) -> dict:
    if task == "colorize" and not data.shared_path("datasets", "emoji", "twemoji").is_dir():
        skip_or_fail("shared emoji set missing; set GENVISION_SHARED to the shared folder")
    if task not in runs:
        runs[task] = recipes.run(task, tmp_path_factory.mktemp(task) / "run", seed=0)
    return runs[task]


@pytest.mark.parametrize("task, baseline, measure", sorted(BARS))
def test_a_short_run_beats_the_baseline(task, baseline, measure, runs, tmp_path_factory):
    f = _figures(task, runs, tmp_path_factory)
    ratio = f[f"model_{measure}"] / f[f"{baseline}_{measure}"]
    assert ratio <= BARS[task, baseline, measure] < 1, (task, baseline, measure, ratio, f)


def test_colourisation_is_as_colourful_as_the_real_images(runs, tmp_path_factory):
    f = _figures("colorize", runs, tmp_path_factory)
    off = abs(f["model_colourfulness"] / f["real_colourfulness"] - 1)
    assert off <= COLOURFULNESS_BAR < abs(f["mean_chroma_colourfulness"] / f["real_colourfulness"] - 1), f
