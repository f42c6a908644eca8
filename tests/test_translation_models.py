"""pix2pix, cyclegan and adain (issue 22): losses and brief training on tiny data."""

import numpy as np
import pytest
import torch
from PIL import Image

import genvision as gv
from genvision.families.gan import losses
from genvision.families.gan.cyclegan import CycleGAN, CycleGANConfig


def _folders(tmp_path, n=24):
    rng = np.random.default_rng(0)
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for i in range(n):
            img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / side / f"{i:03d}.png")
    return tmp_path / "a", tmp_path / "b"


def test_cycle_loss_of_identity_generators_is_zero():
    model = CycleGAN(CycleGANConfig(image_size=8, channels=3, base_channels=4, res_blocks=0))
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    assert float(losses.cycle_loss(x, x)) == 0.0
    ident = torch.nn.Identity()
    model.g_ab, model.g_ba = ident, ident
    out = model.loss(x, torch.tensor([0, 0, 1, 1]), phase="generator")
    assert float(out["cycle"]) == 0.0 and float(out["identity"]) == 0.0
    assert float(losses.cycle_loss(x, x.flip(0))) > 0


def test_cyclegan_refuses_unlabelled_data_with_one_line():
    model = CycleGAN(CycleGANConfig(image_size=8, channels=3, base_channels=4, res_blocks=0))
    with pytest.raises(ValueError, match="unpaired:A_DIR,B_DIR"):
        model.loss(torch.zeros(2, 3, 8, 8), None, phase="generator")


@pytest.mark.parametrize(
    "name,kind,extra",
    [
        ("pix2pix", "pairs", {"channels": 6, "base_channels": 8, "channel_mults": (1,), "num_res_blocks": 1}),
        ("cyclegan", "unpaired", {"channels": 3, "base_channels": 4, "res_blocks": 1}),
    ],
)
def test_trains_briefly_and_translates(tmp_path, name, kind, extra):
    a, b = _folders(tmp_path)
    model = gv.create(name, image_size=8, **extra)
    run = gv.train(
        model, data=f"{kind}:{a},{b}", out=tmp_path / "run", steps=4, progress=False, num_samples=4
    )
    model = gv.load(run)
    src = torch.rand(2, 3, 8, 8) * 2 - 1
    out = model.translate(src)
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()
    with pytest.raises(ValueError):
        model.translate(torch.zeros(2, 3, 4, 4))


def test_adain_output_has_the_style_channel_statistics():
    from genvision.families.vae.adain import adain, channel_stats

    g = torch.Generator().manual_seed(0)
    content = torch.randn(3, 5, 6, 6, generator=g)
    style = torch.randn(3, 5, 6, 6, generator=g) * 3 + 2
    out = adain(content, style)
    (mo, so), (ms, ss) = channel_stats(out), channel_stats(style)
    assert torch.allclose(mo, ms, atol=1e-5) and torch.allclose(so, ss, atol=1e-3)
    assert not torch.allclose(channel_stats(content)[0], ms, atol=0.1)


def test_adain_trains_briefly_and_stylizes(tmp_path):
    a, _ = _folders(tmp_path)
    model = gv.create("adain", image_size=8, channels=3, base_channels=4)
    run = gv.train(model, data=f"folder:{a}", out=tmp_path / "run", steps=4, progress=False, num_samples=4)
    model = gv.load(run)
    content, style = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(1, 3, 8, 8) * 2 - 1
    out = model.stylize(content, style, alpha=0.5)
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="alpha"):
        model.stylize(content, style, alpha=2)
    from genvision.cli import main

    img = tmp_path / "a" / "000.png"
    out = tmp_path / "styled.png"
    argv = ["stylize", str(run), "--content", str(img), "--style", str(tmp_path / "b" / "001.png")]
    assert main([*argv, "--alpha", "0.5", "--out", str(out)]) == 0
    assert out.is_file() and (tmp_path / "styled_compare.png").is_file()
    assert main([*argv, "--alpha", "2", "--out", str(tmp_path / "x.png")]) != 0
    assert not (tmp_path / "x.png").exists()
