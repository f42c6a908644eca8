"""The Diffusion model glue: config validation, loss, per-image seeds, sampling options."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from genvision import registry, seeding
from genvision.families.diffusion import losses
from genvision.families.diffusion.model import Diffusion, DiffusionConfig

TINY = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, num_train_timesteps=20, steps=5)


def tiny_model(seed=0, **overrides) -> Diffusion:
    """A tiny diffusion model with random (not zero-initialised) weights, so outputs depend on input."""
    model = Diffusion(DiffusionConfig(**{**TINY, **overrides}))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


# ----------------------------------------------------------------------------- config
def test_default_config_round_trips_through_json():
    for cfg in (
        DiffusionConfig(),
        DiffusionConfig(attention_resolutions=[4], channel_mults=[1, 2, 2], image_size=16),
    ):
        again = DiffusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg and isinstance(again.channel_mults, tuple)


@pytest.mark.parametrize("size, mults", [(8, (1, 2)), (16, (1, 2, 2)), (28, (1, 2, 2)), (64, (1, 2, 2, 2))])
def test_default_channel_mults_follow_the_image_size_and_are_stored(size, mults):
    cfg = DiffusionConfig(image_size=size)
    assert cfg.channel_mults == mults and cfg.to_dict()["channel_mults"] == mults


def test_registry_presets_build():
    assert registry.create("ddpm", **TINY).config.objective == "v"
    cond = registry.create("ddpm-cond", num_classes=10, **TINY)
    assert cond.config.conditional and cond.net.class_embed is not None


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"objective": "score"}, "objective"),
        ({"schedule": "sigmoid"}, "schedule"),
        ({"num_train_timesteps": 1}, "num_train_timesteps"),
        ({"image_size": 12, "channel_mults": (1, 2, 2, 2)}, "divisible by 2"),
        ({"channel_mults": (1, 0)}, "channel_mults"),
        ({"attention_resolutions": (3,)}, "attention_resolutions"),
        ({"attention_resolutions": (8,), "attention_heads": 3}, "attention_heads"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"dropout": 1.0}, "dropout"),
        ({"cond_drop_prob": -0.1}, "cond_drop_prob"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"sampler": "banana"}, "sampler"),
        ({"steps": 21}, "steps"),
        ({"eta": -1.0}, "eta"),
        ({"eta": 0.5}, "eta applies to the ddim sampler only"),
        ({"lr": 0.0}, "lr"),
        ({"conditional": True}, "num_classes"),
        ({"channels": 2}, "channels"),
    ],
)
def test_invalid_config_values_raise_one_line_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field) as err:
        DiffusionConfig(**{**TINY, **overrides})
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- loss
@pytest.mark.parametrize("objective", losses.OBJECTIVES)
def test_loss_is_zero_when_the_net_predicts_the_true_target(objective):
    model = Diffusion(DiffusionConfig(**TINY, objective=objective))
    x0 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1

    class Oracle(nn.Module):  # knows x0, so it can read the noise off x_t
        def forward(self, xt, t, y=None):
            a = model.alpha_bar[t].view(-1, 1, 1, 1)
            return losses.target(objective, x0, losses.eps_from_x0(x0, xt, a), a)

    model.net = Oracle()
    out = model.loss(x0)
    assert out["loss"].item() < 1e-6 and set(out) >= {"loss", "mse"}


def test_loss_is_finite_and_trains_the_net():
    model = Diffusion(DiffusionConfig(**TINY))
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    out = model.loss(x)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.net.conv_out.weight.grad.abs().sum() > 0


def test_conditional_loss_takes_labels_including_unlabeled():
    model = Diffusion(DiffusionConfig(**TINY, conditional=True, num_classes=10))
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.isfinite(model.loss(x, torch.tensor([0, 9, -1, 3]))["loss"])
    assert torch.isfinite(model.loss(x, None)["loss"])


def test_loss_draws_from_the_global_rng_or_per_image_generators():
    model = Diffusion(DiffusionConfig(**TINY, conditional=True, num_classes=10))
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3])
    torch.manual_seed(5)
    a = model.loss(x, y)["loss"]
    torch.manual_seed(5)
    assert torch.equal(model.loss(x, y)["loss"], a)
    # per-image generators: the loss of a batch is the mean of its images' losses, however split
    whole = model.loss(x, y, generator=seeding.image_generators(4, 9))["loss"]
    halves = [model.loss(x[i : i + 2], y[i : i + 2], generator=seeding.image_generators(2, 9, start=i))["loss"]
              for i in (0, 2)]  # fmt: skip
    assert torch.allclose(whole, sum(halves) / 2, atol=1e-6)


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize(
    "options",
    [
        {"sampler": "ddim", "eta": 0.5},
        {"sampler": "ddim", "steps": 3},
        {"sampler": "dpm++2m", "steps": 4},
        {"sampler": "ddpm", "variance": "beta"},
    ],
)
def test_image_k_is_the_same_alone_or_in_a_batch(options):
    # v-prediction: batched convolutions round differently (~1e-7); eps -> x0 at the noisiest step
    # divides by sqrt(alpha_bar) ~ 1e-2 and would blow that up to ~1e-5 for a random-weight net
    model = tiny_model(objective="v")
    batch = model.sample(7, seed=3, **options)
    assert batch.shape == (7, 1, 8, 8) and batch.min() >= -1 and batch.max() <= 1
    assert torch.allclose(model.sample(1, seed=3, **options)[0], batch[0], atol=1e-6)
    for k in (1, 6):
        alone = model.sample(1, generator=seeding.image_generators(1, 3, start=k), **options)
        assert torch.allclose(alone[0], batch[k], atol=1e-6)
    assert not torch.allclose(batch[0], batch[1])


def test_same_seed_same_samples_and_generator_stream_works():
    model = tiny_model()
    assert torch.equal(model.sample(3, seed=1), model.sample(3, seed=1))
    a = model.sample(3, generator=torch.Generator().manual_seed(0), sampler="ddpm")
    b = model.sample(3, generator=torch.Generator().manual_seed(0), sampler="ddpm")
    assert torch.equal(a, b)


def test_sampling_keeps_training_mode_and_describes_its_start():
    model = tiny_model().train()
    model.sample(2, seed=0)
    assert model.training
    line = model.describe_start(5, seed=0)
    first = seeding.randn((1, 1, 8, 8), seeding.image_generators(1, 0))[0, 0, 0, 0].item()
    assert "Gaussian noise (5, 1, 8, 8)" in line and f"{first:.4f}" in line


def test_conditional_sampling_with_labels_and_guidance():
    model = tiny_model(conditional=True, num_classes=10, objective="v")
    x = model.sample(4, y=[0, 1, 2, 3], seed=0, guidance_scale=2.0)
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()
    one = model.sample(4, y=7, seed=0)  # an int label means n copies
    assert not torch.allclose(one, model.sample(4, y=2, seed=0))
    # no labels: a class per image from its own generator, so still the same alone or batched
    assert torch.allclose(
        model.sample(3, seed=0)[1],
        model.sample(1, generator=seeding.image_generators(1, 0, start=1))[0],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        model.sample(2, y=[0, 10], seed=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampler": "banana"}, "known: ddpm, ddim"),
        ({"temperature": 0.7}, "temperature"),
        ({"y": 3}, "unconditional"),
        ({"steps": 21}, "steps must be in 1..20"),
        ({"sampler": "ddpm", "steps": 5}, "use sampler='dpm\\+\\+2m' or 'ddim'"),
        ({"sampler": "ddpm", "eta": 1.0}, "eta"),
        ({"sampler": "dpm++2m", "eta": 1.0}, "eta applies to the ddim sampler only"),
        ({"sampler": "ddim", "variance": "beta"}, "variance"),
        ({"guidance_scale": 2.0}, "guidance_scale"),
        ({"seed": 0, "generator": torch.Generator()}, "either seed"),
    ],
)
def test_bad_sampling_options_raise_one_line(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message) as err:
        model.sample(2, **kwargs)
    assert "\n" not in str(err.value)


def test_unused_options_left_at_none_are_accepted():
    model = tiny_model()
    assert model.sample(1, seed=0, temperature=None, truncation=None).shape == (1, 1, 8, 8)


def test_log_likelihood_is_a_per_image_bound_in_nats():
    model = tiny_model(objective="v", levels=17)
    x = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16 * 2 - 1
    ll = model.log_likelihood(x, seed=0)
    assert ll.shape == (3,) and torch.isfinite(ll).all() and (ll < 0).all()
    alone = model.log_likelihood(x[1:2], generator=seeding.image_generators(1, 0, start=1))
    assert torch.allclose(alone, ll[1:2], rtol=1e-5)
