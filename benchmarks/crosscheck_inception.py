"""Cross-check genvision's FID Inception against torch-fidelity's, resize included (not in CI).

One file of random values in the real 2015-12-05 layout is loaded by both implementations; the
same uint8 images (grey 8x8 and 28x28, RGB 32x32, a 299x299 and a 512x512 one, so upsampling,
identity and downsampling are all covered) go through each one's own input pipeline. Printed:
the largest absolute and relative differences of the 2048-d pool features, the 1008 logits and
the bias-free logits, and of the resized network input; the check passes at 1e-4 relative.

torch-fidelity needs torchvision, which genvision does not depend on, so this runs in a
separate environment, with genvision on the path:

    python3 -m venv /work/fidelity-venv
    /work/fidelity-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 torch-fidelity numpy scipy
    PYTHONPATH=src /work/fidelity-venv/bin/python benchmarks/crosscheck_inception.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/crosscheck_inception.py",
    "src/genvision/metrics/inception.py",
]

TOLERANCE = 1e-4


def images(seed: int = 0) -> list[torch.Tensor]:
    """uint8 (B, C, H, W) test batches: smooth blobs plus noise, in several sizes and channels."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for channels, size in ((1, 8), (1, 28), (3, 32), (3, 299), (3, 512)):
        coarse = torch.rand(4, channels, 4, 4, generator=g)
        smooth = torch.nn.functional.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
        noisy = smooth + 0.1 * torch.randn(smooth.shape, generator=g)
        out.append((noisy.clamp(0, 1) * 255).round().to(torch.uint8))
    return out


def max_diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.double(), b.double()
    abs_diff = (a - b).abs().max().item()
    return {"max_abs": abs_diff, "max_rel": abs_diff / max(b.abs().max().item(), 1e-30)}


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], MEASURES).parse_args()
    torch.set_num_threads(args.threads or torch.get_num_threads())
    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from genvision.metrics import inception

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = inception.write_random_weights(Path(tmp) / "random-inception.pth", seed=0)
        ours, card = inception.load(path, verify_hash=False)
        theirs = FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048", "logits_unbiased", "logits"],
            feature_extractor_weights_path=str(path),
        ).eval()
    rows, worst = [], 0.0
    with torch.inference_mode():
        for batch in images():
            x = batch.float() / 127.5 - 1  # genvision's convention, [-1, 1]
            pool, logits = ours(x)
            unbiased = ours.logits_unbiased(pool)
            rgb = batch if batch.shape[1] == 3 else batch.repeat(1, 3, 1, 1)
            ref_pool, ref_unbiased, ref_logits = theirs(rgb)
            ref_input = interpolate_bilinear_2d_like_tensorflow1x(
                rgb.float(), size=(inception.INPUT_SIZE, inception.INPUT_SIZE), align_corners=False
            )
            ref_input = (ref_input - 128) / 128
            row = {
                "input": list(batch.shape),
                "resized_input": max_diff(inception.preprocess(x), ref_input),
                "pool_2048": max_diff(pool, ref_pool),
                "logits": max_diff(logits, ref_logits),
                "logits_unbiased": max_diff(unbiased, ref_unbiased),
                "feature_spread": float(ref_pool.std(dim=0).mean()),
            }
            worst = max(worst, *(row[k]["max_rel"] for k in ("pool_2048", "logits", "logits_unbiased")))
            rows.append(row)
    common.emit(
        {
            "benchmark": "crosscheck_inception",
            "reference": f"torch-fidelity {torch_fidelity.__version__} FeatureExtractorInceptionV3",
            "weights": "random values in the 2015-12-05 layout (seed 0), loaded by both",
            "weights_sha256": card["sha256"],
            "resize": inception.RESIZE,
            "batches": rows,
            "worst_relative_difference": worst,
            "tolerance": TOLERANCE,
            "passed": worst <= TOLERANCE,
            "seconds": round(time.perf_counter() - start, 1),
            "table": [
                {
                    "figure": "Inception features against torch-fidelity "
                    f"{torch_fidelity.__version__}: worst relative difference (pool, logits; "
                    f"{len(rows)} batches), tolerance {TOLERANCE:g}",
                    "value": f"{worst:.1e}" + (" (passed)" if worst <= TOLERANCE else " (FAILED)"),
                },
                {
                    "figure": "resized network input, worst relative difference against torch-fidelity",
                    "value": f"{max(r['resized_input']['max_rel'] for r in rows):.1e}",
                },
            ],
        },
        args,
    )
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
