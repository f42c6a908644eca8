"""Image folders (``folder:DIR``): scan, check and decode every file once.

Layout rules (INTERFACES.md):

    DIR/cat/001.png, DIR/dog/a/7.jpg   sub-folders are classes, sorted names -> 0..K-1;
                                       files anywhere below a class folder belong to it
    DIR/001.png, DIR/002.png           loose files only: one unlabeled set (label -1)

When DIR has both class sub-folders and loose image files, the loose files are ignored (with a
warning naming them): a set where only some images are labeled would break conditional models
and the evaluation judge. A sub-folder counts as a class only if it holds at least one file with
an image extension, decided before any decoding so that labels never depend on which files decode.

Symbolic links (to files or folders, class folders included) are followed only while they resolve
inside DIR; a link that resolves outside DIR, a dangling link and a symlink loop are skipped and
named in one warning.

Size limits: a file whose header gives a long side over ``MAX_LONG_SIDE`` (16384) pixels or a
long/short side ratio over ``MAX_ASPECT_RATIO`` (8) is refused before its pixels are decoded; like
an image over Pillow's pixel limit it counts as unreadable (skipped with the warning, an error
under ``strict``). Decoding, resizing and cropping all happen inside the per-file guard, so one
file never aborts the scan.

Every kept file is opened and fully decoded at scan time, so batches never change mid-run. Files
that fail (truncated, empty, not an image, over Pillow's pixel limit or the size limits) are
skipped and reported in one warning, or, with ``strict=True``, in one error. Decoding applies the EXIF orientation,
converts palette / CMYK / other modes to RGB, scales 16-bit to 8-bit and composites alpha onto
black. An RGB image whose three channels are equal counts as greyscale. The set has 1 channel if
every kept image is greyscale, else 3. Size: ``image_size`` if given, else the most common
min(H, W) capped at 64 (ties: the larger); each image's shorter side is resized to it (Lanczos)
and the centre is cropped.

The test split is the files whose sha1 of the relative (posix) path falls in the lowest 10%, so
it stays stable as files are added; the validation slice of the train split is the next 10%
(``in_val_split``). Scans are kept per process, keyed by the resolved folder,
``strict``, ``image_size`` and a fingerprint of file names, sizes and modification times, so the
train and test splits decode the folder once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import one_line

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
TEST_FRACTION = 0.1
VAL_BAND = (0.1, 0.2)  # the validation slice: the next 10% of the same hash
MAX_AUTO_SIZE = 64
MAX_LONG_SIDE = 16384
MAX_ASPECT_RATIO = 8
NAMED_IN_MESSAGES = 10


def in_test_split(key: str) -> bool:
    """Whether the item named ``key`` (a relative posix path, or ``str(index)``) is in the test split.

    The first 32 bits of sha1(key) as a fraction of 2**32, below 0.1: about 10% of items, and
    an item's split never depends on which other items exist.
    """
    return _hash_fraction(key) < TEST_FRACTION


def in_val_split(key: str) -> bool:
    """Whether the item named ``key`` is in the validation slice of the train split.

    The same sha1 fraction as :func:`in_test_split`, in ``VAL_BAND`` [0.1, 0.2): disjoint from
    the test split by construction, about 10% of all items (11% of train), stable as items are added.
    """
    lo, hi = VAL_BAND
    return lo <= _hash_fraction(key) < hi


def _hash_fraction(key: str) -> float:
    """The first 32 bits of sha1(key) as a fraction of 2**32, in [0, 1)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


@dataclass
class FolderScan:
    """Everything decoded from one folder; both splits are cut from it.

    Attributes:
        images: uint8 (N, H, W, C), H == W, C in {1, 3}, 0..255.
        labels: int64 (N,), class index or -1 for an unlabeled folder.
        files: N relative posix paths, in sorted order.
        classes: sorted class folder names (empty for an unlabeled folder).
        skipped: absolute paths of the files that could not be decoded (or were over the limits).
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str]
    classes: list[str]
    skipped: list[str]

    def test_mask(self) -> np.ndarray:
        """bool (N,): True for images in the test split."""
        return np.array([in_test_split(f) for f in self.files], dtype=bool)


_CACHE: dict[tuple, FolderScan] = {}
_CACHE_MAX = 4


def scan_folder(directory: str | Path, *, strict: bool = False, image_size: int | None = None) -> FolderScan:
    """Decode every image under ``directory`` following the rules in the module docstring.

    Raises:
        FileNotFoundError: ``directory`` does not exist or is not a folder.
        ValueError: no image files, none readable, or (``strict``) some unreadable.
    """
    root = Path(directory).expanduser()
    name = f"folder:{directory}"
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: no such directory; give an existing folder of images")
    entries, classes, loose, links = _list_images(root)
    if not entries:
        exts = " ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise ValueError(
            f"{name} holds no image files ({exts}); put images in it, or one sub-folder of images per class"
        )
    key = (str(root.resolve()), strict, image_size, _fingerprint(root, entries))
    if key not in _CACHE:
        if links:
            warnings.warn(
                f"{name}: skipped {len(links)} symbolic link(s) ({_names(links)}); links are followed "
                f"only when they resolve inside the folder",
                stacklevel=4,
            )
        if loose:  # warned once per scan, like the skipped files
            warnings.warn(
                f"{name}: ignored {len(loose)} loose file(s) next to the class sub-folders "
                f"({_names(loose)}); move them into a class folder to use them",
                stacklevel=4,
            )
        while len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _scan(root, name, entries, classes, strict=strict, image_size=image_size)
    return _CACHE[key]


def _names(items: list[str]) -> str:
    """The first ``NAMED_IN_MESSAGES`` items, comma-separated, and how many more."""
    more = len(items) - NAMED_IN_MESSAGES
    return ", ".join(items[:NAMED_IN_MESSAGES]) + (f" and {more} more" if more > 0 else "")


def _list_images(root: Path) -> tuple[list[tuple[str, int]], list[str], list[str], list[str]]:
    """(relative path, label) of every candidate image, the class names, the ignored loose files and
    the skipped symbolic links ("path (why)")."""
    by_top: dict[str, list[str]] = {}  # top-level folder ("" for loose files) -> relative paths
    links: list[str] = []
    real_root = os.path.realpath(root)

    def walk(directory: Path, rel_dir: PurePosixPath, chain: frozenset[str]) -> None:
        try:
            listing = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:  # an unreadable folder holds no candidates (as os.walk had it)
            return
        for entry in listing:
            if entry.name.startswith("."):
                continue
            rel = rel_dir / entry.name
            try:
                is_dir = entry.is_dir()  # follows links
                if entry.is_symlink():
                    real = os.path.realpath(entry.path, strict=True)
                    if os.path.commonpath([real, real_root]) != real_root:
                        links.append(f"{rel} (resolves outside the folder)")
                        continue
                    if is_dir and real in chain:
                        links.append(f"{rel} (symlink loop)")
                        continue
            except OSError as e:  # dangling link, loop of links, unreadable entry
                links.append(f"{rel} ({'symlink loop' if e.errno == errno.ELOOP else 'dangling link'})")
                continue
            if is_dir:
                walk(Path(entry.path), rel, chain | {os.path.realpath(entry.path)})
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                top = rel.parts[0] if len(rel.parts) > 1 else ""
                by_top.setdefault(top, []).append(rel.as_posix())

    walk(root, PurePosixPath(), frozenset({real_root}))
    classes = sorted(t for t in by_top if t)
    if classes:
        entries = [(rel, k) for k, c in enumerate(classes) for rel in by_top[c]]
        loose = sorted(by_top.get("", []))
    else:
        entries, loose = [(rel, -1) for rel in by_top.get("", [])], []
    return sorted(entries), classes, loose, links


def _fingerprint(root: Path, entries: list[tuple[str, int]]) -> str:
    h = hashlib.sha1()
    for rel, label in entries:
        st = (root / rel).stat()
        h.update(f"{rel}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _scan(root, name, entries, classes, *, strict, image_size) -> FolderScan:
    cap = image_size or MAX_AUTO_SIZE
    decoded, sides, failures = [], [], {}
    for rel, label in entries:
        try:
            im = decode_image(root / rel)
            side = min(im.size)
            if side > cap:  # bound memory: nothing is ever needed above `cap`
                im = _resize_shorter(im, cap)
        except Exception as e:  # any failure means "not a usable image" (MemoryError included)
            failures[rel] = unreadable_reason(root / rel, e)
            continue
        decoded.append((rel, label, im))
        sides.append(side)

    size = image_size or (min(MAX_AUTO_SIZE, _most_common(sides)) if sides else 0)
    kept, labels, files = [], [], []
    for rel, label, im in decoded:
        try:
            kept.append(_centre_crop(_resize_shorter(im, size), size))
        except Exception as e:
            failures[rel] = unreadable_reason(root / rel, e)
            continue
        labels.append(label)
        files.append(rel)
    failed = [rel for rel, _ in entries if rel in failures]  # in the files' order
    if failed:
        listed = _names([f"{rel} ({failures[rel]})" for rel in failed])
        what = f"{name}: {len(failed)} of {len(entries)} file(s) are not readable images: {listed}"
        if strict or not kept:
            fix = "or drop --strict / strict=True to skip them" if strict else "none could be used"
            raise ValueError(f"{what}; fix or remove them ({fix})")
        warnings.warn(
            f"{what}; skipped them (fix or remove them, or use --strict / strict=True to stop on them)",
            stacklevel=5,
        )

    channels = 1 if all(im.mode == "L" for im in kept) else 3
    mode = "L" if channels == 1 else "RGB"
    arrays = [np.asarray(im.convert(mode)) for im in kept]
    images = np.stack(arrays).reshape(len(arrays), size, size, channels)
    return FolderScan(
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        files=files,
        classes=classes,
        skipped=[str(root / rel) for rel in failed],
    )


def unreadable_reason(path: Path, e: Exception) -> str:
    """A few words on why ``path`` failed, for the one-line report."""
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "over Pillow's pixel limit"
    if isinstance(e, ImageTooLarge):
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory"
    if isinstance(e, UnidentifiedImageError):
        return "empty file" if path.is_file() and path.stat().st_size == 0 else "not an image"
    text = one_line(e)
    if "truncated" in text or isinstance(e, EOFError):
        return "truncated"
    return text if len(text) <= 40 else text[:37] + "..."


def _most_common(sides: list[int]) -> int:
    counts = Counter(sides)
    return max(counts, key=lambda s: (counts[s], s))  # ties: the larger size


class ImageTooLarge(ValueError):
    """An image header past ``MAX_LONG_SIDE`` or ``MAX_ASPECT_RATIO``, refused before decoding."""


#: what :func:`decode_image` raises for a file that is not a usable image (readers that refuse
#: such a file in one line catch these)
DECODE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ImageTooLarge,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    EOFError,
    ValueError,
    MemoryError,
)


def decode_image(path: str | Path) -> Image.Image:
    """Open and fully decode one file into an 8-bit PIL image of mode "L" or "RGB".

    EXIF orientation applied; palette, CMYK and other modes converted; 16-bit scaled to 8-bit
    (v * 255 / 65535, rounded); alpha (and transparency keys) composited onto black; an RGB
    image with three equal channels returned as "L".

    Raises:
        Any Pillow error for a file that is not a readable image, including
        ``Image.DecompressionBombError`` and ``DecompressionBombWarning`` (raised as an error) for
        images over ``Image.MAX_IMAGE_PIXELS``; ``ImageTooLarge`` for a header past the size limits
        (``MAX_LONG_SIDE``, ``MAX_ASPECT_RATIO``), raised before any pixel is decoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's chatter about palettes and EXIF
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            w, h = im.size
            if max(w, h) > MAX_LONG_SIDE or max(w, h) > MAX_ASPECT_RATIO * min(w, h):
                raise ImageTooLarge(f"over the size limits: {w}x{h}")
            im.load()
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block must not cost a good image
                pass
            return _to_8bit(im)


def _to_8bit(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.round(np.clip(a, 0, 65535) * 255 / 65535).astype(np.uint8))
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = a * 255 if a.size and np.nanmax(a) <= 1.0 else a  # float images in [0, 1] or [0, 255]
        return Image.fromarray(np.round(np.clip(np.nan_to_num(a), 0, 255)).astype(np.uint8))
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("P", "PA", "La", "RGBa") or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("LA", "RGBA"):  # straight alpha: colour * alpha / 255, rounded
        a = np.asarray(im).astype(np.uint32)
        colour = ((a[..., :-1] * a[..., -1:] + 127) // 255).astype(np.uint8)
        im = Image.fromarray(colour[..., 0] if im.mode == "LA" else colour)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    if im.mode == "RGB":
        a = np.asarray(im)
        if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
            return Image.fromarray(np.ascontiguousarray(a[..., 0]))
    return im


def _resize_shorter(im: Image.Image, size: int) -> Image.Image:
    w, h = im.size
    if min(w, h) == size:
        return im
    scale = size / min(w, h)
    new = (size, max(size, round(h * scale))) if w <= h else (max(size, round(w * scale)), size)
    return im.resize(new, Image.Resampling.LANCZOS)


def _centre_crop(im: Image.Image, size: int) -> Image.Image:
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))
