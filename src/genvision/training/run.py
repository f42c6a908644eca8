"""The run layer: build or resume a run directory, then fit, then report.

    train(MODEL | model, data, out, resume=...)   (genvision.train: through staged.train)
      -> new run:  data.load -> model_dir.build (registry + parents) -> TrainConfig -> out/config.json
      -> resume:   out/config.json -> the same data, model (parents by hash) and settings
      -> Fit(...).run()  (trainer.py: the optimisation, with its hooks)
      -> config.json status, report.md (metrics/report.py)

A model trained in stages (``ldm``) is one run directory holding its first stage as a sub-run
(``staged.py``). A run directory is a model directory (``model_dir.py``). A model built on others records them as
parent references in ``config.json`` (path relative to the run, sha256 of their weights) and
gets them back, checked, on resume. Recipes that train one model from another (few-step
distillation: ``recipes.py``) build the child here and fit it like any other model.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import datetime
from pathlib import Path

import torch

from .. import data as gdata
from .. import registry
from ..data import captions
from ..families.base import GenerativeModel, field_types, parse_value
from ..model_dir import build, load_parents, parent_dir, parent_ref, read_config, write_config
from . import checkpoint, distributed, validation
from .config import LENGTH_KEYS, TrainConfig, resolve_train_config
from .trainer import Fit

DATA_FIELDS = ("image_size", "channels", "num_classes", "levels")


def data_fields(name: str, dataset) -> dict:
    """The config fields the data fixes: size, channels, classes, levels; a text model's class captions."""
    fields = {k: getattr(dataset, k) for k in DATA_FIELDS}
    cls, _ = registry.resolve(name)
    if getattr(cls, "takes_prompts", False) and "class_captions" in field_types(cls.config_class):
        # template captions make a text model class-conditional; a captions file's captions do not
        fields["class_captions"] = (
            () if captions.has_caption_file(dataset) else captions.class_captions(dataset)
        )
    return fields


def default_run_dir(name: str, data: str) -> Path:
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in data.split(":")[0])
    return Path("runs") / f"{name}-{tag}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train(
    model: GenerativeModel | str,
    data: str | None = "digits",
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model_config: dict | None = None,
    stage_entries: tuple[str, ...] = (),
    **train_values,
) -> Path:
    """Train ``model`` (a registry name, or a model built with ``genvision.create``) on ``data``:
    one run. ``genvision.train`` comes through ``staged.train``, which trains a model with an
    autoencoder to train first (``ldm``) in two such runs.

    Args:
        model: a registry name (then built with fields from the data and ``model_config``, where a
            parent role such as ``vqvae=DIR`` names a parent directory) or a ``GenerativeModel``
            (the data is resized to its ``image_size``, as ``--resume`` resizes it to the stored one).
        data: dataset spec (INTERFACES.md), train split.
        out: run directory; default ``runs/<model>-<data>-<time>``.
        resume: continue the run in ``out`` from its last checkpoint.
        overwrite: replace an existing run directory.
        stage_entries: entries of ``out`` an earlier stage of this run wrote (left in place; internal).
        **train_values: ``TrainConfig`` fields given by the user (override model defaults).

    Returns:
        The run directory (a model directory ``genvision.load`` accepts).
    """
    if resume and out is not None and Path(out).is_dir() and not checkpoint.state_path(out).is_file():
        if model is None:
            raise ValueError(
                f"nothing to resume in {out} (no checkpoint yet); start it with genvision train MODEL"
            )
        if (Path(out) / "config.json").is_file():
            read_config(out)  # a damaged or hostile config.json is an error, not a fresh start
        if any(Path(out).iterdir()) and not is_run_dir(Path(out)):
            raise FileExistsError(
                f"{out} is not a genvision run directory; nothing to resume there, choose --out"
            )
        print(f"nothing to resume in {out} (no checkpoint yet): starting the run")
        resume, overwrite = False, True  # only a genvision run's own files can be there (prepare_dir)
    if resume:
        return _resume(model, data, out, model_config or {}, train_values)
    data = data or "digits"
    given = dict(model_config or {})
    if isinstance(model, str):  # types, caps and the memory estimate before the data is resized
        registry.check_config(model, given)
    image_size = None
    if isinstance(model, str) and "image_size" in given:  # only an explicit size resizes the data
        image_size = parse_value(int, str(given["image_size"]), "image_size")
    elif not isinstance(model, str):  # a built model's size is explicit (a student's: its teacher's)
        image_size = model.config.image_size  # as --resume resizes to the stored size
    dataset = gdata.load(data, "train", strict=bool(train_values.get("strict", False)), image_size=image_size)
    if isinstance(model, str):
        given = fill_from_parents(model, given)
        torch.manual_seed(int(train_values.get("seed", 0)))  # the same initial weights for the same seed
        model = build(model, **{**data_fields(model, dataset), **given})
    check_model_fits_data(model, dataset)
    cfg = resolve_train_config(train_values, {**validation.train_defaults(model), **model.train_defaults()})
    dataset, val, cfg = validation.split_data(dataset, cfg, given=train_values, image_size=image_size)
    out = Path(out) if out is not None else default_run_dir(model.registry_name, data)
    parents = model.parent_origins()
    check_not_a_parent(out, parents, stage_entries)
    return _fit(
        model,
        dataset,
        cfg,
        out,
        resume=False,
        overwrite=overwrite,
        parents=parents,
        val=val,
        keep=stage_entries,
    )


def _resume(model, data, out, model_config: dict, train_values: dict) -> Path:
    """Continue the run in ``out``: its data, model and settings, refusing options that conflict."""
    if out is None:
        raise ValueError("--resume needs --out DIR (the run to continue)")
    meta = read_config(out)  # one-line errors for a missing directory or a damaged config.json
    name = meta.get("registry_name")
    asked = model if model is None or isinstance(model, str) else model.registry_name
    if asked is not None and asked != name:
        raise ValueError(f"--resume: {out} trains {name}, not {asked}")
    stored_data = meta.get("data", {}).get("spec", data)
    if data not in (None, stored_data):
        raise ValueError(f"--resume: {out} trains on {stored_data}, not {data}; drop --data")
    stored_train, stored_model = meta.get("train_config", {}), meta.get("model_config", {})
    stored_train.setdefault("validate_every", 0)  # runs from before validation: none
    model_config = dict(model_config)
    for role in registry.resolve(name)[0].parents:  # a parent given again must be the run's own
        if role in model_config:
            given = Path(model_config.pop(role)).expanduser().resolve()
            ref = meta.get("parents", {}).get(role)
            if ref is None or parent_dir(out, role, ref) != given:
                raise ValueError(f"--resume: {out} is not built on {given} as its {role}; drop --set {role}")
    if model_config:
        was = registry.config_for(name, **stored_model).to_dict()
        now = registry.config_for(name, **{**stored_model, **model_config}).to_dict()
        conflicts = {k: v for k, v in now.items() if was.get(k) != v}
        if conflicts:
            raise ValueError(f"--resume: model settings {conflicts} differ from the run's; drop --set")
    strict = bool(train_values.get("strict", stored_train.get("strict", False)))
    image_size = stored_model.get("image_size")
    dataset = gdata.load(stored_data, "train", strict=strict, image_size=image_size)
    torch.manual_seed(int(stored_train.get("seed", 0)))
    parents = load_parents(out, meta, when=("sample", "train"))
    model = registry.create(name, parents=parents, **stored_model)
    check_model_fits_data(model, dataset)
    cfg = resolve_train_config(train_values, model.train_defaults(), stored_train)
    dataset, val, cfg = validation.split_data(dataset, cfg, given=train_values, image_size=image_size)
    return _fit(model, dataset, cfg, Path(out), resume=True, overwrite=False, parents=None, val=val)


def _fit(
    model, dataset, cfg: TrainConfig, out: Path, *, resume: bool, overwrite: bool, parents, val=None, keep=()
) -> Path:
    """Prepare ``out`` (leaving the entries ``keep``), fit, and write the status and the report."""
    from ..metrics.report import write_report

    ctx = distributed.setup(cfg.device)
    if cfg.batch_size % ctx.world:
        raise ValueError(f"--batch-size {cfg.batch_size} must divide evenly over {ctx.world} processes")
    if ctx.main:
        if not resume:
            prepare_dir(out, overwrite=overwrite, keep=keep)
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_stale_temporaries(out, RUN_FILES + (checkpoint.STATE_FILE,))
    distributed.barrier(ctx)
    # a latent model trains on its encoded images (every process encodes; the first caches them)
    dataset = model.training_data(dataset, out if ctx.main else None)
    if val is not None:
        val = model.training_data(val, None, validation=True)
    fit = Fit(model, dataset, cfg, out, ctx, resume=resume, val_dataset=val)
    record = {"data": dataset.describe(), "world_size": ctx.world}
    if parents is not None:
        record["parents"] = {role: parent_ref(out, p) for role, p in parents.items()}
    if ctx.main:
        _write_run_config(model, out, cfg, status="training", **record)
    stopped_by = fit.run()
    if ctx.main:
        record.update(fit.validation.record())
        status = {"status": "interrupted", "stopped_by": stopped_by} if stopped_by else {"status": "finished"}
        _write_run_config(model, out, cfg, **status, **record)
        write_report(out)
        if stopped_by:
            print(
                f"stopped by {stopped_by} at step {fit.step}; checkpoint saved in {out}; "
                f"continue with --resume --out {out}"
            )
    distributed.shutdown(ctx)
    return out


def _write_run_config(model, out: Path, cfg: TrainConfig, **record) -> None:
    record.setdefault("stopped_by", None)
    write_config(model, out, {"train_config": dataclasses.asdict(cfg), **record})


#: what a run (and ``genvision evaluate`` on it) writes into its directory: all ``--overwrite`` deletes
RUN_FILES = (
    "config.json",
    "model.safetensors",
    "training_state",
    "metrics.jsonl",
    "samples",
    "grid.png",
    "style_mix.png",
    "loss.png",
    "monitor.png",
    "report.md",
    "metrics.json",
    "human_eval.jsonl",
    "human_eval.json",
    "memorization.png",
    "reconstructions.png",
    "tensorboard",
    "latents.safetensors",
    "captions.safetensors",
    "stages.json",
    "autoencoder",
)


def prepare_dir(out: Path, overwrite: bool, keep: tuple[str, ...] = ()) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite``; then delete only what a genvision run wrote.

    ``--overwrite`` never touches the current directory, the home directory, ``/``, a folder
    holding ``.git``, or a folder whose ``config.json`` genvision did not write; and inside a run
    directory it deletes only the files a run writes (:data:`RUN_FILES`), leaving anything else.
    ``keep``: entries of ``out`` this run itself wrote earlier (a staged run's first stage): they
    neither count as content nor are deleted.
    """
    if not (out.exists() and any(p.name not in keep for p in out.iterdir())):
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --resume to continue it or --overwrite")
    target = out.resolve()
    if target in {Path.cwd().resolve(), Path.home().resolve(), Path(target.anchor)}:
        raise FileExistsError(
            f"refusing to overwrite {out} (the current, home or root directory); choose --out"
        )
    if (out / ".git").exists():
        raise FileExistsError(f"refusing to overwrite {out}: it holds .git; choose another --out")
    if not is_run_dir(out):
        raise FileExistsError(
            f"{out} is not a genvision run directory; refusing to overwrite it, choose --out"
        )
    for name in RUN_FILES:
        if name in keep:
            continue
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    checkpoint.remove_stale_temporaries(out, RUN_FILES)


def is_run_dir(directory: Path) -> bool:
    """Whether ``directory/config.json`` (or a staged run's ``stages.json``) was written by genvision
    (a registry name and a version)."""
    for name in ("config.json", "stages.json"):
        try:
            meta = json.loads((directory / name).read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(meta, dict)
            and isinstance(meta.get("registry_name"), str)
            and "genvision_version" in meta
        ):
            return True
    return False


def check_not_a_parent(out: Path, parents: dict, keep: tuple[str, ...] = ()) -> None:
    """Refuse an ``out`` that is, or holds, a directory this model is built on (but a kept stage)."""
    target = out.expanduser().resolve()
    for role, p in parents.items():
        if p is None:
            raise ValueError(f"the {role} model was never saved; save it (or train it) before building on it")
        p = Path(p).resolve()
        if any(p == target / k for k in keep):
            continue
        if p == target or target in p.parents:
            raise ValueError(f"--out {out} is (or holds) the {role} model {p}; choose another --out")


def check_model_fits_data(model: GenerativeModel, dataset) -> None:
    c = model.config
    for key in ("image_size", "channels"):
        if getattr(c, key) != getattr(dataset, key):
            raise ValueError(
                f"model has {key}={getattr(c, key)} but the data has {getattr(dataset, key)}; "
                f"build the model with {key}={getattr(dataset, key)} (or --set {key}=...)"
            )
    if c.conditional:
        if dataset.num_classes == 0:
            raise ValueError(f"{model.registry_name} is class-conditional but {dataset.spec} has no labels")
        if c.num_classes != dataset.num_classes:
            raise ValueError(
                f"model has num_classes={c.num_classes} but the data has {dataset.num_classes}; "
                f"set num_classes={dataset.num_classes}"
            )
        unlabeled = int((dataset.labels < 0).sum())
        if unlabeled and not model.trains_on_unlabeled:
            raise ValueError(
                f"{model.registry_name} is class-conditional but {unlabeled} of {len(dataset)} images of "
                f"{dataset.spec} are unlabeled (-1); label them, or train an unconditional model or ddpm-cond"
            )


# ----------------------------------------------------------------------------- staged training
STAGE = "autoencoder"  # the parent role a staged run trains first (staged.py), and its sub-run's folder
#: fields a control branch takes from its base (``base=DIR``): it must condition as the base does
BASE_FIELDS = ("conditional", "num_classes")


def fill_from_parents(name: str, given: dict) -> dict:
    """``given`` with the fields a named parent fixes filled in: the latent fields of an
    autoencoder (``autoencoder=DIR``), the conditioning of a control branch's base (``base=DIR``)."""
    cls, _ = registry.resolve(name)
    if "base" in cls.parents and isinstance(given.get("base"), (str, Path)):
        base = read_config(given["base"]).get("model_config", {})
        given = {**{k: base[k] for k in BASE_FIELDS if k in base}, **given}
    if STAGE not in cls.parents or STAGE not in given or not isinstance(given[STAGE], (str, Path)):
        return given
    ae = read_config(given[STAGE]).get("model_config", {})
    filled = dict(given)
    for k in ("latent_channels", "downsample"):
        if k in ae:
            filled.setdefault(k, ae[k])
    return filled


__all__ = ["train", "default_run_dir", "LENGTH_KEYS", "TrainConfig"]
