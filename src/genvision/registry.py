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
        DIFFUSION,
        {},
        "DDPM (Ho et al. 2020), 1000 steps; UNet v-prediction (--set objective=eps for the paper's), "
        "sampled with DPM-Solver++(2M) in 20 calls",
    ),
    "ddpm-cond": Entry(
        DIFFUSION,
        {"conditional": True},
        "class-conditional DDPM with classifier-free guidance",
    ),
    "ddpm-student": Entry(
        "genvision.families.diffusion.distill:DiffusionStudent",
        {"sampler": "ddim", "clip_x0": False},
        "few-step DDIM student distilled from a ddpm / ddpm-cond teacher (genvision distill)",
    ),
    "vae": Entry(
        "genvision.families.vae.model:VAE",
        {},
        "VAE (Kingma & Welling 2014): conv encoder/decoder, discrete pixel likelihood, IWAE bound",
    ),
    "beta-vae": Entry(
        "genvision.families.vae.model:VAE",
        {"beta": 4.0, "kl_warmup_steps": 1000},
        "beta-VAE (Higgins et al. 2017): beta=4 with KL annealing over 1000 steps",
    ),
    "vqvae": Entry(
        "genvision.families.vae.vqvae:VQVAE",
        {},
        "VQ-VAE (van den Oord et al. 2017): EMA codebook, code maps for a learned prior",
    ),
    "gan": Entry(
        "genvision.families.gan.model:GAN",
        {"arch": "mlp", "loss": "ns"},
        "textbook GAN (Goodfellow et al. 2014): MLP G and D, non-saturating generator loss",
    ),
    "gan-minimax": Entry(
        "genvision.families.gan.model:GAN",
        {"arch": "mlp", "loss": "minimax"},
        "textbook GAN with the original minimax generator loss (saturates: the lesson it teaches)",
    ),
    "dcgan": Entry(
        "genvision.families.gan.model:GAN",
        {"arch": "dcgan", "loss": "ns"},
        "DCGAN (Radford et al. 2016): conv G with batch norm",
    ),
    "wgan-gp": Entry(
        "genvision.families.gan.model:GAN",
        {
            "arch": "dcgan",
            "loss": "wgan-gp",
            "critic_steps": 5,
            "lr_g": 1e-4,
            "lr_d": 1e-4,
            "betas_g": (0.0, 0.9),
            "betas_d": (0.0, 0.9),
        },
        "WGAN-GP (Gulrajani et al. 2017): critic with gradient penalty, 5 critic steps",
    ),
    "sngan": Entry(
        "genvision.families.gan.model:GAN",
        {
            "arch": "dcgan",
            "loss": "hinge",
            "spectral_norm": True,
            "lr_d": 4e-4,
            "betas_g": (0.0, 0.9),
            "betas_d": (0.0, 0.9),
        },
        "SNGAN (Miyato et al. 2018): spectrally normalised D, hinge loss",
    ),
    "sngan-cond": Entry(
        "genvision.families.gan.model:GAN",
        {
            "arch": "dcgan",
            "loss": "hinge",
            "spectral_norm": True,
            "conditional": True,
            "lr_d": 4e-4,
            "betas_g": (0.0, 0.9),
            "betas_d": (0.0, 0.9),
        },
        "class-conditional SNGAN: conditional batch norm in G, projection D",
    ),
    "pixelcnn": Entry(
        "genvision.families.autoregressive.model:PixelCNN",
        {},
        "PixelCNN (van den Oord et al. 2016): masked convolutions, exact bits/dim",
    ),
    "gated-pixelcnn": Entry(
        "genvision.families.autoregressive.model:GatedPixelCNN",
        {},
        "Gated PixelCNN: vertical + horizontal stacks without blind spot, exact bits/dim",
    ),
    "gated-pixelcnn-cond": Entry(
        "genvision.families.autoregressive.model:GatedPixelCNN",
        {"conditional": True},
        "class-conditional Gated PixelCNN",
    ),
    "pixelrnn": Entry(
        "genvision.families.autoregressive.model:PixelRNN",
        {},
        "PixelRNN (Row LSTM): the sequential baseline, exact bits/dim",
    ),
    "vqvae-transformer": Entry(
        "genvision.families.autoregressive.prior:VQVAETransformer",
        {},
        "causal transformer prior over a trained VQ-VAE's codes (--set vqvae=DIR), KV-cached sampling",
    ),
    "realnvp": Entry(
        "genvision.families.flows.model:RealNVP",
        {},
        "RealNVP (Dinh et al. 2017): checkerboard/channel affine couplings, bits/dim, encode/decode",
    ),
    "glow": Entry(
        "genvision.families.flows.model:Glow",
        {},
        "Glow (Kingma & Dhariwal 2018): actnorm, LU 1x1 convs, learned priors; bits/dim, encode/decode",
    ),
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


def create(name: str, parents: dict | None = None, **overrides) -> GenerativeModel:
    """Build the model ``name`` with its preset, then ``overrides`` (config fields).

    ``parents``: role -> model, for a model built on others (``GenerativeModel.parents``).
    """
    cls, _ = resolve(name)
    model = cls(config_for(name, **overrides), **(parents or {}))
    model.registry_name = name
    return model


def list_models() -> list[dict]:
    """Name, family module and summary of every registry entry."""
    rows = []
    for name, entry in MODELS.items():
        family = entry.target.split(".families.")[-1].split(".")[0]
        rows.append({"name": name, "family": family, "summary": entry.summary, "preset": dict(entry.preset)})
    return rows
