"""A corpus of bad input, each run through the command line in process.

For every case: the exit status, one line on stderr naming the problem (never a traceback), and
no file that existed before the command changed. Cases that genvision accepts after converting
(16-bit, CMYK, palette, RGBA images) train for one step and exit 0.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from gvtest import TINY_DDPM, tiny_set_args
from PIL import Image

import genvision as gv
from genvision.cli import main
from genvision.model_dir import save_model_dir

TRAIN = ["train", "ddpm", "--steps", "1", "--batch-size", "4", "--sample-every", "0", "--no-progress"]


def png(path: Path, size=(8, 8), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=128 if mode in ("L", "P", "I;16") else (128,) * len(mode)).save(path)
    return path


def bomb(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG whose header claims side x side pixels (a decompression bomb)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def one_folder(root: Path, make) -> str:
    """``folder:`` spec of a class folder holding only what ``make(path)`` writes."""
    make(root / "data" / "a" / "x.png")
    return f"folder:{root / 'data'}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tiny saved ddpm directory (the hostile config.json variants are copies of it)."""
    d = tmp_path_factory.mktemp("saved") / "ddpm"
    save_model_dir(gv.create("ddpm", levels=17, **TINY_DDPM), d)
    return d


def hostile(root: Path, saved: Path, edit) -> str:
    """A copy of the saved directory whose config.json ``edit(meta)`` changed (or replaced)."""
    d = root / "hostile"
    shutil.copytree(saved, d)
    meta = json.loads((d / "config.json").read_text())
    text = edit(meta)
    (d / "config.json").write_text(text if isinstance(text, str) else json.dumps(meta))
    return str(d)


def npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


def _set(meta, key, value):
    meta["model_config"][key] = value


CASES = {
    # images
    "corrupt png": lambda r, s: [
        *TRAIN,
        "--data",
        one_folder(r, lambda p: png(p).write_bytes(png(p).read_bytes()[:30])),
    ],
    "empty file": lambda r, s: [
        *TRAIN,
        "--data",
        one_folder(r, lambda p: (p.parent.mkdir(parents=True), p.write_bytes(b""))),
    ],
    "text as png": lambda r, s: [
        *TRAIN,
        "--data",
        one_folder(r, lambda p: (p.parent.mkdir(parents=True), p.write_text("hello"))),
    ],
    "1x1 image": lambda r, s: [*TRAIN, "--data", one_folder(r, lambda p: png(p, (1, 1)))],
    "1x4000 image": lambda r, s: [*TRAIN, "--data", one_folder(r, lambda p: png(p, (1, 4000)))],
    "decompression bomb": lambda r, s: [*TRAIN, "--data", one_folder(r, bomb)],
    "only bad files": lambda r, s: [
        *TRAIN,
        "--data",
        one_folder(r, lambda p: (bomb(p), (p.parent / "y.png").write_text("x"))),
    ],
    "symlink loop": lambda r, s: [
        *TRAIN,
        "--data",
        one_folder(
            r,
            lambda p: (
                p.parent.mkdir(parents=True),
                os.symlink(p.parent, p.parent / "loop"),
                os.symlink("x.png", p),
            ),
        ),
    ],
    "missing folder": lambda r, s: [*TRAIN, "--data", f"folder:{r / 'nope'}"],
    # hostile config.json
    "unknown registry name": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: m.update(registry_name="os.system")),
        "--n",
        "2",
    ],
    "unhashable registry name": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: m.update(registry_name=["ddpm"])),
        "--n",
        "2",
    ],
    "huge base_channels": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: _set(m, "base_channels", 10**9)),
        "--n",
        "2",
    ],
    "huge num_train_timesteps": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: _set(m, "num_train_timesteps", 10**12)),
        "--n",
        "2",
    ],
    "string where an int goes": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: _set(m, "base_channels", "many")),
        "--n",
        "2",
    ],
    "bool where an int goes": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: _set(m, "levels", True)),
        "--n",
        "2",
    ],
    "config.json not json": lambda r, s: ["sample", hostile(r, s, lambda m: "{not json"), "--n", "2"],
    "weights of another shape": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: _set(m, "base_channels", 8)),
        "--n",
        "2",
    ],
    # numbers
    "nan ema half-life": lambda r, s: [
        *TRAIN,
        *tiny_set_args(),
        "--ema-half-life",
        "nan",
        "--out",
        str(r / "o"),
    ],
    "infinite lr": lambda r, s: [*TRAIN, *tiny_set_args(), "--lr", "inf", "--out", str(r / "o")],
    "nan eta": lambda r, s: ["sample", str(s), "--n", "2", "--sampler", "ddim", "--eta", "nan"],
    "nan in config.json": lambda r, s: [
        "sample",
        hostile(r, s, lambda m: "{" + json.dumps(m)[1:].replace('"eta": 0.0', '"eta": NaN')),
        "--n",
        "2",
    ],
    "image_size 1000": lambda r, s: [*TRAIN, "--set", "image_size=1000", "--out", str(r / "o")],
    "n zero": lambda r, s: ["sample", str(s), "--n", "0"],
    # npz
    "corrupt npz": lambda r, s: [
        *TRAIN,
        "--data",
        f"npz:{(r / 'bad.npz').write_bytes(b'PK junk') and r / 'bad.npz'}",
    ],
    "npz without images": lambda r, s: [
        *TRAIN,
        "--data",
        npz(r / "x.npz", pictures=np.zeros((4, 8, 8), np.uint8)),
    ],
    "npy to evaluate": lambda r, s: [
        "evaluate",
        f"npz:{np.save(r / 'x.npy', np.zeros((4, 8, 8), np.uint8)) or r / 'x.npy'}",
        "--data",
        "digits",
    ],
    "label -1 for a conditional model": lambda r, s: [
        "train",
        "sngan-cond",
        "--steps",
        "1",
        "--no-progress",
        "--data",
        npz(r / "l.npz", images=np.zeros((40, 8, 8), np.uint8), labels=np.array([-1, 1] * 20)),
    ],
    # restoration task models
    "colorize on greyscale data": lambda r, s: [
        "train",
        "colorize",
        "--data",
        "digits",
        "--steps",
        "1",
        "--no-progress",
        "--out",
        str(r / "o"),
    ],
    "sr scale not dividing the size": lambda r, s: [
        "train",
        "sr",
        "--data",
        "digits",
        "--set",
        "scale=3",
        "--steps",
        "1",
        "--no-progress",
        "--out",
        str(r / "o"),
    ],
    # where output goes
    "out into its parent model": lambda r, s: [
        "distill",
        str(s),
        "--steps",
        "1",
        "--out",
        str(s),
        "--overwrite",
    ],
    "overwrite a foreign folder": lambda r, s: [
        *TRAIN,
        "--out",
        str(
            (r / "repo" / ".git").mkdir(parents=True)
            or (r / "repo" / "config.json").write_text("{}")
            and r / "repo"
        ),
        "--overwrite",
    ],
    "unwritable out": lambda r, s: [*TRAIN, "--out", str((r / "f").write_text("file") and r / "f" / "run")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, saved, tmp_path, capsys):
    root = tmp_path / "case"
    root.mkdir()
    argv = [str(a) for a in CASES[case](root, saved)]
    before = {
        p: p.read_bytes()
        for p in list(root.rglob("*")) + list(saved.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"{case}: exit {code}, stderr {err!r}"
    assert len(err.splitlines()) == 1 and "Traceback" not in err, f"{case}: {err}"
    assert all(p.read_bytes() == data for p, data in before.items() if p.exists()), case
    assert all(p.exists() for p in before), case


def test_convertible_images_train(tmp_path, capsys):
    data = tmp_path / "data" / "a"
    for i, mode in enumerate(["I;16", "CMYK", "P", "RGBA", "RGB", "L"] * 2):
        png(data / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}", (8, 8), mode)  # PNG has no CMYK
    code = main(
        [
            *TRAIN,
            *tiny_set_args(),
            "--data",
            f"folder:{tmp_path / 'data'}",
            "--strict",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0, capsys.readouterr().err
