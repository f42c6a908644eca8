"""Captions of a dataset's images, for text conditioning.

A ``folder:`` dataset may carry ``captions.tsv`` at its root: tab-separated, the first column the
image's path relative to the folder, the second its caption; one header line is allowed (a first
row whose first column names no image of the folder and reads ``path``, ``file`` or ``image``);
further columns are ignored. Rows that cannot be used (too few columns, an empty caption, a path
that is not an image of the folder, a second caption for one image) are reported in one warning
line naming them, and skipped.

Data without captions but with classes gets a template caption per class ("a handwritten digit
seven" for the digit sets, "a picture of animals-nature" for a folder's class folders); an image
of a captioned folder that the file leaves out gets its class's template too (counted in the
warning). Unlabelled data without captions has none: text models refuse it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

FILE = "captions.tsv"
HEADER_NAMES = ("path", "file", "filename", "image")
DIGIT_KINDS = ("digits", "mnist", "binary-mnist")


def folder_root(dataset) -> Path | None:
    """The folder of a ``folder:DIR`` dataset, else None."""
    kind, _, arg = str(dataset.spec).partition(":")
    return Path(arg.strip()) if kind.strip() == "folder" and arg.strip() else None


def read_captions(path: str | Path, known: set[str] | None = None) -> dict[str, str]:
    """Relative path -> caption from a ``captions.tsv``; bad rows are named in one warning and skipped.

    Args:
        path: the file.
        known: the folder's image paths; rows naming other paths are bad rows (None: no check).
    """
    captions: dict[str, str] = {}
    bad: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        key = cells[0].strip().replace("\\", "/")
        if number == 1 and key.lower() in HEADER_NAMES and (known is None or key not in known):
            continue  # the header line
        text = cells[1].strip() if len(cells) > 1 else ""
        if not text:
            bad.append(f"line {number} (no caption)")
        elif known is not None and key not in known:
            bad.append(f"line {number} ({key!r} is not an image of the folder)")
        elif key in captions:
            bad.append(f"line {number} (a second caption for {key!r})")
        else:
            captions[key] = text
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        warnings.warn(f"{path}: skipped {len(bad)} bad row(s): {shown}", stacklevel=2)
    return captions


def template(dataset, label: int) -> str:
    """The template caption of class ``label`` of ``dataset``."""
    names = dataset.class_names
    name = names[label] if names and 0 <= label < len(names) else f"class {label}"
    kind = str(dataset.spec).partition(":")[0].strip()
    if kind in DIGIT_KINDS:
        return f"a handwritten digit {name}"
    return f"a picture of {name}"


def class_captions(dataset) -> tuple[str, ...]:
    """One template caption per class (what ``sample(y=k)`` of a text model prompts with); () if none."""
    return tuple(template(dataset, k) for k in range(dataset.num_classes))


def has_caption_file(dataset) -> bool:
    root = folder_root(dataset)
    return root is not None and (root / FILE).is_file()


def captions_for(dataset) -> list[str]:
    """One caption per image of ``dataset``: its ``captions.tsv`` row, else its class's template.

    Raises:
        ValueError: unlabelled data with no caption file (one line naming the fix).
    """
    root = folder_root(dataset)
    labels = dataset.labels.tolist()
    given: dict[str, str] = {}
    if root is not None and (root / FILE).is_file() and dataset.files is not None:
        given = read_captions(root / FILE, known=_all_files(dataset))
    out, missing = [], 0
    for i, label in enumerate(labels):
        key = dataset.files[i] if dataset.files is not None else None
        if key is not None and key in given:
            out.append(given[key])
        elif label >= 0 and dataset.num_classes > 0:
            out.append(template(dataset, label))
            missing += bool(given)
        else:
            raise ValueError(
                f"{dataset.spec}: image {key or i} has no caption and no class; add a captions.tsv "
                "(path<TAB>caption per image) to the folder, or use labelled data"
            )
    if missing:
        warnings.warn(
            f"{root / FILE}: {missing} image(s) have no row; they get their class's template caption",
            stacklevel=2,
        )
    return out


def _all_files(dataset) -> set[str]:
    """Every image path of the folder, both splits (a test image's row is not a bad row); no decoding."""
    from .folder import IMAGE_EXTENSIONS

    root = folder_root(dataset)
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    }
