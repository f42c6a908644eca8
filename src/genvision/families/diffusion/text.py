"""Text-conditioned diffusion: a UNet cross-attending to a frozen sentence encoder's tokens.

``ddpm-text`` (DDPM in pixels) and ``ldm-text`` (flow matching on an autoencoder's latents, the one
to use at 32x32 RGB on a CPU budget) condition on a caption: the frozen all-MiniLM-L6-v2 encoder
(``nn/text.py``) turns it into token states, every UNet block at the two lowest sides (and the
middle) cross-attends to them, and their mean joins the timestep embedding (``nn/unet.py``).
Classifier-free guidance works as for labels: training replaces a caption by the empty one with
probability ``cond_drop_prob``, and sampling extrapolates from the empty prompt's prediction
towards the prompt's (``guidance.py``).

Captions come from the data (``data/captions.py``): a folder's ``captions.tsv``, else a template
per class ("a handwritten digit seven"). With template captions the model is also
class-conditional: ``config.class_captions`` holds the template of each class, so
``sample(n, y=7)`` prompts with class 7's caption, and the label metrics (conditional accuracy)
apply. The encoder's states of every training caption are computed once per run and cached in
the run directory (``captions.safetensors``, keyed by the caption texts and the encoder).

Training batches carry caption ids: row ``i`` of the caption table (``""`` at 0, then the class
templates in class order, then every other caption sorted), so for template-captioned data the id
of class k is k + 1 and ``loss(x, y=labels + 1)`` is what training does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ... import seeding
from ...data import captions as gcaptions
from ...nn import text as gtext
from ...nn.unet import Cond
from ..base import GenerativeModel
from .continuous import FlowMatching
from .latent import LatentFlowConfig, LatentMixin
from .model import Diffusion, DiffusionConfig

CACHE_FILE = "captions.safetensors"


@dataclass
class TextFields:
    """What a text model adds to its objective's config (``conditional`` follows ``class_captions``)."""

    #: the template caption of each class (filled by ``genvision train`` from labelled data without
    #: a captions file); non-empty makes the model class-conditional through them
    class_captions: tuple[str, ...] = ()
    #: feature-map sides with cross-attention; () = the two lowest
    cross_attention_resolutions: tuple[int, ...] = ()
    max_tokens: int = 32  # token states kept per caption or prompt (longer ones are cut)

    def check_text(self) -> None:
        self.class_captions = tuple(str(c) for c in self.class_captions)
        if self.class_captions and len(self.class_captions) != self.num_classes:
            raise ValueError(
                f"class_captions holds {len(self.class_captions)} captions for {self.num_classes} classes; "
                "give one per class, or () for captioned data"
            )
        if not 1 <= self.max_tokens <= gtext.MAX_TOKENS:
            raise ValueError(
                f"max_tokens must be in 1..{gtext.MAX_TOKENS} (got {self.max_tokens}); 32 is usual"
            )
        self.cross_attention_resolutions = tuple(self.cross_attention_resolutions)
        sides = [self.net_side // 2**i for i in range(len(self.channel_mults))]
        bad = [r for r in self.cross_attention_resolutions if r not in sides]
        if bad:
            raise ValueError(
                f"cross_attention_resolutions {bad} are not feature-map sides of this UNet; choose from {sides} or ()"
            )

    def text_post_init(self, base_post_init) -> None:
        self.conditional = self.conditional or bool(self.class_captions)
        base_post_init()
        if self.conditional and not self.class_captions:
            raise ValueError(
                "a text model takes class labels through their captions: conditional=True needs "
                "class_captions (genvision train fills them from labelled data without captions.tsv)"
            )
        self.check_text()


@dataclass
class TextDiffusionConfig(TextFields, DiffusionConfig):
    caps: ClassVar[dict[str, int]] = {"max_tokens": gtext.MAX_TOKENS}

    def __post_init__(self):
        self.text_post_init(super().__post_init__)


@dataclass
class LatentTextConfig(TextFields, LatentFlowConfig):
    caps: ClassVar[dict[str, int]] = {"max_tokens": gtext.MAX_TOKENS}
    lr: float | None = 1e-3  # the family's rate: ldm's 2e-3 on colour was not measured with text
    sampler: str | None = "heun"  # the family's sampler: ldm's edm on colour was not measured with text

    def __post_init__(self):
        self.text_post_init(super().__post_init__)


class CaptionedDataset:
    """A training set whose batches carry caption ids (rows of the model's caption table) as ``y``."""

    def __init__(self, data, ids: torch.Tensor):
        self.data, self.ids = data, ids

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name):  # spec, levels, num_classes, describe(), ...: the data's own
        return getattr(self.data, name)

    def batch(self, idx: torch.Tensor, generator=None):
        x, _ = self.data.batch(idx, generator)
        return x, self.ids[idx]


class TextMixin:
    """Text conditioning for a diffusion-family model: caption table, cross-attention, prompts."""

    takes_prompts: ClassVar[bool] = True
    trains_on_unlabeled = False  # an image needs a caption (its own, or its class's template)

    def __init__(self, config, **parents: GenerativeModel):
        super().__init__(config, **parents)
        self._table: tuple[list[str], torch.Tensor, torch.Tensor] | None = None
        self._null: tuple[torch.Tensor, torch.Tensor] | None = None  # the empty prompt's tokens

    def unet_options(self) -> dict:
        options = super().unet_options()
        options.update(
            num_classes=0,  # classes reach the network as their captions
            context_dim=gtext.DIM,
            cross_attention_resolutions=self.config.cross_attention_resolutions,
        )
        return options

    # -- text -----------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, 384) float32 and mask (B, L) of ``texts`` on the CPU (L <= max_tokens)."""
        states, mask = gtext.load_encoder().tokens(list(texts))
        k = min(self.config.max_tokens, states.shape[1])
        return states[:, :k].float().cpu(), mask[:, :k].cpu()

    def text_cond(self, texts: list[str]) -> Cond:
        states, mask = self.encode_texts(texts)
        return Cond(context=states.to(self.device), context_mask=mask.to(self.device))

    def null_cond(self, b: int) -> Cond:
        """The empty prompt's tokens for ``b`` images (the unconditional branch of guidance)."""
        if self._null is None:
            self._null = self.encode_texts([""])
        states, mask = self._null
        return Cond(
            context=states.expand(b, -1, -1).to(self.device), context_mask=mask.expand(b, -1).to(self.device)
        )

    def check_prompts(self, n: int, prompts) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts] * n
        prompts = [str(p) for p in prompts]
        if len(prompts) != n:
            raise ValueError(f"need {n} prompts (one per image), got {len(prompts)}")
        return prompts

    # -- the caption table ----------------------------------------------------------------
    def caption_rows(self, texts: list[str]) -> list[str]:
        """The table's captions: "", the class templates, then the other captions sorted."""
        head = ["", *self.config.class_captions]
        known = set(head)
        return head + sorted({t for t in texts if t not in known})

    def set_table(self, rows: list[str], out: Path | None = None) -> None:
        """Encode (or read from ``out``'s cache) the token states of ``rows``; the training table."""
        from safetensors.torch import load_file, save_file

        cache = Path(out) / CACHE_FILE if out is not None else None
        key = json.dumps({"encoder": gtext.NAME, "max_tokens": self.config.max_tokens, "captions": rows})
        if self._table is not None and self._table[0] == rows:
            return
        if cache is not None and cache.is_file():
            try:
                stored = load_file(str(cache))
                if bytes(stored["key"].tolist()).decode() == key:
                    self._table = (rows, stored["states"], stored["mask"].bool())
                    return
            except Exception:  # a damaged cache is rebuilt
                pass
        t0 = time.perf_counter()
        states, mask = self.encode_texts(rows)
        states = states.half()  # the table's storage; batches are float32
        print(f"encoded {len(rows)} captions with {gtext.NAME} in {time.perf_counter() - t0:.1f} s")
        self._table = (rows, states, mask)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            save_file(
                {
                    "states": states.contiguous(),
                    "mask": mask.to(torch.uint8),
                    "key": torch.tensor(list(key.encode()), dtype=torch.uint8),
                },
                str(tmp),
            )
            tmp.replace(cache)

    def training_data(self, dataset, out: Path | None = None, *, validation: bool = False):
        """The data (encoded, for a latent model) with caption ids as its labels.

        The table covers the training captions and, once validation's call comes, its captions too
        (that call extends the table without caching it).
        """
        data = super().training_data(dataset, out, validation=validation)
        texts = gcaptions.captions_for(dataset)
        if validation and self._table is not None:
            rows = self._table[0] + sorted(set(texts) - set(self._table[0]))
            self.set_table(rows, None)
        else:
            self.set_table(self.caption_rows(texts), out)
        index = {t: i for i, t in enumerate(self._table[0])}
        return CaptionedDataset(data, torch.tensor([index[t] for t in texts], dtype=torch.long))

    # -- training -------------------------------------------------------------------
    def _labels(self, b: int, y, generator, dev) -> Cond:
        """Caption ids ``y`` (None: the empty caption) as tokens; each dropped to "" with ``cond_drop_prob``."""
        if self._table is None:  # no training_data call: the class templates (id = label + 1)
            self.set_table(self.caption_rows([]))
        rows, states, mask = self._table
        ids = torch.zeros(b, dtype=torch.long) if y is None else y.long().cpu()
        if (ids < 0).any() or (ids >= len(rows)).any():
            raise ValueError(f"caption ids must be in 0..{len(rows) - 1} (rows of the caption table)")
        drop = seeding.rand((b,), generator, dev) < self.config.cond_drop_prob
        ids = torch.where(drop.cpu(), torch.zeros_like(ids), ids)
        return Cond(context=states[ids].to(dev, torch.float32), context_mask=mask[ids].to(dev))

    # -- sampling -------------------------------------------------------------------
    def denoiser(self, cond, scale: float, clip_x0: bool | None = None):
        """Prompts (a list of strings) or class labels (their captions) as tokens, then guidance."""
        if isinstance(cond, torch.Tensor):
            cond = [self.config.class_captions[k] for k in cond.tolist()]
        if isinstance(cond, list):
            cond = self.text_cond(cond)
        return super().denoiser(cond, scale, clip_x0)

    def denoise_x0(self, x: torch.Tensor, sigma, y=None) -> torch.Tensor:
        """``y=None`` is the empty prompt (guidance's unconditional branch)."""
        return super().denoise_x0(x, sigma, self.null_cond(x.shape[0]) if y is None else y)


class TextDiffusion(TextMixin, Diffusion):
    """``ddpm-text``: DDPM in pixel space conditioned on captions."""

    config_class = TextDiffusionConfig


class LatentTextFlow(TextMixin, LatentMixin, FlowMatching):
    """``ldm-text``: flow matching on an autoencoder's latents conditioned on captions."""

    config_class = LatentTextConfig
