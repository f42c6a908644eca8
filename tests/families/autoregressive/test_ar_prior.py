"""Transformer prior over VQ-VAE codes: causal, KV-cached sampling equals full recompute, learns the
code distribution better than independent positions, keeps the VQ-VAE out of its weights."""

from __future__ import annotations

import math

import pytest
import torch
from families.autoregressive.tiny_configs import TINY, TINY_VQVAE
from gvtest import one_thread

import genvision as gv
from genvision import data
from genvision.families.autoregressive.transformer import CausalTransformer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Token-by-token sampling is many tiny ops: one thread, since two fight over a busy CPU."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def vqvae_dir(tmp_path_factory):
    """A tiny VQ-VAE trained briefly on digits, so its codes carry structure."""
    out = tmp_path_factory.mktemp("vq") / "vqvae"
    gv.train(
        "vqvae", data="digits", out=out, steps=60, sample_every=0, progress=False, model_config=TINY_VQVAE
    )
    return out


@pytest.fixture(scope="module")
def prior(vqvae_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prior") / "prior"
    config = {**TINY["vqvae-transformer"], "width": 32, "vqvae": str(vqvae_dir)}
    gv.train(
        "vqvae-transformer",
        data="digits",
        out=out,
        steps=150,
        sample_every=0,
        progress=False,
        model_config=config,
    )
    return gv.load(out)


def test_transformer_output_ignores_later_tokens():
    torch.manual_seed(0)
    net = CausalTransformer(vocab=5, length=6, width=16, heads=2, num_layers=2).eval()
    tokens = torch.randint(5, (2, 6))
    changed = tokens.clone()
    changed[:, 3:] = (changed[:, 3:] + 1) % 5
    with torch.no_grad():
        a, b = net(tokens), net(changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_kv_cached_sampling_equals_full_recompute(prior):
    for t in (1.0, 0.7):
        cached = prior.sample_codes(4, seed=3, temperature=t)
        assert torch.equal(cached, prior.sample_codes(4, seed=3, temperature=t, cached=False))
    assert torch.equal(prior.sample_codes(2, seed=3), prior.sample_codes(4, seed=3)[:2])  # per-image seeds
    images = prior.sample(2, seed=0)
    assert images.shape == (2, 1, 8, 8) and images.min() >= -1 and images.max() <= 1


def test_prior_beats_independent_positions_on_test_codes(prior):
    """Test-code NLL of the prior < that of a per-position categorical fitted to the train codes."""
    vq = prior.vqvae
    train, test = data.load("digits", "train"), data.load("digits", "test")
    codes_train = vq.encode(train.batch(torch.arange(len(train)))[0]).flatten(1)  # (N, hw)
    codes_test = vq.encode(test.batch(torch.arange(len(test)))[0])
    k = prior.codebook_size
    counts = torch.stack([torch.bincount(c, minlength=k) for c in codes_train.T]).double() + 1  # (hw, K)
    log_p = (counts / counts.sum(1, keepdim=True)).log()
    independent = -log_p.gather(1, codes_test.flatten(1).T).sum(0).mean()
    learned = -prior.code_log_likelihood(codes_test).mean()
    # nats per image; the bar's calibration: tests/calibration.json, "prior"
    assert learned < independent - 1.0, (learned.item(), independent.item())


def test_prior_weights_hold_only_the_transformer(prior):
    assert all(k.startswith("net.") for k in prior.state_dict())
    assert not any(p.requires_grad for p in prior.vqvae.parameters())


def test_prior_needs_a_matching_vqvae_directory(vqvae_dir):
    with pytest.raises(ValueError, match="--set vqvae=DIR"):
        gv.create("vqvae-transformer")
    with pytest.raises(ValueError, match="models 1x8px images"):
        gv.create("vqvae-transformer", vqvae=str(vqvae_dir), image_size=16)
    with pytest.raises(ValueError, match="accepts: temperature, cached"):
        gv.create("vqvae-transformer", vqvae=str(vqvae_dir)).sample(1, seed=0, steps=3)
    assert math.isfinite(
        gv.create("vqvae-transformer", vqvae=str(vqvae_dir)).loss(torch.zeros(2, 1, 8, 8))["loss"].item()
    )
