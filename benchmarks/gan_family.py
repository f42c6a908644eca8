"""The GAN family at the resolutions people use: FID, precision/recall, class coverage, truncation.

Every GAN is trained with ``genvision.train(name, minutes=BUDGET)`` at its registry defaults, one
after another in this process (one seed; domain FID with its bootstrap interval at equal N), then
scored with ``genvision.evaluate``: domain FID, precision and recall, the judge's class histogram
of the samples and its entropy (class coverage), and for class-conditional models the judge's
accuracy on the requested classes. For ``biggan`` a truncation sweep follows: the same metrics at
psi in ``PSIS`` (the central mass of the normal its latents are drawn from; 1 = off), and a
picture (one row per psi, one column per class, the same seeds in every row).

- ``--quick`` (at most 10 minutes, the acceptance mode): ``biggan`` and ``stylegan`` (when the
  registry has it) for 1.5 minutes each on digits, N = 650.
- full: ``dcgan``, ``wgan``, ``wgan-gp``, ``sngan``, ``stylegan``, ``biggan`` for 15 minutes each
  on MNIST (N = 2,000) and on the emoji set at 32x32 (twemoji; its 9 categories are the labels;
  N = the protocol's default). About three hours: run it alone, or one dataset per process with
  ``--datasets`` and merge the JSON by hand.

Targets (issue 20): stylegan's emoji FID <= sngan's (moonshot 0.7x); biggan's conditional
accuracy >= 0.9 on MNIST; biggan's precision rises as psi falls.

    python benchmarks/gan_family.py --quick [--datasets mnist,emoji] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import common
import torch

import genvision as gv
from genvision import data, registry

MEASURES = [
    "benchmarks/gan_family.py",
    "src/genvision/families/gan/",
    *common.TRAINED_AND_SCORED,
]

QUICK = {"digits": 1.5}
FULL = {"mnist": 15.0, "emoji": 15.0}
QUICK_GANS = ["biggan", "stylegan"]
GANS = ["dcgan", "wgan", "wgan-gp", "sngan", "stylegan", "biggan"]
PSIS = [1.0, 0.8, 0.6, 0.4, 0.2]
N = {"digits": 650, "mnist": 2000, "emoji": None}  # None: the equal-N protocol's default
SIZE = {"emoji": 32}


def spec_of(dataset: str) -> str:
    if dataset == "digits":
        return "digits"
    if dataset == "mnist":
        return f"mnist:{data.shared_path('datasets', 'mnist')}"
    return f"folder:{data.shared_path('datasets', 'emoji', 'twemoji')}"


def scores(run: Path, spec: str, n, conditional: bool, sample_options=None) -> dict:
    """FID (interval, floor), precision, recall, class entropy and (conditional) accuracy of a run."""
    metrics = ["fid", "precision", "recall"] + (["conditional_accuracy"] if conditional else [])
    report = gv.evaluate(
        str(run), data=spec, metrics=metrics, n=n, sample_options=sample_options, progress=False
    )
    m = report["metrics"]
    hist = m.get("class_histogram") or {}
    return {
        "fid": m["fid"]["value"],
        "fid_ci": m["fid"].get("ci"),
        "fid_floor": m["fid"].get("floor"),
        "n_generated": m["fid"].get("n_generated", n),
        "precision": m["precision"]["value"],
        "recall": m["recall"]["value"],
        "class_entropy_nats": hist.get("entropy_nats"),
        "conditional_accuracy": m["conditional_accuracy"]["value"] if conditional else None,
    }


def truncation_picture(run: Path, path: Path) -> None:
    """Rows: psi in PSIS; columns: classes 0..K-1 (up to 10), image seeds fixed across rows."""
    model = gv.load(run)
    k = min(model.config.num_classes, 10)
    rows = [model.sample(k, y=torch.arange(k), seed=0, truncation=psi) for psi in PSIS]
    gv.save_grid(torch.cat(rows).cpu(), path, nrow=k)


def summarise(rows: dict, sweep: list | None) -> dict:
    out = {}
    if "stylegan" in rows and "sngan" in rows:
        ratio = rows["stylegan"]["fid"] / rows["sngan"]["fid"]
        out["stylegan_fid_over_sngan"] = ratio
        out["stylegan_target_met"] = ratio <= 1.0
    if "biggan" in rows:
        acc = rows["biggan"]["conditional_accuracy"]
        out["biggan_accuracy"] = acc
        out["biggan_accuracy_target_met"] = acc is not None and acc >= 0.9
    if sweep:
        precisions = [s["precision"] for s in sweep]  # in PSIS order: psi falling
        out["precision_by_psi"] = dict(zip(map(str, PSIS), precisions))
        # "rises as psi falls": the lowest psi above psi = 1, and no step down by more than 0.02
        out["precision_rises_as_psi_falls"] = precisions[-1] > precisions[0] and all(
            b >= a - 0.02 for a, b in zip(precisions, precisions[1:])
        )
    return out


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument("--datasets", default=None, help="comma-separated subset of the mode's datasets")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budgets = dict(QUICK if args.quick else FULL)
    if args.datasets:
        budgets = {d: budgets[d] for d in args.datasets.split(",") if d in budgets}
    names = QUICK_GANS if args.quick else GANS
    known = set(registry.MODELS)
    skipped = {name: "not in the registry yet" for name in names if name not in known}
    names = [name for name in names if name in known]
    results: dict = {}
    start = time.perf_counter()
    loads = [os.getloadavg()[0]]
    suffix = "-quick" if args.quick else ""
    with tempfile.TemporaryDirectory(prefix="gan-family-") as tmp:
        for dataset, minutes in budgets.items():
            if dataset != "digits" and not data.shared_path("datasets").is_dir():
                skipped[dataset] = "the shared datasets folder is missing"
                continue
            spec, config = spec_of(dataset), ({"image_size": SIZE[dataset]} if dataset in SIZE else {})
            rows, sweep = {}, None
            for name in names:
                run = Path(tmp) / f"{name}-{dataset}"
                torch.manual_seed(0)
                gv.train(
                    name,
                    data=spec,
                    out=run,
                    minutes=minutes,
                    model_config=config,
                    progress=False,
                    sample_every=0,
                )
                conditional = bool(getattr(gv.load(run).config, "conditional", False))
                row = scores(run, spec, N[dataset], conditional)
                records = common.training_records(run)
                row["steps"] = records[-1]["step"] if records else 0
                rows[name] = row
                loads.append(os.getloadavg()[0])
                print(f"{dataset} {name}: FID {row['fid']:.2f}, precision {row['precision']:.3f}", flush=True)
                if name == "biggan":
                    sweep = []
                    for psi in PSIS:
                        s = scores(run, spec, N[dataset], True, {"truncation": psi})
                        sweep.append({"psi": psi, **s})
                        print(f"  psi {psi}: FID {s['fid']:.2f}, precision {s['precision']:.3f}", flush=True)
                    picture = common.RESULTS / f"gan_family-{dataset}-truncation{suffix}.png"
                    truncation_picture(run, picture)
            results[dataset] = {
                "budget_minutes": minutes,
                "models": rows,
                "biggan_truncation_sweep": sweep,
                "summary": summarise(rows, sweep),
            }
    common.emit(
        {
            "benchmark": "gan_family",
            "mode": "quick" if args.quick else "full",
            "budgets_minutes": budgets,
            "psis": PSIS,
            "skipped": skipped,
            "results": results,
            "total_seconds": round(time.perf_counter() - start, 1),
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "table": table_rows(results),
        },
        args,
    )


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table_rows(results: dict) -> list[dict]:
    table = []
    for dataset, r in results.items():
        rows, names = r["models"], " / ".join(r["models"])
        if not rows:
            continue
        first = next(iter(rows.values()))
        table.append(
            {
                "figure": f"domain FID after {r['budget_minutes']:g} min on {dataset}, {names} "
                f"(N = {first['n_generated']}; floor {_fmt(first['fid_floor'], '.2f')})",
                "value": " / ".join(_fmt(row["fid"], ".2f") for row in rows.values()),
            }
        )
        table.append(
            {
                "figure": f"precision / recall on {dataset}, {names}",
                "value": " ; ".join(
                    f"{_fmt(row['precision'], '.3f')} / {_fmt(row['recall'], '.3f')}" for row in rows.values()
                ),
            }
        )
        s = r["summary"]
        if r["biggan_truncation_sweep"]:
            sweep = r["biggan_truncation_sweep"]
            table.append(
                {
                    "figure": f"biggan on {dataset}: FID / precision / accuracy at psi "
                    + ", ".join(f"{x['psi']:g}" for x in sweep),
                    "value": " ; ".join(
                        f"{x['fid']:.1f} / {x['precision']:.3f} / {_fmt(x['conditional_accuracy'], '.3f')}"
                        for x in sweep
                    )
                    + f" (precision rises as psi falls: {'yes' if s['precision_rises_as_psi_falls'] else 'no'})",
                }
            )
        if "stylegan_fid_over_sngan" in s:
            table.append(
                {
                    "figure": f"stylegan FID / sngan FID on {dataset} (target <= 1)",
                    "value": f"{s['stylegan_fid_over_sngan']:.2f}",
                }
            )
    return table


if __name__ == "__main__":
    main()
