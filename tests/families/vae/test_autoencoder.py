"""The KL-regularised autoencoder (stage 1 of latent diffusion): shapes, config, loss, training.

One short training run on digits is shared by the file (the default config, ``STEPS`` steps, seed
0, seconds of CPU): the reconstruction bar, the loss curve and save / load use it.
"""

from __future__ import annotations

import json

import pytest
import torch
from gvtest import one_line, one_thread

import genvision as gv
from genvision import data, seeding
from genvision.families.vae.autoencoder import Autoencoder, AutoencoderConfig, kl_per_element
from genvision.model_dir import save_model_dir

STEPS = 300
#: mean absolute reconstruction error per pixel ([-1, 1] scale) on the digits test split
MAE_BAR = 0.17
SMALL = {"base_channels": 8}  # for the tests that build but do not train


@pytest.fixture(autouse=True)
def _one_thread_here():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def digits():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    x_train, _ = train.batch(torch.arange(len(train)))
    x_test, _ = test.batch(torch.arange(len(test)))
    return {"train": x_train, "test": x_test}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with one_thread():
        out = tmp_path_factory.mktemp("autoencoder") / "run"
        gv.train("autoencoder", data="digits", out=out, steps=STEPS, progress=False, sample_every=0)
    return out


def images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    "image_size, channels, downsample, side",
    [(8, 1, 1, 4), (8, 1, 2, 2), (28, 1, 2, 7), (32, 3, 2, 8), (32, 3, 3, 4)],
)
def test_encode_and_decode_map_images_to_latent_maps_of_side_size_over_2_to_the_downsample(
    image_size, channels, downsample, side
):
    model = gv.create("autoencoder", image_size=image_size, channels=channels, downsample=downsample, **SMALL)
    maps = 4 if channels == 1 else 8  # the default latent channels: 4 for grey, 8 for RGB
    assert model.latent_shape == model.noise_shape == (maps, side, side)
    x = images(2, channels, image_size)
    z = model.encode(x)
    assert z.shape == (2, maps, side, side)
    mean, logvar = model.encode_dist(x)
    assert torch.equal(mean, z) and logvar.shape == z.shape
    out = model.decode(z)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(model.reconstruct(x), out)


def test_the_default_config_halves_twice_with_four_latent_channels_for_grey_and_eight_for_rgb():
    c = AutoencoderConfig(image_size=28)
    assert (c.latent_channels, c.downsample, c.recon_loss, c.disc_weight) == (4, 2, "l1", 0.0)
    assert gv.create("autoencoder", image_size=28).latent_shape == (4, 7, 7)
    assert gv.create("autoencoder", image_size=32, channels=3).latent_shape == (8, 8, 8)
    assert gv.create("autoencoder", image_size=32, channels=3, latent_channels=4).latent_shape == (4, 8, 8)
    assert gv.create("ldm", image_size=32, channels=3).config.latent_channels == 8
    # a two-stage run gives colour's decoder a longer stage 1
    assert gv.create("ldm", image_size=28).config.ae_fraction == 0.25
    assert gv.create("ldm", image_size=32, channels=3).config.ae_fraction == 0.4
    assert gv.create("ldm", image_size=32, channels=3, ae_fraction=0.3).config.ae_fraction == 0.3


def test_encode_and_decode_refuse_the_wrong_shapes_in_one_line():
    model = gv.create("autoencoder", **SMALL)
    with pytest.raises(ValueError, match=r"decodes latents of shape \(B, 4, 2, 2\)") as e:
        model.decode(torch.zeros(1, 4, 4, 4))
    one_line(e)
    with pytest.raises(ValueError, match=r"encodes images of shape \(B, 1, 8, 8\)") as e:
        model.encode(torch.zeros(1, 3, 8, 8))
    one_line(e)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "values, match",
    [
        ({"latent_channels": 0}, "latent_channels must be >= 1"),
        ({"downsample": 0}, "downsample must be >= 1"),
        ({"downsample": 9}, "downsample must be <= 8"),
        ({"image_size": 28, "downsample": 3}, r"not divisible by 2\*\*downsample = 8; use downsample <= 2"),
        ({"base_channels": 0}, "base_channels must be >= 1"),
        ({"base_channels": 10**5}, "base_channels must be <= 1024"),
        ({"num_res_blocks": 0}, "num_res_blocks must be >= 1"),
        ({"kl_weight": -1e-6}, "kl_weight must be >= 0"),
        ({"recon_loss": "l2"}, "recon_loss must be one of l1, mse"),
        ({"disc_weight": -0.1}, "disc_weight must be >= 0"),
        ({"disc_start": -1}, "disc_start must be >= 0"),
        ({"lr": 0.0}, "lr must be > 0"),
    ],
)
def test_bad_config_values_are_one_line_errors_naming_the_field(values, match):
    with pytest.raises(ValueError, match=match) as e:
        gv.create("autoencoder", **values)
    one_line(e)


# ----------------------------------------------------------------------------- loss
def test_kl_per_element_is_the_closed_form_kl_to_a_standard_normal():
    gen = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(3, 4, 2, 2, generator=gen), torch.randn(3, 4, 2, 2, generator=gen)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(kl_per_element(mean, logvar), torch.distributions.kl_divergence(q, p), atol=1e-6)


def test_loss_is_the_reconstruction_plus_the_weighted_kl():
    model = gv.create("autoencoder", kl_weight=0.5, **SMALL)
    x = images(4, 1, 8)
    out = model.loss(x, generator=seeding.image_generators(4, 0))
    assert set(out) == {"loss", "recon", "kl"}
    assert all(torch.isfinite(v) for v in out.values())
    assert torch.allclose(out["loss"], out["recon"] + 0.5 * out["kl"])


def test_loss_of_a_batch_is_the_mean_of_its_images_each_drawn_from_its_own_generator():
    model = gv.create("autoencoder", **SMALL)
    x = images(4, 1, 8)
    whole = model.loss(x, generator=seeding.image_generators(4, 7))["loss"]
    again = model.loss(x, generator=seeding.image_generators(4, 7))["loss"]
    other = model.loss(x, generator=seeding.image_generators(4, 8))["loss"]
    halves = [model.loss(x[i : i + 2], generator=seeding.image_generators(2, 7, start=i)) for i in (0, 2)]
    assert torch.equal(whole, again) and not torch.equal(whole, other)
    assert torch.allclose(whole, (halves[0]["loss"] + halves[1]["loss"]) / 2, atol=1e-6)


def test_the_reconstruction_term_decodes_a_reparameterised_draw_l1_or_squared():
    torch.manual_seed(0)
    l1 = gv.create("autoencoder", kl_weight=0.0, **SMALL)
    mse = gv.create("autoencoder", kl_weight=0.0, recon_loss="mse", **SMALL)
    mse.load_state_dict(l1.state_dict())
    x = images(4, 1, 8)
    mean, logvar = l1.encode_dist(x)
    eps = seeding.randn(mean.shape, seeding.image_generators(4, 0))
    with torch.no_grad():
        x_hat = l1.decoder(mean + torch.exp(0.5 * logvar) * eps)  # z = mean + std eps, image i's eps its own
    got_l1 = l1.loss(x, generator=seeding.image_generators(4, 0))["recon"]
    got_mse = mse.loss(x, generator=seeding.image_generators(4, 0))["recon"]
    assert torch.allclose(got_l1, (x_hat - x).abs().mean(), atol=1e-6)
    assert torch.allclose(got_mse, (x_hat - x).square().mean(), atol=1e-6)


# ----------------------------------------------------------------------------- sampling
def test_samples_decode_standard_normal_latents_one_generator_per_image():
    model = gv.create("autoencoder", **SMALL)
    four, two = model.sample(4, seed=3), model.sample(2, seed=3)
    assert four.shape == (4, 1, 8, 8) and four.min() >= -1 and four.max() <= 1
    assert torch.equal(four[:2], two)  # image k depends only on (seed, k)
    z = seeding.randn((4, *model.latent_shape), seeding.image_generators(4, 3))
    assert torch.equal(four, model.decode(z))
    with pytest.raises(ValueError, match="does not take sampling option"):
        model.sample(2, seed=0, temperature=0.5)


# ----------------------------------------------------------------------------- discriminator
def test_without_disc_weight_there_is_no_discriminator_and_one_phase():
    model = gv.create("autoencoder", **SMALL)
    assert model.discriminator is None and [p.name for p in model.phases] == ["main"]
    assert not any("discriminator" in k for k in model.state_dict())
    with pytest.raises(ValueError, match="unknown phase 'disc'"):
        model.loss(images(2, 1, 8), phase="disc")


def test_the_discriminator_is_off_before_disc_start_then_trains_in_its_own_phase(tmp_path, digits):
    model = gv.create("autoencoder", disc_weight=0.5, disc_start=3, levels=17, **SMALL)
    main, disc = model.phases
    assert (main.name, disc.name) == ("main", "disc")
    d_ids = {id(p) for p in model.discriminator.parameters()}
    assert {id(p) for p in disc.params} == d_ids and not d_ids & {id(p) for p in main.params}
    x, gens = digits["train"][:8], seeding.image_generators(8, 0)
    before = model.loss(x, phase="disc", generator=gens)
    assert before["d_loss"] == 0 and model.loss(x, generator=gens)["g_adv"] == 0
    d_start = {k: v.clone() for k, v in model.discriminator.state_dict().items()}

    out = gv.train(model, data="digits", out=tmp_path / "run", steps=10, progress=False, sample_every=0)
    assert int(model.step) == 10  # one count per training step, not per phase
    changed = [k for k, v in model.discriminator.state_dict().items() if not torch.equal(v, d_start[k])]
    assert changed
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if "disc/d_loss" in r][-1]
    assert last["disc/d_loss"] > 0 and last["main/g_adv"] != 0
    after = model.loss(x, phase="disc", generator=gens)
    assert after["loss"].requires_grad and after["d_loss"] > 0


# ----------------------------------------------------------------------------- training
def test_training_lowers_the_reconstruction_loss(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    recon = [r["recon"] for r in records if "recon" in r]
    assert len(recon) >= 10 and recon[-1] < 0.5 * recon[0], recon


def test_short_training_reconstructs_held_out_digits_far_better_than_the_mean_image(run, digits):
    """Mean absolute error per pixel of test-split reconstructions below ``MAE_BAR``.

    The bar was calibrated by training this run with seeds 0-4 and setting it at about 1.5x the
    worst seed's error (per-seed figures: docs/notes/vae.md). The input-free baseline, the training
    mean image, must be far worse, so the bar cannot pass without using the image.
    """
    model = gv.load(run)
    x = digits["test"]
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= -1 and r.max() <= 1
    mae = (r - x).abs().mean().item()
    baseline = (digits["train"].mean(0, keepdim=True) - x).abs().mean().item()
    assert mae < MAE_BAR < baseline / 2, (mae, baseline)


def test_a_run_directory_saves_and_reloads_to_identical_reconstructions(run, digits, tmp_path):
    model = gv.load(run)
    assert isinstance(model, Autoencoder) and int(model.step) == STEPS  # the counter is saved
    save_model_dir(model, tmp_path / "copy")
    again = gv.load(tmp_path / "copy")
    x = digits["test"][:32]
    assert torch.equal(model.reconstruct(x), again.reconstruct(x))
    assert torch.equal(model.sample(4, seed=0), again.sample(4, seed=0))
