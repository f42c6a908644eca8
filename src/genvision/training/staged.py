"""Two-stage runs: ``genvision train ldm`` trains its autoencoder first, then the latent model on it.

    genvision.train -> train(MODEL whose autoencoder is not given)
      -> train_staged: RUN/stages.json (the plan: name, data, settings, the split)
      -> train_one("autoencoder", out=RUN/autoencoder)   stage 1, ``ae_fraction`` of the length
      -> train_one(MODEL, out=RUN, autoencoder=RUN/autoencoder)   stage 2, the rest

Each stage is an ordinary run (the first a sub-run, the parent of the second), so ``--resume``
continues whichever stage stopped; a length given with ``--resume`` is the whole run's new length.
``genvision compare`` trains the same two stages itself (``comparison/runner.py``), splitting its
budget with :func:`ae_fraction` and :func:`split_length`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import data as gdata
from .. import registry
from ..families.base import parse_value
from ..model_dir import read_config
from . import checkpoint
from .config import LENGTH_KEYS
from .run import DATA_FIELDS, STAGE, default_run_dir, prepare_dir
from .run import train as train_one

PLAN_FILE = "stages.json"
LEGACY_AE_FRACTION = 0.25  # the split of plans written before stages.json recorded it
KEEP = (STAGE, PLAN_FILE)
#: trainer settings both stages share (the rest are each model's own: lr, batch size, EMA...)
SHARED_TRAIN_KEYS = (
    "seed",
    "device",
    "precision",
    "strict",
    "progress",
    "tensorboard",
    "save_every",
    "sample_every",
    "log_every",
    "num_samples",
)
#: config fields of a latent model that its autoencoder must share
AE_FIELDS = ("latent_channels", "downsample", "image_size")


def train(
    model,
    data: str | None = "digits",
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model_config: dict | None = None,
    **train_values,
) -> Path:
    """``genvision.train``: a model with an autoencoder to train first (``ldm`` without
    ``autoencoder=DIR``, or ``--resume`` of such a run) in two runs (:func:`train_staged`), any
    other as one (``run.train``, whose arguments these are)."""
    if is_staged(model, out, resume, model_config or {}):
        return train_staged(
            model,
            data,
            out,
            resume=resume,
            overwrite=overwrite,
            model_config=model_config or {},
            **train_values,
        )
    return train_one(
        model, data, out, resume=resume, overwrite=overwrite, model_config=model_config, **train_values
    )


def is_staged(model, out, resume: bool, model_config: dict) -> bool:
    """Whether this ``train`` call is a staged run: a model whose one parent, its autoencoder, is
    not given (a latent consistency student has a teacher too: ``genvision distill`` trains it)."""
    if isinstance(model, str):
        cls, _ = registry.resolve(model)
        return set(cls.parents) == {STAGE} and STAGE not in model_config
    return model is None and resume and out is not None and (Path(out) / PLAN_FILE).is_file()


def split_length(train_values: dict, fraction: float) -> tuple[dict, dict]:
    """The run's length (``--minutes`` / ``--steps`` / ``--images``, default 1000 steps) in two parts."""
    key = next((k for k in LENGTH_KEYS if train_values.get(k) is not None), None)
    if key is None:
        key, total = "steps", 1000
    else:
        total = train_values[key]
    first = total * fraction
    if key != "minutes":
        first, rest = max(1, round(first)), max(1, total - round(first))
    else:
        rest = total - first
    return {key: first}, {key: rest}


def train_staged(
    model, data, out, *, resume: bool, overwrite: bool, model_config: dict, **train_values
) -> Path:
    """Train the autoencoder (``RUN/autoencoder``), then the latent model on it, in one run directory.

    ``RUN/stages.json`` holds the plan (name, data, the given settings), so ``--resume`` continues
    whichever stage stopped; each stage is an ordinary run (the first a sub-run, the parent of the
    second). A length given with ``--resume`` is the whole run's new length: the autoencoder keeps
    its share of the first length and the latent model trains on to the rest
    (:func:`extended_length`).
    """
    from ..version import __version__

    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR (the run to continue)")
        out = Path(out)
        plan_path = out / PLAN_FILE
        if not plan_path.is_file():  # a latent model given its autoencoder: an ordinary run
            return train_one(
                model, data, out, resume=True, model_config=model_config, stage_entries=KEEP, **train_values
            )
        try:
            plan = json.loads(plan_path.read_text())
            name, stored_data = plan["registry_name"], plan["data"]
            fraction = float(plan.get("ae_fraction", LEGACY_AE_FRACTION))
            if not 0 < fraction < 1:
                raise ValueError(fraction)
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"{plan_path} is damaged; start the run again with --overwrite") from None
        if model is not None and model != name:
            raise ValueError(f"--resume: {out} trains {name}, not {model}")
        if data not in (None, stored_data):
            raise ValueError(f"--resume: {out} trains on {stored_data}, not {data}; drop --data")
        data, stored_config, stored_values = stored_data, plan["model_config"], plan["train_values"]
        given_now = {k: v for k, v in train_values.items() if k in SHARED_TRAIN_KEYS}
        longer = {k: v for k, v in train_values.items() if k in LENGTH_KEYS and v is not None}
    else:
        name, data = model, data or "digits"
        fraction = check_latent_config(name, data, model_config, train_values).ae_fraction
        out = Path(out) if out is not None else default_run_dir(name, data)
        prepare_dir(out, overwrite=overwrite)
        out.mkdir(parents=True, exist_ok=True)
        stored_config, stored_values, given_now, longer = dict(model_config), dict(train_values), {}, {}
        plan = {
            "registry_name": name,
            "genvision_version": __version__,
            "data": data,
            "model_config": stored_config,
            "train_values": stored_values,
            "ae_fraction": fraction,
        }
        (out / PLAN_FILE).write_text(json.dumps(plan, indent=2, default=str))
    ae_length, main_length = split_length(stored_values, fraction)
    if longer:
        main_length = extended_length(longer, ae_length)
        plan["extended_to"] = longer  # the split stays the first length's
        (out / PLAN_FILE).write_text(json.dumps(plan, indent=2, default=str))
    shared = {k: v for k, v in stored_values.items() if k in SHARED_TRAIN_KEYS}
    shared.update(given_now)

    # stage 1: the autoencoder
    ae_out = out / STAGE
    ae_config = {k: stored_config[k] for k in AE_FIELDS if k in stored_config}
    state = _stage_state(ae_out)
    if state != "finished":
        print(f"stage 1 of 2: training the autoencoder in {ae_out}")
        if state == "resumable":
            train_one("autoencoder", data=None, out=ae_out, resume=True, **given_now)
        else:
            train_one(
                "autoencoder", data, ae_out, overwrite=True, model_config=ae_config, **shared, **ae_length
            )
        if _stage_state(ae_out) != "finished":
            print(f"the autoencoder stage stopped early; continue with --resume --out {out}")
            return out

    # stage 2: the latent model on it
    print(f"stage 2 of 2: training {name} on the autoencoder's latents in {out}")
    if _stage_state(out) in ("resumable", "finished"):
        extend = main_length if longer else {}
        return train_one(name, data=None, out=out, resume=True, stage_entries=KEEP, **given_now, **extend)
    values = {k: v for k, v in stored_values.items() if k not in LENGTH_KEYS}
    values.update(given_now)
    return train_one(
        name,
        data,
        out,
        overwrite=True,
        stage_entries=KEEP,
        model_config={**stored_config, "ae_fraction": fraction, STAGE: str(ae_out)},
        **values,
        **main_length,
    )


def extended_length(longer: dict, ae_length: dict) -> dict:
    """The latent model's length when ``--resume`` gives the whole staged run a new length
    ``longer`` (one of ``--steps`` / ``--images`` / ``--minutes``): what is left after the
    autoencoder stage's ``ae_length``, in the same unit."""
    key, total = next(iter(longer.items()))
    ((ae_key, first),) = ae_length.items()
    flag = f"--{ae_key}"
    if key != ae_key:
        raise ValueError(
            f"--resume: this staged run's length is counted in {ae_key}; give {flag} (the whole run's new "
            "length, both stages) instead of --" + key
        )
    if not total > first:
        raise ValueError(
            f"--resume: {flag} {total:g} does not reach beyond the autoencoder stage's {first:g}; give the "
            f"whole run's new length, both stages (more than {first:g})"
        )
    rest = total - first
    return {key: rest if key == "minutes" else int(rest)}


def check_latent_config(name: str, data: str, config: dict, train_values: dict):
    """Build the latent model's config on the data's fields before stage 1 spends any time; return it."""
    registry.check_config(name, config)
    image_size = config.get("image_size")
    image_size = parse_value(int, str(image_size), "image_size") if image_size is not None else None
    dataset = gdata.load(data, "train", strict=bool(train_values.get("strict", False)), image_size=image_size)
    return registry.config_for(name, **{**{k: getattr(dataset, k) for k in DATA_FIELDS}, **config})


def ae_fraction(name: str, data: str, config: dict) -> float:
    """The share of a staged run spent on its autoencoder: ``ae_fraction`` given in ``config``, the
    preset's, or the default for the data's channels (a quarter grey, 0.4 colour); checked."""
    return check_latent_config(name, data, config, {}).ae_fraction


def _stage_state(directory: Path) -> str:
    """ "finished", "resumable" (a checkpoint to continue) or "new" for a stage's run directory."""
    if not (directory / "config.json").is_file():
        return "new"
    try:
        meta = read_config(directory)
    except ValueError:
        return "new"
    if meta.get("status") == "finished" and (directory / "model.safetensors").is_file():
        return "finished"
    return "resumable" if checkpoint.state_path(directory).is_file() else "new"
