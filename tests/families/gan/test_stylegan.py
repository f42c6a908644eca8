"""StyleGAN: modulated convolution, demodulation, truncation, style mixing, seeds, a short training.

The maths is checked against independent references (a plain convolution per image, the variance
of a demodulated convolution); style mixing and truncation against what ``sample`` draws; the
training against a bar calibrated on several training seeds (tests/calibration.json, "stylegan").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gvtest import one_thread
from PIL import Image

import genvision as gv
from genvision import data as gdata
from genvision import registry, seeding
from genvision.cli import main
from genvision.families.base import sample_in_batches
from genvision.families.gan.stylegan_nets import modulated_conv2d
from genvision.metrics import judges
from genvision.metrics.baseline import independent_pixel_samples
from genvision.metrics.evaluate import domain_fid, quantise
from genvision.model_dir import save_model_dir
from genvision.sampling import read_record

TINY = {"latent_dim": 8, "mapping_layers": 2, "base_channels": 8}
#: the short training of stylegan_run (tests/calibrate_quality.py runs the same)
STEPS = 200
TRAIN = {"monitor_every": 100}
#: bars from five training seeds (tests/calibration.json, "stylegan")
FID_BAR = 150.0
ENTROPY_BAR = 2.1


def tiny(**overrides):
    torch.manual_seed(0)
    return registry.create("stylegan", **{**TINY, **overrides})


def noisy(model):
    """Give every noise input a visible strength and w_avg a value, so tests see both."""
    with torch.no_grad():
        for layer in model.synthesis.convs:
            layer.noise_strength.fill_(0.5)
        model.w_avg.normal_(generator=torch.Generator().manual_seed(1))
    return model


# ----------------------------------------------------------------------------- maths
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_convolution_equals_a_plain_convolution_with_per_image_scaled_weights(fused, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.rand(3, 5, generator=g, dtype=torch.float64) * 2 + 0.1
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, fused=fused)
    for b in range(3):
        w = weight * styles[b][None, :, None, None]  # (O, I, 3, 3): image b's own weight
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        reference = F.conv2d(x[b : b + 1], w, padding=1)
        assert torch.allclose(out[b : b + 1], reference, atol=1e-6, rtol=0), (
            b,
            (out[b] - reference).abs().max(),
        )


def test_demodulation_gives_unit_output_variance_for_unit_variance_input():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 66, 66, generator=g)
    weight = torch.randn(8, 16, 3, 3, generator=g) * torch.rand(8, 1, 1, 1, generator=g) * 5
    styles = torch.rand(2, 16, generator=g) * 3 + 0.2  # far from 1 on purpose
    out = modulated_conv2d(x, weight, styles, padding=0)  # (2, 8, 64, 64): no border pixels
    var = out.var(dim=(2, 3))  # (2, 8) per image and output channel, 4096 pixels each
    # each output pixel is a unit-norm combination of 144 independent N(0, 1) inputs, so its
    # variance is 1; neighbouring pixels share inputs, so the estimate wobbles by a few percent
    assert (var - 1).abs().max() < 0.12 and abs(var.mean() - 1) < 0.04, var
    plain = modulated_conv2d(x, weight, styles, padding=0, demodulate=False).var(dim=(2, 3))
    assert (plain - 1).abs().max() > 1  # without demodulation the styles set the scale


# ----------------------------------------------------------------------------- truncation
def test_truncation_psi_zero_returns_the_mean_w_and_one_leaves_w():
    model = noisy(tiny())
    w = torch.randn(4, 8)
    assert torch.equal(model.truncate(w, 0.0), model.w_avg.expand(4, -1))
    assert torch.equal(model.truncate(w, 1.0), w)
    assert torch.allclose(model.truncate(w, 0.5), (w + model.w_avg) / 2)
    # psi = 0: every image is the mean w's, so with the noise inputs off all images are one image
    for layer in model.synthesis.convs:
        layer.noise_strength.data.zero_()
    x = model.sample(4, seed=3, truncation=0.0)
    mean_image = model.synthesis(model.w_avg.expand(1, model.num_ws, -1), [None] * 3).clamp(-1, 1)
    assert torch.allclose(x, mean_image.expand(4, -1, -1, -1), atol=1e-6)
    with pytest.raises(ValueError, match="truncation"):
        model.sample(2, seed=0, truncation=1.5)


# ----------------------------------------------------------------------------- style mixing
def test_style_mixing_with_crossover_0_or_full_gives_the_pure_b_or_a_images():
    model = noisy(tiny()).eval()
    a = [seeding.image_seed(5, k) for k in range(2)]
    b = [seeding.image_seed(6, k) for k in range(3)]
    pure_a, pure_b = model.sample(2, seed=5), model.sample(3, seed=6)
    only_b = model.style_mix(a, b, 0)  # (2, 3, C, H, W)
    only_a = model.style_mix(a, b, model.num_ws)
    assert only_b.shape == (2, 3, 1, 8, 8)
    for i in range(2):
        for j in range(3):
            assert torch.allclose(only_b[i, j], pure_b[j], atol=1e-5)
            assert torch.allclose(only_a[i, j], pure_a[i], atol=1e-5)
    mixed = model.style_mix(a, b, 2)  # coarse from A, fine from B: neither
    assert not torch.allclose(mixed[0, 0], pure_a[0], atol=1e-3)
    assert not torch.allclose(mixed[0, 0], pure_b[0], atol=1e-3)
    with pytest.raises(ValueError, match="crossover must be an integer in 0..4"):
        model.style_mix(a, b, 5)
    picture = model.style_mix_picture(5, 6, 2, 3, 2)  # pure row and column around the mixes
    assert picture.shape == (3 * 4, 1, 8, 8)
    assert torch.allclose(picture[1:4], pure_b, atol=1e-5) and torch.allclose(
        picture[4], pure_a[0], atol=1e-5
    )


def test_image_k_depends_only_on_seed_and_k():
    model = noisy(tiny())
    whole = model.sample(5, seed=7)
    # float32 convolutions sum in an order that can depend on the batch size (1.2e-6 apart on an
    # AMD EPYC): 1e-5 allows that, a wrong noise draw moves images by O(1)
    assert torch.allclose(model.sample(2, seed=7), whole[:2], atol=1e-5)
    assert torch.allclose(sample_in_batches(model, 5, seed=7, batch_size=2), whole, atol=1e-5)
    assert not torch.allclose(model.sample(5, seed=8), whole)
    # and the noise inputs matter (the image is not fixed by z alone)
    for layer in model.synthesis.convs:
        layer.noise_strength.data.zero_()
    assert not torch.allclose(model.sample(5, seed=7), whole, atol=1e-3)


# ----------------------------------------------------------------------------- training contract
def test_phases_train_discriminator_then_mapping_and_synthesis_and_ema_covers_the_generator():
    model = tiny()
    d, g = model.phases
    assert (d.name, g.name) == ("discriminator", "generator")
    assert {id(p) for p in d.params} == {id(p) for p in model.discriminator.parameters()}
    generator = [*model.mapping.parameters(), *model.synthesis.parameters()]
    assert {id(p) for p in g.params} == {id(p) for p in generator}
    assert [id(p) for p in model.ema_parameters()] == [id(p) for p in generator]
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    for phase in (d, g):
        model.zero_grad(set_to_none=True)
        model.loss(x, phase=phase.name, generator=seeding.image_generators(4, 0))["loss"].backward()
        own = {id(p) for p in phase.params}
        assert all(p.grad is not None for p in phase.params), phase.name
        assert all(p.grad is None for p in model.parameters() if id(p) not in own), phase.name


def test_loss_changes_no_state_and_after_step_tracks_the_mean_w_and_lazy_regularisers():
    model = tiny(r1_every=2, pl_weight=2.0, pl_every=2)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    gens = lambda: seeding.image_generators(4, 0)  # noqa: E731
    state = {k: v.clone() for k, v in model.state_dict().items()}
    d0, g0 = (
        model.loss(x, phase="discriminator", generator=gens()),
        model.loss(x, phase="generator", generator=gens()),
    )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # a loss call is free
    assert "r1" in d0 and "pl" in g0  # step 0: both lazy regularisers are due
    model.after_step("discriminator")
    model.after_step("generator")
    z = seeding.randn((4, 8), gens())
    w = model.mapping(z).detach().mean(dim=0)
    assert int(model.step) == 1 and torch.allclose(model.w_avg, w, atol=1e-6)  # first step: set outright
    assert float(model.pl_mean) > 0
    d1, g1 = (
        model.loss(x, phase="discriminator", generator=gens()),
        model.loss(x, phase="generator", generator=gens()),
    )
    assert "r1" not in d1 and "pl" not in g1  # step 1: not due


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"style_mixing": 1.5}, "style_mixing must be in"),
        ({"r1_every": 0}, "r1_every must be >= 1"),
        ({"pl_decay": 0.0}, "pl_decay"),
        ({"loss": "lsgan"}, "loss must be one of"),
        ({"loss": "wgan-gp"}, "loss must be one of"),
        ({"betas_g": (0.0, 1.0)}, "betas_g"),
        ({"truncation": -0.1}, "truncation"),
        ({"conditional": True, "num_classes": 10}, "no class-conditional variant"),
    ],
)
def test_broken_config_fails_with_a_one_line_error(overrides, words):
    with pytest.raises(ValueError, match=words) as err:
        registry.create("stylegan", **{**TINY, **overrides})
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stylegan") / "run"
    with one_thread():
        gv.train("stylegan", data="digits", out=out, steps=STEPS, progress=False, sample_every=0, **TRAIN)
    return out


def _entropy(labels: torch.Tensor) -> float:
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def test_short_stylegan_on_digits_beats_its_calibrated_bar_and_covers_the_classes(stylegan_run):
    train, test = gdata.load("digits", "train"), gdata.load("digits", "test")
    model = gv.load(stylegan_run)
    samples = torch.cat([model.sample(500, seed=0), model.sample(500, seed=1)])
    fid, _ = domain_fid(samples, train, test)
    base, _ = domain_fid(independent_pixel_samples(train, 1000, seed=0), train, test)
    entropy = _entropy(judges.get_judge(train, test).logits(quantise(samples, train.levels)).argmax(dim=1))
    assert fid <= FID_BAR < base / 1.5, (fid, base)
    assert entropy >= ENTROPY_BAR, entropy
    report = (stylegan_run / "report.md").read_text()
    assert "style_mix.png" in report and (stylegan_run / "style_mix.png").is_file()


def test_style_mix_through_the_cli_and_a_one_line_error_for_other_models(stylegan_run, tmp_path, capsys):
    args = ["sample", str(stylegan_run), "--style-mix", "1,2", "--crossover", "2", "--n", "9"]
    assert main([*args, "--out", str(tmp_path / "m.png")]) == 0
    assert "crossover 2 of 4" in capsys.readouterr().out
    record = read_record(tmp_path / "m.png")
    assert record["style_mix"] == {"seed_a": 1, "seed_b": 2, "crossover": 2, "num_ws": 4}
    picture = np.asarray(Image.open(tmp_path / "m.png"))
    assert picture.shape[:2] == (
        4 * 33 + 1,
        4 * 33 + 1,
    )  # (3 + 1) x (3 + 1) cells, 8 px shown at 32, 1 px gaps
    other = tmp_path / "dcgan"
    save_model_dir(registry.create("dcgan", latent_dim=8, base_channels=8), other)
    assert main(["sample", str(other), "--style-mix", "1,2", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stylegan" in err and not (tmp_path / "x.png").exists()
