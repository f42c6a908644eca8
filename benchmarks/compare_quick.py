"""`genvision compare --data digits --quick` as a benchmark result: its leaderboard, with provenance.

Runs the comparison through the public API, ``genvision.compare(data="digits", quick=True,
out=benchmarks/results/compare-digits-quick)`` (what ``genvision compare --data digits --quick
--out benchmarks/results/compare-digits-quick`` runs), reads the ``leaderboard.json`` it writes
there and emits ``benchmarks/results/compare_quick.json``: the leaderboard as it is, and a
``"table"`` with one row per entry for ``make_table.py``. The comparison's own folder (trained
runs, samples) is not committed; the JSON carries the leaderboard.

    python benchmarks/compare_quick.py [--threads 1]
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

#: compare trains and scores every family: all of genvision is measured
MEASURES = ["benchmarks/compare_quick.py", "src/genvision/"]
OUT = common.RESULTS / "compare-digits-quick"
#: keys that name a leaderboard entry, in the order they are looked for
NAME_KEYS = ("model", "name", "run", "family")
#: keys under which a leaderboard file may keep its list of entries
LIST_KEYS = ("rows", "leaderboard", "entries", "models", "results")


def entries(board) -> list[dict]:
    """The leaderboard's entries as a list of dicts, whichever of the usual shapes it has: a list,
    a dict holding the list under one of :data:`LIST_KEYS`, or a dict of name -> metrics."""
    if isinstance(board, dict):
        for key in LIST_KEYS:
            if isinstance(board.get(key), (list, dict)):
                return entries(board[key])
        return [
            {"model": name, **row} if isinstance(row, dict) else {"model": name, "value": row}
            for name, row in board.items()
        ]
    return [row if isinstance(row, dict) else {"value": row} for row in board]


def number(value) -> float | None:
    """A metric's number: the value itself, or the ``"value"`` of a ``{"value": ...}`` record."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def table_rows(board) -> list[dict]:
    """One README row per leaderboard entry: its name, then each numeric metric."""
    rows = []
    for k, entry in enumerate(entries(board), start=1):
        name = next((str(entry[key]) for key in NAME_KEYS if key in entry), f"entry {k}")
        metrics = {key: number(v) for key, v in entry.items() if key not in NAME_KEYS}
        value = ", ".join(f"{key} {v:.4g}" for key, v in metrics.items() if v is not None)
        rows.append({"figure": f"genvision compare --data digits --quick: {name}", "value": value or "n/a"})
    return rows


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], MEASURES)
    p.add_argument("--out", default=str(OUT), help=f"the comparison's folder (default {OUT})")
    p.set_defaults(json=str(common.RESULTS / "compare_quick.json"))
    args = p.parse_args()
    common.set_threads(args)
    import genvision as gv

    if not hasattr(gv, "compare"):
        print(
            "genvision.compare is not in this checkout (the compare command is not merged yet)",
            file=sys.stderr,
        )
        return 2
    options = {"data": "digits", "quick": True, "out": args.out}
    if "overwrite" in inspect.signature(gv.compare).parameters:
        options["overwrite"] = True  # a re-run replaces the last quick comparison
    loads = [os.getloadavg()[0]]
    gv.compare(**options)
    loads.append(os.getloadavg()[0])
    board = json.loads((Path(args.out) / "leaderboard.json").read_text())
    common.emit(
        {
            "benchmark": "compare_quick",
            "mode": "quick",
            "versions": common.peer_versions(),
            "call": {k: str(v) for k, v in options.items()},
            "load": common.load_note(loads),
            "loadavg_samples": [round(v, 2) for v in loads],
            "leaderboard": board,
            "table": table_rows(board),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
