"""The applications' shared input and output: guarded decoding, the --resize rule, npz and png."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gvtest import bomb_png
from PIL import Image

from genvision.apps.files import read_sized, write_images
from genvision.data.inputs import read_inputs
from genvision.sampling import read_record


def test_an_oversized_or_broken_image_is_one_line(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    with pytest.raises(ValueError, match="over the size limits|pixel limit") as e:
        read_inputs(str(tmp_path / "bomb.png"), 1)
    assert len(str(e.value).splitlines()) == 1
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not an image"):
        read_inputs(str(tmp_path / "junk.png"), 1)
    with pytest.raises(ValueError, match="no such file"):
        read_inputs(str(tmp_path / "missing.png"), 1)


def test_another_size_needs_resize(tmp_path):
    Image.fromarray(np.full((12, 12, 3), 200, np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="the input is 12x12; m works at 8x8: add --resize"):
        read_sized(str(tmp_path / "a.png"), 8, 1, False, "input", "m")
    x = read_sized(str(tmp_path / "a.png"), 8, 1, True, "input", "m")
    assert x.shape == (1, 1, 8, 8) and torch.allclose(x, torch.full_like(x, 200 / 127.5 - 1), atol=1e-5)


def test_write_images_npz_and_png_carry_the_record(tmp_path):
    x = torch.linspace(-1, 1, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    write_images(x, tmp_path / "o.npz", {"task": "t"}, key="reconstruction", noise=np.zeros(3))
    with np.load(tmp_path / "o.npz") as f:
        assert f["reconstruction"].shape == (2, 4, 4, 3) and f["reconstruction"].dtype == np.uint8
        assert json.loads(str(f["metadata"]))["task"] == "t" and "images" not in f
    write_images(x, tmp_path / "o.png", {"task": "t"})
    assert read_record(tmp_path / "o.png")["task"] == "t"
    with pytest.raises(ValueError, match="must end in .png or .npz"):
        write_images(x, tmp_path / "o.jpg", {})
