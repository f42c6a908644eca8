"""Model directories: ``config.json`` + ``model.safetensors``, saved atomically, loaded without pickle.

    DIR/config.json        registry name, family, model config, parents, genvision version
                           (a training run adds train config, data description, status)
    DIR/model.safetensors  the weights to sample with (EMA where on)

Loading builds the class the registry names, so a directory can only build classes genvision
ships. A model built on others (a prior on a VQ-VAE, a student on its teacher) names them in
one format:

    "parents": {"vqvae": {"path": "../vqvae", "sha256": "<sha256 of its model.safetensors>"}}

A relative path is relative to the child's directory. Loading checks each parent's hash and
loads it (recursively) before the child, then passes it to the child's ``__init__``; a parent
that is missing or changed is a one-line error naming it. Directories written before parents
existed (a ``teacher`` or ``vqvae`` path inside the model config) are read as parents.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from . import io, registry
from .families.base import GenerativeModel
from .version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


# ----------------------------------------------------------------------------- writing
def model_state(model: GenerativeModel, params_override: dict | None = None) -> dict:
    """The model's state dict, with ``params_override`` (name -> tensor, e.g. EMA) substituted."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, value in (params_override or {}).items():
        state[name] = value.detach().clone()
    return state


def write_config(model: GenerativeModel, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` atomically; fields of an existing one not in ``extra`` are kept."""
    path = Path(directory) / CONFIG_FILE
    meta: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    meta.update(
        {
            "registry_name": model.registry_name,
            "family": model.family,
            "model_config": model.config.to_dict(),
            "genvision_version": __version__,
        }
    )
    meta.update(extra or {})
    return io.write_json(path, meta)


def save_model_dir(
    model: GenerativeModel,
    directory: str | Path,
    *,
    state: dict | None = None,
    extra: dict | None = None,
    parents: dict[str, str | Path] | None = None,
) -> Path:
    """Write ``model.safetensors`` then ``config.json`` atomically into ``directory``.

    ``state`` replaces the model's own state dict (the trainer passes EMA weights); ``extra``
    (train config, data description) is merged into config.json; ``parents`` (role -> the
    parent's directory; default: the directories the model's parents were loaded from) are
    written as parent references (see the module docstring).
    """
    directory = Path(directory)
    if parents is None:
        parents = model.parent_origins()
    missing = sorted(role for role, p in parents.items() if p is None)
    if missing:
        raise ValueError(
            f"{model.registry_name}'s {', '.join(missing)} was never saved; save it first "
            "(a model directory records its parents by path and hash)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    io.save_safetensors(directory / WEIGHTS_FILE, state if state is not None else model_state(model))
    extra = dict(extra or {})
    if parents:
        extra["parents"] = {role: parent_ref(directory, p) for role, p in parents.items()}
    write_config(model, directory, extra)
    return directory


# ----------------------------------------------------------------------------- parents
def weights_sha256(directory: str | Path) -> str:
    """sha256 of ``DIR/model.safetensors`` (hex)."""
    h = hashlib.sha256()
    with open(Path(directory) / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parent_ref(child: str | Path, parent: str | Path) -> dict:
    """The reference ``child``'s config.json keeps to ``parent``: relative path and weights hash."""
    parent = Path(parent).expanduser().resolve()
    read_config(parent)  # one-line error when it is not a model directory
    if not (parent / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{parent} has no {WEIGHTS_FILE} yet; finish training it first")
    path = os.path.relpath(parent, Path(child).expanduser().resolve())
    return {"path": Path(path).as_posix(), "sha256": weights_sha256(parent)}


def parent_dir(child: str | Path, role: str, ref: dict) -> Path:
    """The directory of ``child``'s parent ``role``, checked against its recorded hash."""
    path = Path(ref["path"]).expanduser()
    path = path if path.is_absolute() else Path(child) / path
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(
            f"{child} is built on its {role} {ref['path']}, which is missing ({path}); "
            "put that model directory back there"
        )
    if ref.get("sha256") and weights_sha256(path) != ref["sha256"]:
        raise ValueError(
            f"the {role} of {child} ({path}) has changed since it was used (sha256 differs); "
            "restore that model or retrain this one on it"
        )
    return path.resolve()


# ----------------------------------------------------------------------------- reading
def read_config(directory: str | Path) -> dict:
    """``config.json`` of a model directory, with a one-line error when it is missing or damaged."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model directory {directory} does not exist; train one with `genvision train`"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a genvision model directory")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); restore it or retrain") from None
    _check_types(path, meta)
    return _upgrade(meta)


def _check_types(path: Path, meta) -> None:
    """One-line errors for a config.json whose parts have the wrong JSON types (hostile or broken)."""

    def bad(what: str, expected: str, value) -> ValueError:
        return ValueError(f"{path}: {what} must be {expected} (got {value!r:.60}); restore it or retrain")

    if not isinstance(meta, dict):
        raise bad("the file", "a JSON object", meta)
    if "registry_name" in meta and not isinstance(meta["registry_name"], str):
        raise bad("registry_name", "a string", meta["registry_name"])
    for key in ("model_config", "train_config"):
        if not isinstance(meta.get(key, {}), dict):
            raise bad(key, "a JSON object", meta[key])
    parents = meta.get("parents", {})
    if not isinstance(parents, dict):
        raise bad("parents", "a JSON object", parents)
    for role, ref in parents.items():
        if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
            raise bad(f"parents.{role}", 'an object with a "path" string', ref)


def _upgrade(meta: dict) -> dict:
    """Read a config.json of an older genvision in today's terms (never written back).

    Before parent references, a distilled student was a ``ddpm``/``ddpm-cond`` whose model config
    named ``teacher`` (and ``teacher_calls``), and a VQ-VAE prior named its ``vqvae`` in its
    model config; both become parents (without a hash, so theirs is not checked). Pixel models
    saved before their ``dropout`` field trained without dropout, and keep doing so.
    """
    cfg = meta.get("model_config", {})
    name = meta.get("registry_name")
    if name in ("ddpm", "ddpm-cond") and cfg.get("teacher"):
        meta = {**meta, "registry_name": "ddpm-student", "model_config": dict(cfg)}
        meta["parents"] = {"teacher": {"path": meta["model_config"].pop("teacher")}}
    elif name in ("ddpm", "ddpm-cond") and "teacher" in cfg:
        meta = {
            **meta,
            "model_config": {k: v for k, v in cfg.items() if k not in ("teacher", "teacher_calls")},
        }
    elif name == "vqvae-transformer" and "vqvae" in cfg:
        meta = {**meta, "model_config": dict(cfg)}
        meta["parents"] = {"vqvae": {"path": meta["model_config"].pop("vqvae")}}
    elif name in PIXEL_MODELS and isinstance(cfg, dict) and "dropout" not in cfg:
        # pixel models trained before they had dropout trained without it: resume them so
        meta = {**meta, "model_config": {**cfg, "dropout": 0.0}}
    return meta


#: the raster pixel models, which gained a ``dropout`` field (default 0.2) with validation
PIXEL_MODELS = ("pixelcnn", "gated-pixelcnn", "gated-pixelcnn-cond", "pixelrnn")


def load_parents(directory: str | Path, meta: dict, when: tuple[str, ...] = ("sample",)) -> dict:
    """The parents of the model in ``directory`` whose role is needed ``when``, loaded."""
    cls, _ = registry.resolve(meta["registry_name"])
    refs = meta.get("parents", {})
    out = {}
    for role, need in cls.parents.items():
        if need not in when:
            continue
        if role not in refs:
            raise ValueError(f"{Path(directory) / CONFIG_FILE} names no {role}; it cannot be built")
        out[role] = load_model_dir(parent_dir(directory, role, refs[role]))
    return out


def load_model_dir(
    directory: str | Path, device: str | torch.device = "cpu", *, parents: tuple[str, ...] = ("sample",)
) -> GenerativeModel:
    """Build the model named in ``config.json`` and load ``model.safetensors`` (no unpickling).

    ``parents``: which parent roles to load with it; ``("sample",)`` (default) what sampling
    needs, ``("sample", "train")`` also what training needs (the run layer's resume).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = read_config(directory)
    name = meta.get("registry_name")
    if name is None:
        raise ValueError(f"{directory / CONFIG_FILE} names no registry_name; it was not written by genvision")
    registry.resolve(name)  # one-line error for a name genvision does not ship
    model = registry.create(
        name, parents=load_parents(directory, meta, parents), **meta.get("model_config", {})
    )
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; the run saved no checkpoint yet (resume or retrain)")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{weights} is not a readable safetensors file ({e}); restore it or retrain"
        ) from None
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(
            f"{weights} holds weights of another shape than {name}'s config.json builds ({len(wrong)} tensors, "
            f"e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}); restore the config.json "
            "saved with them, or retrain"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not match {name}'s config (missing {len(missing)} keys, "
            f"unexpected {len(unexpected)}; e.g. {(missing or unexpected)[:3]})"
        )
    model.origin = directory.resolve()
    return model.to(device).eval()


def build(name: str, parents: dict | None = None, **config) -> GenerativeModel:
    """``registry.create`` with parents given as models or model directories (loaded here).

    A config key that names one of the class's parent roles (``vqvae=DIR``, as ``--set`` gives it)
    is taken as a parent too.
    """
    cls, _ = registry.resolve(name)
    parents = dict(parents or {})
    for role in cls.parents:
        if role in config:
            parents[role] = config.pop(role)
    loaded = {}
    for role, p in parents.items():
        loaded[role] = p if isinstance(p, GenerativeModel) else load_model_dir(p, parents=("sample", "train"))
    return registry.create(name, parents=loaded, **config)
