"""The CLI's verbs about images rather than models: ``score`` (anomaly scores, and detection
figures against known anomalies), ``detect`` (a real-vs-generated detector on unseen generators)
and ``inspect`` (the provenance record and the watermark of a written image). Parsing only; each
calls the public API or ``genvision.apps``.
"""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    sc = sub.add_parser(
        "score",
        help="anomaly scores per image (higher = stranger); with --anomalies: AUROC, AUPRC, FPR@95%%TPR and a ROC plot",
        description="Methods: bpd, nll (likelihood models), recon (reconstruct), typicality, ratio (against "
        "--background, the same model trained with --set train.pixel_noise=0.2), diffusion (denoising "
        "change). Default: the first of diffusion, bpd, recon the model has (ratio with --background).",
    )
    sc.add_argument("dir", help="model directory")
    sc.add_argument("--data", required=True, help="normal images: a dataset spec (its test split by default)")
    sc.add_argument("--anomalies", help="a dataset spec whose images (all splits) count as anomalies")
    sc.add_argument("--method", help="bpd, nll, recon, typicality, ratio or diffusion")
    sc.add_argument("--background", help="ratio's background model directory")
    sc.add_argument("--split", default="test", choices=["test", "train", "all"], help="split of --data")
    sc.add_argument("--n", type=int, help="score at most N images of each set")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", default="scores.csv", help="CSV of scores (ROC plot beside it as *_roc.png)")

    dt = sub.add_parser(
        "detect",
        help="train a real-vs-generated detector and report its AUROC on unseen generators, clean and after JPEG",
        description="SRC: a model directory (sampled), npz:FILE or folder:DIR; several separated by commas.",
    )
    dt.add_argument("--train-real", required=True, help="dataset spec of real training images (train split)")
    dt.add_argument("--train-fake", required=True, help="generated training sources, SRC[,SRC...]")
    dt.add_argument("--test-real", required=True, help="dataset spec of real test images (test split)")
    dt.add_argument("--test-fake", required=True, help="generated test sources, SRC[,SRC...]")
    dt.add_argument("--n", type=int, default=1000, help="images per class for training and for testing")
    dt.add_argument("--jpeg-quality", type=int, default=75)
    dt.add_argument("--seed", type=int, default=0)

    ins = sub.add_parser(
        "inspect",
        help="print the provenance record genvision stored in a .png or .npz, and look for the watermark",
    )
    ins.add_argument("file", help="a .png or .npz written by genvision")


def cmd_score(args) -> int:
    from .apps.anomaly import score_run

    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be >= 1 (got {args.n})")
    r = score_run(
        args.dir,
        args.data,
        anomalies=args.anomalies,
        method=args.method,
        background=args.background,
        split=args.split,
        n=args.n,
        out=args.out,
        seed=args.seed,
        progress=True,
    )
    normal = r["scores"]["normal"]
    print(f"{r['method']} ({r['what']}): normal mean {normal.mean():.4g} over {len(normal)} images")
    if r["summary"] is not None:
        s = r["summary"]
        print(
            f"anomalies mean {r['scores']['anomalies'].mean():.4g} over {s['n_anomalous']}: AUROC {s['auroc']:.4f}, "
            f"AUPRC {s['auprc']:.4f}, FPR at 95% TPR {s['fpr_at_95_tpr']:.4f}"
        )
    print(f"wrote {r['csv']}" + (f" and {r['plot']}" if r["plot"] else ""))
    return 0


def cmd_detect(args) -> int:
    from .apps.detect import detect

    r = detect(
        args.train_real,
        args.train_fake,
        args.test_real,
        args.test_fake,
        n=args.n,
        seed=args.seed,
        jpeg_quality=args.jpeg_quality,
    )
    q = r["jpeg_quality"]
    print(f"detector: {r['n']['train_real']} real + {r['n']['train_fake']} generated training images")
    for src, a in r["per_source"].items():
        print(f"  {src}: AUROC {a['clean']:.4f} clean, {a['jpeg']:.4f} after JPEG {q}")
    print(
        f"AUROC {r['auroc']['clean']:.4f} clean, {r['auroc']['jpeg']:.4f} after JPEG {q} ({r['n']['test_real']} real, {r['n']['test_fake']} generated test images)"
    )
    return 0


def cmd_inspect(args) -> int:
    import json

    from .sampling import read_record

    path = Path(args.file)
    mark = _watermark_line(path)
    try:
        record = read_record(path)
    except ValueError as e:
        if "no genvision record" not in str(e):
            raise
        print(
            f"{path}: no genvision record (not written by genvision, written before records, or re-saved by a tool that drops PNG text chunks)"
        )
        if mark:
            print(mark)
        return 1
    print(json.dumps(record, indent=2))
    if mark:
        print(mark)
    return 0


def _watermark_line(path: Path) -> str | None:
    """``inspect``'s watermark line for an image file (None for .npz: never marked)."""
    if path.suffix.lower() == ".npz":
        return "watermark: none (npz outputs are never marked)"
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from . import watermark

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except (OSError, UnidentifiedImageError):
        return None  # read_record says what is wrong with the file
    return watermark.describe(watermark.detect(arr))


COMMANDS = {"score": cmd_score, "detect": cmd_detect, "inspect": cmd_inspect}
