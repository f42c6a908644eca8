"""Sampling as a public verb: draw ``n`` images from a model (directory), write them, record how.

    result = genvision.sample("runs/ddpm", 64, seed=0, out="grid.png", sampler="ddim", steps=50)
    result["images"]    # (64, C, H, W) float in [-1, 1]; image k fixed by (seed, k)
    result["record"]    # registry name, weights sha256, seed, n, labels, options, sampler/steps, ...
    read_record("grid.png") == result["record"]

Image k draws its randomness from ``seeding.image_seed(seed, k)`` whatever ``batch_size`` is
(``families.base.sample_in_batches``). Files follow INTERFACES.md: ``.png`` a grid, ``.npz``
``images`` uint8 (N, H, W, C), ``seeds`` int64, ``labels`` int64 when labels were given. Each file
carries the metadata record (:func:`sample_record`): PNG text chunk ``genvision`` (JSON), or the
npz array ``metadata`` (a JSON string, loadable without pickle). ``genvision sample`` only parses
its arguments and calls :func:`sample`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
from pathlib import Path

import numpy as np
import torch

from . import io, seeding
from .data.transforms import to_uint8_255
from .families.base import GenerativeModel, require, sample_in_batches
from .provenance import stamp
from .viz import PNG_TEXT_KEY, check_finite, save_grid

#: file kinds :func:`sample` writes and :func:`read_record` reads
SUFFIXES = (".png", ".npz")
#: PNG text chunk and npz array that hold the metadata record (JSON)
PNG_KEY = PNG_TEXT_KEY
NPZ_KEY = "metadata"
#: model config fields that say how a sample was drawn; recorded where the config has them
SAMPLER_FIELDS = ("sampler", "steps", "guidance_scale")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when torch sees it, else CPU; ``"cuda"`` without CUDA is a one-line error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu")
    return dev


def check_out(out: str | Path | None) -> Path | None:
    """``out`` as a Path, refused (one line) unless it ends in .png or .npz."""
    if out is None:
        return None
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise ValueError(f"out must end in .png or .npz (got {out.name})")
    return out


def sample(
    source: str | Path | GenerativeModel,
    n: int,
    *,
    seed: int = 0,
    labels=None,
    prompts=None,
    control=None,
    out: str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    ramp: bool = False,
    on_batch=None,
    **options,
) -> dict:
    """Draw ``n`` images from a model directory or a loaded model; write ``out`` when given.

    Args:
        source: a model directory (loaded with ``model_dir.load_model_dir`` on ``device``) or a
            ``GenerativeModel`` (sampled where it is; ``device`` other than "auto" must match it).
        n: number of images (>= 1).
        seed: image k draws from ``seeding.image_seed(seed, k)``.
        labels: conditional models: an int (every image that class), a list or a tensor of n.
        prompts: text models: one string (every image) or a list of n (image k uses entry k).
        control: a controlnet's structure maps: a tensor (m, C, H, W) in [-1, 1], an image file or
            ``npz:FILE`` of maps (image k follows map k mod m).
        out: ``.png`` (grid at the model's levels) or ``.npz``; written atomically, with the record.
        batch_size: images per model call; the images do not depend on it.
        ramp: batches of 1, 2, 4, ... up to ``batch_size``, so the first image is ready soonest.
        on_batch: called as ``on_batch(start, images)`` when each batch is ready (the web app
            shows images as they finish).
        device: "auto" (CUDA when torch sees it, else CPU), "cpu" or "cuda".
        **options: sampling options the family accepts (``sampler``, ``steps``, ``temperature``...);
            None values are dropped, unknown ones refused naming those it accepts.

    Returns:
        ``{"images": float (n, C, H, W) in [-1, 1] on the CPU, "labels": (n,) int64 or None,
        "path": out as a Path or None, "record": sample_record(...), "seconds": sampling wall time,
        "start": model.describe_start(n, seed=seed)}``.
    """
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")
    n, seed, batch_size = int(n), int(seed), int(batch_size)
    out = check_out(out)
    options = {k: v for k, v in options.items() if v is not None}
    model, sha = _model(source, device)
    model.check_sample_options(options)
    labels = _labels(model, n, labels)
    if prompts is not None:
        if labels is not None:
            raise ValueError("give labels or prompts, not both")
        prompts = model.check_prompts(n, prompts)
    controls = _controls(model, n, control)
    start = model.describe_start(n, seed=seed)
    record = sample_record(model, weights_sha256=sha, seed=seed, n=n, labels=labels, options=options)
    if prompts is not None:
        record["prompts"] = prompts
    if controls is not None:
        record["control"] = control if isinstance(control, str) else f"{len(control)} map(s) given in memory"
    t0 = time.perf_counter()
    with model.eval_mode():
        images = sample_in_batches(
            model,
            n,
            seed=seed,
            batch_size=batch_size,
            labels=labels,
            options=options,
            prompts=prompts,
            controls=controls,
            ramp=ramp,
            on_batch=on_batch,
        )
    seconds = time.perf_counter() - t0
    labels = labels.cpu() if labels is not None else None
    if out is not None:
        _write(out, images, labels, seed, model.config.levels, record)
        if Path(out).suffix == ".png":
            record = read_record(out)  # as written: with the watermark's entry
    return {
        "images": images,
        "labels": labels,
        "path": out,
        "record": record,
        "seconds": seconds,
        "start": start,
    }


def style_mix(
    source: str | Path | GenerativeModel,
    seed_a: int,
    seed_b: int,
    *,
    crossover: int | None = None,
    n: int = 64,
    out: str | Path | None = None,
    device: str | torch.device = "auto",
    truncation: float | None = None,
) -> dict:
    """A StyleGAN's style-mixing picture: coarse styles from seed A's images, fine from seed B's.

    Rows are images 0..r-1 of ``sample(seed=seed_a)``, columns images 0..r-1 of
    ``sample(seed=seed_b)``, r = isqrt(n); the picture adds the pure images as a first column and
    row (``model.style_mix_picture``). ``crossover`` k: style inputs 0..k-1 (coarse) from the row,
    the rest from the column (default: half of them). ``out``: a .png only.

    Returns:
        ``{"images": the (r + 1)^2 picture cells, float in [-1, 1]; "nrow": r + 1, "path",
        "record", "crossover"}``.
    """
    for name, value in (("seed_a", seed_a), ("seed_b", seed_b), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (name == "n"):
            raise ValueError(f"{name} must be an integer >= {int(name == 'n')} (got {value!r})")
    out = check_out(out)
    if out is not None and out.suffix != ".png":
        raise ValueError(f"a style-mixing picture is written as .png (got {out.name})")
    model, sha = _model(source, device)
    require(model, "style_mix", "stylegan")
    r = math.isqrt(int(n))
    k = model.num_ws // 2 if crossover is None else crossover
    with model.eval_mode():
        images = model.style_mix_picture(int(seed_a), int(seed_b), r, r, k, truncation=truncation).cpu()
    options = {"truncation": truncation} if truncation is not None else {}
    record = sample_record(model, weights_sha256=sha, seed=int(seed_a), n=r * r, options=options)
    record["images"] = (
        f"style mixing, crossover {k} of {model.num_ws} style inputs: row 0 = images 0..{r - 1} of seed "
        f"{seed_b} (fine styles), column 0 = images 0..{r - 1} of seed {seed_a} (coarse styles), cell (i, j) = "
        "styles 0..k-1 (and their layers' noise) from row i's image, the rest from column j's"
    )
    record["style_mix"] = {
        "seed_a": int(seed_a),
        "seed_b": int(seed_b),
        "crossover": k,
        "num_ws": model.num_ws,
    }
    if out is not None:
        check_finite(images)
        save_grid(images, out, nrow=r + 1, levels=model.config.levels, metadata=record)
    return {"images": images, "nrow": r + 1, "path": out, "record": record, "crossover": k}


def _controls(model: GenerativeModel, n: int, control) -> torch.Tensor | None:
    """A controlnet's (n, C, H, W) structure maps from ``control`` (cycled), else None."""
    takes = hasattr(model, "control_maps")
    if control is None:
        return None
    if not takes:
        raise ValueError(f"{model.registry_name} takes no control maps; a controlnet does")
    if isinstance(control, (str, Path)):
        from .data import structure

        c = model.config
        control = structure.read_images(
            str(control), structure.channels_of(c.control, c.channels), c.image_size
        )
    control = torch.as_tensor(control, dtype=torch.float32)
    if control.dim() == 4 and control.shape[0] not in (1, n):
        control = control[torch.arange(n) % control.shape[0]]
    return model.control_maps(n, control)


def sample_record(
    model: GenerativeModel,
    *,
    weights_sha256: str | None,
    seed: int,
    n: int,
    labels=None,
    options: dict | None = None,
) -> dict:
    """The metadata record of a sample set: what drew it and how (JSON-able).

    Keys: ``generator`` ("genvision"), ``registry_name``, ``family``, ``weights_sha256`` (of the
    directory's model.safetensors; None for a model that was not loaded from one),
    ``config_sha256`` (of the model config as canonical JSON: sorted keys, no spaces), ``seed``,
    ``n``, ``images`` (how image k maps to its seed), ``labels`` (list or None), ``options`` (as
    given), ``sampler`` / ``steps`` / ``guidance_scale`` where the model's config has them (the
    config value unless an option overrides it), ``command`` (the command line, None from the
    API), ``genvision_version``, ``created`` (UTC, ISO 8601). :func:`sample` adds ``prompts``
    and ``control`` where used.
    """
    options = dict(options or {})
    if labels is not None:
        labels = torch.as_tensor(labels).reshape(-1).tolist()
    record = {
        "generator": "genvision",
        "registry_name": model.registry_name,
        "family": model.family,
        "weights_sha256": weights_sha256,
        "config_sha256": config_sha256(model.config),
        "seed": seed,
        "n": n,
        "images": "image k (row-major in a grid; index k in an npz) draws from seeding.image_seed(seed, k)",
        "labels": labels,
        "options": options,
    }
    record.update(_sampler_settings(model.config, options))
    record.update(stamp())
    return record


def config_sha256(config) -> str:
    """sha256 of the model config as canonical JSON (sorted keys, no spaces): equal configs, equal hash."""
    import hashlib

    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_record(path: str | Path) -> dict:
    """The metadata record stored in a ``.png`` (iTXt chunk) or ``.npz`` (``metadata`` array)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"records are read from .png or .npz files (got {path.name})")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            text = img.text.get(PNG_KEY)  # tEXt, zTXt and iTXt chunks alike
    else:
        with np.load(path, allow_pickle=False) as f:
            text = str(f[NPZ_KEY][()]) if NPZ_KEY in f.files else None
    if text is None:
        raise ValueError(
            f"{path} carries no genvision record (written by another tool or an older genvision)"
        )
    return json.loads(text)


# ----------------------------------------------------------------------------- helpers
def _model(source, device) -> tuple[GenerativeModel, str | None]:
    """The model to sample with and the sha256 of the weights it was loaded from (None if unknown)."""
    if isinstance(source, GenerativeModel):
        if str(device) != "auto" and resolve_device(device).type != source.device.type:
            raise ValueError(
                f"the model is on {source.device}, not {device}; move it with model.to(...) "
                "or pass device='auto' to sample where it is"
            )
        return source, None
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"source must be a model directory or a GenerativeModel (got {type(source).__name__})"
        )
    from .model_dir import load_model_dir, weights_sha256

    model = load_model_dir(source, device=resolve_device(device))
    return model, weights_sha256(source)


def _labels(model: GenerativeModel, n: int, labels) -> torch.Tensor | None:
    """int, list or tensor -> (n,) int64 on the model's device (checked), or None."""
    if labels is None:
        return None
    if isinstance(labels, (list, tuple)):
        labels = torch.tensor(labels, dtype=torch.long)
    return model.check_labels(n, labels)


def _sampler_settings(config, options: dict) -> dict:
    """``sampler`` / ``steps`` used: the config's value unless an option overrides it.

    Only fields the config declares (a GAN has neither). With the diffusion ``ddpm`` sampler the
    model takes all ``num_train_timesteps`` steps whatever ``steps`` says.
    """
    names = {f.name for f in dataclasses.fields(config)}
    return {k: options.get(k, getattr(config, k)) for k in SAMPLER_FIELDS if k in names}


def _write(out: Path, images, labels, seed: int, levels: int, record: dict) -> Path:
    check_finite(images)  # NaN would be written as black pixels
    if out.suffix == ".png":
        return save_grid(images, out, levels=levels, metadata=record)
    n = len(images)
    arrays = {
        "images": to_uint8_255(images, levels).permute(0, 2, 3, 1).numpy(),
        "seeds": np.array([seeding.image_seed(seed, k) for k in range(n)], dtype=np.int64),
        NPZ_KEY: np.array(json.dumps(record)),
    }
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return io.atomic_write(out, write)
