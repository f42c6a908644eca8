"""Translation: inversion and SDEdit against an exact Gaussian denoiser, and the command end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gvtest import TINY_DDPM, run_cli

import genvision as gv
from genvision.apps import translation
from genvision.families.diffusion import samplers

TINY_NET = {k: v for k, v in TINY_DDPM.items() if k != "num_train_timesteps"}


def gaussian_flow_model():
    """A flow-matching model on 2x2 grey images whose denoiser is exact for N(mu, S): E[x0 | x]."""
    model = gv.create("flow-matching", image_size=4, channels=1, **TINY_NET)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, 16, dtype=torch.float64, generator=g)
    cov = a @ a.T / 400 + 0.02 * torch.eye(16, dtype=torch.float64)  # sd about 0.25: no clipping
    mu = torch.linspace(-0.1, 0.1, 16, dtype=torch.float64)

    def denoise_x0(x, sigma, y=None):
        sigma = float(torch.as_tensor(sigma, dtype=torch.float64).flatten()[0])
        xs = x.reshape(len(x), 16).double() * math.sqrt(1 + sigma**2)
        gain = cov @ torch.linalg.inv(cov + sigma**2 * torch.eye(16, dtype=torch.float64))
        return (mu + (xs - mu) @ gain.T).reshape(x.shape).to(x.dtype)

    model.denoise_x0 = denoise_x0
    return model, mu, cov


def test_inversion_of_an_exact_gaussian_model_reconstructs_the_image():
    model, mu, cov = gaussian_flow_model()
    x = (
        mu
        + torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        @ torch.linalg.cholesky(cov).T
    )
    x = x.float().reshape(8, 1, 4, 4).clamp(-1, 1)
    exact = translation.invert(model, x, steps=50, iterations=3)
    plain = translation.invert(model, x, steps=50, iterations=0)
    assert exact["psnr_db"].min() > 60, exact["psnr_db"]  # the sampler's own steps, solved backwards
    assert exact["psnr_db"].mean() > plain["psnr_db"].mean() + 10  # naive DDIM inversion drifts
    # the noise is the ODE's: whitened, it looks like a standard normal draw
    assert 0.6 < exact["noise"].std() < 1.4


def test_sdedit_keeps_the_input_at_strength_0_and_ignores_it_at_1():
    model, mu, cov = gaussian_flow_model()
    far = torch.full((2000, 1, 4, 4), 0.9)  # far from the model's mean
    same = translation.translate(model, far[:4], 0.0)
    assert torch.equal(same, far[:4])
    fresh = (
        translation.translate(model, far, 1.0, steps=30, sampler="heun", batch_size=2000)
        .reshape(2000, 16)
        .double()
    )
    assert (fresh.mean(0) - mu).abs().max() < 0.03  # the model's distribution, not the input's
    assert (torch.cov(fresh.T) - cov).abs().max() < 0.02
    half = (
        translation.translate(model, far, 0.5, steps=30, sampler="heun", batch_size=2000)
        .reshape(2000, 16)
        .double()
    )
    assert (half.mean(0) - 0.9).abs().mean() < (fresh.mean(0) - 0.9).abs().mean()  # nearer the input


def test_strength_picks_the_tail_of_the_grid():
    levels = samplers.flow_levels(0.999, 10)
    assert torch.equal(samplers.from_strength(levels, 1.0), levels)
    assert samplers.from_strength(levels, 0.0).tolist() == [0.0]
    half = samplers.from_strength(levels, 0.5)
    t = half / (1 + half)
    assert t[0] <= 0.5 * 0.999 + 1e-9 and len(half) < len(levels)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tr") / "fm"
    gv.train(
        "flow-matching",
        data="digits",
        out=out,
        steps=20,
        batch_size=16,
        model_config=TINY_NET,
        progress=False,
        sample_every=0,
        save_every=0,
    )
    return out


def test_translate_and_invert_through_the_cli(tiny_run, tmp_path, capsys):
    from genvision import cli, data

    x = data.load("digits", "test").batch(torch.arange(5))[0]
    arr = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "in.npz", images=arr)
    proc = run_cli(
        "translate",
        tiny_run,
        "--input",
        f"npz:{tmp_path / 'in.npz'}",
        "--strength",
        "0.5",
        "--out",
        tmp_path / "t.png",
    )
    assert "strength 0.5" in proc.stdout and (tmp_path / "t_compare.png").is_file()
    proc = run_cli(
        "translate",
        tiny_run,
        "--input",
        f"npz:{tmp_path / 'in.npz'}",
        "--invert",
        "--out",
        tmp_path / "noise.npz",
    )
    with np.load(tmp_path / "noise.npz") as f:
        assert f["noise"].shape == (5, 1, 8, 8) and f["reconstruction"].shape == (5, 8, 8, 1)
        assert "reconstruction PSNR" in proc.stdout and float(f["psnr_db"].mean()) > 30
    cases = [
        (("--invert", "--out", tmp_path / "n.png"), "--invert writes the noise"),
        (("--strength", "0.5", "--invert", "--out", tmp_path / "n.npz"), "one of them"),
        (("--strength", "1.5", "--out", tmp_path / "n.png"), "strength must be in [0, 1]"),
    ]
    for args, words in cases:  # in-process: the same main() the subprocesses above ran
        code = cli.main(
            ["translate", str(tiny_run), "--input", f"npz:{tmp_path / 'in.npz'}", *map(str, args)]
        )
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_models_that_cannot_translate_say_which_can():
    with pytest.raises(ValueError, match="diffusion-family models do"):
        translation.translate(gv.create("vae"), torch.zeros(1, 1, 8, 8), 0.5)
