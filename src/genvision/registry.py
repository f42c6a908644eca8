"""Every model genvision can build, by name: one literal table, imported lazily.

``config.json`` stores the registry name, so loading a model directory can only build classes
genvision ships. Several names may share a class with different presets.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .families.base import GenerativeModel, build_dataclass


@dataclass(frozen=True)
class Entry:
    target: str  # "module.path:ClassName"
    preset: dict = field(default_factory=dict)
    summary: str = ""


DIFFUSION = "genvision.families.diffusion.model:Diffusion"

MODELS: dict[str, Entry] = {
    "ddpm": Entry(
        DIFFUSION, {"objective": "eps"}, "DDPM (Ho et al. 2020): UNet noise prediction, 1000 steps"
    ),
    "ddpm-cond": Entry(
        DIFFUSION,
        {"objective": "eps", "conditional": True},
        "class-conditional DDPM with classifier-free guidance",
    ),
    # --- VAE family (families/vae) ---
    # --- end VAE ---
    # --- GAN family (families/gan) ---
    # --- end GAN ---
    # --- autoregressive family (families/autoregressive) ---
    # --- end autoregressive ---
    # --- flows family (families/flows) ---
    # --- end flows ---
}


def resolve(name: str):
    """(model class, preset overrides) of a registry name."""
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; known: {', '.join(sorted(MODELS))} (see `genvision models`)"
        )
    module, _, cls = MODELS[name].target.partition(":")
    return getattr(importlib.import_module(module), cls), dict(MODELS[name].preset)


def config_for(name: str, **overrides):
    """The validated config of ``name`` with its preset and ``overrides`` applied."""
    cls, preset = resolve(name)
    preset.update(overrides)
    return build_dataclass(cls.config_class, preset, what=f"{name} config")


def create(name: str, **overrides) -> GenerativeModel:
    """Build the model ``name`` with its preset, then ``overrides`` (config fields)."""
    cls, _ = resolve(name)
    model = cls(config_for(name, **overrides))
    model.registry_name = name
    return model


def list_models() -> list[dict]:
    """Name, family module and summary of every registry entry."""
    rows = []
    for name, entry in MODELS.items():
        family = entry.target.split(".families.")[-1].split(".")[0]
        rows.append({"name": name, "family": family, "summary": entry.summary, "preset": dict(entry.preset)})
    return rows
