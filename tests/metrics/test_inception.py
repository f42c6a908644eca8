"""The FID Inception-v3: layout of the real weights file, loading, hash check, resize."""

from __future__ import annotations

import pytest
import torch
from gvtest import skip_or_fail

from genvision.data import shared_path
from genvision.metrics import inception

KEY_TABLE = shared_path("weights", "pt_inception-2015-12-05-keys.tsv")


def test_state_dict_matches_the_shared_key_table_key_for_key():
    if not KEY_TABLE.is_file():
        skip_or_fail(f"shared key table {KEY_TABLE} is absent (set GENVISION_SHARED)")
    table = {}
    for line in KEY_TABLE.read_text().splitlines():
        key, shape = line.split("\t")
        table[key] = [int(v) for v in shape.strip("[]").split(",") if v.strip()]
    state = inception.FIDInceptionV3().state_dict()
    assert len(table) == 566 and set(state) == set(table)
    assert all(list(state[k].shape) == table[k] for k in table)
    assert sum(v.numel() for v in state.values()) == 23_885_486


def test_random_file_loads_strictly_and_gives_finite_features_with_spread(random_inception):
    net, card = inception.load(random_inception, verify_hash=False)
    assert card["hash_verified"] is False and card["sha256"] == inception.sha256(random_inception)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1  # grey, repeated to 3 channels inside
    with torch.no_grad():
        pool, logits = net(x)
        unbiased = net.logits_unbiased(pool)
    assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(pool).all() and torch.isfinite(logits).all()
    assert pool.std(dim=0).mean() > 1e-3 and logits.std(dim=0).mean() > 1e-3
    assert torch.allclose(unbiased + net.fc.bias, logits, atol=1e-4)


def test_hash_is_checked_and_a_missing_file_says_where_to_put_it(random_inception, tmp_path):
    with pytest.raises(ValueError, match="not the 2015-12-05 FID weights"):
        inception.load(random_inception)
    with pytest.raises(FileNotFoundError, match=r"put pt_inception-2015-12-05-6726825d\.pth .* there"):
        inception.load(tmp_path / "nothing.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not match the FID Inception layout"):
        inception.load(tmp_path / "wrong.pth", verify_hash=False)


def test_tf1_resize_samples_at_j_times_in_over_out_without_half_pixel_offset():
    x = torch.tensor([[[[0.0, 8.0]]]])  # (1, 1, 1, 2)
    wide = inception.resize_tf1_bilinear(x.expand(1, 1, 2, 2), 4)
    # source x = j * 2 / 4 = 0, 0.5, 1, 1.5 -> 0, 4, 8, 8 (clamped at the last pixel)
    assert wide[0, 0, 0].tolist() == [0.0, 4.0, 8.0, 8.0]
    y = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    assert torch.equal(inception.resize_tf1_bilinear(y, 299), y)  # identity at the input size


def test_preprocess_maps_levels_like_a_saved_png_and_scales_by_128():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    out = inception.preprocess(x)  # (1, 3, 299, 299)
    assert out.shape == (1, 3, 299, 299)
    assert out.min() == pytest.approx((0 - 128) / 128) and out.max() == pytest.approx((255 - 128) / 128)
    assert torch.equal(out[:, 0], out[:, 2])  # grey repeated to three channels
    with pytest.raises(ValueError, match="1 or 3"):
        inception.preprocess(torch.zeros(1, 2, 8, 8))
