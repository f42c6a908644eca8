"""Every model genvision can build, by name: one literal table, imported lazily.

``config.json`` stores the registry name, so loading a model directory can only build classes
genvision ships. Several names may share a class with different presets.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .families.base import GenerativeModel, build_dataclass, check_known, parse_field
from .model_memory import check_memory


@dataclass(frozen=True)
class Entry:
    target: str  # "module.path:ClassName"
    preset: dict = field(default_factory=dict)
    summary: str = ""


DIFFUSION = "genvision.families.diffusion.model:Diffusion"
FLOW = "genvision.families.diffusion.continuous:FlowMatching"
RESTORE = "genvision.families.diffusion.restoration:"

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
    "ddpm-consistency": Entry(
        "genvision.families.diffusion.consistency:DiffusionConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from a ddpm / ddpm-cond teacher: 1- or few-step sampling "
        "(genvision distill --method consistency)",
    ),
    "flow-matching": Entry(
        FLOW,
        {},
        "flow matching / rectified flow (Lipman et al. 2023, Liu et al. 2023): velocity on straight "
        "paths, logit-normal t, Heun sampling in 20 calls",
    ),
    "flow-matching-cond": Entry(
        FLOW,
        {"conditional": True},
        "class-conditional flow matching with classifier-free guidance",
    ),
    "flow-matching-consistency": Entry(
        "genvision.families.diffusion.consistency:FlowConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from a flow-matching teacher (genvision distill --method consistency)",
    ),
    "flow-matching-reflow": Entry(
        "genvision.families.diffusion.reflow:Reflow",
        {"sampler": "euler", "steps": 2},
        "reflow (Liu et al. 2023): a flow-matching student trained on its teacher's noise-image pairs; "
        "straighter paths, few Euler steps (genvision distill --method reflow)",
    ),
    "edm": Entry(
        "genvision.families.diffusion.continuous:EDM",
        {},
        "EDM (Karras et al. 2022): preconditioned denoiser, log-normal noise levels, Heun sampler",
    ),
    "edm-consistency": Entry(
        "genvision.families.diffusion.consistency:EDMConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from an edm teacher (genvision distill --method consistency)",
    ),
    "ldm": Entry(
        "genvision.families.diffusion.latent:LatentFlowMatching",
        {},
        "latent diffusion (Rombach et al. 2022): an autoencoder (stage 1, trained first in RUN/autoencoder "
        "or --set autoencoder=DIR) and flow matching on its latents",
    ),
    "ldm-cond": Entry(
        "genvision.families.diffusion.latent:LatentFlowMatching",
        {"conditional": True},
        "class-conditional latent flow matching with classifier-free guidance",
    ),
    "ldm-text": Entry(
        "genvision.families.diffusion.text:LatentTextFlow",
        {},
        "text-conditioned latent flow matching: a UNet cross-attending to frozen all-MiniLM-L6-v2 tokens of "
        "each image's caption (captions.tsv, else class templates); the text model for 32x32 RGB",
    ),
    "ddpm-text": Entry(
        "genvision.families.diffusion.text:TextDiffusion",
        {},
        "text-conditioned DDPM in pixels: cross-attention to frozen all-MiniLM-L6-v2 caption tokens, "
        "classifier-free guidance by caption dropout",
    ),
    "controlnet": Entry(
        "genvision.families.diffusion.control:ControlNet",
        {},
        "a control branch (trainable copy of the UNet encoder joined by zero convolutions) on a frozen "
        "pixel-space diffusion base: --set base=RUN_DIR --set control=edges|sketch|mask|lowres",
    ),
    "ldm-ddpm": Entry(
        "genvision.families.diffusion.latent:LatentDiffusion",
        {},
        "latent diffusion with the DDPM objective on the latents",
    ),
    "ldm-edm": Entry(
        "genvision.families.diffusion.latent:LatentEDM",
        {},
        "latent diffusion with the EDM objective on the latents",
    ),
    "ldm-consistency": Entry(
        "genvision.families.diffusion.consistency:LatentFlowConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from an ldm / ldm-cond teacher: one call on the latents, then the "
        "teacher's decoder (genvision distill --method consistency)",
    ),
    "ldm-ddpm-consistency": Entry(
        "genvision.families.diffusion.consistency:LatentDiffusionConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from an ldm-ddpm teacher (genvision distill --method consistency)",
    ),
    "ldm-edm-consistency": Entry(
        "genvision.families.diffusion.consistency:LatentEDMConsistency",
        {"sampler": "consistency", "steps": 1, "clip_x0": False},
        "consistency model distilled from an ldm-edm teacher (genvision distill --method consistency)",
    ),
    "inpaint": Entry(
        RESTORE + "Inpainting",
        {},
        "inpainting task model (Palette-style conditional flow matching on the known pixels and the mask; "
        "masks: boxes, strokes, random pixels); genvision inpaint RUN",
    ),
    "sr": Entry(
        RESTORE + "SuperResolution",
        {},
        "super-resolution task model (SR3-style conditional flow matching on the enlarged low-res image, "
        "--set scale=2|4); genvision upscale RUN",
    ),
    "adain": Entry(
        "genvision.families.vae.adain:AdaIN",
        {},
        "arbitrary style transfer by adaptive instance normalisation (Huang & Belongie 2017) with an "
        "encoder trained here (no VGG); genvision stylize RUN --content IMG --style IMG",
    ),
    "cyclegan": Entry(
        "genvision.families.gan.cyclegan:CycleGAN",
        {},
        "unpaired two-domain translation (Zhu et al. 2017): two generators, two patch discriminators, "
        "cycle and identity losses (--data unpaired:A_DIR,B_DIR); model.translate(images)",
    ),
    "pix2pix": Entry(
        "genvision.families.diffusion.pix2pix:Pix2Pix",
        {},
        "paired image-to-image translation: flow matching conditioned on the source image "
        "(--data pairs:SRC_DIR,DST_DIR); model.translate(images)",
    ),
    "colorize": Entry(
        RESTORE + "Colorization",
        {},
        "colourisation task model (conditional flow matching on the luma; RGB data only); genvision colorize RUN",
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
    "hvae": Entry(
        "genvision.families.vae.hierarchical:HierarchicalVAE",
        {},
        "hierarchical VAE (ladder / NVAE-lite): 3 spatial latent layers, residual posterior, KL warm-up, "
        "free bits, per-layer KL, IWAE bound, temperature sampling",
    ),
    "vqvae": Entry(
        "genvision.families.vae.vqvae:VQVAE",
        {},
        "VQ-VAE (van den Oord et al. 2017): EMA codebook, code maps for a learned prior",
    ),
    "autoencoder": Entry(
        "genvision.families.vae.autoencoder:Autoencoder",
        {},
        "KL-regularised conv autoencoder (Rombach et al. 2022, stage 1 of latent diffusion): L1 "
        "reconstruction, tiny KL, optional patch discriminator",
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
    "wgan": Entry(
        "genvision.families.gan.model:GAN",
        {
            "arch": "dcgan",
            "loss": "wgan",
            "optimizer": "rmsprop",
            "weight_clip": 0.01,
            "critic_steps": 5,
            "lr_g": 5e-5,
            "lr_d": 5e-5,
            "betas_g": (0.0, 0.99),
            "betas_d": (0.0, 0.99),
        },
        "textbook WGAN (Arjovsky et al. 2017): critic weights clipped to [-0.01, 0.01], RMSprop, 5 critic steps",
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
    "biggan": Entry(
        "genvision.families.gan.biggan:BigGAN",
        {
            "spectral_norm": True,
            "lr_d": 4e-4,
            "betas_g": (0.0, 0.9),
            "betas_d": (0.0, 0.9),
        },
        "BigGAN-like (Brock et al. 2019): class-conditional residual G with a shared class embedding and "
        "hierarchical z through conditional BN, self-attention, projection D, orthogonal regularisation, "
        "truncation by resampling",
    ),
    "stylegan": Entry(
        "genvision.families.gan.stylegan:StyleGAN",
        {},
        "StyleGAN2 (Karras et al. 2019, 2020): mapping network, modulated convolutions, noise inputs, "
        "style mixing, R1, truncation in w; residual D",
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
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(
            f"unknown model {name!r:.60}; known: {', '.join(sorted(MODELS))} (see `genvision models`)"
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
    config, parents = config_for(name, **overrides), parents or {}
    check_memory(name, cls, config, parents)
    model = cls(config, **parents)
    model.registry_name = name
    return model


def check_config(name: str, values: dict) -> None:
    """Check config ``values`` for ``name`` before its data is loaded (``train`` resizes the data).

    Each given field's type, finiteness and cap, then the memory estimate of the model built with
    the data fields not given at their smallest (so the estimate is a lower bound). A config that
    does not build without the data's fields is left to the build once the data is loaded.
    """
    cls, preset = resolve(name)
    values = {k: v for k, v in values.items() if k not in cls.parents}
    check_known(cls.config_class, values, f"{name} config")
    typed = {k: parse_field(cls.config_class, k, v) for k, v in values.items()}
    if cls.parents:
        return  # the estimate needs the parents, loaded after the data
    smallest = {"image_size": 4, "channels": 1, "num_classes": 1, "levels": 2}
    try:
        config = config_for(name, **{**smallest, **typed})
    except ValueError:
        return
    check_memory(name, cls, config, {})


def list_models() -> list[dict]:
    """Name, family module and summary of every registry entry."""
    rows = []
    for name, entry in MODELS.items():
        family = entry.target.split(".families.")[-1].split(".")[0]
        rows.append({"name": name, "family": family, "summary": entry.summary, "preset": dict(entry.preset)})
    return rows
