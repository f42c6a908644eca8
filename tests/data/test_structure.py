"""Structure maps (edges, sketch, mask, lowres) and the fidelity measures, on shapes whose answer is
known by hand and on real digits."""

from __future__ import annotations

import math

import pytest
import torch

from genvision import data
from genvision.data import structure


def square(size: int = 16, lo: int = 4, hi: int = 12, channels: int = 1) -> torch.Tensor:
    """A bright square on a dark background, (1, C, size, size) in [-1, 1]."""
    x = -torch.ones(1, channels, size, size)
    x[..., lo:hi, lo:hi] = 1.0
    return x


def test_edges_of_a_square_are_its_outline_one_pixel_thick_on_each_side():
    e = structure.edges(square())[0, 0]
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[4:12, 4:12] = True
    # the ring: pixels with both an inside and an outside pixel among their 3x3 neighbourhood
    ring = structure._dilate(inside[None, None], 1)[0, 0] & structure._dilate(~inside[None, None], 1)[0, 0]
    assert e.any() and not (e & ~ring).any()  # every edge pixel lies on the boundary ...
    assert e[4:12, 3:5].any(dim=1).all() and e[4:12, 11:13].any(dim=1).all()  # ... on all four sides
    assert e[3:5, 4:12].any(dim=0).all() and e[11:13, 4:12].any(dim=0).all()
    # non-maximum suppression: no side is more than two pixels thick
    assert e[8].sum() <= 4 and e[:, 8].sum() <= 4


def test_a_flat_or_faint_image_has_no_edges():
    assert not structure.edges(torch.zeros(2, 1, 8, 8)).any()
    faint = square() * 0.02  # a step of 0.04: below the low threshold
    assert not structure.edges(faint).any()


def test_hysteresis_keeps_weak_edges_only_where_they_touch_strong_ones():
    x = -torch.ones(1, 1, 16, 24)
    x[..., :, 4:] = -0.5  # a weak step (0.5) at column 4 ...
    x[..., :, 12:] = 1.0  # ... and a strong one (1.5) at column 12
    lone = structure.edges(x)[0, 0]
    assert lone[:, 11:13].any() and not lone[:, 2:6].any()  # the weak line touches no strong edge
    x[..., 6:10, 4:12] = 1.0  # a strong bar joining the two
    joined = structure.edges(x)[0, 0]
    assert joined[:, 3:5].any()


def test_thinning_leaves_one_pixel_lines_and_keeps_them_connected():
    bar = torch.zeros(1, 1, 12, 20, dtype=torch.bool)
    bar[..., 4:8, 2:18] = True  # a bar 4 pixels thick
    t = structure.thin(bar)[0, 0]
    assert t.any() and (t.sum(dim=0)[4:16] == 1).all()  # one pixel thick along its middle
    assert t[:, 4:16].any(dim=0).all()  # and unbroken
    assert not (t & ~bar[0, 0]).any()


def test_mask_finds_ink_on_dark_and_drawing_on_white():
    dark = square()
    assert structure.mask(dark)[0, 0].sum() == 64
    white = -square(channels=3)  # a dark square on white, three channels
    white[:, 0] = white[:, 0].clamp(min=-0.2)  # a tinted drawing still differs from white
    m = structure.mask(white)[0, 0]
    assert m[4:12, 4:12].all() and m.sum() == 64


def test_lowres_is_block_means():
    x = torch.arange(64.0).view(1, 1, 8, 8) / 32 - 1
    low = structure.lowres(x)
    assert low.shape == x.shape
    assert torch.allclose(low[0, 0, 0, 0], x[0, 0, :4, :4].mean())
    assert torch.equal(low[0, 0, :4, :4], low[0, 0, 0, 0].expand(4, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        structure.lowres(torch.zeros(1, 1, 6, 6))


def test_maps_are_in_range_with_the_right_channels():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    for kind in structure.KINDS:
        m = structure.extract(kind, x)
        assert m.shape == (3, structure.channels_of(kind, 3), 16, 16) and m.min() >= -1 and m.max() <= 1
    with pytest.raises(
        ValueError, match="unknown control 'depth'; choose one of edges, sketch, mask, lowres"
    ):
        structure.extract("depth", x)


def test_fidelity_is_perfect_on_the_source_and_low_on_other_images():
    # MNIST: at 8x8 a one-pixel tolerance covers most of a digit, so any two digits' edges match
    test = data.load(f"mnist:{data.shared_path('datasets', 'mnist')}", "test")
    x = test.batch(torch.arange(64))[0].float()
    other = test.batch(torch.arange(64, 128))[0].float()
    # other digits score (measured): edges 0.63, sketch 0.63, mask IoU 0.22, lowres 12.7 dB
    for kind, bar in (("edges", 0.75), ("sketch", 0.75), ("mask", 0.4)):
        control = structure.extract(kind, x)
        assert structure.fidelity(kind, control, x)["value"] == 1.0
        assert structure.fidelity(kind, control, other)["value"] < bar
    control = structure.extract("lowres", x)
    assert structure.fidelity("lowres", control, x)["value"] == math.inf
    assert structure.fidelity("lowres", control, other)["value"] < 15


def test_edge_f1_counts_a_one_pixel_shift_as_a_match_and_a_far_one_as_a_miss():
    a = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    a[..., 5, 2:8] = True
    near, far = torch.roll(a, 1, dims=2), torch.roll(a, 3, dims=2)
    assert structure.edge_f1(near, a)["f1"] == 1.0
    assert structure.edge_f1(far, a)["f1"] == 0.0
    half = a.clone()
    half[..., 5, 5:8] = False  # half the edge: precision 1, recall about half
    got = structure.edge_f1(half, a)
    assert got["precision"] == 1.0 and 0.5 <= got["recall"] < 0.9


def test_read_images_from_png_and_npz_resized_and_one_line_on_errors(tmp_path):
    import numpy as np
    from PIL import Image

    pic = np.zeros((16, 16), dtype=np.uint8)
    pic[4:12, 4:12] = 255
    Image.fromarray(pic).save(tmp_path / "m.png")
    x = structure.read_images(str(tmp_path / "m.png"), 1, 8)
    assert x.shape == (1, 1, 8, 8) and x[0, 0, 4, 4] == 1 and x[0, 0, 0, 0] == -1
    np.savez(tmp_path / "m.npz", images=np.stack([pic, 255 - pic])[..., None])
    y = structure.read_images(f"npz:{tmp_path / 'm.npz'}", 3, 16)
    assert y.shape == (2, 3, 16, 16) and torch.equal(y[0], -y[1])
    with pytest.raises(ValueError, match="cannot read image"):
        structure.read_images(str(tmp_path / "none.png"), 1, 8)
    np.savez(tmp_path / "bad.npz", pictures=pic)
    with pytest.raises(ValueError, match="no 'images' array"):
        structure.read_images(f"npz:{tmp_path / 'bad.npz'}", 1, 8)


def test_read_images_refuses_a_bomb_in_one_line_and_reads_a_folder(tmp_path):
    """Control maps come in through the applications' reader (``data/inputs.py``): the guarded
    decoder of folder datasets, and ``folder:DIR`` of same-size maps."""
    import numpy as np
    from gvtest import bomb_png
    from PIL import Image

    (tmp_path / "bomb.png").write_bytes(bomb_png())
    with pytest.raises(ValueError, match="over the size limits|pixel limit") as e:
        structure.read_images(str(tmp_path / "bomb.png"), 1, 8)
    assert len(str(e.value).splitlines()) == 1
    maps = tmp_path / "maps"
    maps.mkdir()
    for k in range(3):
        Image.fromarray(np.full((16, 16), 60 * k, np.uint8)).save(maps / f"{k}.png")
    x = structure.read_images(f"folder:{maps}", 1, 8)
    assert x.shape == (3, 1, 8, 8)
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor([60.0 * k / 127.5 - 1 for k in range(3)]), atol=1e-5)
