"""Bad input outside configs is a one-line error naming the problem and the fix.

Non-finite sampling options, non-finite samples (never written as black pixels), unlabeled images
for a conditional model that cannot use them, a broken npz given to evaluate, the Inception
download offline.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from gvtest import INF, NAN, TINY_DDPM, TINY_GAN, one_line, preset_values  # noqa: F401

import genvision as gv
import genvision.data as gdata


@pytest.mark.parametrize(
    "name, overrides, options",
    [
        ("ddpm", TINY_DDPM, {"eta": NAN, "sampler": "ddim"}),
        ("ddpm-cond", {**TINY_DDPM, "num_classes": 2}, {"guidance_scale": INF}),
        ("gan", TINY_GAN, {"truncation": NAN}),
        ("pixelcnn", {"width": 8, "num_layers": 1, "head_width": 8}, {"temperature": NAN}),
        ("realnvp", {"hidden_channels": 8, "steps_per_level": 1}, {"temperature": -INF}),
        ("vae", {"base_channels": 4, "hidden": 8}, {"temperature": INF}),
    ],
)
def test_non_finite_sampling_options_are_refused(name, overrides, options):
    model = gv.create(name, **overrides)
    y = torch.zeros(2, dtype=torch.long) if model.config.conditional else None
    with pytest.raises(ValueError, match="finite") as e:
        model.sample(2, y=y, seed=0, **options)
    assert next(iter(k for k in options if k != "sampler")) in one_line(e)


def test_non_finite_samples_are_not_written(tmp_path, monkeypatch):
    model = gv.create("gan", **TINY_GAN)

    def nan_sample(n, y=None, seed=None, generator=None, **options):
        x = torch.zeros(n, 1, 8, 8)
        x[1:] = NAN
        return x

    monkeypatch.setattr(model, "sample", nan_sample)
    for suffix in ("png", "npz"):
        with pytest.raises(ValueError, match=r"NaN.*3 of 4 images") as e:
            gv.sample(model, 4, out=tmp_path / f"s.{suffix}")
        one_line(e)
        assert not (tmp_path / f"s.{suffix}").exists()
    with pytest.raises(ValueError, match="NaN"):
        gv.save_grid(torch.full((2, 1, 8, 8), NAN), tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def _npz(tmp_path, labels) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, images=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), labels=np.asarray(labels))
    return f"npz:{path}"


def test_a_conditional_model_that_cannot_use_unlabeled_images_refuses_them_at_load_time(tmp_path):
    from genvision.training.run import check_model_fits_data

    spec = _npz(tmp_path, [-1 if k % 4 == 0 else k % 2 for k in range(40)])
    dataset = gdata.load(spec, "train")
    for name in ("sngan-cond", "gated-pixelcnn-cond"):
        model = gv.create(name, image_size=8, num_classes=dataset.num_classes, levels=256)
        with pytest.raises(ValueError, match=r"unlabeled \(-1\)") as e:
            check_model_fits_data(model, dataset)
        one_line(e)
    for name in ("ddpm-cond", "glow"):  # unlabeled images train the null class / the plain prior
        model = gv.create(name, image_size=8, num_classes=dataset.num_classes, levels=256, conditional=True)
        check_model_fits_data(model, dataset)
    with pytest.raises(ValueError, match="unlabeled"):
        gv.train("sngan-cond", spec, tmp_path / "run", model_config=TINY_GAN, steps=1, progress=False)


@pytest.mark.parametrize("kind", ["garbage", "npy", "no images", "float images"])
def test_evaluate_reads_npz_with_the_training_loader_s_one_line_errors(kind, tmp_path):
    from genvision.metrics import sources

    path = tmp_path / "x.npz"
    if kind == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros((4, 8, 8), dtype=np.uint8))
    elif kind == "no images":
        np.savez(path, pictures=np.zeros((4, 8, 8), dtype=np.uint8))
    else:
        np.savez(path, images=np.zeros((4, 8, 8), dtype=np.float32))
    train = gdata.load("digits", "train")
    with pytest.raises(ValueError) as e:
        sources.source_images(f"npz:{path}", train)
    assert f"npz:{path}" in one_line(e)


def test_evaluate_npz_still_reads_a_good_file(tmp_path):
    from genvision.metrics import sources

    path = tmp_path / "x.npz"
    np.savez(path, images=np.full((5, 8, 8, 1), 255, dtype=np.uint8))
    images, info = sources.source_images(f"npz:{path}", gdata.load("digits", "train"))
    assert images.shape == (5, 1, 8, 8) and info["n"] == 5 and torch.all(images == 1)


# ----------------------------------------------------------------------------- 13: offline
def test_inception_download_offline_is_a_one_line_error_naming_where_to_put_the_file(tmp_path, monkeypatch):
    from genvision.metrics import inception

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    target = tmp_path / "weights" / inception.FILE_NAME
    with pytest.raises(ConnectionError) as e:
        inception.download(target)
    message = one_line(e)
    assert str(target) in message and "GENVISION_INCEPTION" in message
    assert e.value.__suppress_context__ and not target.exists()
