"""The flow models' glue: configs, encode/decode, likelihood, per-image seeds, sampling options,
actnorm initialisation through the trainer."""

from __future__ import annotations

import json

import pytest
import torch

import genvision as gv
from genvision import seeding
from genvision.families.flows.model import Glow, GlowConfig, RealNVP, RealNVPConfig, default_num_levels

TINY = {"steps_per_level": 2, "hidden_channels": 8, "levels": 17}


def tiny_model(name="glow", seed=0, **overrides):
    """A tiny flow with random weights (zero-initialised layers included), so it is not the identity."""
    torch.manual_seed(seed)
    model = gv.create(name, **{**TINY, **overrides})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def digits_like(n, seed=0, levels=17):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (n, 1, 8, 8), generator=g).float() / (levels - 1) * 2 - 1


# ----------------------------------------------------------------------------- config
def test_configs_round_trip_through_json_and_levels_follow_the_image_size():
    for cfg in (GlowConfig(), RealNVPConfig(image_size=28, conditional=True, num_classes=10)):
        assert type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert [default_num_levels(s) for s in (4, 8, 28, 32, 64)] == [1, 2, 2, 3, 3]
    assert gv.create("realnvp").config.preprocessing == "logit"
    assert isinstance(gv.create("glow"), Glow) and isinstance(gv.create("realnvp"), RealNVP)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"num_levels": -1}, "num_levels"),
        ({"image_size": 28, "num_levels": 3}, "divisible by 2"),
        ({"steps_per_level": 0}, "steps_per_level"),
        ({"hidden_channels": 2}, "hidden_channels"),
        ({"preprocessing": "tanh"}, "preprocessing"),
        ({"logit_alpha": 0.5}, "logit_alpha"),
        ({"dequantization": "gaussian"}, "dequantization"),
        ({"temperature": 0.0}, "temperature"),
        ({"lr": 0.0}, "lr"),
        ({"conditional": True}, "num_classes"),
    ],
)
def test_invalid_config_values_raise_one_line_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field) as err:
        GlowConfig(**overrides)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- encode / decode
@pytest.mark.parametrize(
    "name, overrides",
    [("glow", {}), ("glow", {"lu_decomposed": False, "preprocessing": "scale"}), ("realnvp", {})],
)
def test_decode_inverts_encode_to_1e_4_in_float32(name, overrides):
    model = tiny_model(name, **overrides)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = model.encode(x)
    assert z.shape == (4, *model.latent_shape) == x.shape
    assert torch.allclose(model.decode(z), x, atol=1e-4)


# ----------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("name, overrides", [("glow", {}), ("realnvp", {"dequantization": "variational"})])
def test_log_likelihood_is_per_image_float64_nats_on_the_grid(name, overrides):
    model = tiny_model(name, **overrides)
    x = digits_like(3)
    ll = model.log_likelihood(x, seed=0)
    assert ll.shape == (3,) and ll.dtype == torch.float64 and torch.isfinite(ll).all()
    alone = model.log_likelihood(x[1:2], generator=seeding.image_generators(1, 0, start=1))
    assert torch.allclose(alone, ll[1:2], rtol=1e-5)
    other = [torch.Generator().manual_seed(100 + i) for i in range(3)]
    assert not torch.equal(model.log_likelihood(x, generator=other), ll)  # a fresh dequantisation draw
    # the loss is the same bound in bits per dimension
    bpd = model.loss(x, generator=seeding.image_generators(3, 0))["bpd"]
    assert bpd.item() == pytest.approx((-ll.mean() / (64 * torch.log(torch.tensor(2.0)))).item(), rel=1e-5)


def test_untrained_flow_bound_is_near_the_uniform_model():
    # identity flow and N(0, I) prior on logit-preprocessed noise: a few bits above log2(levels)
    model = gv.create(
        "glow", **TINY, preprocessing="scale", learned_prior=False, dequantization="uniform"
    ).eval()
    for p in model.flow.parameters():  # an identity flow: rotations become the identity matrix
        torch.nn.init.zeros_(p)
    bpd = model.loss(digits_like(64))["bpd"].item()
    # z0 = 2u - 1 under N(0, 1): E[-log N] over u uniform = 0.5 log 2 pi + 1/6, minus log 2 (dz0/du)
    expected = (
        0.5 * torch.log(torch.tensor(2 * torch.pi)) + 1 / 6 - torch.log(torch.tensor(2.0))
    ) / torch.log(torch.tensor(2.0)) + torch.log2(torch.tensor(17.0))
    assert bpd == pytest.approx(expected.item(), abs=0.05)


def test_loss_is_the_mean_of_per_image_losses_however_split():
    model = tiny_model("realnvp", dequantization="variational")
    x = digits_like(4)
    whole = model.loss(x, generator=seeding.image_generators(4, 9))["loss"]
    halves = [
        model.loss(x[i : i + 2], generator=seeding.image_generators(2, 9, start=i))["loss"] for i in (0, 2)
    ]
    assert torch.allclose(whole, sum(halves) / 2, atol=1e-5)
    whole.backward()
    assert model.dequantizer.net[0].weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- sampling
def test_image_k_is_the_same_alone_or_in_a_batch_and_temperature_matters():
    model = tiny_model("glow")
    batch = model.sample(5, seed=3, temperature=0.7)
    assert batch.shape == (5, 1, 8, 8) and batch.min() >= -1 and batch.max() <= 1
    for k in (0, 4):
        alone = model.sample(1, generator=seeding.image_generators(1, 3, start=k), temperature=0.7)
        assert torch.allclose(alone[0], batch[k], atol=1e-5)
    assert not torch.allclose(model.sample(5, seed=3), batch)  # default temperature 1
    z = seeding.randn((5, 1, 8, 8), seeding.image_generators(5, 3)) * 0.7
    assert torch.allclose(model.decode(z), batch, atol=1e-6)


def test_conditional_prior_uses_labels_and_samples_a_class_per_image():
    model = tiny_model("glow", conditional=True, num_classes=10)
    x = digits_like(4)
    assert torch.isfinite(model.loss(x, torch.tensor([0, 9, -1, 3]))["loss"])
    a, b = model.log_likelihood(x, y=torch.tensor([1, 1, 1, 1])), model.log_likelihood(x, y=2)
    assert not torch.allclose(a, b)
    assert not torch.allclose(model.sample(2, y=[1, 1], seed=0), model.sample(2, y=[7, 7], seed=0))
    assert torch.allclose(
        model.sample(3, seed=0)[1],
        model.sample(1, generator=seeding.image_generators(1, 0, start=1))[0],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampler": "ddim"}, "accepts: temperature"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"y": 3}, "unconditional"),
    ],
)
def test_bad_sampling_options_raise_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        tiny_model().sample(2, seed=0, **kwargs)
    assert "\n" not in str(err.value)


def test_describe_start_names_the_latent_and_its_first_values():
    model = tiny_model()
    line = model.describe_start(5, seed=0)
    first = seeding.randn((1, 1, 8, 8), seeding.image_generators(1, 0))[0, 0, 0, 0].item()
    assert "Gaussian latent (5, 1, 8, 8)" in line and f"{first:.4f}" in line


# ----------------------------------------------------------------------------- trainer hooks
def test_trainer_initialises_actnorm_from_data_once_and_the_flag_is_saved(tmp_path):
    out = tmp_path / "run"
    gv.train(
        "glow",
        data="digits",
        out=out,
        steps=1,
        sample_every=0,
        progress=False,
        model_config={"steps_per_level": 1, "hidden_channels": 8},
    )
    model = gv.load(out)
    norms = [m for m in model.modules() if type(m).__name__ == "ActNorm"]
    assert norms and all(bool(m.initialized) for m in norms)
    assert any(m.log_scale.abs().sum() > 0 for m in norms)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_from_data(torch.rand(16, 1, 8, 8) * 2 - 1)  # a second call is a no-op
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # a buffer: in model.safetensors and in the training state resume restores
    assert sum(k.endswith(".initialized") for k in model.state_dict()) == len(norms)
