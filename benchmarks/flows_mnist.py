"""RealNVP and Glow on MNIST, and Glow's training throughput against normflows, in one run; prints JSON.

Figures (issue 9):

1. For ``realnvp`` and ``glow`` with their default configs (``genvision.train`` on
   ``mnist:../shared/datasets/mnist``, 256 levels), trained for a fixed wall-clock budget:
   test bits/dim (the dequantisation bound of ``log_likelihood``, one draw per image, on the first
   N test images) and the domain FID of samples at temperature 0.7 and 1.0.
2. Training throughput (images/s) at equal size: genvision's Glow (uniform dequantisation, as
   normflows has) against normflows' Glow (``GlowBlock`` x K per level, ``MultiscaleFlow``,
   learned per-channel Gaussian priors, logit transform), both with 2 levels, K steps per level
   and the same coupling width, whose parameter counts must agree within 10%; same batch (64),
   image size (28), optimiser (Adam), threads. Measured in a bare loop for both (loss, backward,
   step) and, for genvision, also through its trainer.

Budgets: full 30 minutes of training per model, bits/dim on the 10,000 test images, FID on 10,000
samples; quick 2 minutes per model, 2,000 test images, 1,000 samples, 20 s per throughput loop.
The published MNIST bits/dim (after hours of GPU training) go into the JSON beside ours
(:data:`PUBLISHED_BPD`).

    python benchmarks/flows_mnist.py --quick [--threads 1]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import genvision as gv  # noqa: E402
from genvision import data as gdata  # noqa: E402
from genvision import seeding  # noqa: E402
from genvision.families.base import sample_in_batches  # noqa: E402

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/flows_mnist.py",
    "src/genvision/families/flows/",
    *common.TRAINED_AND_SCORED,
]

MNIST = "mnist:" + str(gdata.shared_path("datasets", "mnist"))
BATCH = 64
LEVELS, STEPS, HIDDEN = 2, 4, 64  # the throughput comparison's size (genvision's Glow default)
#: published MNIST test bits/dim: RealNVP as the Glow and Flow++ papers' tables report it, Glow's paper
PUBLISHED_BPD = {"realnvp": 1.06, "glow": 1.05}


def budgets(quick: bool) -> dict:
    if quick:
        return {"minutes": 2.0, "n_test": 2000, "n_samples": 1000, "throughput_s": 20.0}
    return {"minutes": 30.0, "n_test": 10000, "n_samples": 10000, "throughput_s": 60.0}


# ----------------------------------------------------------------------------- quality per budget
def test_bpd(model, n: int) -> dict:
    """Bits/dim of the first ``n`` MNIST test images (image i's noise from seed 0's generator i)."""
    test = gdata.load(MNIST, "test")
    nats, t0 = [], time.perf_counter()
    for start in range(0, n, 500):
        x, _ = test.batch(torch.arange(start, min(start + 500, n)))
        nats.append(model.log_likelihood(x, generator=seeding.image_generators(len(x), 0, start=start)))
    nats = torch.cat(nats)
    dims = x[0].numel()
    return {
        "bpd": float(-nats.mean() / (dims * math.log(2))),
        "bpd_se": float(nats.std() / math.sqrt(len(nats)) / (dims * math.log(2))),
        "n": len(nats),
        "seconds": time.perf_counter() - t0,
    }


def train_and_score(name: str, b: dict, root: Path) -> dict:
    out = root / name
    t0 = time.perf_counter()
    gv.train(name, data=MNIST, out=out, minutes=b["minutes"], sample_every=0, save_every=0, progress=False)
    wall = time.perf_counter() - t0
    records = common.training_records(out)
    model = gv.load(out)
    result = {
        "config": model.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_minutes": b["minutes"],
        "train_wall_s": wall,
        "steps": records[-1]["step"],
        "images_seen": records[-1]["images"],
        "final_train_bpd": records[-1]["loss"],
        "test": test_bpd(model, b["n_test"]),
    }
    for t in (0.7, 1.0):
        s0 = time.perf_counter()
        images = sample_in_batches(model, b["n_samples"], seed=0, batch_size=500, options={"temperature": t})
        sample_s = time.perf_counter() - s0
        card = common.fid_against(images, MNIST)
        result[f"fid_t{t}"] = {"domain_fid": card.pop("fid"), **card, "sample_s": sample_s}
    return result


# ----------------------------------------------------------------------------- throughput
def loop_rate(step, seconds: float) -> float:
    """Images/s of ``step()`` (one batch of BATCH) over about ``seconds``, after 2 warm-up steps."""
    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * BATCH / (time.perf_counter() - t0)


def mnist_batches():
    """An endless stream of (x in [-1, 1], dequantised u in [0, 1)) MNIST train batches."""
    train = gdata.load(MNIST, "train")
    g = torch.Generator().manual_seed(0)
    while True:
        x, _ = train.batch(torch.randint(0, len(train), (BATCH,), generator=g))
        u = (torch.round((x + 1) * 127.5) + torch.rand(x.shape, generator=g)) / 256
        yield x, u


def genvision_glow():
    return gv.create(
        "glow",
        image_size=28,
        levels=256,
        num_levels=LEVELS,
        steps_per_level=STEPS,
        hidden_channels=HIDDEN,
        dequantization="uniform",
    )


def normflows_glow():
    """normflows' Glow at the same size (its README / examples/glow recipe, unconditional)."""
    import normflows as nf

    shape = (1, 28, 28)
    q0, merges, flows = [], [], []
    for i in range(LEVELS):
        flows.append(
            [
                nf.flows.GlowBlock(shape[0] * 2 ** (LEVELS + 1 - i), HIDDEN, split_mode="channel")
                for _ in range(STEPS)
            ]
            + [nf.flows.Squeeze()]
        )
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (
                shape[0] * 2 ** (LEVELS - i),
                shape[1] // 2 ** (LEVELS - i),
                shape[2] // 2 ** (LEVELS - i),
            )
        else:
            latent = (shape[0] * 2 ** (LEVELS + 1), shape[1] // 2**LEVELS, shape[2] // 2**LEVELS)
        q0.append(nf.distributions.GlowBase(latent))
    return nf.MultiscaleFlow(q0, flows, merges, transform=nf.transforms.Logit(alpha=0.01), class_cond=False)


def throughput(seconds: float, root: Path) -> dict:
    import normflows as nf

    batches = mnist_batches()
    torch.manual_seed(0)
    ours = genvision_glow()
    ours.init_from_data(next(batches)[0])
    peer = normflows_glow()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    opt_ours = torch.optim.Adam(ours.parameters(), 1e-3)
    opt_peer = torch.optim.Adam(peer.parameters(), 1e-3)

    def step_ours():
        x, _ = next(batches)
        loss = ours.loss(x)["loss"]
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    def step_peer():
        _, u = next(batches)
        loss = peer.forward_kld(u)
        opt_peer.zero_grad(set_to_none=True)
        loss.backward()
        opt_peer.step()

    rates = {"genvision_loop": [], "normflows_loop": []}
    for _ in range(2):  # interleaved, so a change in machine load hits both
        rates["genvision_loop"].append(loop_rate(step_ours, seconds / 2))
        rates["normflows_loop"].append(loop_rate(step_peer, seconds / 2))
    # genvision through its trainer: per-image generators, EMA, logging (the rate it logs)
    out = root / "throughput"
    steps = max(20, int(rates["genvision_loop"][0] * seconds / BATCH))
    config = {
        "num_levels": LEVELS,
        "steps_per_level": STEPS,
        "hidden_channels": HIDDEN,
        "dequantization": "uniform",
    }
    gv.train(
        "glow",
        data=MNIST,
        out=out,
        steps=steps,
        sample_every=0,
        save_every=0,
        progress=False,
        model_config=config,
    )
    logged = [r["img_per_s"] for r in common.training_records(out)]
    ours_rate = max(rates["genvision_loop"])
    peer_rate = max(rates["normflows_loop"])
    return {
        "normflows_version": nf.__version__,
        "size": {
            "levels": LEVELS,
            "steps_per_level": STEPS,
            "hidden_channels": HIDDEN,
            "batch": BATCH,
            "image": 28,
        },
        "parameters": {"genvision": n_ours, "normflows": n_peer, "ratio": n_ours / n_peer},
        "img_per_s": {
            "genvision_loop_runs": rates["genvision_loop"],
            "normflows_loop_runs": rates["normflows_loop"],
            "genvision_loop": ours_rate,
            "normflows_loop": peer_rate,
            "genvision_trainer_median": sorted(logged)[len(logged) // 2] if logged else None,
        },
        "speedup_loop": ours_rate / peer_rate,
        "target_speedup": 1.3,
    }


def table_rows(b: dict, speed: dict, models: dict) -> list[dict]:
    """The README rows: throughput against normflows, then each model's bits/dim and FIDs."""
    img = speed["img_per_s"]
    rows = [
        {
            "figure": f"Glow training img/s, genvision / normflows (bare loop, {LEVELS} levels x {STEPS} steps, "
            f"width {HIDDEN}, batch {BATCH})",
            "value": f"{img['genvision_loop']:.0f} / {img['normflows_loop']:.0f} "
            f"(ratio {speed['speedup_loop']:.2f}, target >= {speed['target_speedup']})",
        }
    ]
    for name, m in models.items():
        rows.append(
            {
                "figure": f"{name} MNIST test bits/dim after {b['minutes']:g} min ({m['test']['n']} test images; "
                f"published {PUBLISHED_BPD[name]})",
                "value": f"{m['test']['bpd']:.3f} +- {m['test']['bpd_se']:.3f}",
            }
        )
        rows.append(
            {
                "figure": f"{name} MNIST domain FID at temperature 0.7 / 1.0 ({b['n_samples']} samples)",
                "value": f"{m['fid_t0.7']['domain_fid']:.2f} / {m['fid_t1.0']['domain_fid']:.2f} "
                f"(floor {m['fid_t1.0']['floor']:.2f})",
            }
        )
    return rows


def main() -> None:
    args = common.parser(__doc__.splitlines()[0], MEASURES).parse_args()
    common.set_threads(args)
    b = budgets(args.quick)
    loads = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        speed = throughput(b["throughput_s"], root)
        loads.append(os.getloadavg()[0])
        models = {}
        for name in ("realnvp", "glow"):
            models[name] = train_and_score(name, b, root)
            loads.append(os.getloadavg()[0])
    result = {
        "benchmark": "flows_mnist",
        "mode": "quick" if args.quick else "full",
        "budgets": b,
        "load": common.load_note(loads),
        "loadavg_samples": [round(v, 2) for v in loads],
        "throughput": speed,
        "models": models,
        "published_bpd": PUBLISHED_BPD,
        "seconds": time.perf_counter() - t0,
        "table": table_rows(b, speed, models),
    }
    common.emit(result, args)


if __name__ == "__main__":
    main()
