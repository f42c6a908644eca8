"""The real-vs-generated detector (apps/detect.py): it finds what differs and only that."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gvtest import one_line

from genvision import data
from genvision.apps import detect


def _npz(path, images_levels17: torch.Tensor):
    """Digits-level images (N, 1, 8, 8) uint8 0..16 -> an npz source of 0..255 images."""
    u8 = (images_levels17.permute(0, 2, 3, 1).numpy().astype(np.int64) * 255 // 16).astype(np.uint8)
    np.savez(path, images=u8)
    return f"npz:{path}"


def test_detector_finds_blurred_fakes_and_is_at_chance_on_real_images(tmp_path):
    train = data.load("digits", "train").images
    blurred = torch.nn.functional.avg_pool2d(train.float(), 3, 1, 1).round().to(torch.uint8)
    fake = _npz(tmp_path / "blur.npz", blurred[:400])
    r = detect.detect("digits", fake, "digits", fake, n=400, cache_dir=tmp_path / "cache")
    assert r["auroc"]["clean"] > 0.95
    # "fakes" that are real digits (other slices of the train split): nothing to find
    a, b = _npz(tmp_path / "a.npz", train[400:800]), _npz(tmp_path / "b.npz", train[800:1200])
    r = detect.detect("digits", a, "digits", b, n=400, cache_dir=tmp_path / "cache")
    assert 0.35 < r["auroc"]["clean"] < 0.65
    assert set(r["per_source"]) == {b} and r["n"]["test_real"] == 400


def test_jpeg_round_trip_keeps_shape_and_is_close_at_high_quality():
    x = data.load("mnist:../shared/datasets/mnist", "test").batch(torch.arange(8))[0]
    hi, lo = detect.jpeg(x, 95), detect.jpeg(x, 10)
    assert hi.shape == x.shape
    assert (hi - x).abs().mean() < (lo - x).abs().mean() < 0.5


def test_bad_detector_input_is_one_line(tmp_path):
    with pytest.raises(ValueError) as e:
        detect.detect("digits", " , ", "digits", "npz:x.npz", n=50)
    assert "at least one generated source" in one_line(e)
    with pytest.raises(ValueError) as e:
        detect.detect("digits", "npz:x.npz", "digits", "npz:x.npz", n=50, jpeg_quality=0)
    assert "JPEG quality" in one_line(e)
