"""The hierarchical VAE (``hvae``): its bound's terms, the IWAE bound, free bits, temperature, and a
short training on digits against its calibrated bar.

One run is shared by the module: hvae on digits for :data:`STEPS` steps of :data:`BATCH` images,
a few seconds of CPU.
The maths tests use an untrained model of the registry's tiny size.
"""

from __future__ import annotations

import math

import pytest
import torch
from gvtest import one_thread

import genvision as gv
from genvision import data, seeding
from genvision.families.vae import hierarchical, losses
from genvision.families.vae.hierarchical import HVAEConfig
from genvision.metrics.baseline import independent_pixel_bpd

STEPS, BATCH = 300, 64
#: the trained model's test bits/dim must beat the independent-pixel baseline by this much;
#: calibration: tests/calibration.json, "hvae"
BPD_MARGIN = 0.25
#: nats of KL each latent layer must carry on the test digits (same calibration)
LAYER_KL = 0.2
TRAIN_CONFIG = {"kl_warmup_steps": 100}


@pytest.fixture(autouse=True)
def _one_thread_here():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def digits():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    x, _ = test.batch(torch.arange(len(test)))
    return {"train": train, "test": test, "x": x}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with one_thread():
        out = tmp_path_factory.mktemp("hvae") / "run"
        options = {"progress": False, "sample_every": 0, "model_config": TRAIN_CONFIG}
        gv.train("hvae", data="digits", out=out, steps=STEPS, batch_size=BATCH, **options)
    return gv.load(out)


def tiny(**overrides):
    """An untrained hvae with its prior and posterior heads perturbed away from their zero start."""
    torch.manual_seed(0)
    model = gv.create("hvae", levels=17, base_channels=8, latent_channels=2, **overrides)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def digit_batch(n=16):
    x, _ = data.load("digits", "test").batch(torch.arange(n))
    return x


# ----------------------------------------------------------------------------- the bound's terms
def test_kl_between_normals_matches_a_monte_carlo_estimate_and_the_standard_case():
    g = torch.Generator().manual_seed(0)
    mq, lq, mp, lp = (torch.randn(1, 5, generator=g, dtype=torch.float64) for _ in range(4))
    analytic = losses.kl_normal(mq, lq, mp, lp).sum().item()
    z = mq + torch.exp(0.5 * lq) * torch.randn(400_000, 5, generator=g, dtype=torch.float64)
    ratio = losses.log_normal(z, mq, lq) - losses.log_normal(z, mp, lp)  # (N,) log q - log p
    mc, err = ratio.mean().item(), ratio.std().item() / math.sqrt(len(z))
    assert abs(mc - analytic) < 4 * err, (mc, analytic, err)
    zero = torch.zeros_like(mq)
    assert torch.allclose(losses.kl_normal(mq, lq, zero, zero), losses.kl_to_standard_normal(mq, lq))


def test_elbo_is_the_reconstruction_plus_the_per_layer_kl_terms():
    model = tiny().eval()
    x = digit_batch()
    gens = seeding.image_generators(len(x), 3)
    terms = model.loss(x, generator=gens)
    kls = [terms[f"kl_{i}"] for i in range(model.config.num_layers)]
    assert f"kl_{model.config.num_layers}" not in terms and all(k > 0 for k in kls)
    assert torch.allclose(terms["kl"], sum(kls), rtol=1e-5)
    assert torch.allclose(-terms["elbo"], terms["recon"] + sum(kls), rtol=1e-5)
    assert torch.allclose(terms["loss"], -terms["elbo"], rtol=1e-5)  # eval mode: the true bound
    elbo = model.elbo(x, seed=3)  # the same per-image draws
    assert elbo.dtype == torch.float64 and elbo.shape == (len(x),)
    assert elbo.mean().item() == pytest.approx(terms["elbo"].item(), rel=1e-5)


def test_iwae_with_one_sample_is_the_elbo_at_the_same_draw():
    model = tiny().eval()
    x = digit_batch(64)
    gens = seeding.image_generators(len(x), 5)
    with torch.no_grad():
        t = model.bound_terms(x, gens)
    k1 = model.log_likelihood(x, k=1, seed=5)
    # the same z: log p(x | z) minus the one-sample KL estimate at that z, to float precision
    assert torch.allclose(k1, (t["log_px"] - t["log_ratio"].sum(1)).double(), atol=1e-3)
    # with the exact KL in place of its one-sample estimate: equal in expectation
    diff = k1 - model.elbo(x, seed=5)
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(len(x)) + 1e-6


def test_iwae_bound_rises_above_the_elbo_with_more_samples(trained, digits):
    x = digits["x"][:200]
    elbo = trained.elbo(x).mean().item()
    k10 = trained.log_likelihood(x, k=10).mean().item()
    k50 = trained.log_likelihood(x, k=50).mean().item()
    assert elbo < k10 < k50, (elbo, k10, k50)


def test_iwae_bound_depends_on_neither_the_batch_nor_the_chunking(monkeypatch):
    model = tiny().eval()
    x = digit_batch(6)
    whole = model.log_likelihood(x, k=12, seed=4)
    monkeypatch.setattr(hierarchical, "IWAE_PIXELS", 3 * 64)  # 3 rows at a time: chunks of K
    assert torch.allclose(model.log_likelihood(x[:1], k=12, seed=4), whole[:1], atol=1e-4)
    part = model.log_likelihood(x[2:], k=12, generator=seeding.image_generators(4, 4, start=2))
    assert torch.allclose(part, whole[2:], atol=1e-4)


# ----------------------------------------------------------------------------- training terms
def test_free_bits_hold_each_layer_at_its_floor_without_kl_gradient():
    model = tiny(free_bits=1000.0, kl_warmup_steps=0).train()  # every layer far under the floor
    x = digit_batch(8)
    terms = model.loss(x, generator=seeding.image_generators(8, 1))
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 1000.0 * model.config.num_layers)
    terms["loss"].backward()
    with_floor = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    t = model.bound_terms(x, seeding.image_generators(8, 1))
    (-t["log_px"].mean()).backward()  # the reconstruction alone
    for a, p in zip(with_floor, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)
    # the same weights without the floor: the KL pulls on the posterior heads
    free = tiny(kl_warmup_steps=0).train()
    free.loss(x, generator=seeding.image_generators(8, 1))["loss"].backward()
    for layer, floored in zip(free.decoder.layers, model.decoder.layers):
        assert not torch.allclose(layer.posterior.weight.grad, floored.posterior.weight.grad, atol=1e-6)


def test_kl_warm_up_ramps_the_weight_and_the_step_is_saved(tmp_path):
    from genvision.model_dir import save_model_dir

    model = tiny(kl_warmup_steps=10, beta=1.0)
    assert model.kl_weight() == pytest.approx(0.1)
    for _ in range(4):
        model.after_step("main")
    assert model.kl_weight() == pytest.approx(0.5)
    assert model.train().loss(digit_batch(4))["kl_weight"].item() == pytest.approx(0.5)
    save_model_dir(model, tmp_path / "m")
    assert gv.load(tmp_path / "m").kl_weight() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- sampling
def test_temperature_zero_is_deterministic_and_below_the_top_it_follows_the_top():
    model = tiny().eval()
    assert torch.equal(model.sample(3, seed=0, temperature=0), model.sample(3, seed=1, temperature=0))
    assert not torch.equal(model.sample(3, seed=0), model.sample(3, seed=1))
    a = model.draw_noise(4, seeding.image_generators(4, 0))
    b = model.draw_noise(4, seeding.image_generators(4, 1))
    below_top = [1.0] + [0.0] * (model.config.num_layers - 1)  # the top drawn, the rest at their means
    same_top = [a[0]] + b[1:]
    assert torch.equal(
        model.decode_noise(a, temperature=below_top), model.decode_noise(same_top, temperature=below_top)
    )
    assert not torch.equal(
        model.decode_noise(a, temperature=below_top), model.decode_noise(b, temperature=below_top)
    )
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, seed=0, temperature=-1.0)


def test_samples_are_per_image_and_on_the_grid():
    model = tiny().eval()
    batch = model.sample(5, seed=2, pixels="sample")
    alone = model.sample(1, generator=seeding.image_generators(1, 2, start=3), pixels="sample")
    assert torch.equal(alone[0], batch[3])
    levels = (batch + 1) * 8
    assert torch.allclose(levels, levels.round(), atol=1e-5)  # on the 17-level grid
    with pytest.raises(ValueError, match="accepts: temperature, pixels"):
        model.sample(2, seed=0, sampler="ddim")


def test_layer_picture_redraws_one_layer_per_row(trained):
    columns, layers = 5, trained.config.num_layers
    picture = trained.layer_picture(columns, seed=0).view(layers, columns, 1, 8, 8)
    assert torch.allclose(picture[:, 0], picture[:1, 0].expand(layers, -1, -1, -1))  # image 0 in every row
    assert torch.allclose(picture[0, 0], trained.sample(1, seed=0)[0], atol=1e-5)
    spread = (picture - picture[:, :1]).abs().flatten(2).mean(2)[:, 1:].mean(1)  # (layers,)
    assert (spread > 0).all()


# ----------------------------------------------------------------------------- quality
def test_short_training_beats_the_independent_pixel_model_and_uses_every_layer(trained, digits):
    ll = trained.log_likelihood(digits["x"], k=100)  # IWAE bound, nats per image
    bpd = float(-ll.mean() / (64 * math.log(2)))
    baseline = independent_pixel_bpd(digits["train"], digits["test"])
    assert bpd <= baseline - BPD_MARGIN, (bpd, baseline)
    with torch.no_grad():
        kl = trained.bound_terms(digits["x"], seeding.image_generators(len(digits["x"]), 0))["kl"].mean(0)
    assert (kl >= LAYER_KL).all(), kl  # no layer collapsed onto its prior


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"num_layers": 1}, "num_layers"),
        ({"num_layers": 7}, "num_layers"),
        ({"latent_channels": 0}, "latent_channels"),
        ({"free_bits": -1.0}, "free_bits"),
        ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
        ({"likelihood": "mse"}, "mse"),
        ({"iwae_samples": 0}, "iwae_samples"),
    ],
)
def test_bad_config_values_raise_one_line_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field) as err:
        HVAEConfig(**overrides)
    assert "\n" not in str(err.value)


def test_latent_sides_halve_from_the_image_top_first():
    assert gv.create("hvae", image_size=8, levels=17, base_channels=4).sides == [1, 2, 4]
    assert gv.create("hvae", image_size=28, levels=2, base_channels=4).sides == [2, 4, 7]
    assert gv.create("hvae", image_size=28, levels=2, base_channels=4, num_layers=2).sides == [4, 7]
    assert HVAEConfig(levels=2).likelihood == "bernoulli" and HVAEConfig(levels=256).likelihood == "logistic"
