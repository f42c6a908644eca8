"""controlnet: a control branch on a frozen diffusion base (zero start, frozen base, runs and CLI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gvtest import TINY_DDPM, one_line, run_cli

import genvision as gv
from genvision import data
from genvision.data import structure
from genvision.families.diffusion.control import ControlNet
from genvision.model_dir import save_model_dir
from genvision.nn.unet import Cond

QUIET = {"progress": False, "sample_every": 0, "save_every": 0}


def _base(tmp_path, name="ddpm", **fields):
    torch.manual_seed(0)
    base = gv.create(
        name, levels=17, **({"num_classes": 10} if "cond" in name else {}), **TINY_DDPM, **fields
    )
    # a base that is not a no-op: perturb its zero-initialised output layer
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model_dir(base, tmp_path / name)
    return gv.load(tmp_path / name)


def _control(base, kind="edges"):
    c = base.config
    torch.manual_seed(1)
    return gv.create(
        "controlnet",
        base=base,
        control=kind,
        image_size=c.image_size,
        channels=c.channels,
        levels=c.levels,
        num_classes=c.num_classes,
        conditional=c.conditional,
    )


@pytest.mark.parametrize("name", ["ddpm", "ddpm-cond"])
def test_before_training_the_controlled_network_is_the_base_bit_for_bit(tmp_path, name):
    base = _base(tmp_path, name)
    model = _control(base)
    x = torch.randn(4, 1, 8, 8)
    t = torch.tensor([1, 200, 500, 999])
    labels = torch.tensor([0, 3, 10, 7]) if base.config.conditional else None
    maps = structure.extract("edges", torch.rand(4, 1, 8, 8) * 2 - 1)
    plain = base.net(x, t, Cond(labels=labels))
    with model.controlled(maps) as b:
        controlled = b.net(x, t, Cond(labels=labels))
    assert torch.equal(plain, controlled)
    assert "net" not in base.__dict__  # the stand-in is gone after the call


def test_training_moves_the_branch_and_never_the_base(tmp_path):
    base = _base(tmp_path)
    model = _control(base)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    assert all(not p.requires_grad for p in base.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = data.load("digits", "train").batch(torch.arange(16))[0].float()
    for _ in range(3):
        loss = model.loss(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert any(p.abs().sum() > 0 for p in model.branch.zero.parameters())  # the zero convs left zero
    assert all(k.startswith("branch.") or k == "preview" for k in model.state_dict())  # no base weights


def test_sampling_needs_maps_of_the_right_shape_one_line(tmp_path):
    model = _control(_base(tmp_path))
    with pytest.raises(ValueError) as e:
        model.sample(2, seed=0, steps=2, control=torch.zeros(2, 3, 8, 8))
    assert "control maps must be (2, 1, 8, 8) edges maps" in one_line(e)
    one = structure.extract("edges", data.load("digits", "test").batch(torch.arange(1))[0].float())
    images = model.sample(3, seed=0, steps=2, control=one)
    assert images.shape == (3, 1, 8, 8) and images.abs().max() <= 1


def test_a_base_it_cannot_control_is_refused(tmp_path):
    torch.manual_seed(0)
    text = gv.create("ddpm-text", levels=17, **TINY_DDPM)
    with pytest.raises(ValueError) as e:
        _control(text)
    assert "pixel-space diffusion run" in one_line(e)
    base = _base(tmp_path)
    with pytest.raises(ValueError) as e:
        gv.create("controlnet", base=base, image_size=16, levels=17)
    assert "the base has image_size=8 and this run 16" in one_line(e)


def test_train_on_a_base_run_then_sample_from_the_cli(tmp_path):
    _base(tmp_path, "ddpm-cond")
    out = tmp_path / "ctl"
    gv.train(
        "controlnet",
        data="digits",
        out=out,
        steps=3,
        batch_size=8,
        model_config={"base": str(tmp_path / "ddpm-cond"), "control": "mask"},
        **QUIET,
    )
    model = gv.load(out)
    assert isinstance(model, ControlNet) and model.config.conditional and model.config.control == "mask"
    maps = structure.extract("mask", data.load("digits", "test").batch(torch.arange(4))[0].float())
    u8 = ((maps.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    np.savez(tmp_path / "maps.npz", images=u8)
    proc = run_cli(
        "sample",
        out,
        "--n",
        "4",
        "--steps",
        "2",
        "--control",
        f"npz:{tmp_path / 'maps.npz'}",
        "--out",
        tmp_path / "s.png",
    )
    assert "wrote" in proc.stdout and (tmp_path / "s.png").is_file()
    assert (model.preview > 0).any()  # the default control: maps of the first training batch
    bad = run_cli("sample", out, "--n", "2", "--steps", "2", "--control", tmp_path / "none.png", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "cannot read image" in bad.stderr


def test_control_fidelity_compares_each_sample_with_the_map_it_followed(tmp_path):
    model = _control(_base(tmp_path), "mask")
    model.config.control = "mask"
    # a model that draws exactly the map it is asked to follow: fidelity 1, chance well below
    model.sample = lambda n, y=None, generator=None, control=None, **options: control.clone()
    r = gv.evaluate(model, metrics="control_fidelity", n=40, progress=False)["metrics"]["control_fidelity"]
    assert r["measure"] == "IoU" and r["kind"] == "mask"
    assert r["value"] == 1.0 and r["chance"] < 0.8
    assert "test image k mod" in r["card"]["controls"]
    with pytest.raises(ValueError) as e:
        gv.evaluate(_base(tmp_path), metrics="control_fidelity", n=8, progress=False)
    assert "needs a structure-conditioned model; ddpm takes no control maps; models: controlnet" in one_line(
        e
    )
