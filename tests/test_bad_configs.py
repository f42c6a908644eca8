"""Bad config values are a one-line error naming the field and the fix: never a traceback, never an OOM.

Hostile config.json / --set values (wrong JSON types, sizes past the caps, models too big for the
memory, weights of another shape) and non-finite numbers in any config field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import numpy as np
import pytest
from gvtest import INF, NAN, TINY_DDPM, TINY_GAN, one_line, preset_values  # noqa: F401

import genvision as gv
import genvision.data as gdata
from genvision import cli, model_memory, registry
from genvision.families.base import OptimizerSpec, field_types
from genvision.model_dir import load_model_dir, save_model_dir
from genvision.training.config import TrainConfig, resolve_train_config


# ----------------------------------------------------------------------------- 9: types
@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("base_channels", [32], "integer"),
        ("base_channels", True, "integer"),
        ("base_channels", {"a": 1}, "integer"),
        ("base_channels", 32.5, "integer"),
        ("num_train_timesteps", None, "integer"),
        ("lr", "fast", "float"),
        ("lr", [1e-3], "number"),
        ("lr", False, "number"),
        ("lr", 10**400, "finite number"),
        ("objective", 5, "string"),
        ("objective", ["v"], "string"),
        ("clip_x0", 1, "true or false"),
        ("clip_x0", "maybe", "true or false"),
        ("channel_mults", 5, "list"),
        ("channel_mults", ["a"], "integer"),
        ("channel_mults", [1, [2]], "integer"),
    ],
)
def test_a_config_value_of_the_wrong_type_is_a_one_line_error_naming_field_and_type(field, value, expected):
    with pytest.raises(ValueError) as e:
        registry.config_for("ddpm", **{field: value})
    message = one_line(e)
    assert field in message and expected in message


def test_typed_values_that_fit_are_accepted_and_normalised():
    c = registry.config_for(
        "gan", **{**TINY_GAN, "lr_g": 1, "betas_g": [0.5, 0.9], "latent_dim": np.int64(8)}
    )
    assert c.lr_g == 1.0 and type(c.lr_g) is float and c.betas_g == (0.5, 0.9) and type(c.latent_dim) is int
    with pytest.raises(ValueError, match="betas_g must be a list of 2 finite numbers"):
        registry.config_for("gan", betas_g=[0.5, 0.9, 0.1])
    assert registry.config_for("vae", latent_dim=None).latent_dim == 16  # Optional: None is a value


# ----------------------------------------------------------------------------- 9: caps
@pytest.mark.parametrize(
    "name, field, value",
    [
        ("ddpm", "base_channels", 10**6),
        ("ddpm", "num_train_timesteps", 10**9),
        ("ddpm", "channel_mults", (1, 10**6)),
        ("ddpm", "levels", 10**12),
        ("ddpm", "num_classes", 10**9),
        ("vqvae", "codebook_size", 10**8),
        ("vae", "hidden", 10**7),
        ("gan", "latent_dim", 10**7),
        ("pixelcnn", "num_layers", 10**5),
        ("pixelcnn", "kernel", 10**3 + 1),
        ("realnvp", "hidden_channels", 10**6),
        ("vqvae-transformer", "width", 10**6),
    ],
)
def test_size_fields_have_hard_caps(name, field, value):
    with pytest.raises(ValueError) as e:
        registry.config_for(name, **{field: value})
    message = one_line(e)
    assert field in message and "<=" in message


def test_every_config_class_documents_its_caps():
    for name in registry.MODELS:
        cls = registry.resolve(name)[0].config_class
        caps = cls.all_caps()
        types_ = field_types(cls)
        assert caps and set(caps) <= set(types_), name
        for k in ("base_channels", "width", "hidden", "hidden_channels", "num_layers", "codebook_size"):
            if k in types_:
                assert k in caps, (name, k)
    assert TrainConfig.caps and set(TrainConfig.caps) <= set(field_types(TrainConfig))


# ----------------------------------------------------------------------------- 9: memory
def test_a_model_too_big_for_the_memory_is_refused_before_allocation_naming_the_field(monkeypatch):
    monkeypatch.setenv("GENVISION_MODEL_MEMORY_LIMIT", str(2_000_000))  # bytes of parameters allowed
    gv.create("ddpm", **TINY_DDPM)  # ~0.5 MB: fine
    with pytest.raises(ValueError) as e:
        gv.create("ddpm", **{**TINY_DDPM, "base_channels": 128})
    message = one_line(e)
    assert "base_channels" in message and "memory" in message
    with pytest.raises(ValueError, match="hidden"):
        gv.create("gan", **{**TINY_GAN, "hidden": 4096})


def test_the_memory_limit_is_half_the_available_memory(monkeypatch):
    monkeypatch.delenv("GENVISION_MODEL_MEMORY_LIMIT", raising=False)
    limit = model_memory.model_memory_limit()
    assert 0 < limit < 2**50


# ----------------------------------------------------------------------------- 9: config.json
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "ddpm"
    save_model_dir(gv.create("ddpm", **TINY_DDPM), path)
    return path


def hostile_copy(tiny_dir, tmp_path, change) -> str:
    import shutil

    path = tmp_path / "m"
    shutil.copytree(tiny_dir, path)
    meta = json.loads((path / "config.json").read_text())
    change(meta)
    (path / "config.json").write_text(json.dumps(meta))
    return str(path)


def _set(key, value):
    return lambda meta: meta.__setitem__(key, value)


def _cfg(key, value):
    return lambda meta: meta["model_config"].__setitem__(key, value)


HOSTILE = {
    "registry_name list": _set("registry_name", ["ddpm"]),
    "registry_name dict": _set("registry_name", {"a": 1}),
    "registry_name int": _set("registry_name", 5),
    "model_config list": _set("model_config", [1, 2]),
    "model_config string": _set("model_config", "base_channels=16"),
    "train_config list": _set("train_config", [64]),
    "parents list": _set("parents", ["../x"]),
    "parents entry string": _set("parents", {"teacher": "../x"}),
    "top level list": lambda meta: (meta.clear(), meta.update({"__list__": True})),
    "base_channels list": _cfg("base_channels", [16]),
    "base_channels bool": _cfg("base_channels", True),
    "base_channels huge": _cfg("base_channels", 10**12),
    "num_train_timesteps huge": _cfg("num_train_timesteps", 10**10),
    "levels huge": _cfg("levels", 10**15),
    "image_size string": _cfg("image_size", "big"),
    "eta nan": _cfg("eta", "nan"),
    "objective dict": _cfg("objective", {"v": 1}),
    "channel_mults int": _cfg("channel_mults", 2),
    "weights of another shape": _cfg("base_channels", 8),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_config_json_is_a_one_line_error(case, tiny_dir, tmp_path, capsys):
    path = hostile_copy(tiny_dir, tmp_path, HOSTILE[case])
    if case == "top level list":
        (tmp_path / "m" / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError) as e:
        load_model_dir(path)
    one_line(e)
    assert cli.main(["sample", path, "--n", "2", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genvision sample: error:") and "\n" not in err


def test_weights_of_another_shape_name_the_tensor(tiny_dir, tmp_path):
    path = hostile_copy(tiny_dir, tmp_path, _cfg("base_channels", 8))
    with pytest.raises(ValueError, match=r"shape .*base_channels|another shape") as e:
        load_model_dir(path)
    assert "model.safetensors" in one_line(e)


# ----------------------------------------------------------------------------- 10: before data
def test_train_checks_the_model_config_before_loading_the_data(monkeypatch, tmp_path):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the model config was checked")

    monkeypatch.setattr(gdata, "load", no_data)
    for bad, field in (
        ({"image_size": "1000"}, "image_size"),
        ({"base_channels": "100000"}, "base_channels"),
        ({"eta": "nan"}, "eta"),
        ({"channel_mults": "1,x"}, "channel_mults"),
    ):
        with pytest.raises(ValueError, match=field):
            gv.train("ddpm", "digits", tmp_path / "run", model_config=bad, steps=1)
    monkeypatch.setenv("GENVISION_MODEL_MEMORY_LIMIT", str(2_000_000))
    with pytest.raises(ValueError, match="base_channels.*memory|memory.*base_channels"):
        gv.train("ddpm", "digits", tmp_path / "run", model_config={"base_channels": "256"}, steps=1)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 12: NaN / Inf
def _float_fields(cls) -> list[str]:
    out = []
    for name, tp in field_types(cls).items():
        inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        if float in inner:
            out.append(name)
    return out


@pytest.mark.parametrize("name", sorted(registry.MODELS))
def test_every_float_field_of_every_model_config_refuses_nan_and_inf(name):
    cls = registry.resolve(name)[0].config_class
    fields = _float_fields(cls)
    assert fields
    for field in fields:
        for bad in (NAN, INF, -INF, "nan", "inf"):
            with pytest.raises(ValueError, match=field) as e:
                registry.config_for(name, **{**preset_values(name), field: bad})
            assert "finite" in one_line(e)


def test_configs_built_directly_refuse_non_finite_values_too():
    from genvision.families.diffusion.model import DiffusionConfig
    from genvision.families.gan.model import GANConfig

    for make in (
        lambda: DiffusionConfig(eta=NAN),
        lambda: DiffusionConfig(guidance_scale=INF),
        lambda: GANConfig(truncation=NAN),
        lambda: GANConfig(betas_d=(NAN, 0.9)),
        lambda: OptimizerSpec(lr=INF),
        lambda: OptimizerSpec(betas=(0.9, NAN)),
        lambda: OptimizerSpec(weight_decay=NAN),
        lambda: TrainConfig(ema_half_life=NAN),
        lambda: TrainConfig(grad_clip=INF),
        lambda: TrainConfig(batch_size=True),
    ):
        with pytest.raises(ValueError) as e:
            make()
        one_line(e)


@pytest.mark.parametrize("field", _float_fields(TrainConfig))
def test_every_float_train_setting_refuses_non_finite_values(field):
    for bad in (NAN, INF, "nan", "-inf"):
        with pytest.raises(ValueError, match="finite"):
            resolve_train_config({field: bad}, {})


def test_cli_ema_half_life_nan_is_a_one_line_error(tmp_path, capsys):
    args = ["train", "ddpm", "--steps", "1", "--out", str(tmp_path / "r"), "--ema-half-life", "nan"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "ema_half_life" in err and "finite" in err and "\n" not in err


def test_the_float_field_walk_sees_float_fields():
    assert "eta" in _float_fields(registry.resolve("ddpm")[0].config_class)
    assert {"minutes", "ema_half_life"} <= set(_float_fields(TrainConfig))
    assert math.isnan(NAN) and dataclasses.is_dataclass(TrainConfig)


def test_resume_from_a_config_json_with_a_broken_train_config_is_a_one_line_error(tiny_dir, tmp_path):
    path = hostile_copy(tiny_dir, tmp_path, _set("train_config", [64]))
    with pytest.raises(ValueError, match="train_config must be a JSON object") as e:
        gv.train("ddpm", None, path, resume=True)
    one_line(e)
