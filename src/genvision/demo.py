"""``genvision demo``: the main job on the embedded default data, end to end.

Trains the default diffusion model (``ddpm``) on scikit-learn's 8x8 digits, samples a grid,
measures the domain FID against its floor, and writes ``report.md`` in the run directory.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

#: the demo recipe: 1400 steps of 128 images for the default 1M-parameter UNet, chosen to reach a
#: domain FID near its floor in a few CPU minutes (timings: docs/notes/diffusion.md)
DEMO_STEPS = 1400
DEMO_TRAIN = {"batch_size": 128, "save_every": 500, "sample_every": 500}
DEMO_METRICS = ["fid", "kid", "is", "pr", "dc", "memorization"]


def run_demo(out: str | Path | None = None, steps: int | None = None, progress: bool = True) -> Path:
    from . import evaluate, train

    out = Path(out) if out else Path("runs") / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    print(f"genvision demo: training ddpm on digits (8x8, 1347 train images) into {out}")
    train("ddpm", data="digits", out=out, steps=steps or DEMO_STEPS, progress=progress, **DEMO_TRAIN)
    t1 = time.perf_counter()
    print(f"trained in {t1 - t0:.0f}s; evaluating samples (FID, KID, IS, PR, DC, memorization)")
    # bits/dim is left out: the diffusion bound costs a denoiser call per step for every test
    # image, too slow for a demo (cost: docs/notes/diffusion.md; `genvision evaluate DIR
    # --metrics bpd` gives it)
    result = evaluate(out, data="digits", metrics=DEMO_METRICS)
    fid, kid = result["metrics"]["fid"], result["metrics"]["kid"]
    lo, hi = fid["ci"]
    print(
        f"domain FID {fid['value']:.3f} (95% CI {lo:.2f}-{hi:.2f}, n={fid['n_generated']})  "
        f"floor {fid['floor']:.3f} ± {fid['floor_std']:.2f} (real images at the same n)  "
        f"ratio {fid['ratio_to_floor']:.2f}x  (judge test accuracy {fid['judge']['test_accuracy']:.3f})"
    )
    print(
        f"KID x 10^3 {kid['value']:.2f} (95% CI {kid['ci'][0]:.2f} to {kid['ci'][1]:.2f}; about 0 = real data)"
    )
    print(f"total {time.perf_counter() - t0:.0f}s")
    print(f"grid: {out / 'grid.png'}")
    print(f"report: {out / 'report.md'}")
    return out
