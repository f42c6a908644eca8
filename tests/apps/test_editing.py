"""Attribute editing: the thickness measure on drawn strokes, directions with a known answer, and the
command end to end."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from gvtest import run_cli

import genvision as gv
from genvision.apps import editing


def strokes(widths, size=28, length=16):
    """Grey images (B, 1, size, size) in [-1, 1]: a vertical and a horizontal bar of each width."""
    out = torch.full((len(widths), 1, size, size), -1.0)
    for k, w in enumerate(widths):
        out[k, 0, 4 : 4 + length, 4 : 4 + w] = 1  # vertical bar
        out[k, 0, 22 : 22 + w, 8 : 8 + length] = 1 if 22 + w <= size else -1
    return out


def test_thickness_of_drawn_strokes_is_their_width():
    widths = [1, 2, 3, 4, 5]
    got = editing.thickness(strokes(widths, size=40))
    assert (got - torch.tensor(widths, dtype=torch.float64)).abs().max() <= 0.5, got
    assert editing.thickness(torch.full((1, 1, 8, 8), -1.0)).item() == 0
    with pytest.raises(ValueError, match="grey images"):
        editing.thickness(torch.zeros(1, 3, 8, 8))


class Linear:
    """A model whose latent is a fixed linear map of the image (and back): directions are exact."""

    registry_name = "linear"
    device = torch.device("cpu")
    latent_shape = (16,)
    config = None

    def __init__(self):
        q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))
        self.q = q

    def encode(self, x):
        return x.flatten(1) @ self.q

    def decode(self, z):
        return (z @ self.q.T).view(-1, 1, 4, 4)

    def sample(self, n, **_):
        raise NotImplementedError

    def eval_mode(self):
        return contextlib.nullcontext()


def test_direction_from_two_folders_recovers_a_known_difference():
    model = Linear()
    space = editing.latent_space(model)
    g = torch.Generator().manual_seed(1)
    shift = torch.zeros(1, 1, 4, 4)
    shift[..., :2, :] = 0.4  # "the attribute": the top half brighter
    a = torch.rand(30, 1, 4, 4, generator=g) - 0.5
    b = torch.rand(40, 1, 4, 4, generator=g) - 0.5 + shift
    d, how = editing.direction(space, None, from_images=a, to_images=b)
    want = (b.mean(0) - a.mean(0)).flatten() @ model.q
    assert torch.allclose(d, want, atol=1e-5) and how["n_to"] == 40
    edited = editing.edit(space, a[:3], d, [0.0, 1.0])
    assert torch.allclose(edited[1] - edited[0], (b.mean(0) - a.mean(0)).expand(3, -1, -1, -1), atol=1e-5)


def test_linear_probe_finds_the_separating_direction_not_the_mean_gap():
    """Two groups whose means differ along both axes 0 and 1, but whose axis-1 spread is so wide
    that only axis 0 separates them: the probe's normal is axis 0, the mean gap is not."""
    g = torch.Generator().manual_seed(2)
    n, dim = 400, 6
    noise = torch.randn(2, n, dim, generator=g) * 0.2
    noise[..., 1] *= 20  # axis 1: a large spread, shared by both groups
    a = noise[0]
    b = noise[1] + torch.tensor([1.0, 1.0, 0, 0, 0, 0])
    d, how = editing.two_groups(a, b, "probe", "b", "a")
    normal = d / d.norm()
    assert abs(float(normal[0])) > 0.97 and "probe" in how["how"]
    gap = b.mean(0) - a.mean(0)
    assert float(gap[0] / gap.norm()) < 0.8  # the mean gap points elsewhere
    assert torch.isclose(d @ normal, gap @ normal, atol=1e-5)  # amount 1 moves the gap along it
    model = Linear()
    space = editing.latent_space(model)
    x = torch.rand(20, 1, 4, 4, generator=g)
    with pytest.raises(ValueError, match="drop --direction probe"):
        editing.direction(space, "thickness", None, method="probe")
    with pytest.raises(ValueError, match="unknown direction method"):
        editing.direction(space, None, from_images=x, to_images=x, method="lda")


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("edit") / "vae"
    gv.train("vae", data="digits", out=out, steps=150, progress=False, sample_every=0, save_every=0)
    return out


def test_thickness_direction_thickens_digits(vae_run):
    """On 8x8 digits after 150 VAE steps the stroke widths move 0.21 px from amount -2 to +2 (seed 0);
    the bar asks for half of that, in the right direction."""
    from genvision import data

    space = editing.latent_space(gv.load(vae_run))
    d, how = editing.direction(space, "thickness", data.load("digits", "train"))
    x = data.load("digits", "test").batch(torch.arange(64))[0]
    thin, _, thick = (editing.thickness(e).mean().item() for e in editing.edit(space, x, d, [-2.0, 0.0, 2.0]))
    assert thick > thin + 0.1 and how["thickness_std"] > 0, (thin, thick, how)


def test_edit_through_the_cli(vae_run, tmp_path, capsys):
    from genvision import cli, data

    x = data.load("digits", "test").batch(torch.arange(4))[0]
    arr = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez(tmp_path / "in.npz", images=arr)
    proc = run_cli(
        "edit",
        vae_run,
        "--input",
        f"npz:{tmp_path / 'in.npz'}",
        "--attribute",
        "seven",
        "--amount",
        "1.5",
        "--out",
        tmp_path / "e.png",
    )
    assert "mean(class seven)" in proc.stdout and (tmp_path / "e_strip.png").is_file()
    proc = run_cli(
        "edit",
        vae_run,
        "--input",
        f"npz:{tmp_path / 'in.npz'}",
        "--attribute",
        "thickness",
        "--amount",
        "2",
        "--out",
        tmp_path / "t.npz",
    )
    assert "thickness changed by" in proc.stdout and (tmp_path / "t_strip.png").is_file(), proc.stdout
    for args, words in [
        (("--attribute", "banana"), "unknown attribute 'banana'"),
        (("--from-dir", str(tmp_path)), "go together"),
        ((), "give --attribute NAME"),
    ]:
        argv = ["edit", str(vae_run), "--input", f"npz:{tmp_path / 'in.npz'}", *args]
        code = cli.main([*argv, "--out", str(tmp_path / "x.png")])  # in-process: the same main()
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
