"""Image grids and loss curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genvision import viz


def test_grid_of_digits_is_upscaled_png_of_expected_size(tmp_path):
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    path = viz.save_grid(x, tmp_path / "g.png", nrow=4)
    img = Image.open(path)
    assert img.format == "PNG" and img.mode == "L"
    tile = 8 * 4  # 8 px upscaled x4 to reach 32 px
    assert img.size == (4 * (tile + 1) + 1, 3 * (tile + 1) + 1)  # 4 columns, 3 rows, 1 px padding
    arr = np.asarray(img)
    first = arr[1 : 1 + tile, 1 : 1 + tile]
    expect = np.round((x[0, 0].numpy() + 1) / 2 * 255).astype(np.uint8)
    assert np.array_equal(first[::4, ::4], expect)  # nearest neighbour: blocks of one value


def test_grid_quantises_to_levels_and_keeps_colour(tmp_path):
    x = torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    arr = viz.grid_array(x, levels=2, pad=0, scale=1)
    assert arr.shape == (16, 16, 3) and set(np.unique(arr)) == {0, 255}
    img = Image.open(viz.save_grid(x.repeat(2, 1, 1, 1), tmp_path / "rgb.png"))
    assert img.mode == "RGB" and img.size == (2 * 33 + 1, 33 + 1)


def test_grid_refuses_wrong_channel_counts():
    for c in (4, 5):  # 2 and 6 channels are pairs: stacks (data/pairs.py), shown side by side
        with pytest.raises(ValueError, match="C in"):
            viz.grid_array(torch.zeros(2, c, 8, 8))
    pair = viz.grid_array(torch.zeros(1, 6, 8, 8), pad=0, scale=1)
    assert pair.shape == (8, 16, 3)


def test_plot_loss_writes_png(tmp_path):
    records = [{"step": s, "loss": 2.0 / s, "lr": 1e-3, "d_loss": -0.5 + 0.01 * s} for s in range(1, 101)]
    records.append({"step": 101, "note": "no loss here"})
    path = viz.plot_loss(records, tmp_path / "loss.png")
    img = Image.open(path)
    assert img.format == "PNG" and img.size[0] > 300


def test_ema_is_debiased():
    assert np.allclose(viz.ema([5.0, 5.0, 5.0], 0.9), 5.0)
