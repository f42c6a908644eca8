"""End-to-end FID speed: genvision against torchmetrics, same Inception weights, same resize.

FID of MNIST test images against MNIST training images, end to end: images from the uint8
arrays, resize to 299, Inception-v3 features, statistics, distance. Both sides load one file of
random values in the real 2015-12-05 layout (the real file cannot be fetched here; the cost is
the same) and resize with TensorFlow 1.x bilinear (torchmetrics: ``antialias=False``, its 1.9
default being antialiased). The two run interleaved, batch by batch, so a busy machine slows both
alike (run one after the other, the second gained when other jobs ended). genvision streams float64 statistics batch by batch (O(D^2) memory);
torchmetrics accumulates sums and outer products the same way for FID.

torchmetrics' own Inception needs torch-fidelity (and so torchvision); where it is missing the
torchmetrics side gets genvision's network and resize as its custom feature module, so only the
statistics and update paths are compared, and the JSON says so.

Sizes (test vs train images, per implementation): ``--quick`` 200 vs 1,000; full on CPU 1,000
vs 5,000; full on a GPU 10,000 vs 60,000. Also printed: the domain-feature FID of the MNIST
test split against the train split (the real-data floor of domain FID) and the judge's accuracy.

    python benchmarks/metrics_speed.py --quick
"""

from __future__ import annotations

import os
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
    "benchmarks/metrics_speed.py",
    "src/genvision/metrics/",
    "src/genvision/data/",
]

BATCH = 50


def batches(ds, n: int):
    """uint8 (B, C, H, W) batches of the first ``n`` images of ``ds``."""
    for start in range(0, n, BATCH):
        yield torch.as_tensor(ds.images[start : min(start + BATCH, n)])


class Genvision:
    """genvision's side: extractor, streaming float64 statistics, Fréchet distance."""

    def __init__(self, path, device):
        from genvision.metrics import features

        self.extractor = features.inception_extractor(path, verify_hash=False)
        self.device = device
        self.stats = {}

    def update(self, x: torch.Tensor, levels: int, real: bool) -> None:
        from genvision import data
        from genvision.metrics import fid

        pool, _ = self.extractor.run(data.to_float(x, levels).to(self.device))
        self.stats.setdefault(real, fid.RunningStats()).update(pool)

    def compute(self) -> float:
        from genvision.metrics import fid

        return fid.frechet_distance(*self.stats[False].result(), *self.stats[True].result())


class GenvisionAsFeature(torch.nn.Module):
    """genvision's network and resize behind torchmetrics' uint8 (B, 3, H, W) interface."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.num_features = 2048

    def forward(self, x):
        return self.net(x.float() / 127.5 - 1)[0]


class Torchmetrics:
    """torchmetrics' side: FrechetInceptionDistance, its own Inception when torch-fidelity is there."""

    def __init__(self, path, device):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        if _TORCH_FIDELITY_AVAILABLE:
            metric = FrechetInceptionDistance(
                feature=2048, feature_extractor_weights_path=str(path), antialias=False
            )
            self.what = "torchmetrics FrechetInceptionDistance with its own (torch-fidelity) Inception, antialias=False"
        else:
            from genvision.metrics import inception

            net, _ = inception.load(path, verify_hash=False)
            metric = FrechetInceptionDistance(feature=GenvisionAsFeature(net))
            self.what = (
                "torchmetrics FrechetInceptionDistance with genvision's network as custom feature "
                "(torch-fidelity not installed): compares statistics and update paths only"
            )
        self.metric = metric.to(device)
        self.device = device

    def update(self, x: torch.Tensor, levels: int, real: bool) -> None:
        self.metric.update(x.expand(-1, 3, -1, -1).contiguous().to(self.device), real=real)

    def compute(self) -> float:
        return float(self.metric.compute())


def race(path, test, train, n_gen, n_ref, device) -> dict:
    """Both implementations end to end, interleaved batch by batch so they share the machine's load.

    Each side's clock covers building it (weights load), every batch (uint8 -> resize ->
    features -> statistics) and the final distance.
    """
    clocks = {"genvision": 0.0, "torchmetrics": 0.0}
    sides = {}
    for name, cls in (("genvision", Genvision), ("torchmetrics", Torchmetrics)):
        t = time.perf_counter()
        sides[name] = cls(path, device)
        clocks[name] += time.perf_counter() - t
    with torch.inference_mode():
        for ds, n, real in ((train, n_ref, True), (test, n_gen, False)):
            for x in batches(ds, n):
                for name, side in sides.items():
                    t = time.perf_counter()
                    side.update(x, ds.levels, real)
                    clocks[name] += time.perf_counter() - t
        values = {}
        for name, side in sides.items():
            t = time.perf_counter()
            values[name] = side.compute()
            clocks[name] += time.perf_counter() - t
    return {"fid": values, "seconds": clocks, "what": sides["torchmetrics"].what}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument("--data", default=None, help="MNIST spec (default mnist:<shared>/datasets/mnist)")
    p.add_argument("--sizes", help="override the image counts: TEST,TRAIN (e.g. 50,200 on a busy machine)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from genvision import data
    from genvision.metrics import features, inception, judges, protocol

    spec = args.data or f"mnist:{data.shared_path('datasets', 'mnist')}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.quick:
        n_gen, n_ref, mode = 200, 1_000, "quick"
    elif device == "cuda":
        n_gen, n_ref, mode = 10_000, 60_000, "full (GPU)"
    else:
        n_gen, n_ref, mode = 1_000, 5_000, "full (CPU)"
    if args.sizes:
        n_gen, n_ref = (int(v) for v in args.sizes.split(","))
        mode += f", sizes overridden to {n_gen} vs {n_ref}"
    loads = [os.getloadavg()[0]]
    t = time.perf_counter()
    train, test = data.load(spec, "train"), data.load(spec, "test")
    load_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = inception.write_random_weights(Path(tmp) / "random-inception.pth", seed=0)
        result = race(path, test, train, n_gen, n_ref, device)
    ours, theirs = result["fid"]["genvision"], result["fid"]["torchmetrics"]
    ours_s, theirs_s = result["seconds"]["genvision"], result["seconds"]["torchmetrics"]
    images = n_gen + n_ref
    t = time.perf_counter()
    judge = judges.get_judge(train, test)
    ref = features.reference(train, features.domain_extractor(train, test))
    floor_n = protocol.default_n(len(train), 1_000, 10_000)
    floor = protocol.floor(ref.mu, ref.sigma, ref.held_features, floor_n)
    judge_s = time.perf_counter() - t
    loads.append(os.getloadavg()[0])
    table = [
        {
            "figure": f"FID end to end ({n_gen} vs {n_ref} MNIST images, {device}), seconds, "
            "genvision / torchmetrics",
            "value": f"{ours_s:.1f} / {theirs_s:.1f} (speed ratio {theirs_s / ours_s:.2f})",
        },
        {
            "figure": "FID relative difference, genvision against torchmetrics (same weights and resize)",
            "value": f"{abs(ours - theirs) / max(abs(theirs), 1e-30):.1e}",
        },
        {
            "figure": f"MNIST domain FID floor at N={floor['n']} (held half vs reference half); judge test accuracy",
            "value": f"{floor['value']:.3f} ± {floor['std']:.3f}; {judge.accuracy:.4f}",
        },
    ]
    common.emit(
        {
            "benchmark": "metrics_speed",
            "mode": mode,
            "device": device,
            "data": spec,
            "images": {"test (generated side)": n_gen, "train (reference)": n_ref},
            "dataset_load_seconds": round(load_s, 2),
            "weights": "random values in the 2015-12-05 layout (seed 0), same file for both",
            "resize": inception.RESIZE,
            "genvision": {"fid": ours, "seconds": round(ours_s, 2), "images_per_s": images / ours_s},
            "torchmetrics": {
                "fid": theirs,
                "seconds": round(theirs_s, 2),
                "images_per_s": images / theirs_s,
                "what": result["what"],
            },
            "speed_ratio_genvision_over_torchmetrics": theirs_s / ours_s,
            "fid_relative_difference": abs(ours - theirs) / max(abs(theirs), 1e-30),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "table": table,
            "domain_fid_floor": {
                **floor,
                "definition": protocol.describe_floor(floor),
                "judge_test_accuracy": judge.accuracy,
                "seconds (train judge + reference features, or cache load)": round(judge_s, 2),
            },
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
