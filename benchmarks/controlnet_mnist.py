"""Structure control: a control branch on a frozen diffusion base follows the edges it is given.

A ``ddpm`` base is trained for a budget, then a ``controlnet`` on it (``control=edges``) for the
same budget. Both sample N images; the controlled one follows the edge maps of N held-out test
images (image k follows test image k's edges). Measured: edge F1 between the given edges and the
edges of the output (one-pixel tolerance, ``data/structure.py``), beside the same F1 of the base's
unguided samples against those maps (what chance alignment scores) and of the real test images
(1.0 by construction); and the domain FID of both sets at equal N, against the train split.

Target (issue 19, MNIST, 15 minutes each): edge F1 >= 0.7, FID within 1.5x of the base's.

Full mode: MNIST, 15 minutes per model, N = 1000. ``--quick``: digits, 2 minutes per model, N = 300.

    python benchmarks/controlnet_mnist.py --quick [--threads 1]
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
from genvision.data import structure
from genvision.families.base import sample_in_batches

MEASURES = [
    "benchmarks/controlnet_mnist.py",
    "src/genvision/data/structure.py",
    "src/genvision/families/diffusion/",
    *common.TRAINED_AND_SCORED,
]
QUICK = {"data": "digits", "minutes": 2.0, "n": 300}
FULL = {"data": "mnist:../shared/datasets/mnist", "minutes": 15.0, "n": 1000}
TRAIN = {"progress": False, "sample_every": 0, "save_every": 0}
KIND = "edges"


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    args = p.parse_args()
    common.set_threads(args)
    mode = QUICK if args.quick else FULL
    spec, n = mode["data"], mode["n"]
    test = data.load(spec, "test")
    real = test.batch(torch.arange(n))[0].float()
    maps = structure.extract(KIND, real)
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="controlnet-bench-") as tmp:
        base_dir, ctl_dir = Path(tmp) / "base", Path(tmp) / "control"
        gv.train("ddpm", data=spec, out=base_dir, minutes=mode["minutes"], **TRAIN)
        loads.append(os.getloadavg()[0])
        gv.train(
            "controlnet",
            data=spec,
            out=ctl_dir,
            minutes=mode["minutes"],
            model_config={"base": str(base_dir), "control": KIND},
            **TRAIN,
        )
        loads.append(os.getloadavg()[0])
        steps = {
            k: common.training_records(d)[-1]["step"] for k, d in (("base", base_dir), ("control", ctl_dir))
        }
        base_images = sample_in_batches(gv.load(base_dir), n, seed=0, batch_size=250)
        controlled = sample_in_batches(gv.load(ctl_dir), n, seed=0, batch_size=250, controls=maps)
        loads.append(os.getloadavg()[0])
    followed = structure.fidelity(KIND, maps, controlled)
    chance = structure.fidelity(KIND, maps, base_images)
    fid_base, fid_ctl = common.fid_against(base_images, spec), common.fid_against(controlled, spec)
    ratio = fid_ctl["fid"] / fid_base["fid"]
    met = followed["value"] >= 0.7 and ratio <= 1.5
    picture = common.RESULTS / f"controlnet_mnist{'-quick' if args.quick else ''}.png"
    _grid(maps[:8], controlled[:8], real[:8], picture)
    common.emit(
        {
            "benchmark": "controlnet_mnist",
            "mode": "quick" if args.quick else "full",
            "settings": {**mode, "control": KIND},
            "training_steps": steps,
            "edge_f1": followed,
            "edge_f1_of_the_base_unguided": chance,
            "fid": {"base": fid_base, "controlnet": fid_ctl, "ratio": ratio},
            "target_met": met,
            "picture": str(picture.relative_to(common.REPO)),
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "table": [
                {
                    "figure": f"controlnet (edges) on {spec.split(':')[0]}, {mode['minutes']:g} min on a "
                    f"{mode['minutes']:g}-min ddpm: edge F1 of outputs vs given edges (base unguided) (N = {n})",
                    "value": f"{followed['value']:.3f} ({chance['value']:.3f}); target >= 0.7",
                },
                {
                    "figure": "domain FID, controlnet / base at equal N (target ratio <= 1.5)",
                    "value": f"{fid_ctl['fid']:.2f} / {fid_base['fid']:.2f} (ratio {ratio:.2f}; "
                    f"{'met' if met else 'NOT met'})",
                },
            ],
        },
        args,
    )


def _grid(maps, outputs, real, path: Path) -> None:
    """Rows: the given edge maps, the controlled outputs, the test images they came from."""
    rows = torch.cat([maps.expand(-1, outputs.shape[1], -1, -1), outputs, real])
    gv.save_grid(rows, path, nrow=len(maps))


if __name__ == "__main__":
    main()
