"""Human judgement: a real-or-generated quiz on a run's samples and its dataset's held-back images.

One image at a time, in a shuffled order fixed by the quiz's seed: half drawn by the model (image k
of a seed, as ``genvision sample`` draws it), half from the test split of the run's data. Every
answer is appended to ``RUN/human_eval.jsonl`` with its response time; ``RUN/human_eval.json``
summarises them as the human error rate (the share of wrong answers: 0.5 means people cannot tell,
as in HYPE's infinity score) with a 95% Wilson interval and the number of judgements, which the
run's report shows beside the automatic metrics.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from pathlib import Path

import torch

from .. import io

JUDGEMENTS = "human_eval.jsonl"
SUMMARY = "human_eval.json"
#: images of each kind in one quiz
DEFAULT_PER_KIND = 20
#: the quiz's generated images use seeds from here on (one per quiz), far from the seeds people
#: sample with by hand
SAMPLE_SEED = 9_000_001


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(rows: list[dict]) -> dict:
    """Error rate, its interval, judgements, and the error rates on each kind of image."""
    n = len(rows)
    wrong = sum(1 for r in rows if r["answer"] != r["truth"])
    out = {
        "judgements": n,
        "error_rate": wrong / n if n else None,
        "ci95": list(wilson(wrong, n)) if n else None,
        "interval": "Wilson score, 95%",
        "definition": "share of wrong real-or-generated answers; 0.5 = people cannot tell them apart",
        "sessions": len({r["session"] for r in rows}),
        "median_response_ms": sorted(r["ms"] for r in rows)[n // 2] if n else None,
    }
    for kind in ("generated", "real"):
        sub = [r for r in rows if r["truth"] == kind]
        out[f"error_rate_{kind}"] = sum(1 for r in sub if r["answer"] != kind) / len(sub) if sub else None
        out[f"judgements_{kind}"] = len(sub)
    return out


def read_judgements(run: Path) -> list[dict]:
    path = run / JUDGEMENTS
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash loses one answer, not the file
        if isinstance(r, dict) and r.get("truth") in ("real", "generated") and "answer" in r:
            rows.append(r)
    return rows


class Quiz:
    """One quiz session: its items (pixels ready to show) and the order they come in."""

    def __init__(self, run: Path, model, per_kind: int = DEFAULT_PER_KIND, seed: int | None = None):
        from .. import data, sampling
        from ..data.transforms import to_uint8_255
        from ..model_dir import read_config

        self.run = run
        self.session = secrets.token_hex(6)
        meta = read_config(run)
        spec = (meta.get("data") or {}).get("spec") or "digits"
        size = model.config.image_size
        try:
            real = data.load(spec, split="test", image_size=size)
        except (ValueError, OSError) as e:
            raise ValueError(f"the quiz needs the run's held-back images ({spec}): {e}") from None
        if real.image_size != size or real.channels != model.config.channels:
            raise ValueError(f"{spec} images do not match the model's size; the quiz cannot pair them")
        rng = random.Random(seed if seed is not None else secrets.randbits(32))
        per_kind = min(per_kind, len(real))
        pick = rng.sample(range(len(real)), per_kind)
        real_u8 = to_uint8_255(data.to_float(real.images[pick], real.levels), real.levels)
        sample_seed = SAMPLE_SEED + rng.randrange(1_000_000)  # each quiz its own images
        gen = sampling.sample(model, per_kind, seed=sample_seed, batch_size=64)["images"]
        gen_u8 = to_uint8_255(gen, model.config.levels)
        items = [("real", f"test:{i}", a) for i, a in zip(pick, real_u8)]
        items += [("generated", f"seed:{sample_seed}:{k}", a) for k, a in enumerate(gen_u8)]
        rng.shuffle(items)
        self.items = items
        self.shown: dict[int, float] = {}
        self.answered: set[int] = set()

    def item(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self.items):
            raise ValueError(f"the quiz has items 0..{len(self.items) - 1}")
        self.shown.setdefault(i, time.time())
        return self.items[i][2]

    def answer(self, i: int, answer: str, ms: float | None) -> dict:
        if answer not in ("real", "generated"):
            raise ValueError("answer real or generated")
        if not 0 <= i < len(self.items):
            raise ValueError(f"the quiz has items 0..{len(self.items) - 1}")
        if i in self.answered:
            raise ValueError(f"item {i} is answered already")
        truth, source, _ = self.items[i]
        if ms is None or not (0 <= ms < 3_600_000):
            ms = 1000 * (time.time() - self.shown.get(i, time.time()))
        row = {
            "session": self.session,
            "item": i,
            "source": source,
            "truth": truth,
            "answer": answer,
            "correct": answer == truth,
            "ms": round(float(ms), 1),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(self.run / JUDGEMENTS, "a") as f:  # append-only: one line per answer
            f.write(json.dumps(row) + "\n")
        self.answered.add(i)
        summary = summarise(read_judgements(self.run))
        io.write_text(self.run / SUMMARY, json.dumps(summary, indent=2))
        return {"correct": row["correct"], "truth": truth, "summary": summary}
