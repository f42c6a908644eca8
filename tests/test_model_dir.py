"""Model directories and parent references: one format, checked by hash, relative to the child."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from families.autoregressive.tiny_configs import TINY, TINY_VQVAE

import genvision as gv
from genvision.model_dir import read_config, save_model_dir, weights_sha256


@pytest.fixture()
def prior_dirs(tmp_path):
    """A tiny VQ-VAE directory and a prior built on it, saved side by side."""
    vq = tmp_path / "runs" / "vq"
    save_model_dir(gv.create("vqvae", levels=17, **TINY_VQVAE), vq)
    prior = gv.create("vqvae-transformer", vqvae=str(vq), levels=17, **TINY["vqvae-transformer"])
    save_model_dir(prior, tmp_path / "runs" / "prior")
    return vq, tmp_path / "runs" / "prior"


def test_parent_reference_is_relative_and_hashed(prior_dirs):
    vq, prior = prior_dirs
    ref = read_config(prior)["parents"]["vqvae"]
    assert ref == {"path": "../vq", "sha256": weights_sha256(vq)}
    model = gv.load(prior)
    assert model.parent("vqvae").origin == vq.resolve()


def test_moving_child_and_parent_together_keeps_the_link(prior_dirs, tmp_path):
    vq, prior = prior_dirs
    moved = tmp_path / "elsewhere"
    shutil.move(str(prior.parent), str(moved))
    a = gv.load(moved / "prior").sample(2, seed=0)
    assert a.shape == (2, 1, 8, 8)


def test_missing_parent_is_a_one_line_error_naming_it(prior_dirs):
    vq, prior = prior_dirs
    shutil.rmtree(vq)
    with pytest.raises(FileNotFoundError, match="built on its vqvae ../vq, which is missing"):
        gv.load(prior)


def test_changed_parent_is_a_one_line_error(prior_dirs):
    vq, prior = prior_dirs
    other = gv.create("vqvae", levels=17, **TINY_VQVAE)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    save_model_dir(other, vq)
    with pytest.raises(ValueError, match="the vqvae of .* has changed since it was used"):
        gv.load(prior)


def test_out_that_is_a_parent_is_refused_before_anything_is_written(prior_dirs):
    vq, _ = prior_dirs
    before = sorted(p.name for p in vq.iterdir())
    with pytest.raises(ValueError, match="is \\(or holds\\) the vqvae model"):
        gv.train(
            "vqvae-transformer",
            data="digits",
            out=vq,
            overwrite=True,
            steps=1,
            progress=False,
            model_config={"vqvae": str(vq), **TINY["vqvae-transformer"]},
        )
    with pytest.raises(ValueError, match="is \\(or holds\\) the vqvae model"):
        gv.train(
            "vqvae-transformer",
            data="digits",
            out=vq.parent,
            overwrite=True,
            steps=1,
            progress=False,
            model_config={"vqvae": str(vq), **TINY["vqvae-transformer"]},
        )
    assert sorted(p.name for p in vq.iterdir()) == before


def test_a_prior_without_its_vqvae_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="pass --set vqvae=DIR"):
        gv.create("vqvae-transformer")


def test_config_json_written_by_a_run_names_its_parents(prior_dirs, tmp_path):
    vq, _ = prior_dirs
    out = gv.train(
        "vqvae-transformer",
        data="digits",
        out=tmp_path / "run",
        steps=2,
        batch_size=8,
        sample_every=0,
        progress=False,
        model_config={"vqvae": str(vq), **TINY["vqvae-transformer"]},
    )
    meta = json.loads((out / "config.json").read_text())
    assert meta["parents"]["vqvae"]["sha256"] == weights_sha256(vq)
    assert "vqvae" not in meta["model_config"]
    again = gv.train(
        "vqvae-transformer",
        data="digits",
        out=out,
        resume=True,
        steps=3,
        progress=False,
        model_config={"vqvae": str(vq)},
    )
    assert read_config(again)["parents"] == meta["parents"]
    with pytest.raises(ValueError, match="is not built on .* as its vqvae; drop --set vqvae"):
        gv.train(
            "vqvae-transformer",
            data="digits",
            out=out,
            resume=True,
            steps=4,
            progress=False,
            model_config={"vqvae": str(tmp_path)},
        )
