"""Restoration: the baselines against hand-computed cases, RePaint's resampling against an exact
conditional Gaussian, and the commands end to end (exactness, routes, one-line errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gvtest import TINY_DDPM, run_cli

import genvision as gv
from genvision.apps import restore
from genvision.data import degrade
from genvision.families.diffusion import samplers


# ----------------------------------------------------------------------------- baselines
def test_harmonic_fill_reproduces_constant_and_linear_fields():
    const = torch.full((1, 1, 5, 5), 0.3)
    hole = torch.zeros(1, 1, 5, 5)
    hole[:, :, 1:4, 1:4] = 1
    filled = restore.harmonic_fill(torch.where(hole > 0, torch.tensor(-1.0), const), hole)
    assert torch.allclose(filled, const, atol=1e-6)  # a 3x3 hole in a constant border: constant
    ramp = torch.linspace(-1, 1, 9).view(1, 1, 1, 9).expand(1, 1, 9, 9)  # harmonic (linear)
    hole = torch.zeros(1, 1, 9, 9)
    hole[:, :, 2:7, 2:7] = 1
    assert torch.allclose(restore.harmonic_fill(ramp * (1 - hole), hole), ramp, atol=1e-4)


def test_mean_chroma_keeps_luma_and_learns_the_colour_of_each_brightness():
    red = torch.tensor([0.8, -0.6, -0.6]).view(1, 3, 1, 1).expand(4, 3, 4, 4)
    model = restore.MeanChroma(red)
    out = model(degrade.luminance(red))
    assert torch.allclose(degrade.luminance(out), degrade.luminance(red), atol=1e-6)
    assert torch.allclose(out, red, atol=1e-6)
    assert (
        restore.colourfulness(out) > 50
        and restore.colourfulness(out.mean(1, keepdim=True).expand(-1, 3, -1, -1)) < 1e-6
    )


def test_psnr_and_ssim_of_identical_and_different_images():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.allclose(restore.ssim(x, x), torch.ones(2, dtype=torch.float64))
    assert restore.psnr(x, x + 0.02).min() > 40 and restore.ssim(x, -x).max() < 0.5


# ----------------------------------------------------------------------------- the zero-shot route on a Gaussian
def _gaussian_inpainting(resample: int):
    """Exact-denoiser diffusion on N(mu, S) over 4 pixels, 2 of them given; samples of the other 2."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, dtype=torch.float64, generator=g)
    cov = a @ a.T / 4 + 0.1 * torch.eye(4, dtype=torch.float64)
    mu = torch.tensor([0.3, -0.2, 0.1, 0.5], dtype=torch.float64)

    def denoise(x, sigma):  # E[x0 | x] for the VP-scaled x at level sigma, exactly
        xs = x.reshape(len(x), 4) * math.sqrt(1 + sigma**2)
        gain = cov @ torch.linalg.inv(cov + sigma**2 * torch.eye(4, dtype=torch.float64))
        return (mu + (xs - mu) @ gain.T).reshape(x.shape)

    n = 6000
    mask = torch.tensor([0.0, 1, 0, 1], dtype=torch.float64).view(1, 1, 2, 2).expand(n, -1, -1, -1)
    y = torch.tensor([0.8, 0, -0.4, 0], dtype=torch.float64).view(1, 1, 2, 2).expand(n, -1, -1, -1)
    projected = lambda x, s: degrade.project("inpaint", denoise(x, s), y, mask=mask)  # noqa: E731
    x = torch.randn(n, 1, 2, 2, dtype=torch.float64, generator=g)
    out = samplers.repaint(projected, x, samplers.karras_levels(0.002, 80, 60), g, resample=resample)
    out = out.reshape(n, 4)
    u, k = [1, 3], [0, 2]
    gain = cov[u][:, k] @ torch.linalg.inv(cov[k][:, k])
    mean = mu[u] + gain @ (y[0].reshape(4)[k] - mu[k])
    var = torch.diagonal(cov[u][:, u] - gain @ cov[k][:, u])
    assert torch.equal(out[:, k], y[:, 0].reshape(n, 4)[:, k])  # given pixels exactly
    return (out[:, u].mean(0) - mean).abs().max().item(), (out[:, u].var(0) / var - 1).abs().max().item()


def test_resampling_brings_projected_sampling_to_the_exact_conditional_gaussian():
    mean_err0, var_err0 = _gaussian_inpainting(resample=0)
    mean_err, var_err = _gaussian_inpainting(resample=4)
    # the projection alone (DDNM-style) is an approximation: the missing pixels commit before the
    # given ones have told them much; RePaint's resampling closes most of the gap
    assert mean_err0 > 0.1 and mean_err < mean_err0 / 3
    assert mean_err < 0.06 and var_err < 0.2, (mean_err, var_err)


# ----------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("restore") / "ddpm"
    gv.train(
        "ddpm",
        data="digits",
        out=out,
        steps=30,
        model_config={**TINY_DDPM, "steps": 8},
        progress=False,
        sample_every=0,
    )
    return out


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    from genvision import data

    x = data.load("digits", "test").batch(torch.arange(6))[0]
    arr = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    path = tmp_path_factory.mktemp("inputs") / "six.npz"
    np.savez(path, images=arr)
    return path, torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def _images(path):
    with np.load(path) as f:
        return torch.from_numpy(f["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_zero_shot_inpaint_and_upscale_through_the_cli_keep_what_was_given(ddpm_run, originals, tmp_path):
    path, x = originals
    proc = run_cli(
        "inpaint", ddpm_run, "--input", f"npz:{path}", "--mask", "center", "--out", tmp_path / "in.npz"
    )
    assert "zero-shot route" in proc.stdout and (tmp_path / "in_compare.png").is_file()
    out, hole = _images(tmp_path / "in.npz"), degrade.center_mask(6, 8)
    assert torch.equal(out * (1 - hole), x * (1 - hole))  # every known pixel, exactly (8-bit in, 8-bit out)
    assert (out * hole - x * hole).abs().sum() > 0
    run_cli(
        "inpaint",
        ddpm_run,
        "--input",
        f"npz:{path}",
        "--mask",
        "box:1,1,3,3",
        "--resample",
        "1",
        "--out",
        tmp_path / "r.png",
    )
    proc = run_cli(
        "upscale", ddpm_run, "--input", f"npz:{path}", "--scale", "2", "--out", tmp_path / "up.npz"
    )
    up = _images(tmp_path / "up.npz")
    assert (
        degrade.downsample(up, 2) - degrade.downsample(x, 2)
    ).abs().mean() < 1 / 255 * 2  # [-1, 1]: 2/255 per level


def test_each_command_turns_bad_input_into_one_line(ddpm_run, originals, tmp_path):
    path, _ = originals
    big = tmp_path / "big.png"
    from PIL import Image

    Image.new("L", (16, 16)).save(big)
    cases = [
        (("colorize", ddpm_run, "--input", f"npz:{path}"), "needs a model of RGB images"),
        (("inpaint", ddpm_run, "--input", f"npz:{path}", "--mask", str(big)), "the mask"),
        (("inpaint", ddpm_run, "--input", str(big), "--mask", "center"), "--resize"),
        (("upscale", ddpm_run, "--input", f"npz:{path}", "--scale", "3"), "scale must be >= 2 and divide"),
        (("inpaint", ddpm_run, "--input", f"npz:{path}", "--mask", "box:7,7,4,4"), "inside the 8x8"),
    ]
    for args, words in cases:
        proc = run_cli(*args, "--out", tmp_path / "o.png", check=False)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (
            proc.stderr
        )
    assert not (tmp_path / "o.png").exists()


def test_models_that_cannot_restore_say_which_can(tmp_path):
    model = gv.create("vqvae")  # discrete codes: no latent search
    with pytest.raises(ValueError, match="diffusion-family models"):
        restore.inpaint(model, torch.zeros(1, 1, 8, 8), degrade.center_mask(1, 8))
