"""Trained translation models twemoji -> noto: pix2pix, cyclegan, adain against identity and Reinhard.

Every model translates the held-back twemoji test images (the test split of ``pairs:``); each output
is compared with the true noto image of the same emoji. Measures: the style judge (a judge trained
on ``unpaired:twemoji,noto``, labels twemoji 0 / noto 1: the fraction of outputs it calls noto),
the domain-feature distance to the true noto image (the L2 distance of the category judge's
penultimate features, LPIPS-style; the category judge is trained on noto), and category kept (the
category judge's class of the output equals the emoji's category). ``pix2pix`` trains on
``pairs:``, ``cyclegan`` on ``unpaired:`` (no pairing used), ``adain`` on ``unpaired:`` images as
content and style (labels unused) and stylizes each test image with a noto training image of
another emoji (never its own target). Baselines: identity (the twemoji image itself) and
Reinhard-style colour-statistics transfer (each image's RGB channel means and stds set to the
noto training set's mean ones).

- ``--quick``: 16x16 images, pix2pix and cyclegan 2 minutes each, adain 1 minute.
- full: 32x32, 15 minutes each.

    python benchmarks/translation_models.py --quick [--threads 1] [--json out.json]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data
from genvision.apps import restore
from genvision.metrics import judges

MEASURES = [
    "benchmarks/translation_models.py",
    "src/genvision/data/pairs.py",
    "src/genvision/families/diffusion/pix2pix.py",
    "src/genvision/families/gan/cyclegan.py",
    "src/genvision/families/vae/adain.py",
    "src/genvision/apps/stylize.py",
]


def reinhard(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Each image's channel means and stds set to the mean ones of the reference set."""
    m = x.mean(dim=(2, 3), keepdim=True)
    s = x.std(dim=(2, 3), keepdim=True) + 1e-5
    rm = ref.mean(dim=(2, 3), keepdim=True).mean(0, keepdim=True)
    rs = ref.std(dim=(2, 3), keepdim=True).mean(0, keepdim=True)
    return ((x - m) / s * rs + rm).clamp(-1, 1)


def score(out, target, labels, style_judge, cat_judge) -> dict:
    noto = (style_judge.logits(out).argmax(1) == 1).float().mean()
    dist = restore.feature_distance(out, target, cat_judge).mean()
    kept = (cat_judge.logits(out).argmax(1) == labels).float().mean()
    return {
        "style_noto": round(float(noto), 4),
        "feature_distance": round(float(dist), 4),
        "category_kept": round(float(kept), 4),
    }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], MEASURES).parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size, minutes = (
        (16, {"pix2pix": 2.0, "cyclegan": 2.0, "adain": 1.0})
        if args.quick
        else (32, dict.fromkeys(("pix2pix", "cyclegan", "adain"), 15.0))
    )
    tw, no = data.shared_path("datasets", "emoji", "twemoji"), data.shared_path("datasets", "emoji", "noto")
    pairs, unpaired = f"pairs:{tw},{no}", f"unpaired:{tw},{no}"
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    test = data.load(pairs, "test", image_size=size)
    x = test.batch(torch.arange(len(test)))[0]
    src, target, labels = x[:, :3], x[:, 3:], test.labels
    style_judge = judges.get_judge(
        data.load(unpaired, "train", image_size=size), data.load(unpaired, "test", image_size=size)
    )
    noto_train = data.load(f"folder:{no}", "train", image_size=size)
    cat_judge = judges.get_judge(noto_train, data.load(f"folder:{no}", "test", image_size=size))
    ref = noto_train.batch(torch.arange(len(noto_train)))[0]
    rows = {
        "identity": score(src, target, labels, style_judge, cat_judge),
        "reinhard": score(reinhard(src, ref), target, labels, style_judge, cat_judge),
    }
    g = torch.Generator().manual_seed(0)
    styles = ref[torch.randint(0, len(ref), (len(src),), generator=g)]
    with tempfile.TemporaryDirectory(prefix="translation-models-") as tmp:
        for name, spec in (("pix2pix", pairs), ("cyclegan", unpaired), ("adain", unpaired)):
            t0 = time.perf_counter()
            run = gv.train(
                name,
                data=spec,
                out=Path(tmp) / name,
                minutes=minutes[name],
                model_config={"image_size": size},
                progress=False,
                num_samples=4,
            )
            model = gv.load(run)
            model.eval()
            loads.append(os.getloadavg()[0])
            out = model.stylize(src, styles) if name == "adain" else model.translate(src)
            rows[name] = {
                **score(out.cpu(), target, labels, style_judge, cat_judge),
                "minutes": minutes[name],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(name, rows[name], flush=True)
    common.emit(
        {
            "benchmark": "translation_models",
            "mode": "quick" if args.quick else "full",
            "image_size": size,
            "n": len(src),
            "judges": {"style_accuracy": style_judge.accuracy, "category_accuracy": cat_judge.accuracy},
            "results": rows,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
        },
        args,
    )


if __name__ == "__main__":
    main()
