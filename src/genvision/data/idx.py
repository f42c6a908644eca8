"""IDX files (the MNIST distribution format), read with numpy only, and the MNIST file set.

An IDX file is big-endian::

    bytes 0-1   zero
    byte  2     element type (0x08 = unsigned byte; the only type MNIST uses)
    byte  3     number of dimensions D
    4*D bytes   one unsigned 32-bit size per dimension
    ...         the data, row-major

MNIST ships four of them, gzipped: ``train-images-idx3-ubyte.gz`` (magic 0x00000803, 60000 x 28 x
28), ``train-labels-idx1-ubyte.gz`` (magic 0x00000801, 60000) and the ``t10k-`` pair (10000).
Un-gzipped copies, and the ``train-images.idx3-ubyte`` spelling some mirrors use, are accepted.

Decoded arrays are kept per process (keyed by resolved path, size and modification time), so
loading the train split and then the test split, or the same split twice, reads each file once.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

#: split -> (images stem, labels stem) of the MNIST distribution files
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_CACHE: dict[tuple, np.ndarray] = {}
_CACHE_MAX = 8  # arrays; the four MNIST files plus room for a second copy


def read_idx(path: str | Path, *, magic: int | None = None) -> np.ndarray:
    """Decode one IDX file (gzipped when its name ends in ``.gz``).

    Args:
        path: the file.
        magic: the expected 4-byte magic number (e.g. ``0x00000803`` for rank-3 uint8 images), or
            None to accept any uint8 IDX file.

    Returns:
        A read-only uint8 array whose shape is the one the header gives, e.g. (60000, 28, 28).

    Raises:
        ValueError: the header is not IDX, the magic differs, the element type is not uint8, or the
            file is shorter or longer than its header says.
    """
    path = Path(path)
    key = _cache_key(path, magic)
    if key in _CACHE:
        return _CACHE[key]
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} could not be read ({e}); replace it with an intact copy") from None
    array = _decode(data, path, magic)
    while len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = array
    return array


def _cache_key(path: Path, magic: int | None) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, magic)


def _decode(data: bytes, path: Path, magic: int | None) -> np.ndarray:
    fix = "replace it with an intact copy of the original file"
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad header); {fix}")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(f"{path} has IDX magic 0x{found:08x}, expected 0x{magic:08x}; {fix}")
    if data[2] != UBYTE:
        raise ValueError(
            f"{path} holds IDX element type 0x{data[2]:02x}; only unsigned bytes (0x08) are read"
        )
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{path} ends inside its IDX header; {fix}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = offset + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(f"{path} has {len(data)} bytes but its header says {expected}; {fix}")
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
    array.flags.writeable = False
    return array


def find_mnist_file(directory: Path, stem: str) -> Path:
    """The file for ``stem`` in ``directory``: ``stem.gz``, ``stem``, or the ``.idx`` spelling."""
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"{directory} has no {stem}.gz (nor un-gzipped {stem}); put the four MNIST IDX files "
        f"(train-images, train-labels, t10k-images, t10k-labels) there"
    )


def load_mnist(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST ``split`` ("train" or "test") from the IDX files in ``directory``.

    Returns:
        images: read-only uint8 (N, 28, 28), 0 = background, ink bright; N = 60000 or 10000.
        labels: read-only uint8 (N,), values 0..9.

    Raises:
        FileNotFoundError: ``directory`` or one of the split's two files is missing.
        ValueError: a file is not the IDX file it should be, or images and labels disagree in count.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no such directory {directory}; give the folder holding the four MNIST IDX .gz files"
        )
    images_stem, labels_stem = MNIST_FILES[split]
    images_path = find_mnist_file(directory, images_stem)
    labels_path = find_mnist_file(directory, labels_stem)
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path} holds images of shape {images.shape[1:]}, MNIST's are (28, 28)")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            f"use files from the same MNIST split"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path} has labels above 9; it is not an MNIST label file")
    return images, labels
