"""Smallest diffusion configs for the registry walk (tests/test_registry.py).

``ddpm`` and ``ddpm-cond`` use ``gvtest.TINY_DDPM`` (set in the walk itself). Models built on
others get a tiny untrained parent saved by ``prepare`` and named by its directory: the
students' teacher (their fields copied from it), the latent models' autoencoder (a latent
student's both: its teacher's autoencoder is its own).
"""

from __future__ import annotations

from gvtest import TINY_DDPM

import genvision as gv
from genvision.families.diffusion import consistency, reflow
from genvision.families.diffusion.distill import student_config
from genvision.model_dir import save_model_dir

#: the network part of TINY_DDPM, for the continuous-time models (no timesteps)
TINY_NET = {k: v for k, v in TINY_DDPM.items() if k != "num_train_timesteps"}
#: a latent model's network on a 4x4 latent (8x8 digits halved once)
TINY_LATENT = {**TINY_NET, "channel_mults": (1,), "latent_channels": 2, "downsample": 1}
TINY_AE = {"base_channels": 8, "latent_channels": 2, "downsample": 1}

TINY = {
    "ddpm-student": {**TINY_DDPM, "steps": 3},
    "flow-matching": TINY_NET,
    "flow-matching-cond": TINY_NET,
    "edm": TINY_NET,
    "ddpm-consistency": {},
    "flow-matching-consistency": {},
    "edm-consistency": {},
    "flow-matching-reflow": {},
    "ldm-consistency": {},
    "ldm-ddpm-consistency": {},
    "ldm-edm-consistency": {},
    "ldm": TINY_LATENT,
    "ldm-cond": TINY_LATENT,
    "ldm-ddpm": {**TINY_LATENT, "num_train_timesteps": 50},
    "ldm-edm": TINY_LATENT,
    "ldm-text": TINY_LATENT,
    "ddpm-text": TINY_DDPM,
    "autoencoder": TINY_AE,
    "controlnet": {"hint_channels": 8},
    "inpaint": TINY_NET,
    "sr": TINY_NET,
    "colorize": TINY_NET,  # its default channels: 3
    "pix2pix": {**TINY_NET, "channels": 2},  # a pairs: stack of two 1-channel images
}
TEACHERS = {
    "ddpm-consistency": "ddpm",
    "flow-matching-consistency": "flow-matching",
    "edm-consistency": "edm",
    "ldm-consistency": "ldm",
    "ldm-ddpm-consistency": "ldm-ddpm",
    "ldm-edm-consistency": "ldm-edm",
}


def prepare(name: str, tmp_path) -> dict:
    """Extra ``gv.create`` arguments: a saved tiny parent (teacher or autoencoder) and what it fixes."""
    if name == "ddpm-student":
        teacher = gv.create("ddpm", num_classes=10, levels=17, **TINY_DDPM)
        save_model_dir(teacher, tmp_path / "teacher")
        return {
            "teacher": str(tmp_path / "teacher"),
            **student_config(teacher, sampling_steps=3, teacher_calls=2),
        }
    if name in TEACHERS:
        parent = prepare(TEACHERS[name], tmp_path)  # a latent teacher's autoencoder
        teacher = gv.create(
            TEACHERS[name], num_classes=10, levels=17, **TINY.get(TEACHERS[name], TINY_DDPM), **parent
        )
        save_model_dir(teacher, tmp_path / "teacher")
        fields = consistency.student_config(teacher, intervals=4)
        return {"teacher": str(tmp_path / "teacher"), **parent, **fields}
    if name == "flow-matching-reflow":
        teacher = gv.create("flow-matching", num_classes=10, levels=17, **TINY_NET)
        save_model_dir(teacher, tmp_path / "teacher")
        return {"teacher": str(tmp_path / "teacher"), **reflow.student_config(teacher, teacher_steps=2)}
    if name == "controlnet":
        base = gv.create("ddpm", num_classes=10, levels=17, **TINY_DDPM)
        save_model_dir(base, tmp_path / "base")
        return {"base": str(tmp_path / "base")}
    if name.startswith("ldm"):
        ae = gv.create("autoencoder", num_classes=10, levels=17, **TINY_AE)
        save_model_dir(ae, tmp_path / "ae")
        return {"autoencoder": str(tmp_path / "ae")}
    return {}
