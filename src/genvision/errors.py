"""How genvision shows an error to a person: one line.

The CLI, the web app's jobs and routes, and the comparison runner all report a failure as the
first line of its message; an error with no message shows its type's name instead.
"""

from __future__ import annotations


def one_line(e: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
