"""``controlnet``: structure conditioning through a control branch on a frozen diffusion base.

After Zhang, Rao and Agrawala (2023), "Adding conditional control to text-to-image diffusion
models", on genvision's own UNet:

- The **branch** is a trainable copy of the base UNet's encoder (input convolution, down path,
  middle), starting from the base's weights. It sees the noisy image, the timestep and the base's
  own conditioning (labels), plus the **structure map** (``data/structure.py``: edges, sketch,
  mask, lowres) through a small convolutional stack whose last convolution is zero and whose
  output joins the copy's input features.
- Each of the branch's outputs (every skip and the middle) passes a **zero-initialised 1x1
  convolution** and is added to the base's matching features (``nn.unet.Cond.residuals``). Before
  training the controlled model is therefore the base, bit for bit; training moves only the
  branch, and the base stays frozen (a parent: neither saved nor optimised here).
- **Pairs come from the data**: each training image's structure map is extracted on the fly, so
  any image set trains any kind of control.

The base is a pixel-space diffusion run (``ddpm``, ``ddpm-cond``, ``flow-matching``,
``flow-matching-cond``, ``edm``); the run layer loads it from ``--set base=RUN_DIR`` and passes it
in. Its objective, sampler and guidance are used unchanged: this model only swaps the base's
network for the controlled one inside :meth:`ControlNet.controlled`.
"""

from __future__ import annotations

import copy
import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...data import structure
from ...nn.unet import UNet, _zero, as_cond
from ..base import GenerativeModel, ModelConfig
from .denoiser import Denoiser


@dataclass
class ControlConfig(ModelConfig):
    control: str = "edges"  # the structure kind: edges | sketch | mask | lowres
    hint_channels: int = 32  # width of the stack that embeds the structure map
    lr: float = 2e-4

    caps: ClassVar[dict[str, int]] = {"hint_channels": 1024}
    supports_conditional: ClassVar[bool] = True  # as its base is (filled from it)

    def __post_init__(self):
        super().__post_init__()
        structure.check_kind(self.control)
        if self.hint_channels < 1:
            raise ValueError(f"hint_channels must be >= 1 (got {self.hint_channels})")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr})")


class ControlBranch(nn.Module):
    """A trainable copy of ``unet``'s encoder, the structure map's embedding and the zero convolutions.

    ``forward(x, t, cond, control)`` returns the residuals (one per entry of
    ``unet.residual_shapes``) that ``Cond.residuals`` adds to the base.
    """

    def __init__(self, unet: UNet, image_size: int, map_channels: int, hint_channels: int):
        super().__init__()
        encoder = copy.deepcopy(unet)
        for name in ("up", "norm_out", "conv_out"):  # the decoder stays the base's
            delattr(encoder, name)
        self.encoder = encoder.requires_grad_(True)
        width = unet.conv_in.out_channels
        self.hint = nn.Sequential(
            nn.Conv2d(map_channels, hint_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hint_channels, hint_channels, 3, padding=1),
            nn.SiLU(),
            _zero(nn.Conv2d(hint_channels, width, 3, padding=1)),
        )
        self.zero = nn.ModuleList(_zero(nn.Conv2d(c, c, 1)) for c, _, _ in unet.residual_shapes(image_size))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond, control: torch.Tensor) -> list[torch.Tensor]:
        outputs = UNet.encode(self.encoder, x, t, cond, added=self.hint(control.to(x.dtype)))
        return [z(h) for z, h in zip(self.zero, outputs)]


class _ControlledNet:
    """The base's network with the branch's residuals added; stands in for ``base.net`` in a call."""

    def __init__(self, net: UNet, branch: ControlBranch, control: torch.Tensor):
        self.net, self.branch, self.control = net, branch, control

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        cond = as_cond(cond)
        control = self.control
        if control.shape[0] != x.shape[0]:
            raise ValueError(f"{control.shape[0]} control maps for a batch of {x.shape[0]}")
        residuals = self.branch(x, t, cond, control)
        return self.net(x, t, dataclasses.replace(cond, residuals=residuals))

    def __getattr__(self, name):  # every other attribute is the base network's
        if name == "net":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.net, name)


PREVIEW = 64  # stored control maps


class ControlNet(GenerativeModel):
    """A control branch on a frozen pixel-space diffusion base; see the module docstring."""

    family = "diffusion"
    config_class = ControlConfig
    parents = {"base": "sample"}
    sample_options = Denoiser.sample_options  # the base's (every base is a pixel-space Denoiser)
    takes_control: ClassVar[bool] = True
    start_note: ClassVar[str] = "denoised by the base's sampler, following the control map"

    def __init__(self, config: ControlConfig, **parents: GenerativeModel):
        super().__init__(config, **parents)
        self.branch: ControlBranch | None = None
        maps = structure.channels_of(config.control, config.channels)
        # the maps of the first training batch (set by init_from_data, saved with the model):
        # what sampling follows when no control is given (training grids, evaluate, compare)
        self.register_buffer("preview", -torch.ones(PREVIEW, maps, config.image_size, config.image_size))
        if self.has_parent("base"):
            base = self._parents["base"]
            self._check_base(base)
            self.branch = ControlBranch(
                base.net,
                base.config.image_size,
                structure.channels_of(config.control, config.channels),
                config.hint_channels,
            )

    def _check_base(self, base: GenerativeModel) -> None:
        from .latent import LatentMixin

        if not isinstance(base, Denoiser) or isinstance(base, LatentMixin) or base.takes_prompts:
            raise ValueError(
                f"the base is a {base.registry_name}; a control branch goes on a pixel-space diffusion "
                "run (ddpm, ddpm-cond, flow-matching, flow-matching-cond, edm)"
            )
        if base.parents:
            raise ValueError(f"the base is a {base.registry_name}, built on another model; use its teacher")
        c, b = self.config, base.config
        for name in ("image_size", "channels", "num_classes", "conditional"):
            if getattr(c, name) != getattr(b, name):
                raise ValueError(
                    f"the base has {name}={getattr(b, name)!r} and this run {getattr(c, name)!r}; "
                    "train the control branch on the data its base was trained on"
                )
        if c.control == "lowres" and c.image_size % structure.LOWRES_FACTOR:
            raise ValueError(f"control lowres needs an image size divisible by {structure.LOWRES_FACTOR}")

    def base(self) -> GenerativeModel:
        return self.parent("base")

    @contextmanager
    def controlled(self, control: torch.Tensor):
        """The base with its network answering through the branch, for one call (restored after).

        The stand-in lives in the base's instance ``__dict__`` (found before ``nn.Module``'s
        registered submodules), so the base's modules, modes and state dict are never touched.
        """
        base = self.base()
        if self.branch is None:
            raise ValueError("this controlnet has no base; give it with --set base=RUN_DIR")
        base.__dict__["net"] = _ControlledNet(base._modules["net"], self.branch, control.to(self.device))
        try:
            yield base
        finally:
            del base.__dict__["net"]

    # -- training ------------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, phase: str = "main", generator=None
    ) -> dict:
        """The base's own objective, its network controlled by ``x``'s structure maps."""
        control = structure.extract(self.config.control, x)
        with self.controlled(control) as base:
            return base.loss(x, y, phase, generator)

    def train_defaults(self) -> dict:
        return self.base().train_defaults()

    def init_from_data(self, batch: torch.Tensor) -> None:
        """Keep the structure maps of the first training batch as the default control."""
        maps = structure.extract(self.config.control, batch[:PREVIEW])
        self.preview.copy_(maps[torch.arange(PREVIEW) % len(maps)].to(self.preview))

    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        return self.base().noise_shape if self.has_parent("base") else None

    # -- sampling ------------------------------------------------------------------------
    def control_maps(self, n: int, control) -> torch.Tensor:
        """``control`` checked: (n, C', H, W) structure maps in [-1, 1] (one map: used for all n)."""
        c = self.config
        want = (structure.channels_of(c.control, c.channels), c.image_size, c.image_size)
        control = torch.as_tensor(control, dtype=torch.float32)
        if control.dim() == 3:
            control = control.unsqueeze(0)
        if control.dim() != 4 or tuple(control.shape[1:]) != want:
            raise ValueError(
                f"control maps must be ({n}, {', '.join(map(str, want))}) {c.control} maps; got {tuple(control.shape)}"
            )
        if c.control != "lowres":  # binary maps: structure where the picture is bright
            control = torch.where(control > 0, 1.0, -1.0)
        if control.shape[0] == 1:
            control = control.expand(n, *want)
        if control.shape[0] != n:
            raise ValueError(f"need {n} control maps (or one for all), got {control.shape[0]}")
        return control.to(self.device)

    @torch.no_grad()
    def sample(self, n: int, y=None, seed: int | None = None, generator=None, *, control=None, **options):
        """The base's ``sample`` following ``control`` ((n, C', H, W) maps, or one for all).

        Without ``control``, image k follows stored map k mod 64: the maps of the first training
        batch (what training grids, ``evaluate`` and ``compare`` see).
        """
        if control is None:
            control = self.preview[torch.arange(n) % PREVIEW]
        maps = self.control_maps(n, control)
        with self.eval_mode(), self.controlled(maps) as base:
            return base.sample(n, y=y, seed=seed, generator=generator, **options)
