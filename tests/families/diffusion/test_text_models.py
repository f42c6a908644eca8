"""Text-conditioned diffusion (ddpm-text, ldm-text): captions to tokens, the caption cache,
prompts in the API and the CLI, and a short run on digits that follows its template prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from families.diffusion.tiny_configs import TINY_AE, TINY_LATENT
from gvtest import TINY_DDPM, one_line, run_cli

import genvision as gv
from genvision import data
from genvision.data import captions
from genvision.families.diffusion import text as text_models
from genvision.metrics import judges
from genvision.metrics.evaluate import evaluate, quantise
from genvision.model_dir import save_model_dir
from genvision.sampling import NPZ_KEY

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}
CALIBRATION = json.loads((Path(__file__).parents[2] / "calibration.json").read_text())


def _tiny(**fields):
    train = data.load("digits", "train")
    torch.manual_seed(0)
    return gv.create(
        "ddpm-text",
        levels=17,
        num_classes=10,
        class_captions=captions.class_captions(train),
        **TINY_DDPM,
        **fields,
    )


def test_template_captions_make_a_class_conditional_text_model_and_prompts_sample():
    model = _tiny()
    assert model.config.conditional and model.takes_prompts
    assert model.net.class_embed is None and model.net.context_dim == 384
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    out = model.loss(x, torch.tensor([1, 2, 3, 8]))  # caption ids: class k is row k + 1
    assert out["loss"].isfinite()
    images = model.sample(3, prompts=["a handwritten digit seven"] * 3, seed=0, steps=4)
    assert images.shape == (3, 1, 8, 8)
    # a class label samples with its class's caption: the same images as that prompt
    by_label = model.sample(3, y=7, seed=0, steps=4)
    assert torch.equal(by_label, images)
    guided = model.sample(3, prompts="a handwritten digit seven", seed=0, steps=4, guidance_scale=3.0)
    assert guided.shape == images.shape


def test_bad_prompts_are_refused_in_one_line():
    model = _tiny()
    with pytest.raises(ValueError) as e:
        model.sample(3, prompts=["a", "b"], seed=0, steps=2)
    assert "need 3 prompts" in one_line(e)
    with pytest.raises(ValueError) as e:
        model.sample(2, y=1, prompts=["a", "b"], seed=0, steps=2)
    assert "not both" in one_line(e)
    plain = gv.create("ddpm", levels=17, **TINY_DDPM)
    with pytest.raises(ValueError) as e:
        plain.sample(2, prompts=["a", "b"], seed=0, steps=2)
    assert "takes no prompts" in one_line(e)
    with pytest.raises(ValueError) as e:
        gv.create("ddpm-text", levels=17, num_classes=10, class_captions=("a", "b"), **TINY_DDPM)
    assert "2 captions for 10 classes" in one_line(e)


def test_caption_tokens_are_cached_in_the_run_and_read_back(tmp_path, monkeypatch):
    model = _tiny()
    train = data.load("digits", "train")
    ds = model.training_data(train, tmp_path)
    assert (tmp_path / text_models.CACHE_FILE).is_file()
    x, ids = ds.batch(torch.arange(6))
    assert torch.equal(ids, train.labels[:6] + 1)  # template captions: class k is row k + 1
    rows = model._table[0]
    assert rows[0] == "" and rows[8] == "a handwritten digit seven" and len(rows) == 11
    again = _tiny()
    monkeypatch.setattr(type(again), "encode_texts", lambda *a: pytest.fail("encoded again"))
    again.training_data(train, tmp_path)
    assert torch.equal(again._table[1], model._table[1])


def test_the_run_layer_fills_class_captions_and_the_cli_samples_a_prompt(tmp_path):
    out = tmp_path / "run"
    gv.train(
        "ddpm-text", data="digits", out=out, steps=3, batch_size=8, model_config=dict(TINY_DDPM), **QUIET
    )
    config = json.loads((out / "config.json").read_text())["model_config"]
    assert config["class_captions"][7] == "a handwritten digit seven" and config["conditional"]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a handwritten digit one\n\na handwritten digit two\n")
    proc = run_cli(
        "sample", out, "--n", "4", "--prompts-file", prompts, "--steps", "3", "--out", tmp_path / "p.npz"
    )
    assert "wrote" in proc.stdout
    record = json.loads(str(np.load(tmp_path / "p.npz")[NPZ_KEY]))
    assert record["prompts"] == ["a handwritten digit one", "a handwritten digit two"] * 2
    run_cli("sample", out, "--n", "2", "--prompt", "red apple", "--steps", "2", "--out", tmp_path / "a.png")
    bad = run_cli("sample", out, "--n", "2", "--prompts-file", tmp_path / "none.txt", check=False)
    assert (
        bad.returncode != 0 and "cannot read --prompts-file" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_ldm_text_trains_on_an_autoencoder_and_samples_a_prompt(tmp_path):
    torch.manual_seed(0)
    ae = gv.create("autoencoder", levels=17, num_classes=10, **TINY_AE)
    save_model_dir(ae, tmp_path / "ae")
    out = tmp_path / "ldm"
    config = {**TINY_LATENT, "autoencoder": str(tmp_path / "ae")}
    gv.train("ldm-text", data="digits", out=out, steps=3, batch_size=8, model_config=config, **QUIET)
    assert (out / text_models.CACHE_FILE).is_file()
    model = gv.load(out)
    images = model.sample(
        2, prompts=["a handwritten digit three", "a handwritten digit four"], seed=0, steps=2
    )
    assert images.shape == (2, 1, 8, 8) and images.abs().max() <= 1


def run_text_digits(out, seed: int = 0):
    """The quality test's run (tests/calibrate_quality.py measures it over seeds)."""
    gv.train(
        "ddpm-text",
        data="digits",
        out=out,
        steps=400,
        batch_size=64,
        lr=2e-3,
        ema_half_life=4000,
        seed=seed,
        model_config={"base_channels": 16, "num_res_blocks": 1, "steps": 20},
        **QUIET,
    )


def prompted_accuracy(model, n: int = 300, guidance_scale: float = 2.0) -> float:
    """Judge accuracy on ``n`` samples prompted "a handwritten digit K" for K cycling 0..9."""
    train, test = data.load("digits", "train"), data.load("digits", "test")
    labels = torch.arange(n) % 10
    prompts = [f"a handwritten digit {data.datasets.DIGIT_NAMES[k]}" for k in labels.tolist()]
    samples = model.sample(n, prompts=prompts, seed=0, guidance_scale=guidance_scale)
    predicted = judges.get_judge(train, test).logits(quantise(samples, 17)).argmax(dim=1)
    return float((predicted == labels).float().mean())


def alignment_top1(run) -> float:
    """text_alignment's prompt-retrieval top-1 of 300 samples (test captions, guidance 2)."""
    report = evaluate(
        run, data="digits", metrics="text_alignment", n=300, sample_options={"guidance_scale": 2.0}
    )
    return report["metrics"]["text_alignment"]["top1"]


def test_a_short_run_follows_its_template_prompts(tmp_path):
    run_text_digits(tmp_path / "run")
    accuracy = prompted_accuracy(gv.load(tmp_path / "run"))
    bar = CALIBRATION["ddpm_text"]["bars"]["accuracy"]["value"]
    assert accuracy >= bar, f"prompted accuracy {accuracy:.3f} below the calibrated bar {bar} (chance 0.1)"
    top1 = alignment_top1(tmp_path / "run")  # the same following, seen by the caption aligner
    bar = CALIBRATION["ddpm_text"]["bars"]["alignment_top1"]["value"]
    assert top1 >= bar, f"text_alignment top-1 {top1:.3f} below the calibrated bar {bar} (chance 0.1)"
