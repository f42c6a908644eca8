"""Every registry entry builds, saves, reloads and samples."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from gvtest import TINY_DDPM

import genvision as gv
from genvision.model_dir import save_model_dir
from genvision.registry import MODELS, config_for, resolve

TINY = {"ddpm": TINY_DDPM, "ddpm-cond": TINY_DDPM}
PREPARE = {}
# Each family's tests may add tiny configs in tests/families/<family>/tiny_configs.py:
# ``TINY`` (name -> config overrides) and optionally ``prepare(name, tmp_path) -> dict``
# (extra overrides that need files, e.g. a tiny parent model directory).
for _path in sorted((Path(__file__).parent / "families").glob("*/tiny_configs.py")):
    _mod = importlib.import_module(f"families.{_path.parent.name}.tiny_configs")
    TINY.update(getattr(_mod, "TINY", {}))
    for _name in getattr(_mod, "TINY", {}):
        if hasattr(_mod, "prepare"):
            PREPARE[_name] = _mod.prepare


@pytest.mark.parametrize("name", sorted(MODELS))
def test_entry_builds_saves_reloads_and_samples(name, tmp_path):
    extra = PREPARE[name](name, tmp_path) if name in PREPARE else {}
    model = gv.create(name, **{"num_classes": 10, "levels": 17, **TINY.get(name, {}), **extra})
    save_model_dir(model, tmp_path / name)
    again = gv.load(tmp_path / name)
    assert type(again) is type(model) and again.registry_name == name
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    y = torch.arange(3) % 10 if again.config.conditional else None
    x = again.sample(3, y=y, seed=0)
    assert x.shape == (3, again.config.channels, again.config.image_size, again.config.image_size)
    assert x.min() >= -1 and x.max() <= 1 and torch.isfinite(x).all()


def test_list_models_names_every_entry():
    assert {r["name"] for r in gv.list_models()} == set(MODELS)


def test_loading_refuses_a_tampered_directory(tmp_path):
    model = gv.create("ddpm", **TINY_DDPM)
    save_model_dir(model, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04pickle? no")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        gv.load(tmp_path / "m")
    cfg = (tmp_path / "m" / "config.json").read_text().replace('"ddpm"', '"os.system"')
    (tmp_path / "m" / "config.json").write_text(cfg)
    with pytest.raises(ValueError, match="unknown model"):
        gv.load(tmp_path / "m")


@pytest.mark.parametrize("name", sorted(n for n in MODELS if resolve(n)[0].config_class.supports_conditional))
def test_conditional_without_classes_is_a_one_line_error(name):
    with pytest.raises(ValueError, match="conditional=True needs num_classes >= 1"):
        config_for(name, conditional=True, num_classes=0)
