"""The latent route of restoration: the MAP search against its closed form on a linear-Gaussian
decoder, and a small VAE restoring through ``genvision.apps.restore`` with the measurement kept."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

import genvision as gv
from genvision.apps import latent_fit, restore
from genvision.data import degrade

QUIET = {"progress": False, "sample_every": 0}


class LinearDecoder:
    """x = W z on 4x4 grey images, z ~ N(0, I_6): the MAP latent of a linear measurement is closed-form."""

    registry_name = "linear"
    device = torch.device("cpu")
    latent_shape = (6,)
    config = SimpleNamespace(image_size=4, channels=1, conditional=False)

    def __init__(self):
        self.w = torch.randn(16, 6, generator=torch.Generator().manual_seed(1)) * 0.3

    @torch.no_grad()
    def decode(self, z):
        return (z @ self.w.T).view(-1, 1, 4, 4)

    def sample(self, n, y=None, seed=None, generator=None):
        raise NotImplementedError

    def eval_mode(self):
        return contextlib.nullcontext()


@pytest.mark.parametrize("task", ["inpaint", "sr"])
def test_search_finds_the_closed_form_map_latent(task):
    model, noise = LinearDecoder(), 0.2
    x = model.decode(torch.randn(3, 6, generator=torch.Generator().manual_seed(2)))
    mask = degrade.center_mask(3, 4)
    meas = degrade.degrade(task, x, mask=mask, scale=2)
    # A as a matrix on the 16 pixels, then z* = (K^T K / s^2 + I)^-1 K^T y / s^2 with K = A W
    eye = torch.eye(16).view(16, 1, 4, 4)
    rows = []
    for i in range(3):
        a = degrade.degrade(task, eye, mask=mask[i : i + 1].expand(16, -1, -1, -1), scale=2).flatten(1).T
        k = a.double() @ model.w.double()
        y = meas[i].flatten().double()
        z = torch.linalg.solve(k.T @ k / noise**2 + torch.eye(6, dtype=torch.float64), k.T @ y / noise**2)
        rows.append((model.w.double() @ z).view(1, 4, 4))
    want = torch.stack(rows).float()
    got = latent_fit.fit_latent(
        model, task, meas, mask=mask, scale=2, steps=1500, lr=0.02, starts=2, noise=noise
    )
    assert (got - want).abs().max() < 2e-3, (got - want).abs().max()
    assert (x - want).abs().max() > 0.01  # the prior pulls the estimate: the test can tell them apart


def test_a_small_vae_inpaints_by_latent_search_and_keeps_every_known_pixel(tmp_path):
    from genvision import data

    x = data.load("digits", "test").batch(torch.arange(8))[0]
    run = gv.train("vae", data="digits", out=tmp_path / "vae", steps=150, seed=0, **QUIET)
    model = gv.load(run)
    mask = degrade.center_mask(8, 8)
    assert restore.route_of(model, "inpaint") == "zero-shot-latent"
    out = restore.inpaint(model, x, mask, steps=60)
    assert torch.allclose(out * (1 - mask), x * (1 - mask), atol=1e-6)
    # the search beats the latent model's own mode (a zero latent) on the hole
    err = ((out - x) * mask).pow(2).sum() / mask.sum() / 8
    mode = model.decode(torch.zeros(8, *model.latent_shape))
    assert err < ((mode - x) * mask).pow(2).sum() / mask.sum() / 8
    with pytest.raises(ValueError, match="takes the options steps"):
        restore.inpaint(model, x, mask, sampler="ddim")
