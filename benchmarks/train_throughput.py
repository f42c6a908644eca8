"""Training throughput: genvision's UNet against diffusers' UNet2DModel of the same size, same run.

For each image size (28x28 and 32x32, 1 channel): genvision's default diffusion UNet at that
size (``genvision.create("ddpm", image_size=S).net``) and diffusers' ``UNet2DModel`` with the same
levels, widths and blocks per level (``peers.unet2d``; parameter counts within 10%, checked).
Both run the same training step on the same batch (64 images, fp32): predict the noise at
random timesteps, mean-squared error, backward, AdamW step. Steps alternate between the two
networks (A, B, A, B, ...) so that a change in the machine's load hits both alike; the figure
is the median step time over the timed repeats.

Reported per size: images/s of each and their ratio, FLOPs per training image (forward +
backward, counted with ``torch.utils.flop_counter``), achieved GFLOP/s and its fraction of the
float32 matmul peak measured in the same run (the best of a measurement before and after).

Target (issue 4): genvision's achieved GFLOP/s at least diffusers' (ratio >= 1).

    python benchmarks/train_throughput.py --quick [--threads 1]
"""

from __future__ import annotations

import os
import statistics
import time

import common
import peers
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import genvision as gv

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/train_throughput.py",
    "benchmarks/peers.py",
    "src/genvision/families/diffusion/",
    "src/genvision/nn/",
]

SIZES = (28, 32)
BATCH = 64
QUICK_REPEATS, FULL_REPEATS = 8, 30


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class Contender:
    """One network, its optimiser and a fixed batch: ``step()`` is one timed training step."""

    def __init__(self, name: str, forward, net: torch.nn.Module, size: int, seed: int = 0):
        self.name, self.forward, self.net = name, forward, net
        g = torch.Generator().manual_seed(seed)
        self.xt = torch.randn(BATCH, 1, size, size, generator=g)  # (B, 1, S, S) noisy input
        self.eps = torch.randn(BATCH, 1, size, size, generator=g)  # target noise
        self.t = torch.randint(0, 1000, (BATCH,), generator=g)
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
        self.times: list[float] = []

    def loss(self) -> torch.Tensor:
        return F.mse_loss(self.forward(self.xt, self.t), self.eps)

    def step(self, record: bool = True) -> None:
        t0 = time.perf_counter()
        loss = self.loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if record:
            self.times.append(time.perf_counter() - t0)

    def flops_per_image(self) -> float:
        """Forward + backward FLOPs of one training image (the optimiser's few FLOPs not counted)."""
        counter = FlopCounterMode(display=False)
        with counter:
            self.loss().backward()
        self.net.zero_grad(set_to_none=True)
        return counter.get_total_flops() / BATCH


def contenders(size: int) -> list[Contender]:
    torch.manual_seed(0)
    model = gv.create("ddpm", image_size=size, channels=1)
    widths = tuple(model.config.base_channels * m for m in model.config.channel_mults)
    ours = model.net
    theirs = peers.unet2d(size, 1, widths)
    return [
        Contender("genvision", lambda x, t: ours(x, t), ours, size),
        Contender("diffusers", lambda x, t: theirs(x, t).sample, theirs, size),
    ]


def measure(size: int, repeats: int, peak: float, loads: list) -> dict:
    pair = contenders(size)
    ours, theirs = pair
    counts = {c.name: n_params(c.net) for c in pair}
    mismatch = abs(counts["diffusers"] - counts["genvision"]) / counts["genvision"]
    if mismatch > 0.10:
        raise RuntimeError(f"parameter counts differ by {mismatch:.1%} at {size}x{size}: {counts}")
    flops = {c.name: c.flops_per_image() for c in pair}
    for c in pair:  # warm-up: allocator, oneDNN primitive caches
        c.step(record=False)
        c.step(record=False)
    for r in range(repeats):
        for c in pair if r % 2 == 0 else pair[::-1]:
            c.step()
        loads.append(os.getloadavg()[0])
    out = {"image_size": size, "batch": BATCH, "repeats": repeats, "param_mismatch": mismatch}
    for c in pair:
        median = statistics.median(c.times)
        img_s = BATCH / median
        gflops = flops[c.name] * img_s / 1e9
        out[c.name] = {
            "params": counts[c.name],
            "step_seconds_median": median,
            "step_seconds_min": min(c.times),
            "img_per_s": img_s,
            "flops_per_image": flops[c.name],
            "achieved_gflop_per_s": gflops,
            "fraction_of_matmul_peak": gflops / peak,
        }
    out["diffusers"]["config"] = peers.unet2d_config(theirs.net)
    out["genvision"]["config"] = {
        k: v
        for k, v in gv.create("ddpm", image_size=size).config.to_dict().items()
        if k in ("base_channels", "channel_mults", "num_res_blocks", "attention_resolutions")
    }
    out["img_per_s_ratio"] = out["genvision"]["img_per_s"] / out["diffusers"]["img_per_s"]
    out["gflop_per_s_ratio"] = (
        out["genvision"]["achieved_gflop_per_s"] / out["diffusers"]["achieved_gflop_per_s"]
    )
    # the same comparison pair by pair: robust to load that drifts during the run
    paired = [b / a for a, b in zip(ours.times, theirs.times)]
    out["paired_speed_ratio_median"] = statistics.median(paired)
    return out


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument(
        "--repeats", type=int, help=f"timed steps per network (quick {QUICK_REPEATS}, full {FULL_REPEATS})"
    )
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="image sizes (default 28 32)")
    args = p.parse_args()
    common.set_threads(args)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)
    loads = [os.getloadavg()[0]]
    peak_before = common.matmul_peak_gflops()
    sizes = {}
    for size in args.sizes:
        sizes[str(size)] = measure(size, repeats, peak_before, loads)
    peak_after = common.matmul_peak_gflops()
    peak = max(peak_before, peak_after)
    for s in sizes.values():  # fractions against the better of the two peak measurements
        for name in ("genvision", "diffusers"):
            s[name]["fraction_of_matmul_peak"] = s[name]["achieved_gflop_per_s"] / peak
    table = []
    for size, s in sizes.items():
        g, d = s["genvision"], s["diffusers"]
        table.append(
            {
                "figure": f"train img/s at {size}x{size}, batch {BATCH} (genvision / diffusers)",
                "value": f"{g['img_per_s']:.1f} / {d['img_per_s']:.1f} (ratio {s['img_per_s_ratio']:.3f})",
            }
        )
        table.append(
            {
                "figure": f"achieved GFLOP/s at {size}x{size} (genvision / diffusers; matmul peak {peak:.0f})",
                "value": f"{g['achieved_gflop_per_s']:.1f} ({g['fraction_of_matmul_peak']:.0%}) / "
                f"{d['achieved_gflop_per_s']:.1f} ({d['fraction_of_matmul_peak']:.0%}); "
                f"target ratio >= 1: {s['gflop_per_s_ratio']:.3f}"
                + (" (met)" if s["gflop_per_s_ratio"] >= 1 else " (NOT met)"),
            }
        )
    common.emit(
        {
            "benchmark": "train_throughput",
            "mode": "quick" if args.quick else "full",
            "versions": common.peer_versions(),
            "matmul_peak_gflops": peak,
            "matmul_peak_gflops_before_after": [peak_before, peak_after],
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "sizes": sizes,
            "target": "genvision achieved GFLOP/s >= diffusers' at every size",
            "target_met": all(s["gflop_per_s_ratio"] >= 1 for s in sizes.values()),
            "table": table,
        },
        args,
    )


if __name__ == "__main__":
    main()
