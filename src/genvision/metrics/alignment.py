"""``text_alignment``: how well images match their captions, measured offline.

A CLIP-score analogue that needs no download: an image encoder, trained inside genvision on the
dataset's own captioned train split, is aligned contrastively with the frozen all-MiniLM-L6-v2
sentence embeddings of the captions (:mod:`genvision.nn.text`). **It is not OpenAI's CLIP**: its
image side has seen only this dataset, so its numbers compare models on this data, never across
datasets or with published CLIP scores.

Network: the domain judge's convolutional trunk (:class:`~.judges.JudgeNet`, same layout, its
last layer giving :data:`EMBED_DIM` units) on the image side; a linear map of the 384-d sentence
embedding on the text side (the encoder itself stays frozen); both unit-normalised; a learned
temperature. Objective: image k's caption among **all** distinct train captions (a full-softmax
InfoNCE, so two images that share a caption, as the digit templates do, are never each other's
negatives). Recipe: Adam, lr 3e-3 decayed linearly to 0, weight decay 1e-4 on the text map,
batch 128, max(:data:`EPOCHS` epochs, :data:`MIN_STEPS` steps), seed 0, one torch thread.

The scores of a set of images with their prompts, against the candidate prompts (the distinct
captions of the test split, never trained on when the data has per-image captions):

- ``cosine``: the mean cosine similarity of each image to its own prompt in the joint space;
- ``top1`` / ``top5``: how often the image's own prompt ranks first / in the first five among
  the candidates (chance: k / number of candidates).

The trained aligner and the scores of the real test images are cached beside the judges
(``judges/<key>.safetensors`` + ``.json`` under ``GENVISION_CACHE``), keyed by the splits'
identity, a hash of their captions, the encoder and :data:`RECIPE_VERSION`; bump it whenever the
recipe above changes.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import judges

RECIPE_VERSION = 1
TASK = "text-alignment"
SEED = 0
EMBED_DIM = 128
BATCH_SIZE = 128
EPOCHS = 4
MIN_STEPS = 300
LR = 3e-3
TEXT_WEIGHT_DECAY = 1e-4
MAX_SCALE = 100.0
TOP_K = (1, 5)
NOT_CLIP = (
    "an image encoder trained by genvision on this dataset's train captions against frozen "
    "all-MiniLM-L6-v2 sentence embeddings; not OpenAI's CLIP, so comparable only between models "
    "on this data"
)


class AlignerNet(nn.Module):
    """The image encoder (judge trunk -> EMBED_DIM) and the text map (384 -> EMBED_DIM)."""

    def __init__(self, channels: int, image_size: int, text_dim: int):
        super().__init__()
        self.image = judges.JudgeNet(channels, image_size, EMBED_DIM)
        self.text = nn.Linear(text_dim, EMBED_DIM)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(x), dim=-1)

    def embed_texts(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(sentence_embeddings), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(MAX_SCALE)).exp()


class Aligner:
    """A trained aligner: embeddings of images and prompts, and the scores of images with prompts.

    Attributes:
        meta: recipe, cache key and path, data descriptions, and ``real``: the scores of the real
            test images with their own captions (the yardstick every sample score sits beside).
    """

    def __init__(self, net: AlignerNet, meta: dict):
        self.net = net.eval()
        self.meta = meta

    @torch.no_grad()
    def embed_images(self, x) -> torch.Tensor:
        """Unit vectors (N, EMBED_DIM) of images (N, C, H, W) in [-1, 1]."""
        x, b = judges.check_images(x, self.meta, "aligner"), judges.EVAL_BATCH
        with judges.one_thread():
            return torch.cat([self.net.embed_images(x[i : i + b]) for i in range(0, len(x), b)])

    @torch.no_grad()
    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Unit vectors (N, EMBED_DIM) of prompts, through the frozen sentence encoder."""
        from ..nn import text

        return self.net.embed_texts(text.load_encoder().encode(list(prompts)).float())

    def scores(self, images, prompts: list[str], candidates: list[str]) -> dict:
        """``cosine``, ``top1``, ``top5`` of ``images`` with ``prompts`` (image k with prompt k),
        the prompt ranked among ``candidates`` (which must hold every prompt)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images for {len(prompts)} prompts; give one prompt per image")
        index = {c: i for i, c in enumerate(candidates)}
        missing = sorted({p for p in prompts if p not in index})
        if missing:
            raise ValueError(f"prompts not among the candidates: {', '.join(missing[:3])}")
        return score_embeddings(
            self.embed_images(images), self.embed_prompts(candidates), [index[p] for p in prompts]
        )

    def info(self) -> dict:
        keys = ("recipe_version", "task", "embed_dim", "encoder", "cache_key", "cache_path", "train_seconds")
        out = {k: self.meta.get(k) for k in keys}
        out.update(
            real_test_scores=self.meta["real"],
            candidates=self.meta["candidates"],
            train_captions=self.meta["train_captions"],
            train_data=self.meta["train_data"],
            test_data=self.meta["test_data"],
            what=NOT_CLIP,
        )
        return out


def score_embeddings(images: torch.Tensor, candidates: torch.Tensor, truth: list[int]) -> dict:
    """Scores of unit image vectors (N, D) whose true prompt is row ``truth[k]`` of ``candidates``."""
    truth_t = torch.as_tensor(truth, dtype=torch.long)
    sims = images @ candidates.T  # (N, M)
    own = sims.gather(1, truth_t[:, None]).squeeze(1)
    rank = (sims > own[:, None]).sum(dim=1)  # 0 = first; ties go to the true prompt
    out = {"cosine": float(own.double().mean()), "n": len(truth), "candidates": len(candidates)}
    for k in TOP_K:
        out[f"top{k}"] = float((rank < k).double().mean())
        out[f"top{k}_chance"] = min(1.0, k / len(candidates))
    return out


# ----------------------------------------------------------------------------- public entry
def get_aligner(train_ds, test_ds, cache_dir: str | Path | None = None) -> Aligner:
    """The aligner of a captioned (or labelled) dataset: from the cache, else trained and cached.

    Raises:
        ValueError: data with neither captions nor classes; TextEncoderMissing (a ValueError):
            the sentence encoder is not installed.
    """
    from ..data import captions as caps
    from ..nn import text

    train_caps, test_caps = caps.captions_for(train_ds), caps.captions_for(test_ds)
    net, meta = judges.cached(
        cache_key(train_ds, test_ds, train_caps, test_caps),
        cache_dir,
        what="aligner",
        recipe_version=RECIPE_VERSION,
        build=lambda m: AlignerNet(m["channels"], m["image_size"], m["text_dim"]),
        train=lambda: _train(train_ds, test_ds, train_caps, test_caps, text.load_encoder()),
        extra={"task": TASK},
    )
    return Aligner(net, meta)


def cache_key(train_ds, test_ds, train_caps: list[str], test_caps: list[str]) -> str:
    from ..nn import text

    digest = hashlib.sha256("\n".join(train_caps + ["--"] + test_caps).encode()).hexdigest()[:16]
    key = f"{TASK}|{train_ds.identity}|{test_ds.identity}|{digest}|{text.NAME}|recipe-{RECIPE_VERSION}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def split_prompts(test_ds) -> tuple[list[str], list[str]]:
    """(the caption of each test image, the distinct test captions in first-seen order)."""
    from ..data import captions as caps

    prompts = caps.captions_for(test_ds)
    return prompts, list(dict.fromkeys(prompts))


# ----------------------------------------------------------------------------- training
def _train(train_ds, test_ds, train_caps, test_caps, encoder) -> tuple[AlignerNet, dict]:
    start = time.perf_counter()
    distinct = sorted(set(train_caps))
    index = {c: i for i, c in enumerate(distinct)}
    y = torch.tensor([index[c] for c in train_caps], dtype=torch.long)
    with torch.no_grad():
        sentences = encoder.encode(distinct).float()  # (M, 384), frozen
    g = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = AlignerNet(train_ds.channels, train_ds.image_size, sentences.shape[1])
    n = len(train_ds)
    batch = min(BATCH_SIZE, n)
    steps = max(EPOCHS * math.ceil(n / batch), MIN_STEPS)
    opt = torch.optim.Adam(
        [
            {"params": [*net.image.parameters(), net.log_scale]},
            {"params": net.text.parameters(), "weight_decay": TEXT_WEIGHT_DECAY},
        ],
        lr=LR,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
    net.train()
    step = 0
    while step < steps:
        order = torch.randperm(n, generator=g)
        for i in range(0, n - batch + 1, batch):
            if step == steps:
                break
            idx = order[i : i + batch]
            x, _ = train_ds.batch(idx, generator=g)
            logits = net.scale() * net.embed_images(x.float()) @ net.embed_texts(sentences).T
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
    net.eval()
    seconds = time.perf_counter() - start
    meta = {
        "recipe_version": RECIPE_VERSION,
        "embed_dim": EMBED_DIM,
        "encoder": encoder_name(),
        "train_seconds": round(seconds, 2),
        "train_steps": steps,
        "channels": train_ds.channels,
        "image_size": train_ds.image_size,
        "text_dim": int(sentences.shape[1]),
        "train_captions": len(distinct),
        "train_data": judges._brief(train_ds),
        "test_data": judges._brief(test_ds),
    }
    aligner = Aligner(net, meta)
    candidates = list(dict.fromkeys(test_caps))
    images = torch.cat([x for _, x in judges._batches(test_ds)])
    meta["candidates"] = len(candidates)
    meta["unseen_test_captions"] = sum(c not in index for c in candidates)
    meta["real"] = aligner.scores(images, test_caps, candidates)
    return net, meta


def encoder_name() -> str:
    from ..nn import text

    return f"{text.NAME} (frozen, mean pooling, normalised)"


# ----------------------------------------------------------------------------- the metric
def _category_accuracy(train_ds, test_ds, images: torch.Tensor) -> dict:
    """On labelled data: how often the domain judge puts prompted image k in the class of the test
    image whose caption prompted it (k mod T), beside the judge's accuracy on the real test images."""
    if test_ds.num_classes < 2:
        return {}
    judge = judges.get_judge(train_ds, test_ds)
    wanted = test_ds.labels[torch.arange(len(images)) % len(test_ds)]
    predicted = torch.cat([judge.logits(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)])
    samples = float((predicted == wanted).double().mean())
    return {
        "category_accuracy": {
            "samples": samples,
            "real": judge.accuracy,
            "ratio": samples / judge.accuracy if judge.accuracy > 0 else None,
            "definition": "the domain judge's class of prompted image k against the class of the test image "
            "whose caption prompted it; real: the judge's accuracy on the test split",
        }
    }


def text_alignment_metric(inputs) -> dict:
    """The metric of ``genvision evaluate``: the model prompted with the test split's captions
    (image k with test image k mod T's caption, seeded per image), scored beside the real test
    images with their own captions."""
    from ..families.base import sample_in_batches
    from .sources import quantise

    run, model, test_ds = inputs.settings, inputs.model, inputs.test_ds
    aligner = get_aligner(inputs.train_ds, test_ds)
    captions, candidates = split_prompts(test_ds)
    n = run.n or len(captions)
    prompts = [captions[k % len(captions)] for k in range(n)]
    images = sample_in_batches(
        model, n, seed=run.seed, batch_size=run.batch_size, prompts=prompts, options=run.sample_options
    )
    images = quantise(images, test_ds.levels)
    got = aligner.scores(images, prompts, candidates)
    real = aligner.meta["real"]
    return {
        "value": got["cosine"],
        **got,
        "real": real,
        "top5_vs_real": got["top5"] / real["top5"] if real["top5"] > 0 else None,
        **_category_accuracy(inputs.train_ds, test_ds, images),
        "card": {
            **inputs.common,
            "aligner": aligner.info(),
            "n_generated": n,
            "prompts": "image k is prompted with test image (k mod T)'s caption; candidates: the "
            f"{len(candidates)} distinct test captions",
            "sample_options": run.sample_options or {},
        },
    }
