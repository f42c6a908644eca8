"""text_alignment: the aligner (an image encoder trained against frozen sentence embeddings), its
retrieval scores, and the metric through ``genvision evaluate``."""

from __future__ import annotations

import pytest
import torch
from gvtest import TINY_DDPM, run_cli

import genvision as gv
from genvision import data
from genvision.data import captions
from genvision.metrics import alignment
from genvision.metrics.evaluate import evaluate
from genvision.model_dir import save_model_dir


def test_scores_rank_the_true_prompt_among_the_candidates():
    e = torch.eye(4)
    images = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.2, 0, 0], [0, 0, 1.0, 0.9], [0, 1.0, 0, 0]]), dim=1
    )
    got = alignment.score_embeddings(images, e, [0, 3, 1])
    # image 0 ranks 0 first; image 1's own prompt (3) comes second after 2; image 2 ranks 1 first
    assert got["top1"] == pytest.approx(2 / 3) and got["top5"] == 1.0
    assert got["cosine"] == pytest.approx(float((images[0, 0] + images[1, 3] + images[2, 1]) / 3))
    assert got["top1_chance"] == 0.25 and got["top5_chance"] == 1.0 and got["candidates"] == 4


@pytest.fixture
def digits_aligner():  # function scope: after conftest points GENVISION_CACHE at the session cache
    return alignment.get_aligner(data.load("digits", "train"), data.load("digits", "test"))


def test_the_aligner_retrieves_real_digits_captions_and_is_cached(digits_aligner):
    real = digits_aligner.meta["real"]
    # 10 template captions: chance is 0.1 for top-1; the domain judge itself reaches about 0.93
    assert real["top1"] >= 0.8 and real["candidates"] == 10, real
    test = data.load("digits", "test")
    prompts, candidates = alignment.split_prompts(test)
    images = test.batch(torch.arange(len(test)))[0].float()
    shuffled = [prompts[(k + 37) % len(prompts)] for k in range(len(prompts))]
    wrong = digits_aligner.scores(images, shuffled, candidates)
    assert wrong["cosine"] < real["cosine"] - 0.2 and wrong["top1"] < 0.3
    again = alignment.get_aligner(data.load("digits", "train"), test)  # from the cache: same weights
    assert again.meta["cache_key"] == digits_aligner.meta["cache_key"]
    assert torch.equal(again.embed_images(images[:8]), digits_aligner.embed_images(images[:8]))
    assert "not OpenAI's CLIP" in digits_aligner.info()["what"]


def test_prompts_outside_the_candidates_are_refused(digits_aligner):
    with pytest.raises(ValueError, match="not among the candidates: a red apple"):
        digits_aligner.scores(torch.zeros(1, 1, 8, 8), ["a red apple"], ["a handwritten digit one"])


def _tiny_text_run(tmp_path):
    train = data.load("digits", "train")
    torch.manual_seed(0)
    model = gv.create(
        "ddpm-text", levels=17, num_classes=10, class_captions=captions.class_captions(train), **TINY_DDPM
    )
    save_model_dir(model, tmp_path / "run")
    return tmp_path / "run"


def test_evaluate_prompts_a_text_model_and_scores_it_beside_real_images(tmp_path, digits_aligner):
    run = _tiny_text_run(tmp_path)
    report = evaluate(run, data="digits", metrics="text_alignment", n=40, sample_options={"steps": 2})
    m = report["metrics"]["text_alignment"]
    assert m["n"] == 40 and m["candidates"] == 10 and m["value"] == m["cosine"]
    # an untrained model's noise does not follow its prompts: near chance, far below real images
    assert m["top1"] < 0.4 and m["real"]["top1"] >= 0.8
    cat = m["category_accuracy"]  # the judge on the prompted digits: chance, beside real ones
    assert cat["samples"] < 0.4 and cat["real"] >= 0.8 and cat["ratio"] == cat["samples"] / cat["real"]
    assert m["card"]["aligner"]["cache_key"] == digits_aligner.meta["cache_key"]
    assert "text_alignment" in (run / "report.md").read_text()


def test_text_alignment_on_a_model_without_prompts_is_one_line(tmp_path):
    torch.manual_seed(0)
    save_model_dir(gv.create("ddpm", levels=17, **TINY_DDPM), tmp_path / "plain")
    with pytest.raises(
        ValueError, match="needs a text-conditioned model; ddpm takes no prompts; models: .*ddpm-text"
    ):
        evaluate(tmp_path / "plain", data="digits", metrics="text_alignment", n=10)
    proc = run_cli("evaluate", tmp_path / "plain", "--metrics", "text_alignment", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "takes no prompts" in proc.stderr
    by_default = evaluate(tmp_path / "plain", data="digits", metrics=None, n=20, sample_options={"steps": 2})
    assert by_default["metrics"]["text_alignment"]["value"] == "n/a"
