"""No measured figures in the code's comments and docstrings.

Timings, speed-ups, throughputs, FIDs, bits/dim and accuracies from experiments live in
``docs/notes/<family>.md`` (``nn.md``, ``training.md``, ... for the rest) and the benchmark JSON,
never in code (docs/architecture.md, "Where a new piece goes"): a figure in a comment is never
re-checked, goes stale silently, and has no machine, date or command beside it. The code keeps
the reason for a default without the number, and may point at the notes page.

Every comment (``tokenize``; a run of whole-line comments as one text) and every string
statement (``ast``: docstrings, attribute docstrings) under ``src/genvision/``, ``metrics/``
included, is matched against :data:`PATTERNS`, which signal a measurement, not a design fact:
"image_size 28", "(B, C, H, W)", "seed 0", "default 10", "about 11% of train" or "1M-parameter"
pass. A hit is reported as ``path:line`` of the line where the figure starts.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genvision"

_NUM = r"\d+(?:[.,]\d+)?"
#: the space between a number and its unit, which may wrap onto the next line
_SP = r"[ \t]*(?:\n[ \t]*)?"
_TIME_UNIT = r"(?:s|secs?|seconds?|ms|milliseconds?|min|mins|minutes?|hours?)"
_BPD = r"(?:bpd|bits/dim|bits per dim(?:ension)?|nats/dim)\b"
#: a few words within one clause (no formula: "=" and brackets end it)
_GAP = r"[^.;=()\n]{0,25}?"

#: (what it signals, pattern); matched case-insensitively on a comment block or a docstring
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in [
        # "measured: 0.13x", "measured 1.2-1.3x", "(measured = 13 s)"; not "measured at: a multiple of 50"
        ("measured + number", r"\bmeasured\b\s*[:=(]?\s*(?:about\s+|~)?\d"),
        # "0.5 s per test image", "43s", "~150 ms", "about 4 minutes", "4m50s"; a number before
        # the unit, so "--minutes 5", "elapsed seconds" and "2h -> h" pass
        ("number + time unit", rf"(?<![\w.]){_NUM}{_SP}{_TIME_UNIT}(?![\w/(])|\b\d+m\d+s\b"),
        # "900 images/s", "23 img/s", "1.2k images per second", "40 it/s"
        (
            "throughput",
            rf"{_NUM}{_SP}k?\s?(?:img/s|images?/s|images? per second|samples?/s|steps?/s|it/s|[GT]FLOP/s)",
        ),
        # "5x faster", "about 2x sooner", "1.6 times slower", "faster by 2x", "lose 5-20x"
        (
            "speed-up",
            rf"{_NUM}{_SP}(?:x|times)\s+(?:faster|slower|sooner|later|quicker|cheaper|costlier)\b"
            rf"|\b(?:faster|slower|sooner|quicker|cheaper)\s+(?:by\s+)?(?:about\s+|~)?{_NUM}\s?x\b"
            rf"|\b(?:lose|loses|lost|gain|gains|gained)\s+(?:about\s+|~)?(?:{_NUM}-)?{_NUM}\s?x\b",
        ),
        # "FID 2.97", "KID = 0.01", "FID with seed 1: 4.61"; not "FID of 1000 samples"
        ("FID / KID value", rf"\b[FK]ID\s*[:=~]?\s*\d|\b[FK]ID\b{_GAP}(?<![\w.])\d+\.\d+"),
        # "bits/dim 1.97", "2.00 bits/dim", "bpd: 1.3", "1.2 nats/dim", "bits/dim with labels 2.00";
        # not "bits/dim = -value / (C*H*W*ln 2)" nor "bits/dim, against log2(17) = 4.09"
        (
            "bits/dim value",
            rf"\b{_BPD}\s*[:=]?\s*\d|(?<![\w.]){_NUM}{_SP}{_BPD}|\b{_BPD}{_GAP}(?<![\w.])\d+\.\d+",
        ),
        # "accuracy 0.42", "accuracy of the samples 0.96", "accuracy 93%"
        ("accuracy value", rf"\baccurac(?:y|ies)\b[^.;\n]{{0,40}}?(?:\b0\.\d|{_NUM}\s?%)"),
        # "about 3% of a CPU training step", "12% faster"
        (
            "percentage of a cost",
            rf"{_NUM}{_SP}%\s+(?:faster|slower|quicker|cheaper|of\s+(?:a|the|its|one)\s+(?:\S+\s+){{0,3}}"
            rf"(?:step|steps|time|run|runs|wall)\b)",
        ),
    ]
]


def comment_blocks(source: str) -> list[tuple[int, str]]:
    """(first line, text) of the comments: a run of whole-line comments is one block (one text,
    a line each, without the ``#``), so a figure wrapped over two lines is still seen."""
    blocks: list[tuple[int, str]] = []
    last = None  # line of the previous whole-line comment
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        line, text = tok.start[0], tok.string.lstrip("#:").strip()
        whole_line = tok.line.lstrip().startswith("#")
        if whole_line and last == line - 1:
            blocks[-1] = (blocks[-1][0], blocks[-1][1] + "\n" + text)
        else:
            blocks.append((line, text))
        last = line if whole_line else None
    return blocks


def string_statements(source: str) -> list[tuple[int, str]]:
    """(first line, text) of every string statement: docstrings and attribute docstrings."""
    return [
        (node.value.lineno, node.value.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def figures(text: str) -> list[tuple[int, str]]:
    """(offset, pattern name) of every figure in ``text``."""
    return [(m.start(), name) for name, pattern in PATTERNS for m in pattern.finditer(text)]


def hits(package: Path = PACKAGE) -> list[str]:
    """``path:line: [patterns] text of that line`` for every line where a figure starts."""
    out = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        found: dict[int, tuple[list[str], str]] = {}
        for first, text in comment_blocks(source) + string_statements(source):
            lines = text.split("\n")
            for offset, name in figures(text):
                i = text.count("\n", 0, offset)
                names, _ = found.setdefault(first + i, ([], lines[i].strip()))
                if name not in names:
                    names.append(name)
        rel = path.relative_to(package.parents[1]).as_posix()
        out += [f"{rel}:{line}: [{', '.join(names)}] {text}" for line, (names, text) in sorted(found.items())]
    return out


def test_patterns_flag_measurements():
    for text in [
        "# measured: 0.13x",
        "about 4 minutes of training on 2 CPU cores (1400 steps of 128 images, ~150 ms a step)",
        "the diffusion bound costs about 0.5 s per test image on 2 cores",
        "300 digits steps took 43 s with one thread",
        "the evaluation took 4m50s wall",
        "~900 images/s",
        "about 5x faster than conv2d",
        "the label learnt about 2x sooner",
        "these small convolutions lose 5-20x when cores are oversubscribed",
        "domain FID 2.97 against a floor of 3.59",
        "test bits/dim with labels 2.00 and 1.97",
        "judge accuracy 0.42 vs 0.20 after 300 steps",
        "backward (about 3% of a CPU training step at 32x32)",
        "on digits this gives about 2.4\n  bits/dim, against log2(17) = 4.09",
        "channels-last convolutions: measured 1.2-1.3x faster on CPU",
        "(temperature 0.7; 20% and 39% at 1; test bits/dim with labels 2.00 and 1.97)",
        "the same model scored FID with seeds 1 and 2: 4.61 and 3.95",
    ]:
        assert figures(text), text


def test_patterns_pass_design_facts():
    for text in [
        "image_size 28; (B, C, H, W) in [-1, 1]",
        "seed 0 (image k fixed by (0, k)); default 10",
        "stratified 25% (450); about 11% of train (digits: 119 of 1347)",
        "std 0.1 in [-1, 1] units (5% of the pixel range)",
        "PixelCNN residual block: 2h -> h (1x1) -> h (kxk) -> 2h",
        "genvision train MODEL [--steps N | --images N | --minutes M]; --minutes 5",
        "counters (step, images seen, data cursor, elapsed seconds)",
        "the default 1M-parameter UNet; 128 MFLOP per training image",
        "bits/dim = -value / (C*H*W*ln 2); chosen by measured quality (docs/notes/diffusion.md)",
        "log K (2.30 nats for 10 digits); teacher_calls: its target's accuracy",
        "at most 4 levels: 8 -> (1, 2); 16, 28 -> (1, 2, 2)",
        "else the most common size capped at 64\nmin(H, W) of the images",
        "The largest N the floor can be measured at: a multiple of 50 at most 97% of the held half.",
        "domain FID of 1000 samples against the floor; FID at 1,000 samples",
        "bits/dim, against log2(17) = 4.09 for the uniform model",
    ]:
        assert not figures(text), (text, figures(text))


def test_no_measured_figures_in_comments_or_docstrings():
    found = hits()
    assert not found, (
        "measured figures in code (move them to docs/notes/<family>.md, leave the reason):\n"
        + "\n".join(found)
    )
