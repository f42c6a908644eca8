"""Judges: the domain judge is accurate on digits, cached by dataset identity, deterministic, needs
labels; other tasks train with the same recipe on their own targets and cache apart."""

from __future__ import annotations

import pytest
import torch

from genvision.data import ImageDataset
from genvision.metrics import judges


def test_judge_is_accurate_on_digits(judge):
    assert judge.accuracy > 0.9
    info = judge.info()
    assert info["recipe_version"] == judges.RECIPE_VERSION and info["feature_dim"] == judges.FEATURE_DIM
    assert judge.features(torch.zeros(3, 1, 8, 8)).shape == (3, judges.FEATURE_DIM)
    assert info["task"] == "class"


def test_judge_is_cached_and_retrains_identically(digits, judge, tmp_path, monkeypatch):
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path))
    first = judges.get_judge(*digits)  # trained from scratch in an empty cache
    monkeypatch.setattr(judges, "_train", lambda *a: pytest.fail("the cached judge was trained again"))
    second = judges.get_judge(*digits)
    path = tmp_path / "judges" / f"{judges.cache_key(*digits)}.safetensors"
    assert path.is_file() and second.info()["cache_path"] == str(path)
    x, _ = digits[1].batch(torch.arange(100))
    assert torch.equal(first.features(x), second.features(x))
    # the session judge was trained separately: the recipe is deterministic
    assert torch.equal(judge.features(x), second.features(x))


def test_a_judge_for_another_task_trains_on_its_targets_and_caches_apart(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path))

    def parity(ds):  # odd vs even digits: a two-class task of the same images
        return torch.as_tensor(ds.labels) % 2

    judge = judges.get_judge(*digits, task="parity", targets=parity)
    assert judge.task == "parity" and judge.meta["num_classes"] == 2
    assert judge.accuracy > 0.85  # well above the 0.5 of chance
    assert judges.cache_key(*digits, "parity") != judges.cache_key(*digits)
    assert len(list((tmp_path / "judges").glob("*.json"))) == 1
    with pytest.raises(ValueError, match="needs a targets function"):
        judges.get_judge(*digits, task="style")


def test_cache_key_follows_dataset_identity(digits):
    train, test = digits
    images = train.images.clone()
    images[0, 0, 0, 0] += 1
    changed = ImageDataset(images, train.labels, levels=17, num_classes=10, spec="digits", split="train")
    assert judges.cache_key(changed, test) != judges.cache_key(train, test)
    assert judges.cache_key(train, test) == judges.cache_key(train, test)


def test_unlabeled_data_is_refused_with_a_pointer_to_inception(digits):
    train, test = digits
    unlabeled = ImageDataset(train.images, None, levels=17, num_classes=0, spec="folder:x", split="train")
    with pytest.raises(ValueError, match="domain features need labels.*inception"):
        judges.get_judge(unlabeled, test)


def test_judge_refuses_images_of_the_wrong_shape(judge):
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        judge.features(torch.zeros(2, 3, 8, 8))


def test_judge_net_builds_for_small_and_large_images():
    for channels, size in ((1, 8), (1, 28), (3, 32), (3, 64)):
        net = judges.JudgeNet(channels, size, 7)
        x = torch.zeros(2, channels, size, size)
        assert net.features(x).shape == (2, judges.FEATURE_DIM) and net(x).shape == (2, 7)
