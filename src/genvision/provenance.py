"""What every record genvision writes ends with: the command line, the version, the UTC time.

``COMMAND`` is set by the CLI for the length of one command (None from the API); both
:mod:`genvision.viz` (every PNG) and :mod:`genvision.sampling` (sample records) read it here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .version import __version__

COMMAND: str | None = None  # the command line being run, set and cleared by cli.main
#: whether PNGs get the invisible watermark (``genvision.watermark``); ``--no-watermark`` clears it
#: for one command, ``GENVISION_NO_WATERMARK=1`` everywhere
WATERMARK: bool = True


def stamp() -> dict:
    """The command (None from the API), the genvision version and the UTC time (ISO 8601)."""
    return {
        "command": COMMAND,
        "genvision_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
