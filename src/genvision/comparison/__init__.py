"""``genvision compare``: one leaderboard across every family, trained and measured alike.

- ``plan.py``: the options made exact and checked (models, data, budget, seeds, N); the
  ``--quick`` table of one model per family.
- ``runner.py``: the orchestration: a run directory per (model, seed), trained in segments with
  FID between them, evaluated alike; ``compare.json`` makes it resumable.
- ``measure.py``: what is measured of each run: FID at a checkpoint on the trainer's clock, the
  full evaluation (the same metrics, N and seed for every model), the sampling rate.
- ``report.py`` + ``figures.py``: ``report.md``, ``leaderboard.json`` and the pictures.

The package is ``comparison`` rather than ``compare`` so that importing it never rebinds the
API function ``genvision.compare`` (importing a subpackage sets the parent's attribute of its name).
"""

from .runner import compare

__all__ = ["compare"]
