"""Captions for text conditioning: captions.tsv parsing, bad rows, class templates."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from gvtest import skip_or_fail
from PIL import Image

from genvision import data
from genvision.data import captions


def _folder(root: Path) -> Path:
    for cls in ("cats", "dogs"):
        for i in range(6):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.new("L", (8, 8), 30 * i).save(root / cls / f"{i}.png")
    return root


def test_captions_file_rows_header_and_extra_columns(tmp_path):
    root = _folder(tmp_path / "pets")
    lines = ["path\tname\tcategory"] + [
        f"{cls}/{i}.png\t{cls[:-1]} number {i}\t{cls}" for cls in ("cats", "dogs") for i in range(6)
    ]
    (root / "captions.tsv").write_text("\n".join(lines) + "\n")
    ds = data.load(f"folder:{root}", "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file warns about nothing
        texts = captions.captions_for(ds)
    assert len(texts) == len(ds)
    for path, caption in zip(ds.files, texts):
        cls, name = path.split("/")
        assert caption == f"{cls[:-1]} number {name[0]}"
    assert captions.has_caption_file(ds)


def test_bad_rows_are_named_in_one_warning_and_missing_images_get_templates(tmp_path):
    root = _folder(tmp_path / "pets")
    rows = [
        "cats/0.png\ta grey cat",
        "cats/1.png",  # no caption column
        "cats/2.png\t   ",  # empty caption
        "cats/9.png\ta cat that is not there",
        "cats/0.png\ta second caption",
    ]
    (root / "captions.tsv").write_text("\n".join(rows) + "\n")
    ds = data.load(f"folder:{root}", "train")
    with pytest.warns(UserWarning) as record:
        texts = captions.captions_for(ds)
    messages = [str(w.message) for w in record]
    bad = next(m for m in messages if "bad row" in m)
    assert "skipped 4 bad row(s)" in bad and "line 2" in bad and "line 3" in bad
    assert "'cats/9.png' is not an image" in bad and "second caption" in bad and "\n" not in bad
    assert any("no row" in m for m in messages)
    by_path = dict(zip(ds.files, texts))
    if "cats/0.png" in by_path:
        assert by_path["cats/0.png"] == "a grey cat"
    assert by_path.get("dogs/3.png", "a picture of dogs") == "a picture of dogs"


def test_digit_sets_get_template_captions_and_class_captions():
    ds = data.load("digits", "test")
    texts = captions.captions_for(ds)
    assert texts[0] == f"a handwritten digit {data.datasets.DIGIT_NAMES[int(ds.labels[0])]}"
    assert captions.class_captions(ds)[7] == "a handwritten digit seven"
    assert not captions.has_caption_file(ds)


def test_unlabelled_data_without_captions_is_refused_in_one_line(tmp_path):
    root = tmp_path / "loose"
    root.mkdir()
    for i in range(12):
        Image.new("L", (8, 8), 20 * i).save(root / f"{i}.png")
    ds = data.load(f"folder:{root}", "train")
    with pytest.raises(ValueError, match="no caption and no class; add a captions.tsv") as e:
        captions.captions_for(ds)
    assert "\n" not in str(e.value)


def test_the_shared_emoji_captions_parse(tmp_path):
    root = data.shared_path("datasets", "emoji", "twemoji")
    if not (root / "captions.tsv").is_file():
        skip_or_fail(f"shared emoji set missing in {root}; set GENVISION_SHARED to the shared folder")
    known = {p.relative_to(root).as_posix() for p in root.rglob("*.png")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = captions.read_captions(root / "captions.tsv", known=known)
    assert len(rows) == len(known) == 1906
    assert "red apple" in rows.values()
