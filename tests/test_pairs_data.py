"""The ``pairs:`` and ``unpaired:`` dataset specs (data/pairs.py)."""

import warnings

import numpy as np
import pytest
from PIL import Image

from genvision import data as gdata


def _write(folder, names, value):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        pixel = [(value + 7 * i) % 256, 1, 2]  # unequal channels: an RGB image
        Image.fromarray(np.full((8, 8, 3), pixel, np.uint8)).save(folder / n)


def test_pairs_stack_source_and_target(tmp_path):
    names = [f"{i:03d}.png" for i in range(30)]
    _write(tmp_path / "a", names, 10)
    _write(tmp_path / "b", names, 200)
    spec = f"pairs:{tmp_path / 'a'},{tmp_path / 'b'}"
    train, test = gdata.load(spec, "train"), gdata.load(spec, "test")
    assert train.channels == 6 and len(train) + len(test) == 30
    i = names.index(train.files[0])
    assert int(train.images[0, 0, 0, 0]) == (10 + 7 * i) % 256
    assert int(train.images[0, 3, 0, 0]) == (200 + 7 * i) % 256


def test_pairs_warn_once_naming_unmatched(tmp_path):
    _write(tmp_path / "a", [f"{i:03d}.png" for i in range(20)] + ["lonely.png"], 0)
    _write(tmp_path / "b", [f"{i:03d}.png" for i in range(20)], 50)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        gdata.load(f"pairs:{tmp_path / 'a'},{tmp_path / 'b'}", "train")
    msgs = [str(x.message) for x in w if "without a partner" in str(x.message)]
    assert len(msgs) == 1 and "lonely.png" in msgs[0] and "1 file(s)" in msgs[0]


@pytest.mark.parametrize("kind", ["pairs", "unpaired"])
def test_refuses_bad_folders_with_one_line(tmp_path, kind):
    _write(tmp_path / "a", ["x.png", "y.png"], 0)
    _write(tmp_path / "b", ["z.png", "w.png"], 0)
    (tmp_path / "empty").mkdir()
    bad = [
        f"{kind}:{tmp_path / 'a'}",
        f"{kind}:{tmp_path / 'a'},{tmp_path / 'empty'}",
        f"{kind}:{tmp_path / 'a'},{tmp_path / 'a'}",
    ]
    if kind == "pairs":
        bad.append(f"pairs:{tmp_path / 'a'},{tmp_path / 'b'}")  # no common name
    for spec in bad:
        with pytest.raises(ValueError) as e:
            gdata.load(spec, "train")
        assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_unpaired_labels_domains(tmp_path):
    _write(tmp_path / "a", [f"{i:03d}.png" for i in range(20)], 0)
    _write(tmp_path / "b", [f"b{i:03d}.png" for i in range(30)], 100)
    ds = gdata.load(f"unpaired:{tmp_path / 'a'},{tmp_path / 'b'}", "train")
    assert ds.num_classes == 2 and ds.class_names == ["a", "b"] and ds.channels == 3
    assert set(ds.labels.tolist()) == {0, 1}
    assert int((ds.labels == 1).sum()) > int((ds.labels == 0).sum())
