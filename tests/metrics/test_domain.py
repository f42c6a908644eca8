"""The domain judge: accurate on digits, cached by dataset identity, deterministic, needs labels."""

from __future__ import annotations

import pytest
import torch

from genvision.data import ImageDataset
from genvision.metrics import domain


def test_judge_is_accurate_on_digits(judge):
    assert judge.accuracy > 0.9
    info = judge.info()
    assert info["recipe_version"] == domain.RECIPE_VERSION and info["feature_dim"] == domain.FEATURE_DIM
    x, _ = judge.stats["train"]
    assert x.shape == (domain.FEATURE_DIM,)


def test_judge_is_cached_and_retrains_identically(digits, judge, tmp_path, monkeypatch):
    monkeypatch.setenv("GENVISION_CACHE", str(tmp_path))
    first = domain.get_judge(*digits)  # trained from scratch in an empty cache
    monkeypatch.setattr(domain, "_train", lambda *a: pytest.fail("the cached judge was trained again"))
    second = domain.get_judge(*digits)
    path = tmp_path / "judges" / f"{domain.cache_key(*digits)}.safetensors"
    assert path.is_file() and second.info()["cache_path"] == str(path)
    x, _ = digits[1].batch(torch.arange(100))
    assert torch.equal(first.features(x), second.features(x))
    # the session judge was trained separately: the recipe is deterministic
    assert torch.equal(judge.features(x), second.features(x))
    assert second.floor == judge.floor


def test_cache_key_follows_dataset_identity(digits):
    train, test = digits
    images = train.images.clone()
    images[0, 0, 0, 0] += 1
    changed = ImageDataset(images, train.labels, levels=17, num_classes=10, spec="digits", split="train")
    assert domain.cache_key(changed, test) != domain.cache_key(train, test)
    assert domain.cache_key(train, test) == domain.cache_key(train, test)


def test_unlabeled_data_is_refused_with_a_pointer_to_inception(digits):
    train, test = digits
    unlabeled = ImageDataset(train.images, None, levels=17, num_classes=0, spec="folder:x", split="train")
    with pytest.raises(ValueError, match="domain features need labels.*inception"):
        domain.get_judge(unlabeled, test)


def test_judge_refuses_images_of_the_wrong_shape(judge):
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        judge.features(torch.zeros(2, 3, 8, 8))


def test_judge_net_builds_for_small_and_large_images():
    for channels, size in ((1, 8), (1, 28), (3, 32), (3, 64)):
        net = domain.JudgeNet(channels, size, 7)
        x = torch.zeros(2, channels, size, size)
        assert net.features(x).shape == (2, domain.FEATURE_DIM) and net(x).shape == (2, 7)
