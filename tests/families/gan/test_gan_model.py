"""The GAN model glue: config errors, phases, gradients per phase, sampling contract."""

from __future__ import annotations

import json

import pytest
import torch

from genvision import registry, seeding
from genvision.families.gan.model import GAN, GANConfig

TINY = {"latent_dim": 8, "hidden": 16, "base_channels": 8}


def tiny(name="dcgan", **overrides) -> GAN:
    torch.manual_seed(0)
    return registry.create(name, **{**TINY, **overrides})


# ----------------------------------------------------------------------------- config
def test_config_round_trips_through_json_with_tuple_betas():
    cfg = registry.config_for("wgan-gp")
    again = GANConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.betas_d == (0.0, 0.9) and again.critic_steps == 5


def test_default_width_follows_the_image_size_and_is_stored():
    assert GANConfig(image_size=8).base_channels == 64 and GANConfig(image_size=28).base_channels == 16
    assert GANConfig(image_size=28, base_channels=32).to_dict()["base_channels"] == 32


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"critic_steps": 0}, "critic_steps must be >= 1"),
        ({"lr_g": -1e-4}, "lr_g must be > 0"),
        ({"lr_d": 0.0}, "lr_d must be > 0"),
        ({"betas_d": (0.5, 1.0)}, "betas_d"),
        ({"loss": "lsgan"}, "loss must be one of"),
        ({"optimizer": "sgd"}, "optimizer must be"),
        ({"weight_clip": -0.01}, "weight_clip must be >= 0"),
        ({"arch": "resnet"}, "arch must be one of"),
        ({"label_smoothing": 0.1, "loss": "hinge"}, "label_smoothing applies"),
        ({"truncation": 1.5}, "truncation"),
        ({"augment": "flip"}, "unknown augmentation"),
        ({"conditional": True, "num_classes": 0}, "num_classes"),
        ({"conditional": True, "num_classes": 10, "arch": "mlp"}, "arch='dcgan'"),
    ],
)
def test_broken_config_fails_with_a_one_line_error(overrides, words):
    with pytest.raises(ValueError, match=words) as err:
        registry.create("dcgan", **overrides)
    assert "\n" not in str(err.value)


def test_set_strings_are_parsed_like_the_cli_does():
    cfg = registry.config_for("sngan", critic_steps="2", betas_g="0.5,0.99", lr_g="1e-4")
    assert cfg.critic_steps == 2 and cfg.betas_g == (0.5, 0.99) and cfg.lr_g == 1e-4


# ----------------------------------------------------------------------------- training contract
def test_phases_are_discriminator_x_critic_steps_then_generator_with_their_own_adam():
    model = tiny("wgan-gp", lr_g=3e-4)
    d, g = model.phases
    assert (d.name, d.repeats, g.name, g.repeats) == ("discriminator", 5, "generator", 1)
    assert d.optimizer.kind == g.optimizer.kind == "adam"
    assert (g.optimizer.lr, d.optimizer.lr, d.optimizer.betas) == (3e-4, 1e-4, (0.0, 0.9))
    assert {id(p) for p in d.params} == {id(p) for p in model.discriminator.parameters()}
    assert {id(p) for p in g.params} == {id(p) for p in model.generator.parameters()}
    assert [id(p) for p in model.ema_parameters()] == [id(p) for p in model.generator.parameters()]
    assert (
        model.train_defaults()["monitor_every"] == 50
        and tiny("dcgan").train_defaults()["monitor_every"] == 250
    )


@pytest.mark.parametrize("name", ["gan", "gan-minimax", "dcgan", "wgan", "wgan-gp", "sngan", "sngan-cond"])
def test_each_phase_sends_gradient_only_to_its_own_network(name):
    model = tiny(
        name, num_classes=10, augment="translation,cutout", r1_weight=1.0 if name == "dcgan" else 0.0
    )
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    y = torch.tensor([0, 1, 2, 3])
    for phase, trained, frozen in (
        ("discriminator", model.discriminator, model.generator),
        ("generator", model.generator, model.discriminator),
    ):
        model.zero_grad(set_to_none=True)
        out = model.loss(x, y, phase=phase, generator=seeding.image_generators(4, 0))
        out["loss"].backward()
        assert all(torch.isfinite(v) for v in out.values()) and "d_fake" in out
        assert all(p.grad is None for p in frozen.parameters()), phase
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.parameters()), phase
        assert all(p.requires_grad for p in model.parameters())
    if name == "wgan-gp":
        assert {"gp", "wasserstein"} <= set(model.loss(x, y, phase="discriminator"))
    if name == "wgan":
        assert "wasserstein" in model.loss(x, y, phase="discriminator")


def test_wgan_clips_every_critic_weight_after_its_updates_and_uses_rmsprop():
    model = tiny("wgan")
    d, g = model.phases
    assert d.optimizer.kind == g.optimizer.kind == "rmsprop" and d.repeats == 5
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)  # far outside [-0.01, 0.01]
    before = [p.clone() for p in model.generator.parameters()]
    model.after_step("generator")  # the generator is never clipped
    assert all(torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
    assert max(p.abs().max().item() for p in model.discriminator.parameters()) > 1
    model.after_step("discriminator")
    weights = torch.cat([p.flatten() for p in model.discriminator.parameters()])
    assert weights.abs().max().item() == pytest.approx(0.01) and (weights.abs() < 0.01).any()
    assert torch.equal(weights.clamp(-0.01, 0.01), weights)


def test_loss_is_a_function_of_the_per_image_generators():
    model = tiny("wgan-gp", augment="color,translation")
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    a = model.loss(x, phase="discriminator", generator=seeding.image_generators(4, 3))
    b = model.loss(x, phase="discriminator", generator=seeding.image_generators(4, 3))
    assert a["loss"].item() == b["loss"].item()
    with pytest.raises(ValueError, match="unknown phase"):
        model.loss(x, phase="main")


# ----------------------------------------------------------------------------- sampling
def test_image_k_depends_only_on_seed_and_k():
    model = tiny("dcgan").eval()
    many = model.sample(5, seed=4)
    assert torch.allclose(many[3:4], model.sample(4, seed=4)[3:4], atol=1e-6)
    assert many.shape == (5, 1, 8, 8) and many.abs().max() <= 1


def test_decode_is_the_generator_on_the_sampling_latents_and_truncation_scales_them():
    model = tiny("sngan")
    z = seeding.randn((3, *model.latent_shape), seeding.image_generators(3, 0))
    assert model.latent_shape == (8,) and not hasattr(model, "encode")
    assert torch.allclose(model.decode(z), model.sample(3, seed=0), atol=1e-6)
    assert torch.allclose(model.decode(0.5 * z), model.sample(3, seed=0, truncation=0.5), atol=1e-6)
    mean_image = model.sample(3, seed=0, truncation=0.0)
    assert torch.allclose(mean_image, mean_image[:1].expand(3, -1, -1, -1))
    assert model.training  # sampling restored the mode


def test_sampling_options_of_other_families_are_refused():
    model = tiny("gan")
    for option in ({"temperature": 0.5}, {"sampler": "ddim"}):
        with pytest.raises(ValueError, match="accepts: truncation"):
            model.sample(2, seed=0, **option)
    with pytest.raises(ValueError, match="truncation must be in"):
        model.sample(2, seed=0, truncation=2.0)


def test_conditional_sampling_checks_labels_and_decode_needs_them():
    model = tiny("sngan-cond", num_classes=10).eval()
    assert model.sample(3, y=7, seed=0).shape == (3, 1, 8, 8)
    assert not torch.allclose(model.sample(1, y=1, seed=0), model.sample(1, y=2, seed=0))
    with pytest.raises(ValueError, match="labels must be in"):
        model.sample(2, y=10, seed=0)
    with pytest.raises(ValueError, match="needs labels"):
        model.decode(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="unconditional"):
        tiny("dcgan").sample(2, y=1, seed=0)


def test_describe_start_names_the_latent_and_its_first_values():
    line = tiny("dcgan").describe_start(16, seed=0)
    first = seeding.randn((1, 8), seeding.image_generators(1, 0))[0, 0].item()
    assert "Gaussian latent z (16, 8)" in line and f"{first:.4f}" in line
