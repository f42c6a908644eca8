"""Latent diffusion (Rombach et al., 2022): a diffusion-family model in an autoencoder's latent space.

Stage 1 is an ``autoencoder`` (``families/vae/autoencoder.py``) that compresses an image by
``2**downsample`` per side into ``latent_channels`` maps (28x28x1 -> 7x7x4, 32x32x3 -> 8x8x8);
stage 2, this model, learns the latents' distribution with any objective of the family (flow
matching for ``ldm`` / ``ldm-cond``, DDPM for ``ldm-ddpm``, EDM for ``ldm-edm``) and samples by
decoding what its sampler returns. The autoencoder is a "sample" parent: the run layer passes it
in (``genvision train ldm`` trains it first as the sub-run ``RUN/autoencoder``, or
``--set autoencoder=DIR`` names a trained one).

Latents are scaled to unit variance (``latent_scale``, one number measured on the training
latents and saved with the weights). The training set is encoded once, before the first step,
and cached in the run directory (``latents.safetensors``, keyed by a hash of the autoencoder's weights) so
a resumed run does not encode it again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..base import GenerativeModel
from ..vae.autoencoder import default_ae_fraction, default_latent_channels
from .continuous import EDM, EDMConfig, FlowMatching, FlowMatchingConfig
from .model import Diffusion, DiffusionConfig

CACHE_FILE = "latents.safetensors"
ENCODE_BATCH = 500


@dataclass
class LatentFields:
    """What a latent model adds to its objective's config (first base: its ``net_side`` wins)."""

    latent_channels: int | None = None  # the autoencoder's (filled from it); None = 4 grey, 8 RGB
    downsample: int = 2  # the autoencoder's halvings per side (filled from it)
    #: share of the run's length on stage 1 (`genvision train ldm`); None = 0.25 grey, 0.4 RGB
    ae_fraction: float | None = None
    clip_x0: bool = False  # latents are not in [-1, 1]: no clipping of the predicted clean latent
    base_channels: int = 64  # a 7x7 or 8x8 latent affords a wider network than the pixels did

    @property
    def net_side(self) -> int:
        """The latent's side: the image's divided by ``2**downsample``."""
        return self.image_size // 2**self.downsample

    def check_latent(self) -> None:
        if self.latent_channels is None:
            self.latent_channels = default_latent_channels(self.channels)
        if self.latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1 (got {self.latent_channels}); 4 is usual")
        if not 0 <= self.downsample <= 4:
            raise ValueError(f"downsample must be in 0..4 (got {self.downsample}); 2 is usual")
        if self.image_size % 2**self.downsample:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**downsample = {2**self.downsample}; "
                "resize the data (--set image_size=...) or lower downsample"
            )
        if self.ae_fraction is None:
            self.ae_fraction = default_ae_fraction(self.channels)
        if not 0 < self.ae_fraction < 1:
            raise ValueError(
                f"ae_fraction must be in (0, 1) (got {self.ae_fraction}); 0.25 grey, 0.4 RGB are usual"
            )


def default_flow_lr(channels: int) -> float:
    """Learning rate of a latent flow model (``ldm``, ``ldm-cond``) by the image's channel count:
    1e-3 grey, 2e-3 colour (measured on emoji 32x32: docs/notes/diffusion.md)."""
    return 1e-3 if channels == 1 else 2e-3


def default_flow_sampler(channels: int) -> str:
    """Default sampler of a latent flow model (``ldm``, ``ldm-cond``) by the image's channel count:
    Heun on the flow grid grey, EDM's Heun on its rho-7 grid colour (measured on MNIST and emoji:
    docs/notes/diffusion.md)."""
    return "heun" if channels == 1 else "edm"


@dataclass
class LatentFlowConfig(LatentFields, FlowMatchingConfig):
    caps: ClassVar[dict[str, int]] = {"latent_channels": 64}
    lr: float | None = None  # None = by the image's channels: 1e-3 grey, 2e-3 RGB
    sampler: str | None = None  # None = by the image's channels: heun grey, edm RGB (20 calls both)

    def __post_init__(self):
        if self.lr is None:
            self.lr = default_flow_lr(self.channels)
        if self.sampler is None:
            self.sampler = default_flow_sampler(self.channels)
        super().__post_init__()
        self.check_latent()


@dataclass
class LatentDiffusionConfig(LatentFields, DiffusionConfig):
    caps: ClassVar[dict[str, int]] = {"latent_channels": 64}

    def __post_init__(self):
        super().__post_init__()
        self.check_latent()


@dataclass
class LatentEDMConfig(LatentFields, EDMConfig):
    caps: ClassVar[dict[str, int]] = {"latent_channels": 64}
    sigma_data: float = 1.0  # the latents are scaled to unit variance (images in [-1, 1]: 0.5)

    def __post_init__(self):
        super().__post_init__()
        self.check_latent()


def weights_key(model: torch.nn.Module) -> str:
    """sha256 of a model's weights (names, shapes, values): what a latent cache was made with."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class LatentDataset:
    """The training set as scaled latents: what the trainer draws batches from (``batch``, ``len``)."""

    def __init__(self, images, latents: torch.Tensor, labels: torch.Tensor):
        self.images, self.latents, self.labels = images, latents, labels
        self.num_classes = images.num_classes

    def __len__(self) -> int:
        return len(self.latents)

    def __getattr__(self, name):  # spec, levels, describe(), ...: the images' own
        return getattr(self.images, name)

    def batch(self, idx: torch.Tensor, generator=None):
        return self.latents[idx], self.labels[idx]


class LatentMixin:
    """A diffusion-family model over an autoencoder's latents (``parents = {"autoencoder"}``)."""

    parents = {"autoencoder": "sample"}
    capability_notes = {
        "log_likelihood": "a latent model's bound would be on latents, not pixels; it has none"
    }
    start_note: ClassVar[str] = "denoised in latent space by the sampler, then decoded"

    def __init__(self, config, **parents: GenerativeModel):
        super().__init__(config, **parents)
        self.register_buffer("latent_scale", torch.ones(()))  # saved: 1 / std of the training latents
        if self.has_parent("autoencoder"):
            self._check_autoencoder(self.parent("autoencoder"))

    def net_io(self) -> tuple[int, int]:
        return self.config.latent_channels, self.config.net_side

    def _check_autoencoder(self, ae: GenerativeModel) -> None:
        c = self.config
        if ae.registry_name != "autoencoder" or not hasattr(ae, "encode"):
            raise ValueError(
                f"the autoencoder parent is a {ae.registry_name}; latent diffusion needs an autoencoder "
                "(genvision train autoencoder ..., or let genvision train ldm train one)"
            )
        shape = tuple(ae.latent_shape)
        mine = (c.latent_channels, c.net_side, c.net_side)
        if shape != mine or ae.config.channels != c.channels or ae.config.image_size != c.image_size:
            raise ValueError(
                f"the autoencoder encodes {ae.config.channels}x{ae.config.image_size}x{ae.config.image_size} "
                f"images to {shape}, this model expects {c.channels}x{c.image_size}x{c.image_size} -> {mine}; "
                "set latent_channels / downsample / image_size to match it"
            )

    # -- data -------------------------------------------------------------------------
    def training_data(self, dataset, out: Path | None = None, *, validation: bool = False):
        """The training set encoded (once; cached in ``out``) and scaled to unit variance.

        The scale is measured on the training latents; a ``validation`` slice is encoded and
        scaled with it.
        """
        from safetensors.torch import load_file, save_file

        ae = self.parent("autoencoder")
        key = weights_key(ae)
        cache = Path(out) / CACHE_FILE if out is not None and not validation else None
        latents = None
        if cache is not None and cache.is_file():
            try:
                stored = load_file(str(cache))
                if bytes(stored["key"].tolist()).decode() == key and len(stored["latents"]) == len(dataset):
                    latents = stored["latents"]
            except Exception:  # a damaged cache is rebuilt
                latents = None
        if latents is None:
            t0 = time.perf_counter()
            latents = self.encode_dataset(dataset)
            print(
                f"encoded {len(latents)} training images to latents {tuple(latents.shape[1:])} "
                f"in {time.perf_counter() - t0:.1f} s"
            )
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                save_file(
                    {
                        "latents": latents.contiguous(),
                        "key": torch.tensor(list(key.encode()), dtype=torch.uint8),
                    },
                    str(tmp),
                )
                tmp.replace(cache)
        if not validation:
            self.latent_scale.fill_(self.scale_of(latents))
        return LatentDataset(dataset, latents * self.latent_scale.cpu(), dataset.labels)

    def scale_of(self, latents: torch.Tensor) -> float:
        """The factor that brings the training latents to unit variance: 1 / their std."""
        return 1.0 / float(latents.float().std().clamp(min=1e-6))

    @torch.no_grad()
    def encode_dataset(self, dataset) -> torch.Tensor:
        """(N, C, h, w) float32 posterior means of every training image, on the CPU."""
        ae = self.parent("autoencoder")
        chunks = []
        with ae.eval_mode():
            for start in range(0, len(dataset), ENCODE_BATCH):
                idx = torch.arange(start, min(start + ENCODE_BATCH, len(dataset)))
                x, _ = dataset.batch(idx)  # (a binarised set: one Bernoulli draw, from the global RNG)
                chunks.append(ae.encode(x.to(self.device)).float().cpu())
        return torch.cat(chunks)

    # -- sampling -------------------------------------------------------------------
    def finish(self, z: torch.Tensor) -> torch.Tensor:
        """Decode the sampler's scaled latents to images."""
        return self.parent("autoencoder").decode(z / self.latent_scale)

    def sampler_state(self, images: torch.Tensor) -> torch.Tensor:
        """Images as the scaled latents the sampler works on (the autoencoder's posterior means)."""
        return self.parent("autoencoder").encode(images) * self.latent_scale

    def constrained(self, denoise, constraint):
        """Project in pixels: decode the clean latent estimate, project, encode back (scaled)."""
        ae = self.parent("autoencoder")

        def projected(z, sigma):
            x0 = ae.decode(denoise(z, sigma) / self.latent_scale)
            return ae.encode(constraint(x0)) * self.latent_scale

        return projected

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The autoencoder's reconstruction of ``x``: how faithful the decoder this model samples through is."""
        return self.parent("autoencoder").reconstruct(x)

    @property
    def noise_scaling(self) -> str:
        return " in latent space"


class LatentFlowMatching(LatentMixin, FlowMatching):
    """``ldm`` / ``ldm-cond``: flow matching on latents (the default latent model)."""

    config_class = LatentFlowConfig


class LatentDiffusion(LatentMixin, Diffusion):
    """``ldm-ddpm``: discrete DDPM on latents (as in Rombach et al., 2022)."""

    config_class = LatentDiffusionConfig


class LatentEDM(LatentMixin, EDM):
    """``ldm-edm``: EDM on latents."""

    config_class = LatentEDMConfig
