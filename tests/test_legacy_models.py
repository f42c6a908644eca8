"""Model directories saved by earlier genvision versions still load and compute the same numbers.

``tests/fixtures/legacy_models/`` holds one tiny directory per family (and the two derived
models: a distilled student and a VQ-VAE prior, whose parents they name), written by
``tests/fixtures/make_legacy_models.py`` before the run layer landed, with the samples and
log-likelihoods that code computed. Today's code must load each and reproduce them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genvision as gv
from genvision import data as gdata

FIXTURES = Path(__file__).parent / "fixtures" / "legacy_models"
OPTIONS = {
    "ddpm": {"dpm++2m": {}, "ddim": {"sampler": "ddim", "steps": 7}, "ddpm": {"sampler": "ddpm"}},
    "ddpm-cond": {"dpm++2m": {}, "guided": {"guidance_scale": 2.0}},
    "gan": {"plain": {}, "truncated": {"truncation": 0.7}},
    "glow": {"plain": {}, "cold": {"temperature": 0.7}},
    "ddpm-student": {"ddim": {}},
    "vqvae-transformer": {"plain": {}, "cold": {"temperature": 0.5}},
}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Path:
    """A writable copy (loading must not need to write, but a test must never touch the fixtures)."""
    copy = tmp_path_factory.mktemp("legacy") / "models"
    shutil.copytree(FIXTURES, copy)
    return copy


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_legacy_directory_loads_and_reproduces_its_numbers(name, legacy):
    model = gv.load(legacy / name)
    expected = load_file(str(legacy / name / "expected.safetensors"))
    y = torch.arange(4) % model.config.num_classes if model.config.conditional else None
    for key, opts in OPTIONS.get(name, {"plain": {}}).items():
        got = model.sample(4, y=y, seed=0, **opts)
        assert torch.allclose(got, expected[f"samples.{key}"], atol=1e-5), (name, key)
    if "log_likelihood" in expected:
        x, _ = gdata.load("digits", "test").batch(torch.arange(4))
        got = model.log_likelihood(x, seed=0).double()
        assert torch.allclose(got, expected["log_likelihood"], rtol=1e-5, atol=1e-4), name


def test_a_pixel_model_saved_before_dropout_keeps_training_without_it(legacy):
    assert gv.load(legacy / "pixelcnn").config.dropout == 0.0
    assert gv.create("pixelcnn").config.dropout > 0  # today's default
