"""Datasets: digits, MNIST, binary MNIST, npz, specs and errors, pixel conversions."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json

import numpy as np
import pytest
import torch

from genvision import data
from genvision.data import idx

# MNIST README facts (shared/datasets/mnist/README.md)
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def one_line_with_fix(error: BaseException) -> str:
    """The message of ``error``, checked to be one line that goes on to say what to do."""
    message = str(error)
    assert "\n" not in message, message
    assert ";" in message or "must" in message, f"no fix named: {message}"
    return message


# ----------------------------------------------------------------------------- digits
def test_digits_split_is_stratified_1347_450():
    train, test = data.load("digits"), data.load("digits", "test")
    assert (len(train), len(test)) == (1347, 450)
    assert train.images.shape == (1347, 1, 8, 8) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    n_train, n_test = torch.bincount(train.labels, minlength=10), torch.bincount(test.labels, minlength=10)
    full = n_train + n_test
    assert ((n_test - 0.25 * full).abs() <= 1).all()  # every class keeps its share within one image
    assert (train.levels, train.num_classes, train.image_size, train.channels) == (17, 10, 8, 1)


def test_digits_match_an_independent_train_test_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.images, d.target, test_size=0.25, random_state=0, stratify=d.target
    )
    train, test = data.load("digits"), data.load("digits", "test")
    assert np.array_equal(train.images[:, 0].numpy(), x_tr) and np.array_equal(test.labels.numpy(), y_te)
    assert train.images.min() == 0 and train.images.max() == 16


def test_digits_batch_and_getitem_give_floats_in_minus_one_one():
    ds = data.load("digits")
    x, y = ds.batch(torch.arange(5))
    assert x.shape == (5, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, ds.images[:5].float() / 16 * 2 - 1)
    image, label = ds[3]
    assert torch.equal(image, x[3]) and label == int(y[3]) and isinstance(label, int)


def test_image_size_resizes_and_keeps_level_indices():
    ds = data.load("digits", image_size=16)
    assert ds.images.shape == (1347, 1, 16, 16) and ds.image_size == 16
    assert ds.images.max() <= 16 and ds.levels == 17
    assert ds.identity != data.load("digits").identity


def test_describe_is_json_and_identity_is_stable():
    a, b = data.load("digits"), data.load("digits")
    desc = json.loads(json.dumps(a.describe()))
    assert desc["n"] == 1347 and desc["levels"] == 17 and desc["skipped"] == 0
    assert a.identity == b.identity == desc["identity"]
    assert a.identity != data.load("digits", "test").identity


# ----------------------------------------------------------------------------- MNIST
def test_mnist_matches_the_readme_facts(mnist_dir):
    train, test = data.load(f"mnist:{mnist_dir}"), data.load(f"mnist:{mnist_dir}", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert torch.bincount(train.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert torch.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS
    assert abs(train.images.float().mean().item() / 255 - 0.1307) < 5e-4
    assert (train.levels, train.num_classes, train.binarize) == (256, 10, False)


def test_binary_mnist_test_split_is_one_fixed_draw(mnist_dir):
    a = data.load(f"binary-mnist:{mnist_dir}", "test")
    b = data.load(f"binary-mnist:{mnist_dir}", "test")
    assert torch.equal(a.images, b.images) and a.identity == b.identity
    assert set(a.images.unique().tolist()) == {0, 1} and a.levels == 2 and not a.binarize
    intensity = data.load(f"mnist:{mnist_dir}", "test").images.float() / 255
    assert abs(a.images.float().mean().item() - intensity.mean().item()) < 2e-3
    x, _ = a.batch(torch.arange(10))
    assert set(x.unique().tolist()) == {-1.0, 1.0}


def test_binary_mnist_train_draws_afresh_from_the_generator(mnist_dir):
    ds = data.load(f"binary-mnist:{mnist_dir}")
    assert ds.binarize and ds.levels == 2 and ds.images.max() > 1  # raw intensities kept
    idx_ = torch.arange(2000)
    x1, y1 = ds.batch(idx_, torch.Generator().manual_seed(7))
    x2, _ = ds.batch(idx_, torch.Generator().manual_seed(7))
    x3, _ = ds.batch(idx_, torch.Generator().manual_seed(8))
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert set(x1.unique().tolist()) == {-1.0, 1.0} and torch.equal(y1, ds.labels[:2000])
    p = ds.images[:2000].float() / 255
    assert abs(((x1 + 1) / 2).mean().item() - p.mean().item()) < 2e-3
    assert not ((x1 == 1) & (p == 0)).any()  # background (0) never fires


def test_mnist_and_binary_mnist_have_different_identities(mnist_dir):
    assert data.load(f"mnist:{mnist_dir}").identity != data.load(f"binary-mnist:{mnist_dir}").identity


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def test_mnist_reads_plain_and_gzipped_idx_and_checks_magic(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, idx.IMAGES_MAGIC)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([3, 1, 4]), idx.LABELS_MAGIC)
    ds = data.load(f"mnist:{tmp_path}")
    assert ds.labels.tolist() == [3, 1, 4] and np.array_equal(ds.images[:, 0].numpy(), images)
    with pytest.raises(FileNotFoundError) as e:  # no t10k files
        data.load(f"mnist:{tmp_path}", "test")
    assert "t10k-images-idx3-ubyte" in one_line_with_fix(e.value)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.array([1, 2]), idx.LABELS_MAGIC)  # labels magic
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2]), idx.LABELS_MAGIC)
    with pytest.raises(ValueError) as e:
        data.load(f"mnist:{tmp_path}", "test")
    assert "magic" in one_line_with_fix(e.value)


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    _write_idx(path, np.zeros((2, 28, 28)), idx.IMAGES_MAGIC)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError) as e:
        idx.read_idx(path, magic=idx.IMAGES_MAGIC)
    assert "header says" in one_line_with_fix(e.value)


# ----------------------------------------------------------------------------- npz
def _in_test(key: str) -> bool:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32 < 0.1


def test_npz_round_trip_splits_by_index_hash(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 6, 6, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, size=60)
    np.savez(tmp_path / "s.npz", images=images, labels=labels)
    train, test = data.load(f"npz:{tmp_path / 's.npz'}"), data.load(f"npz:{tmp_path / 's.npz'}", "test")
    in_test = np.array([_in_test(str(i)) for i in range(60)])
    assert 0 < in_test.sum() < 60 and len(test) == in_test.sum() and len(train) == 60 - in_test.sum()
    assert np.array_equal(test.images.permute(0, 2, 3, 1).numpy(), images[in_test])
    assert np.array_equal(train.labels.numpy(), labels[~in_test])
    assert (train.channels, train.levels, train.num_classes) == (3, 256, int(labels.max()) + 1)
    back = data.to_uint8_255(train.batch(torch.arange(len(train)))[0], train.levels)
    assert torch.equal(back, train.images)


def _fraction(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def test_npz_val_slice_is_the_next_hash_band_disjoint_and_stable_as_images_are_added(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(300, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images)
    np.savez(tmp_path / "b.npz", images=np.concatenate([images, images[:100]]))  # 100 images added
    spec = f"npz:{tmp_path / 'a.npz'}"
    val, test = data.load(spec, "val"), data.load(spec, "test")
    fit, full = data.load(spec, "train", validation=True), data.load(spec, "train")
    band = np.array([0.1 <= _fraction(str(i)) < 0.2 for i in range(300)])
    assert 15 < band.sum() < 45 and np.array_equal(val.images[:, 0].numpy(), images[band])
    assert set(val.keys).isdisjoint(fit.keys) and set(val.keys).isdisjoint(
        str(i) for i in range(300) if _in_test(str(i))
    )
    assert sorted(val.keys + fit.keys, key=int) == full.keys and len(full) + len(test) == 300
    grown = data.load(f"npz:{tmp_path / 'b.npz'}", "val")
    assert grown.keys[: len(val)] == val.keys and torch.equal(grown.images[: len(val)], val.images)


def test_digits_val_slice_is_disjoint_from_train_and_test_and_train_is_unchanged_without_it():
    full, fit, val = data.load("digits"), data.load("digits", validation=True), data.load("digits", "val")
    test_keys = set(data.load("digits", "test").keys)
    assert len(full) == 1347 and len(fit) + len(val) == 1347 and 100 < len(val) < 150
    assert set(val.keys).isdisjoint(fit.keys) and set(val.keys).isdisjoint(test_keys)
    assert val.keys == [k for k in full.keys if 0.1 <= _fraction(k) < 0.2]
    assert val.split == "val" and val.identity != fit.identity


def test_npz_greyscale_rank3_unlabeled_and_non_square_cropped(tmp_path):
    images = np.tile(np.arange(10, dtype=np.uint8), (40, 6, 1))  # (40, 6, 10): column index as value
    np.savez(tmp_path / "g.npz", images=images)
    ds = data.load(f"npz:{tmp_path / 'g.npz'}")
    assert ds.images.shape[1:] == (1, 6, 6) and ds.num_classes == 0 and (ds.labels == -1).all()
    assert ds.images[0, 0, 0].tolist() == [2, 3, 4, 5, 6, 7]  # centre crop


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"pictures": np.zeros((2, 4, 4), np.uint8)}, "no 'images'"),
        ({"images": np.zeros((2, 4, 4), np.float32)}, "dtype"),
        ({"images": np.zeros((2, 4), np.uint8)}, "shape"),
        ({"images": np.zeros((2, 4, 4, 4), np.uint8)}, "C = 1 or 3"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, np.int64)}, "labels"),
    ],
)
def test_npz_errors_name_the_problem(tmp_path, arrays, words):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as e:
        data.load(f"npz:{tmp_path / 'bad.npz'}")
    assert words in one_line_with_fix(e.value)


# ----------------------------------------------------------------------------- specs and errors
def test_parse_spec():
    assert data.parse_spec("digits") == ("digits", None)
    assert data.parse_spec("mnist:/d") == ("mnist", "/d")
    assert data.parse_spec("torchvision:CIFAR10:/root") == ("torchvision", "CIFAR10:/root")


@pytest.mark.parametrize(
    "spec, split, error, words",
    [
        ("foo", "train", ValueError, "unknown dataset spec 'foo'"),
        ("mnist", "train", ValueError, "mnist:DIR"),
        ("digits:x", "train", ValueError, "no argument"),
        ("digits", "valid", ValueError, "split"),
        ("mnist:/no/such/dir", "train", FileNotFoundError, "/no/such/dir"),
        ("binary-mnist:/no/such/dir", "test", FileNotFoundError, "/no/such/dir"),
        ("folder:/no/such/dir", "train", FileNotFoundError, "/no/such/dir"),
        ("npz:/no/such/file.npz", "train", FileNotFoundError, "/no/such/file.npz"),
    ],
)
def test_bad_specs_raise_one_line_naming_the_fix(spec, split, error, words):
    with pytest.raises(error) as e:
        data.load(spec, split)
    assert words in one_line_with_fix(e.value)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_torchvision_spec_without_torchvision_says_how_to_install():
    with pytest.raises(ValueError) as e:
        data.load("torchvision:CIFAR10")
    assert "pip install genvision[vision]" in one_line_with_fix(e.value)


def test_shared_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GENVISION_SHARED", str(tmp_path))
    assert data.shared_path("datasets", "mnist") == tmp_path / "datasets" / "mnist"


# ----------------------------------------------------------------------------- conversions
@pytest.mark.parametrize("levels", [17, 2, 256])
def test_to_float_and_back_round_trips(levels):
    v = torch.arange(levels, dtype=torch.uint8)
    x = data.to_float(v, levels)
    assert x[0] == -1 and x[-1] == 1 and (x.diff() > 0).all()
    assert torch.equal(data.to_levels(x, levels), v)
    half_step = 1 / (levels - 1)
    jitter = (torch.rand(levels, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.9 * half_step
    assert torch.equal(data.to_levels(x + jitter, levels), v)  # nearest level wins
    expected = np.floor(np.arange(levels) * 255 / (levels - 1) + 0.5).astype(np.uint8)
    assert np.array_equal(data.to_uint8_255(x, levels).numpy(), expected)
    assert data.to_uint8_255(torch.tensor([-3.0, 3.0]), levels).tolist() == [0, 255]  # clamped
