"""Sampling speed and quality per step count: genvision's default model against diffusers' schedulers.

Three models of the same size trained for the same number of steps of 128 images in the same
run (a length, not a time budget, so the comparison of samplers does not depend on how busy the
machine is; quality per wall-clock is ``quality_budget.py``'s job): genvision's default ``ddpm``
through ``genvision.train`` (or a trained run directory given with ``--model DIR``), the
diffusers default recipe (``peers.DiffusersDDPM``: a UNet2DModel with genvision's widths,
``DDPMScheduler``, epsilon prediction, linear betas) and the same network in diffusers' best
documented configuration (``diffusers-best``: v-prediction, cosine betas; ``peers.DIFFUSERS_CONFIGS``).
Each then samples the same N images per sampling seed (image k from generator
``seeding.image_seed(seed, k)``) four ways:

- DDPM-1000: ancestral sampling, every training step (genvision ``sampler="ddpm"``; diffusers
  ``DDPMScheduler``);
- DDIM-50 and DDIM-10: deterministic DDIM (genvision ``sampler="ddim", steps=K``; diffusers
  ``DDIMScheduler``);
- DPM++2M-10: DPM-Solver++(2M), second order, 10 denoiser calls (genvision
  ``sampler="dpm++2m"``; diffusers ``DPMSolverMultistepScheduler``).

``diffusers-best`` is sampled with DDIM-50, DDIM-10, DPM++2M-10 and DPM++2M-25 (its
DPM-Solver settings: ``peers.DIFFUSERS_CONFIGS``), and DDPM-1000 in full mode only (its 2
minutes of ancestral sampling do not fit the quick mode's 10 minutes). The best 10-call FID of
each library (over its configurations and 10-step samplers) is reported side by side.

And genvision's few-step path: the trained model distilled (``genvision distill``, the student
learns to land in one DDIM step where 4 teacher ODE steps do) into a student sampled with
DDIM-10; its distillation steps and seconds are in the JSON (``training``).

Reported: images/s of each (N images in batches of 250, wall-clock, EMA weights), and the domain
FID of each set (INTERFACES.md protocol), the mean over the sampling seeds and each.
Full mode: 1400 steps each (the ``genvision demo`` recipe), 600 distillation steps, N = 650
(the digits protocol), sampling seeds 0, 1, 2; ``--quick``: 400 steps each, 150 distillation
steps, N = 200, seeds 0 and 1 (FID at N = 200 is biased upwards; compare only within the run).
FID at N = 650 moves a lot from one sampling seed to the next, so read the ratios on the means,
never on one seed.

Target (issue 4): genvision's DDIM-10 FID within 25% of its DDPM-1000 FID, judged on the
distilled student; the JSON gives the undistilled DDIM-10 and DPM++2M-10 ratios beside it.

    python benchmarks/sampling_speed.py --quick [--threads 1] [--model runs/ddpm-digits]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import peers
import torch

import genvision as gv
from genvision import data
from genvision.families.base import sample_in_batches

#: the source files this benchmark measures (folders: every file under them), recorded with
#: their git blob hashes in the result's provenance (common.provenance)
MEASURES = [
    "benchmarks/sampling_speed.py",
    "benchmarks/peers.py",
    "src/genvision/families/diffusion/",
    *common.TRAINED_AND_SCORED,
]

SAMPLERS = (("ddpm", 1000), ("ddim", 50), ("ddim", 10), ("dpm++2m", 10))
#: diffusers-best: the few-step samplers and its documented DPM-Solver length; DDPM-1000 in full mode
BEST_SAMPLERS = (("ddim", 50), ("ddim", 10), ("dpm++2m", 10), ("dpm++2m", 25))
QUICK = {"steps": 400, "n": 200, "seeds": [0, 1], "distill_steps": 150}
FULL = {"steps": 1400, "n": 650, "seeds": [0, 1, 2], "distill_steps": 600}
TARGET = 1.25
BATCH = 250


def genvision_sampler(model):
    def sample(n: int, seed: int, sampler: str, steps: int):
        options = {"sampler": sampler} if sampler == "ddpm" else {"sampler": sampler, "steps": steps}
        return sample_in_batches(model, n, seed=seed, batch_size=BATCH, options=options)

    return sample


def diffusers_sampler(peer):
    def sample(n: int, seed: int, sampler: str, steps: int):
        return peer.sample(n, seed, sampler=sampler, steps=steps, batch_size=BATCH)

    return sample


def sweep(name: str, sample, n: int, seeds: list[int], loads: list, samplers=SAMPLERS) -> dict:
    """images/s and domain FID (mean over the sampling seeds, and each) of each sampler for one model."""
    out = {}
    for sampler, steps in samplers:
        label = f"{sampler.upper()}-{steps}"
        fids, cis, seconds = [], [], 0.0
        for seed in seeds:
            t0 = time.perf_counter()
            images = sample(n, seed, sampler, steps)
            seconds += time.perf_counter() - t0
            scored = common.fid_against(images, "digits", seed)
            fids.append(scored["fid"])
            cis.append(scored["ci"])
        out[label] = {
            "img_per_s": n * len(seeds) / seconds,
            "seconds": round(seconds, 1),
            "fid": sum(fids) / len(fids),
            "fid_per_seed": [round(f, 3) for f in fids],
            "ci_per_seed": [[round(v, 3) for v in c] for c in cis],
            "floor": scored["floor"],
            "floor_std": scored["floor_std"],
            "floor_at_equal_n": scored["equal_n"],
            "n_generated": n,
        }
        loads.append(os.getloadavg()[0])
        print(
            f"  {name} {label}: {out[label]['img_per_s']:.1f} img/s, FID {out[label]['fid']:.2f} {fids}",
            flush=True,
        )
    return out


def best_ten_calls(results: dict) -> dict:
    """Per library, the configuration and sampler with the lowest mean FID at 10 denoiser calls."""
    best: dict[str, dict] = {}
    for name, r in results.items():
        library = "diffusers" if name.startswith("diffusers") else "genvision"
        for label, row in r.items():
            if label.endswith("-10") and (library not in best or row["fid"] < best[library]["fid"]):
                best[library] = {"configuration": f"{name} {label}", "fid": row["fid"]}
    return best


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument("--steps", type=int, help="training steps of 128 images per model (quick 400, full 1400)")
    p.add_argument(
        "--distill-steps", type=int, help="distillation steps of the DDIM-10 student (quick 150, full 600)"
    )
    p.add_argument("--n", type=int, help="images per sampler and seed (quick 200, full 650)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--sample-seeds", type=int, nargs="+", help="sampling seeds (quick 0 1, full 0 1 2)")
    p.add_argument("--model", help="a trained genvision ddpm run directory on digits (skips its training)")
    args = p.parse_args()
    common.set_threads(args)
    mode = QUICK if args.quick else FULL
    steps, n, seed = args.steps or mode["steps"], args.n or mode["n"], args.seed
    distill_steps = args.distill_steps or mode["distill_steps"]
    seeds = args.sample_seeds or mode["seeds"]
    loads = [os.getloadavg()[0]]
    train_ds = data.load("digits", "train")
    with tempfile.TemporaryDirectory(prefix="gv-sampling-") as tmp:
        ours = None if args.model else peers.Genvision("digits", seed, Path(tmp) / "genvision")
        c = gv.create("ddpm", image_size=train_ds.image_size).config
        widths = tuple(c.base_channels * m for m in c.channel_mults)
        theirs = peers.DiffusersDDPM(train_ds, seed, widths, config="diffusers")
        best = peers.DiffusersDDPM(train_ds, seed, widths, config="diffusers-best")
        for trainer in (ours, theirs, best):
            if trainer is not None:
                trainer.train_steps(steps)
                loads.append(os.getloadavg()[0])
        teacher_dir = args.model or ours.out
        model = gv.load(teacher_dir)
        # few-step distillation of the trained default: a student that samples its ODE in 10 DDIM steps
        student_dir = gv.distill(
            teacher_dir,
            Path(tmp) / "student",
            sampling_steps=10,
            steps=distill_steps,
            seed=seed,
            sample_every=0,
            save_every=0,
            progress=False,
        )
        student = gv.load(student_dir)
        distilled = common.training_records(student_dir)[-1]
        loads.append(os.getloadavg()[0])
        trained = {
            "genvision": {"run": args.model}
            if args.model
            else {"steps": ours.steps, "train_seconds": round(ours.elapsed, 1)},
            "genvision-distilled": {
                "teacher": "the genvision model above",
                "steps": distilled["step"],
                "train_seconds": round(distilled["elapsed"], 1),
                "teacher_calls_per_step": student.config.teacher_calls,
            },
            **{
                peer.name: {"steps": peer.steps, "train_seconds": round(peer.elapsed, 1)}
                | {k: v for k, v in peer.settings().items() if k != "samplers"}
                for peer in (theirs, best)
            },
        }
        best_samplers = BEST_SAMPLERS if args.quick else (("ddpm", 1000), *BEST_SAMPLERS)
        results = {
            "genvision": sweep("genvision", genvision_sampler(model), n, seeds, loads),
            "genvision-distilled": sweep(
                "genvision-distilled",
                genvision_sampler(student),
                n,
                seeds,
                loads,
                [("ddim", 10)],
            ),
            "diffusers": sweep("diffusers", diffusers_sampler(theirs), n, seeds, loads),
            "diffusers-best": sweep(
                "diffusers-best", diffusers_sampler(best), n, seeds, loads, best_samplers
            ),
        }
    ours_fid = results["genvision"]
    ddpm = ours_fid["DDPM-1000"]["fid"]
    ratio = ours_fid["DDIM-10"]["fid"] / ddpm
    distilled_ratio = results["genvision-distilled"]["DDIM-10"]["fid"] / ddpm
    dpm_ratio = ours_fid["DPM++2M-10"]["fid"] / ddpm
    seeds_note = f"N={n}, mean of sampling seeds {seeds}"
    ten_calls = best_ten_calls(results)
    table = []
    for name, r in results.items():
        these = " / ".join(r)
        table.append(
            {
                "figure": f"{name} sampling img/s, {these} (digits, batch {BATCH})",
                "value": " / ".join(f"{r[k]['img_per_s']:.1f}" for k in r),
            }
        )
        table.append(
            {
                "figure": f"{name} domain FID, {these} ({seeds_note})",
                "value": " / ".join(f"{r[k]['fid']:.2f}" for k in r)
                + f" (floor {r['DDIM-10']['floor']:.2f})",
            }
        )
    table.append(
        {
            "figure": f"best 10-call domain FID of each library, over its configurations ({seeds_note})",
            "value": ", ".join(
                f"{lib} {b['fid']:.2f} ({b['configuration']})" for lib, b in ten_calls.items()
            ),
        }
    )
    table.append(
        {
            "figure": f"genvision DDIM-10 FID / DDPM-1000 FID, distilled student "
            f"({distilled['step']} steps, {distilled['elapsed']:.0f} s), target <= {TARGET}",
            "value": f"{distilled_ratio:.2f}" + (" (met)" if distilled_ratio <= TARGET else " (NOT met)"),
        }
    )
    table.append(
        {
            "figure": "genvision DDIM-10 FID / DDPM-1000 FID, the trained model itself (no distillation)",
            "value": f"{ratio:.2f}",
        }
    )
    table.append(
        {
            "figure": "genvision DPM++2M-10 FID / DDPM-1000 FID (same 10 calls, second order, no distillation)",
            "value": f"{dpm_ratio:.2f}",
        }
    )
    common.emit(
        {
            "benchmark": "sampling_speed",
            "mode": f"quick: {steps} training steps each, {distill_steps} distillation steps, {seeds_note}"
            if args.quick
            else f"full: {steps} steps, {distill_steps} distillation steps, {seeds_note}",
            "versions": common.peer_versions(),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "seed": seed,
            "sample_seeds": seeds,
            "n": n,
            "training": trained,
            "results": results,
            "best_10_call_fid": ten_calls,
            "peer_rule": "diffusers runs its default recipe and its best documented configuration "
            "(peers.DIFFUSERS_CONFIGS); both are recorded, and its best counts in best_10_call_fid",
            "distilled_ddim10_over_ddpm1000_fid": distilled_ratio,
            "ddim10_over_ddpm1000_fid": ratio,
            "dpmpp2m10_over_ddpm1000_fid": dpm_ratio,
            "target": f"genvision DDIM-10 FID <= {TARGET} x its DDPM-1000 FID (DDIM-10 of the distilled "
            "student, `genvision distill`; the undistilled figure beside it)",
            "target_met": distilled_ratio <= TARGET,
            "table": table,
        },
        args,
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
