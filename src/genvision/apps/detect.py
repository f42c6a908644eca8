"""A real-versus-generated detector: a judge trained on real images and some generators' samples,
scored on images it never saw (other generators, held-back real images), clean and after JPEG.

    genvision detect --train-real SPEC --train-fake SRC[,SRC...] --test-real SPEC --test-fake SRC[,SRC...]

A SRC is a model directory (sampled), ``npz:FILE`` or ``folder:DIR``. The classifier is the judges
module's network and recipe (``metrics/judges.py``, task ``real-vs-generated``, cached like every
judge). Its score for an image is the probability it gives to "generated"; AUROC
(``metrics/roc.py``) ranks the test fakes against the test reals, overall and per test source.
JPEG: every test image (real and fake alike) is re-encoded at ``jpeg_quality`` and scored again,
the usual way generated images lose their traces when they are shared.
"""

from __future__ import annotations

import io as _io

import numpy as np
import torch

from .. import data as gvdata
from ..data.transforms import to_float
from ..metrics import judges, roc
from ..metrics.sources import source_images

TASK = "real-vs-generated"
REAL, FAKE = 0, 1


def split_sources(text: str | list) -> list[str]:
    """``"a,b"`` or a list -> a non-empty list of sources."""
    items = text if isinstance(text, list) else [s.strip() for s in str(text).split(",")]
    items = [s for s in items if s]
    if not items:
        raise ValueError("give at least one generated source: a model directory, npz:FILE or folder:DIR")
    return items


def fakes(sources: list[str], like, n: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """About ``n`` images from ``sources`` in equal shares, float on ``like``'s levels, and each one's source."""
    per = max(1, n // len(sources))
    images, names = [], []
    for src in sources:
        x, _ = source_images(src, like, n=per, seed=seed)
        images.append(x)
        names += [src] * len(x)
    return torch.cat(images), names


def as_dataset(real: torch.Tensor, fake: torch.Tensor, levels: int, name: str):
    """Real (label 0) then fake (label 1) float images as an ImageDataset of the data's levels."""
    x = torch.cat([real, fake])
    stored = torch.round((x.clamp(-1, 1) + 1) / 2 * (levels - 1)).to(torch.uint8)
    labels = torch.cat([torch.full((len(real),), REAL), torch.full((len(fake),), FAKE)])
    return gvdata.ImageDataset(stored, labels, levels=levels, num_classes=2, spec=name, split="detect")


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Float images in [-1, 1] through JPEG at ``quality`` and back (8-bit, as shared files are)."""
    from PIL import Image

    u8 = torch.round((images.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for a in u8:
        buf = _io.BytesIO()
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, format="JPEG", quality=quality)
        back = np.asarray(Image.open(_io.BytesIO(buf.getvalue())).convert("L" if a.shape[-1] == 1 else "RGB"))
        out.append(back.reshape(a.shape))
    return to_float(torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous(), 256)


def detect(
    train_real: str,
    train_fake,
    test_real: str,
    test_fake,
    *,
    n: int = 1000,
    seed: int = 0,
    jpeg_quality: int = 75,
    cache_dir=None,
) -> dict:
    """Train the detector on ``n`` real + ``n`` fake images, score ``n`` + ``n`` unseen ones.

    Returns ``{"auroc": {"clean", "jpeg"}, "per_source": {src: {"clean", "jpeg"}}, "detector":
    judge.info(), "n": {...}}``.
    """
    if n < 10:
        raise ValueError(f"n must be >= 10 (got {n})")
    if not 1 <= jpeg_quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95 (got {jpeg_quality})")
    train_fake, test_fake = split_sources(train_fake), split_sources(test_fake)
    real_tr = gvdata.load(train_real, "train")
    real_te = gvdata.load(test_real, "test", image_size=real_tr.image_size)
    if (real_te.channels, real_te.levels) != (real_tr.channels, real_tr.levels):
        raise ValueError(f"{test_real} and {train_real} differ in channels or levels; use one kind of image")
    levels = real_tr.levels
    r_train = real_tr.batch(torch.arange(min(n, len(real_tr))))[0]
    r_test = real_te.batch(torch.arange(min(n, len(real_te))))[0]
    f_train, _ = fakes(train_fake, real_tr, n, seed)
    f_test, names = fakes(test_fake, real_tr, n, seed + 1)  # another draw than training's, same models or not
    train_ds = as_dataset(r_train, f_train, levels, f"detect-train:{train_real}")
    test_ds = as_dataset(r_test, f_test, levels, f"detect-test:{test_real}")
    judge = judges.get_judge(train_ds, test_ds, cache_dir, task=TASK, targets=lambda ds: ds.labels)

    def p_fake(x: torch.Tensor) -> np.ndarray:
        return judge.logits(x).softmax(dim=1)[:, FAKE].double().numpy()

    x_test = torch.cat([to_float(test_ds.images, levels)])
    clean, squeezed = p_fake(x_test), p_fake(jpeg(x_test, jpeg_quality))
    k = len(r_test)
    names = np.array(names)
    per_source = {
        src: {
            "clean": roc.auroc(clean[:k], clean[k:][names == src]),
            "jpeg": roc.auroc(squeezed[:k], squeezed[k:][names == src]),
        }
        for src in test_fake
    }
    return {
        "auroc": {"clean": roc.auroc(clean[:k], clean[k:]), "jpeg": roc.auroc(squeezed[:k], squeezed[k:])},
        "per_source": per_source,
        "jpeg_quality": jpeg_quality,
        "detector": judge.info(),
        "n": {
            "train_real": len(r_train),
            "train_fake": len(f_train),
            "test_real": k,
            "test_fake": len(f_test),
        },
    }
