"""Latent tools (apps/interpolate.py): paths, capability routes, traversals, attributes, the command."""

from __future__ import annotations

import math

import pytest
import torch
from gvtest import run_cli
from PIL import Image
from torch import nn

import genvision as gv
from genvision import seeding
from genvision.apps import interpolate as li
from genvision.cli import main
from genvision.model_dir import save_model_dir


class Identity(nn.Module):
    """A stand-in latent model: z is the flattened image, decode reshapes (so results are exact)."""

    registry_name, family = "identity", "test"
    latent_shape = (64,)

    def __init__(self, with_encode: bool = True):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        if with_encode:
            self.encode = lambda x: x.flatten(1).clone()

    @property
    def device(self):
        return self.scale.device

    def decode(self, z):
        return (z * self.scale).view(-1, 1, 8, 8)


# ----------------------------------------------------------------------------- paths
def test_paths_start_and_end_at_the_two_latents():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for mode in li.MODES:
        path = li.latent_path(z0, z1, 5, mode)
        assert path.shape == (5, 3, 4)
        assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)


def test_slerp_keeps_the_norm_where_lerp_dips():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    mid_s = li.latent_path(z0, z1, 3, "spherical")[1]
    mid_l = li.latent_path(z0, z1, 3, "linear")[1]
    assert mid_s.norm().item() == pytest.approx(3.0, abs=1e-5)
    assert mid_l.norm().item() == pytest.approx(3.0 / math.sqrt(2), abs=1e-5)
    assert torch.allclose(li.slerp(z0, z0 * 2, torch.tensor([0.5])), li.lerp(z0, z0 * 2, torch.tensor([0.5])))


def test_bad_paths_are_refused():
    z = torch.zeros(4)
    with pytest.raises(ValueError, match="frames"):
        li.latent_path(z, z, 1)
    with pytest.raises(ValueError, match="mode"):
        li.latent_path(z, z, 4, "cubic")


# ----------------------------------------------------------------------------- capability routes
def test_image_route_decodes_the_path_between_encodings():
    model = Identity()
    x0, x1 = -torch.ones(1, 8, 8) * 0.5, torch.ones(1, 8, 8) * 0.5
    frames = gv.interpolate(model, x0, x1, frames=5)
    assert frames.shape == (5, 1, 8, 8)
    assert torch.allclose(frames[2], torch.zeros(1, 8, 8), atol=1e-6) and torch.allclose(frames[-1], x1)


def test_seed_route_uses_the_prior_latents_of_the_seeds():
    model = Identity(with_encode=False)
    frames = li.interpolate_seeds(model, 3, 7, frames=4, mode="linear")
    z3 = seeding.randn((1, 64), seeding.image_generators(1, 3))[0]
    assert torch.allclose(frames[0].flatten(), z3.clamp(-1, 1))
    with pytest.raises(ValueError, match="no encode"):
        li.interpolate(model, torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


def test_discrete_codes_and_models_without_decode_are_refused():
    vq = gv.create("vqvae", base_channels=8, codebook_size=16, embedding_dim=4, levels=17)
    with pytest.raises(ValueError, match="discrete codes"):
        li.interpolate(vq, torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))
    ddpm = gv.create("ddpm", base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    with pytest.raises(ValueError, match="no decode"):
        li.interpolate(ddpm, torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


# ----------------------------------------------------------------------------- traversals and attributes
def test_traversal_varies_one_dimension_per_row():
    grid = li.traverse(Identity(), torch.zeros(64), dims=[0, 9], steps=3, span=0.5)
    flat = grid.flatten(1)  # (6, 64)
    assert torch.allclose(flat[:3, 0], torch.tensor([-0.5, 0.0, 0.5]))
    assert torch.allclose(flat[3:, 9], torch.tensor([-0.5, 0.0, 0.5]))
    assert flat[:3, 1:].abs().max() == 0 and flat[3:, :9].abs().max() == 0


def test_attribute_vector_is_the_difference_of_group_means_and_adds_to_a_latent():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(10, 1, 8, 8, generator=g) * 0.4 - 0.2
    mask = torch.arange(10) < 4
    vector = li.attribute_vector(Identity(), images, mask)
    want = images[:4].flatten(1).mean(0) - images[4:].flatten(1).mean(0)
    assert torch.allclose(vector, want, atol=1e-6)
    out = li.apply_attribute(Identity(), images[5], vector, strengths=(0.0, 1.0))
    assert torch.allclose(out[0], images[5]) and torch.allclose(out[1].flatten(), images[5].flatten() + want)
    with pytest.raises(ValueError, match="both with and without"):
        li.attribute_vector(Identity(), images, torch.ones(10, dtype=torch.bool))


# ----------------------------------------------------------------------------- the command
def test_interpolate_command_writes_one_row_and_refuses_bad_indices(tmp_path, capsys):
    model = gv.create("vae", base_channels=8, hidden=16, levels=17)
    save_model_dir(model, tmp_path / "vae")
    out = tmp_path / "row.png"
    proc = run_cli("interpolate", tmp_path / "vae", "--data", "digits", "--from", "0", "--to", "5",
                   "--frames", "4", "--mode", "spherical", "--out", out)  # fmt: skip
    assert "wrote" in proc.stdout
    width, height = Image.open(out).size
    assert width > 5 * height  # [x_from, 4 frames, x_to] in one row
    code = main(
        ["interpolate", str(tmp_path / "vae"), "--data", "digits", "--from", "9999", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "test split" in err and len(err.strip().splitlines()) == 1
