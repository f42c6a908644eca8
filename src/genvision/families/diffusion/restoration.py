"""Restoration task models: ``inpaint``, ``sr``, ``colorize``, conditional diffusion on the degraded image.

After SR3 (Saharia et al., 2021, "Image super-resolution via iterative refinement") and Palette
(Saharia et al., 2022, "Palette: image-to-image diffusion models"): a diffusion model of the
clean image ``x`` whose UNet sees, beside its noisy input, the degraded image brought to full size
(``data.degrade.condition_image``, concatenated as extra input channels, ``nn.unet.Cond.image``):

    task       measurement y = A x                    condition channels (at full size)
    inpaint    x with the hole set to 0, and the mask  C + 1: the known pixels (0 in the hole), the mask
    sr         the s x s box average (scale s)         C: y enlarged by nearest neighbour
    colorize   the BT.601 luma (RGB data only)         3: the luma copied to three channels

Training pairs are made from the data on the fly inside :meth:`RestorationMixin.loss`: each image draws
its mask (``degrade.random_masks``: boxes, strokes, random pixels), then its time and noise, from
the per-image generator the trainer passes. The objective is flow matching (``continuous.py``; in
the short CPU runs measured for this model it reached a lower restoration error than DDPM's v
objective for the same time: ``docs/notes/diffusion.md``), so every sampler of the family runs.

:meth:`RestorationMixin.restore` is what ``apps/restore.py`` calls: sample with the measurement as the
condition, then the exact projection onto the measurement inside [-1, 1] (``degrade.fit``): every
known pixel kept, the downsample of the output equal to the low-res input, the luma kept.
:meth:`RestorationMixin.sample` (the contract's, for training grids and the registry) restores the
images of the first training batch (stored with the weights, as ``control.py`` keeps its maps),
image k the stored image k mod 64 (an inpainting model's mask for it: ``random_masks`` from a
fixed seed per k).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from ... import seeding
from ...data import degrade
from ...nn.unet import UNet, as_cond
from ..base import GenerativeModel
from .continuous import FlowMatching, FlowMatchingConfig

#: stored images of the first training batch: what ``sample`` restores
PREVIEW = 64
#: the seed of the preview masks (image k's mask from ``seeding.image_seed(PREVIEW_MASK_SEED, k)``)
PREVIEW_MASK_SEED = 0


# ----------------------------------------------------------------------------- configs
@dataclass
class RestorationConfig(FlowMatchingConfig):
    """Flow-matching settings of a task model (unconditional: the degraded image is its condition)."""

    supports_conditional: ClassVar[bool] = False


@dataclass
class SuperResolutionConfig(RestorationConfig):
    scale: int = 4  # the low-res side is image_size / scale (s x s box average)

    def __post_init__(self):
        super().__post_init__()
        if self.scale < 2 or self.image_size % self.scale:
            raise ValueError(
                f"scale must be >= 2 and divide image_size {self.image_size} (got {self.scale}); "
                "use --set scale=2 or 4, or resize the data (--set image_size=...)"
            )


@dataclass
class ColorizationConfig(RestorationConfig):
    channels: int = 3

    def __post_init__(self):
        super().__post_init__()
        if self.channels != 3:
            raise ValueError(
                f"colorize needs RGB data (channels=3, got {self.channels}): train it on colour images, "
                "e.g. --data folder:../shared/datasets/emoji/twemoji"
            )


# ----------------------------------------------------------------------------- the condition
class _ConditionedNet:
    """The model's UNet with the condition image added to every call; stands in for ``model.net``."""

    def __init__(self, net: UNet, image: torch.Tensor):
        self.net, self.image = net, image

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        if self.image.shape[0] != x.shape[0]:
            raise ValueError(f"{self.image.shape[0]} condition images for a batch of {x.shape[0]}")
        return self.net(x, t, replace(as_cond(cond), image=self.image))

    def __getattr__(self, name):  # every other attribute is the UNet's
        if name == "net":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.net, name)


def _on_cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for ``degrade.random_masks`` (which draws on the CPU): a CPU one as it is,
    a device's replaced by a CPU one seeded from one draw of it (so still one stream per image)."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- the model
class RestorationMixin:
    """A diffusion-family model of ``x`` conditioned on its degradation ``A x``; see the module docstring.

    Mixed into an objective (``class Inpainting(RestorationMixin, FlowMatching)``); the concrete
    class sets :attr:`task` and its config. The objective's ``loss`` and every sampler run
    unchanged, the UNet answering through :meth:`conditioned`.
    """

    #: the restoration task: "inpaint" | "sr" | "colorize" (``apps/restore.py`` routes by it)
    task: ClassVar[str] = ""
    start_note = "denoised by the sampler, conditioned on the degraded image"
    #: ``sample`` restores stored training images, not a draw from a model of the data
    #: (``genvision compare`` leaves the task models out, as it does an autoencoder)
    samples_the_data = False

    def __init__(self, config: RestorationConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        c = config
        # the first training batch (set by init_from_data, saved with the weights)
        self.register_buffer("preview", torch.full((PREVIEW, c.channels, c.image_size, c.image_size), -1.0))

    @property
    def scale(self) -> int:
        """The super-resolution factor (unused by the other tasks)."""
        return getattr(self.config, "scale", 4)

    def cond_channels(self) -> int:
        """Channels of ``degrade.condition_image`` for this task."""
        c = self.config.channels
        return {"inpaint": c + 1, "sr": c, "colorize": 3}[self.task]

    def unet_options(self) -> dict:
        return {**super().unet_options(), "cond_channels": self.cond_channels()}

    @contextmanager
    def conditioned(self, image: torch.Tensor):
        """This model with its UNet conditioned on ``image`` (B, K, H, W) for one call (restored after).

        The stand-in lives in the instance ``__dict__`` (found before ``nn.Module``'s registered
        submodules), so the modules, modes and state dict are never touched.
        """
        previous = self.__dict__.pop("net", None)
        self.__dict__["net"] = _ConditionedNet(self._modules["net"], image.to(self.device))
        try:
            yield self
        finally:
            del self.__dict__["net"]
            if previous is not None:
                self.__dict__["net"] = previous

    # -- training ------------------------------------------------------------------------
    def measure(self, x: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A training pair's measurement ``(y, mask)`` of clean ``x``; masks from ``generator``."""
        mask = None
        if self.task == "inpaint":
            gens = (
                [_on_cpu(g) for g in generator]
                if isinstance(generator, (list, tuple))
                else _on_cpu(generator)
            )
            mask = degrade.random_masks(len(x), x.shape[-1], gens, device=x.device).to(x.dtype)
        return degrade.degrade(self.task, x, mask=mask, scale=self.scale), mask

    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """The objective's loss with the UNet conditioned on ``x``'s degradation (labels unused).

        Each image draws its mask (inpainting), then its time and noise, from its own generator.
        """
        meas, mask = self.measure(x, generator)
        image = degrade.condition_image(self.task, meas, mask=mask, scale=self.scale)
        with self.conditioned(image):
            return super().loss(x, None, phase, generator)

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Keep the first training batch (cycled to 64 images): what :meth:`sample` restores."""
        self.preview.copy_(batch[torch.arange(PREVIEW) % len(batch)].to(self.preview))

    # -- restoring -----------------------------------------------------------------------
    def check_measurement(self, y, mask) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(y, mask)`` checked against this model's shapes, on its device; one-line errors."""
        c = self.config
        y = torch.as_tensor(y).float()
        size = c.image_size
        want = {
            "inpaint": (c.channels, size, size),
            "sr": (c.channels, size // self.scale, size // self.scale),
            "colorize": (1, size, size),
        }[self.task]
        what = {"inpaint": "images", "sr": "low-res images", "colorize": "luma images"}[self.task]
        if y.dim() != 4 or tuple(y.shape[1:]) != want:
            raise ValueError(
                f"{self.registry_name} restores {what} of shape (B, {', '.join(map(str, want))}); "
                f"got {tuple(y.shape)}"
            )
        if self.task != "inpaint":
            if mask is not None:
                raise ValueError(f"a mask is for inpainting; {self.registry_name} ({self.task}) takes none")
            return y.to(self.device), None
        if mask is None:
            raise ValueError("inpainting needs a mask (B, 1, H, W), 1 where a pixel is missing")
        mask = torch.as_tensor(mask).float()
        if (
            mask.dim() != 4
            or mask.shape[1] != 1
            or mask.shape[0] not in (1, len(y))
            or mask.shape[2:] != y.shape[2:]
        ):
            raise ValueError(
                f"the mask must be ({len(y)}, 1, {size}, {size}) (or one for all), 1 where a pixel is missing; "
                f"got {tuple(mask.shape)}"
            )
        mask = (mask > 0.5).float().expand(len(y), -1, -1, -1).to(self.device)
        return degrade.degrade("inpaint", y.to(self.device), mask=mask), mask

    @torch.no_grad()
    def restore(
        self, y, mask=None, *, seed: int | None = None, generator=None, **sample_options
    ) -> torch.Tensor:
        """Restore measurements ``y``: (B, C, H, W) images in [-1, 1] that meet them exactly.

        Args:
            y: inpaint: (B, C, H, W) images in [-1, 1] (pixels under the mask are ignored); sr:
                the low-res (B, C, H/s, W/s); colorize: (B, 1, H, W) luma in [-1, 1].
            mask: inpaint: (B, 1, H, W) (or (1, 1, H, W) for all), 1 where a pixel is missing.
            seed: per-image seeds (image k depends only on (seed, k)); or give ``generator``.
            sample_options: the family's (sampler, steps, eta, ...).

        Returns:
            (B, C, H, W) on the model's device, after ``degrade.fit``: known pixels kept exactly,
            the s x s box average equal to the low-res input, the luma kept (to float rounding).
        """
        meas, mask = self.check_measurement(y, mask)
        image = degrade.condition_image(self.task, meas, mask=mask, scale=self.scale)
        with self.conditioned(image):
            x = super().sample(len(meas), seed=seed, generator=generator, **sample_options)
        return degrade.fit(self.task, x, meas, mask=mask, scale=self.scale)

    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, **options) -> torch.Tensor:
        """Restorations of the stored first-batch images (image k: stored image k mod 64, degraded).

        The contract's ``sample`` (training grids, the registry walk, ``evaluate``); a user
        restores their own images with :meth:`restore`. ``y`` (labels) is refused: unconditional.
        """
        self.check_labels(n, y)
        idx = torch.arange(n) % PREVIEW
        x = self.preview[idx.to(self.device)]
        mask = None
        if self.task == "inpaint":
            gens = [torch.Generator().manual_seed(seeding.image_seed(PREVIEW_MASK_SEED, int(k))) for k in idx]
            mask = degrade.random_masks(n, self.config.image_size, gens).to(self.device)
        y_meas = x if self.task == "inpaint" else degrade.degrade(self.task, x, scale=self.scale)
        return self.restore(y_meas, mask, seed=seed, generator=generator, **options)


class Inpainting(RestorationMixin, FlowMatching):
    """``inpaint``: fill the pixels under a mask, conditioned on the known ones and the mask."""

    task = "inpaint"
    config_class = RestorationConfig


class SuperResolution(RestorationMixin, FlowMatching):
    """``sr``: enlarge by ``scale``, conditioned on the nearest-neighbour enlarged low-res image."""

    task = "sr"
    config_class = SuperResolutionConfig


class Colorization(RestorationMixin, FlowMatching):
    """``colorize``: colour an image from its luma (RGB data only)."""

    task = "colorize"
    config_class = ColorizationConfig
