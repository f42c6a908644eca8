"""genvision.sample: per-image seeds, batch independence, files and their metadata record."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from gvtest import TINY_DDPM

import genvision as gv
from genvision.model_dir import save_model_dir
from genvision.sampling import read_record
from genvision.seeding import image_seed


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save_model_dir(gv.create("ddpm", **TINY_DDPM), tmp_path_factory.mktemp("sampling") / "ddpm")


def test_npz_holds_uint8_images_and_per_image_seeds(tiny_dir, tmp_path):
    result = gv.sample(tiny_dir, 6, seed=4, out=tmp_path / "s.npz", device="cpu")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        assert f["images"].shape == (6, 8, 8, 1) and f["images"].dtype == np.uint8
        assert f["seeds"].dtype == np.int64
        assert f["seeds"].tolist() == [image_seed(4, k) for k in range(6)]
        assert "labels" not in f.files
    images = result["images"]
    assert images.shape == (6, 1, 8, 8) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert result["path"] == tmp_path / "s.npz" and result["labels"] is None
    assert result["seconds"] > 0 and result["start"].startswith("Gaussian noise (6, 1, 8, 8)")


def test_images_do_not_depend_on_n_or_batch_size(tiny_dir):
    a = gv.sample(tiny_dir, 8, seed=3, device="cpu")["images"]
    b = gv.sample(tiny_dir, 12, seed=3, batch_size=5, device="cpu")["images"]
    torch.testing.assert_close(a, b[:8], rtol=0, atol=0)


def test_record_round_trips_from_png_and_npz(tiny_dir, tmp_path):
    sha = hashlib.sha256((tiny_dir / "model.safetensors").read_bytes()).hexdigest()
    for name in ("grid.png", "s.npz"):
        result = gv.sample(tiny_dir, 3, seed=1, out=tmp_path / name, sampler="ddim", steps=3, device="cpu")
        record = read_record(tmp_path / name)
        assert record == result["record"]
        assert record["weights_sha256"] == sha
        assert (record["registry_name"], record["family"]) == ("ddpm", "diffusion")
        assert (record["seed"], record["n"], record["labels"]) == (1, 3, None)
        assert record["options"] == {"sampler": "ddim", "steps": 3}
        assert (record["sampler"], record["steps"]) == ("ddim", 3)
        assert record["genvision_version"] == gv.__version__ and record["created"].endswith("+00:00")
    # without options: the model's own sampler and steps
    record = gv.sample(tiny_dir, 1, device="cpu")["record"]
    assert (record["options"], record["sampler"], record["steps"]) == ({}, "dpm++2m", TINY_DDPM["steps"])


def test_conditional_labels_land_in_the_npz(tmp_path):
    model = gv.create("ddpm-cond", num_classes=3, **TINY_DDPM)
    result = gv.sample(model, 4, seed=2, labels=[0, 2, 1, 2], out=tmp_path / "c.npz", device="cpu")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert f["labels"].dtype == np.int64 and f["labels"].tolist() == [0, 2, 1, 2]
    assert result["labels"].tolist() == [0, 2, 1, 2]
    record = read_record(tmp_path / "c.npz")
    assert record["labels"] == [0, 2, 1, 2] and record["weights_sha256"] is None  # never saved
    one_class = gv.sample(model, 3, labels=1, device="cpu")
    assert one_class["labels"].tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"temperature": 0.7}, "accepts"),
        ({"out": "x.jpg"}, ".png or .npz"),
        ({"labels": 1}, "unconditional"),
        ({"n": 0}, "n must be"),
    ],
)
def test_bad_arguments_are_one_line_errors(tiny_dir, tmp_path, kwargs, needle):
    kwargs = {"n": 2, "device": "cpu", **kwargs}
    if "out" in kwargs:
        kwargs["out"] = tmp_path / kwargs["out"]
    with pytest.raises(ValueError) as e:
        gv.sample(tiny_dir, **kwargs)
    assert needle in str(e.value) and len(str(e.value).splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written


def test_cuda_without_cuda_names_device_cpu(tiny_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cpu"):
        gv.sample(tiny_dir, 1, device="cuda")
    assert gv.sample(tiny_dir, 1, device="auto")["images"].shape == (1, 1, 8, 8)


def test_read_record_refuses_files_without_one(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no genvision record"):
        read_record(tmp_path / "plain.png")
    with pytest.raises(ValueError, match=".png or .npz"):
        read_record(tmp_path / "plain.jpg")


def test_every_png_carries_an_itxt_record_and_sampled_ones_the_full_provenance(tiny_dir, tmp_path):
    gv.save_grid(torch.zeros(3, 1, 8, 8), tmp_path / "any.png")
    assert b"iTXt" in (tmp_path / "any.png").read_bytes()
    short = read_record(tmp_path / "any.png")
    assert short["generator"] == "genvision" and short["command"] is None and "3 image(s)" in short["images"]
    record = gv.sample(tiny_dir, 2, seed=5, out=tmp_path / "s.png", guidance_scale=None, device="cpu")[
        "record"
    ]
    assert record["generator"] == "genvision" and record["seed"] == 5
    config = gv.load(tiny_dir).config
    assert (
        record["config_sha256"]
        == hashlib.sha256(
            json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
    )
    assert "guidance_scale" in record and "image_seed(seed, k)" in record["images"]


def test_inspect_prints_the_record_of_a_cli_sample_and_says_when_there_is_none(tiny_dir, tmp_path):
    from PIL import Image

    from genvision.cli import main

    out = tmp_path / "grid.png"
    assert main(["sample", str(tiny_dir), "--n", "2", "--seed", "7", "--out", str(out)]) == 0
    record = read_record(out)
    assert record["command"].startswith("genvision sample ") and "--seed 7" in record["command"]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "plain.png")
    assert main(["inspect", str(tmp_path / "plain.png")]) == 1
    assert main(["inspect", str(out)]) == 0
