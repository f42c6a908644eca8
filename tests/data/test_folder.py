"""Image folders: decoding rules, skipped files, channels and size rules, stable test split, cache."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genvision import data
from genvision.data import folder

BAD = {"truncated.png", "empty.png", "text.png"}


def _grey(path: Path, value: int, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def _exif_jpeg(path: Path):
    """24x16 (W x H) with a bright left third, tagged "rotate 90 degrees clockwise to display" (6)."""
    a = np.zeros((16, 24), np.uint8)
    a[:, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).convert("RGB").save(path, exif=exif, quality=95)
    return Image.fromarray(a)


def make_class_folder(root: Path) -> Path:
    """Two classes with every kind of file: 21 good images, 3 bad ones, and files to ignore."""
    for i in range(16):
        _grey(root / "a" / f"grey{i}.png", 15 * i)
    Image.new("RGBA", (16, 16), (200, 100, 50, 128)).save(root / "a" / "rgba.png")
    rng = np.random.default_rng(0)
    (root / "b").mkdir()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "b" / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).quantize(8).save(
        root / "b" / "palette.png"
    )
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(root / "b" / "deep.png")
    _exif_jpeg(root / "b" / "exif.jpg")
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(root / "a" / "truncated.png")
    full = (root / "a" / "truncated.png").read_bytes()
    (root / "a" / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "text.png").write_text("not an image\n")
    _grey(root / "a" / ".hidden.png", 7)
    (root / "a" / "notes.txt").write_text("ignored\n")
    return root


def _load_both(spec, **kw):
    return data.load(spec, "train", **kw), data.load(spec, "test", **kw)


# ----------------------------------------------------------------------------- decoding
def test_alpha_is_composited_onto_black(tmp_path):
    Image.new("RGBA", (4, 4), (200, 100, 50, 128)).save(tmp_path / "x.png")
    Image.new("LA", (4, 4), (200, 64)).save(tmp_path / "y.png")
    assert np.asarray(folder.decode_image(tmp_path / "x.png"))[0, 0].tolist() == [100, 50, 25]
    assert np.asarray(folder.decode_image(tmp_path / "y.png"))[0, 0] == 50


def test_palette_cmyk_and_16_bit_are_converted(tmp_path):
    rng = np.random.default_rng(1)
    p = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).quantize(5)
    p.save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(folder.decode_image(tmp_path / "p.png")), np.asarray(p.convert("RGB")))
    Image.fromarray(np.array([[0, 128 * 257, 65535]], np.uint16)).save(tmp_path / "d.png")
    im = folder.decode_image(tmp_path / "d.png")
    assert im.mode == "L" and np.asarray(im).tolist() == [[0, 128, 255]]
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # red in CMYK
    im = folder.decode_image(tmp_path / "c.jpg")
    assert im.mode == "RGB" and np.abs(np.asarray(im, dtype=int)[4, 4] - [255, 0, 0]).max() < 8


def test_exif_orientation_is_applied(tmp_path):
    original = _exif_jpeg(tmp_path / "r.jpg")
    im = folder.decode_image(tmp_path / "r.jpg")
    assert im.size == (16, 24) and im.mode == "L"  # equal channels count as greyscale
    upright = np.asarray(original.transpose(Image.Transpose.ROTATE_270), dtype=float)  # 90 deg clockwise
    assert np.abs(np.asarray(im, dtype=float) - upright).mean() < 8  # JPEG error only


def test_images_over_the_pixel_limit_are_refused(tmp_path, monkeypatch):
    _grey(tmp_path / "big.png", 1, size=(20, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: over the limit, under 2x
    with pytest.raises((Image.DecompressionBombError, Image.DecompressionBombWarning)):
        folder.decode_image(tmp_path / "big.png")


# ----------------------------------------------------------------------------- scanning
def test_bad_files_are_skipped_with_one_warning(tmp_path):
    root = make_class_folder(tmp_path / "set")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, test = _load_both(f"folder:{root}")
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "\n" not in message and all(name in message for name in BAD) and "3 of 24" in message
    assert len(train) + len(test) == 21  # the hidden file and the .txt are not even candidates
    assert {Path(p).name for p in train.skipped} == BAD and train.describe()["skipped"] == 3
    assert not any(Path(f).name.startswith(".") for f in train.files + test.files)
    assert train.num_classes == 2 and train.channels == 3 and train.image_size == 16
    for f, label in zip(train.files, train.labels.tolist()):
        assert label == (0 if f.startswith("a/") else 1)


def test_strict_turns_bad_files_into_one_error(tmp_path):
    root = make_class_folder(tmp_path / "set")
    with pytest.raises(ValueError) as e:
        data.load(f"folder:{root}", strict=True)
    message = str(e.value)
    assert "\n" not in message and all(name in message for name in BAD) and "strict" in message


def test_greyscale_folder_has_one_channel(tmp_path):
    for i in range(25):
        _grey(tmp_path / f"g{i}.png", 10 * i)
    Image.new("RGB", (16, 16), (90, 90, 90)).save(tmp_path / "rgb_but_grey.png")
    train, test = _load_both(f"folder:{tmp_path}")
    assert train.channels == test.channels == 1 and train.num_classes == 0 and (train.labels == -1).all()
    Image.new("RGB", (16, 16), (90, 10, 90)).save(tmp_path / "colour.png")
    assert data.load(f"folder:{tmp_path}").channels == 3


def test_image_size_is_the_most_common_short_side_capped_at_64(tmp_path):
    for i, size in enumerate([(10, 14), (14, 10), (10, 10), (12, 12), (30, 20)]):
        _grey(tmp_path / "small" / f"{i}.png", 10 * i, size=size)
    assert data.load(f"folder:{tmp_path / 'small'}").image_size == 10
    assert data.load(f"folder:{tmp_path / 'small'}", image_size=8).images.shape[2:] == (8, 8)
    for i in range(3):
        _grey(tmp_path / "big" / f"{i}.png", 10 * i, size=(100, 90))
    assert data.load(f"folder:{tmp_path / 'big'}").image_size == 64
    for i, side in enumerate([50, 50, 100, 200]):  # counted before the cap: 50 wins, not 64
        _grey(tmp_path / "mixed" / f"{i}.png", 10 * i, size=(side, side))
    assert data.load(f"folder:{tmp_path / 'mixed'}").image_size == 50


def test_non_square_images_are_centre_cropped(tmp_path):
    columns = np.tile(np.arange(20, dtype=np.uint8) * 10, (10, 1))  # 10 x 20, value = 10 * column
    for i in range(12):
        Image.fromarray(columns).save(tmp_path / f"{i}.png")
    ds = data.load(f"folder:{tmp_path}")
    assert ds.image_size == 10 and ds.images[0, 0, 0].tolist() == list(range(50, 150, 10))


def test_test_split_is_the_name_hash_and_stable_as_files_are_added(tmp_path):
    for i in range(40):
        _grey(tmp_path / f"img{i:03d}.png", i)
    before = set(data.load(f"folder:{tmp_path}", "test").files)
    for i in range(40, 120):
        _grey(tmp_path / f"img{i:03d}.png", i)
    after = set(data.load(f"folder:{tmp_path}", "test").files)
    expected = {
        f"img{i:03d}.png"
        for i in range(120)
        if int(hashlib.sha1(f"img{i:03d}.png".encode()).hexdigest()[:8], 16) / 2**32 < 0.1
    }
    assert after == expected and before == {f for f in expected if int(f[3:6]) < 40}
    assert len(data.load(f"folder:{tmp_path}").files) == 120 - len(after)


def test_both_splits_come_from_one_scan(tmp_path, monkeypatch):
    for i in range(20):
        _grey(tmp_path / f"{i}.png", i)
    calls = []
    decode = folder.decode_image
    monkeypatch.setattr(folder, "decode_image", lambda path: calls.append(path) or decode(path))
    _load_both(f"folder:{tmp_path}")
    data.load(f"folder:{tmp_path}")
    assert len(calls) == 20


def test_loose_files_next_to_class_folders_are_ignored_with_a_warning(tmp_path):
    for i in range(20):
        _grey(tmp_path / "cat" / f"{i}.png", i)
        _grey(tmp_path / "dog" / f"{i}.png", 100 + i)
    _grey(tmp_path / "stray.png", 3)
    with pytest.warns(UserWarning, match="stray.png"):
        train, test = _load_both(f"folder:{tmp_path}")
    assert len(train) + len(test) == 40 and train.num_classes == 2 and "stray.png" not in train.files


@pytest.mark.parametrize("content", ["nothing", "only-bad"])
def test_folder_without_usable_images_raises_one_line(tmp_path, content):
    (tmp_path / "notes.txt").write_text("x")
    if content == "only-bad":
        (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ValueError) as e:
        data.load(f"folder:{tmp_path}")
    assert "\n" not in str(e.value) and ";" in str(e.value)


# ----------------------------------------------------------------------------- size limits
def _png_header_only(path: Path, width: int, height: int):
    """A PNG whose header claims ``width`` x ``height`` (8-bit grey) followed by a tiny bad IDAT: cheap
    to write, and only a decoder that trusts the header would try to allocate the pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _twelve_greys(root: Path):
    for i in range(12):
        _grey(root / f"g{i}.png", 10 * i)


def test_a_one_pixel_wide_strip_is_skipped_and_counted(tmp_path):
    _twelve_greys(tmp_path)
    _grey(tmp_path / "strip.png", 200, size=(1, 4000))
    with pytest.warns(UserWarning, match=r"1 of 13 .*strip\.png \(over the size limits") as caught:
        ds = data.load(f"folder:{tmp_path}")
    assert len(caught) == 1 and "strip.png" not in ds.files and ds.image_size == 16
    with pytest.raises(ValueError, match=r"strip\.png.*strict"):
        data.load(f"folder:{tmp_path}", strict=True)


def test_a_header_past_the_long_side_limit_is_refused_before_decoding(tmp_path):
    _twelve_greys(tmp_path)
    side = folder.MAX_LONG_SIDE + 1
    _png_header_only(tmp_path / "huge.png", side, side // 4)  # under Pillow's pixel limit
    _png_header_only(tmp_path / "bomb.png", 10**6, 10**6)  # over it
    with pytest.raises(ValueError, match="over the size limits"):
        folder.decode_image(tmp_path / "huge.png")
    with pytest.warns(UserWarning, match=r"2 of 14") as caught:
        ds = data.load(f"folder:{tmp_path}")
    message = str(caught[0].message)
    assert "huge.png (over the size limits" in message and "bomb.png (over Pillow's pixel limit)" in message
    assert len(ds.files) + len(data.load(f"folder:{tmp_path}", "test").files) == 12


def test_a_failure_while_resizing_one_file_skips_that_file_only(tmp_path, monkeypatch):
    _twelve_greys(tmp_path)
    _grey(tmp_path / "odd.png", 50, size=(16, 40))
    resize = folder._resize_shorter

    def failing(im, size):
        if im.size == (16, 40):
            raise MemoryError("no room for this one")
        return resize(im, size)

    monkeypatch.setattr(folder, "_resize_shorter", failing)
    with pytest.warns(UserWarning, match=r"1 of 13 .*odd\.png"):
        ds = data.load(f"folder:{tmp_path}", image_size=8)
    assert "odd.png" not in ds.files and tuple(ds.images.shape[1:]) == (1, 8, 8)


# ----------------------------------------------------------------------------- symbolic links
def _link_warning(caught) -> str:
    messages = [str(w.message) for w in caught if "symbolic link" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert "\n" not in messages[0]
    return messages[0]


def _scan_recording(spec):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, test = _load_both(spec)
    return train, test, caught


def test_dangling_links_and_symlink_loops_are_skipped_with_a_warning(tmp_path):
    root = tmp_path / "set"
    _twelve_greys(root)
    (root / "gone.png").symlink_to(root / "never-there.png")
    (root / "self.png").symlink_to(root / "self.png")
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to(root)  # a folder link back up to the root
    train, test, caught = _scan_recording(f"folder:{root}")
    message = _link_warning(caught)
    assert "gone.png" in message and "self.png" in message and "sub/loop" in message
    assert sorted(train.files + test.files) == sorted(f"g{i}.png" for i in range(12))


def test_links_that_resolve_outside_the_root_are_skipped_with_a_warning(tmp_path):
    root, outside = tmp_path / "set", tmp_path / "elsewhere"
    for i in range(10):
        _grey(root / "a" / f"{i}.png", 10 * i)
        _grey(outside / f"{i}.png", 20 * i)
    (root / "a" / "escape.png").symlink_to(outside / "0.png")
    (root / "b").symlink_to(outside, target_is_directory=True)  # a class folder that is a link
    train, test, caught = _scan_recording(f"folder:{root}")
    message = _link_warning(caught)
    assert "a/escape.png" in message and "b " in message and "outside" in message
    assert train.num_classes == 1 and len(train) + len(test) == 10


def test_a_linked_class_folder_inside_the_root_is_a_class(tmp_path):
    root = tmp_path / "set"
    for i in range(10):
        _grey(root / "a" / f"{i}.png", 10 * i)
        _grey(root / ".store" / "b" / f"{i}.png", 100 + i)  # hidden: only reached through the link
    (root / "b").symlink_to(root / ".store" / "b", target_is_directory=True)
    (root / "a" / "again.png").symlink_to(root / "a" / "3.png")
    train, test, caught = _scan_recording(f"folder:{root}")
    assert not any("symbolic link" in str(w.message) for w in caught)
    assert train.num_classes == 2 and len(train) + len(test) == 21
    assert "b/0.png" in train.files + test.files and "a/again.png" in train.files + test.files
