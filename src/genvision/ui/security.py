"""What keeps the web app safe on a user's machine: the session token, the Host check, paths that
stay inside the runs folder, and uploads decoded by the dataset loader's guarded decoder.

Every request (pages, files and API calls, reads included) needs the session token: the start URL
carries it as ``?token=...`` once, the server answers with a cookie and every later request sends
that cookie (or an ``X-Genvision-Token`` header). The Host header must name the address the server
was asked to bind (a DNS-rebinding page reaches 127.0.0.1 under another host name).
"""

from __future__ import annotations

import hmac
import io
import secrets
from pathlib import Path, PurePosixPath

import numpy as np

COOKIE = "genvision_token"
HEADER = "x-genvision-token"
#: largest upload accepted, in bytes (an image of a few megapixels; the decoder's pixel limit
#: applies on top of it)
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: on every response: scripts, styles, requests and pictures from the app itself only (samples
#: come as data: URLs), never framed by another page, files never sniffed into another type
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Forbidden(ValueError):
    """A path outside the runs folder, a bad token or a foreign Host header."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def allowed_hosts(bind_host: str) -> set[str]:
    """Host names a request may carry: the local names, and the bound address when it is another."""
    hosts = set(LOCAL_HOSTS)
    if bind_host not in ("0.0.0.0", "::"):
        hosts.add(bind_host)
    return hosts


def host_ok(header: str | None, hosts: set[str], any_host: bool = False) -> bool:
    """``header`` (``name`` or ``name:port``, ``[v6]:port``) names one of ``hosts``."""
    if not header:
        return False
    if any_host:
        return True
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:7860
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":")[0]
    return name in hosts


def safe_path(root: Path, relative: str, *, must_exist: bool = True) -> Path:
    """``root / relative`` when it stays inside ``root`` after resolving symlinks, else ``Forbidden``.

    ``relative`` is a URL path already percent-decoded once by the framework: absolute paths,
    drive letters, backslashes, NUL bytes and ``..`` parts are refused before the filesystem is
    touched; a symlink whose target leaves ``root`` is refused after resolving.
    """
    text = str(relative)
    if "\x00" in text or "\\" in text or text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise Forbidden(f"not a path inside the runs folder: {relative!r}")
    parts = PurePosixPath(text).parts
    if any(p in ("..", "") for p in parts):
        raise Forbidden(f"not a path inside the runs folder: {relative!r}")
    base = root.resolve()
    path = (base / text).resolve(strict=False)
    if path != base and base not in path.parents:
        raise Forbidden(f"{relative!r} leaves the runs folder")
    if must_exist and not path.exists():
        raise FileNotFoundError(f"{relative} does not exist in the runs folder")
    return path


def decode_upload(data: bytes, channels: int) -> np.ndarray:
    """An uploaded image as uint8 (H, W, channels), through the dataset loader's guarded decoder
    (size and pixel limits before decoding, corrupt files refused in one line)."""
    from ..data.folder import DECODE_ERRORS, decode_image, unreadable_reason

    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"the upload is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MiB"
        )
    if not data:
        raise ValueError("the upload is empty; choose an image file")
    try:
        im = decode_image(io.BytesIO(data))
    except DECODE_ERRORS as e:
        raise ValueError(
            f"the upload is not a usable image ({unreadable_reason(Path('upload'), e)})"
        ) from None
    im = im.convert("RGB" if channels == 3 else "L")
    arr = np.asarray(im, dtype=np.uint8).copy()
    return arr[..., None] if arr.ndim == 2 else arr
