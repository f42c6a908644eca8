"""Metrics of generative image models; ``genvision.evaluate`` is the entry point.

- ``evaluate.py``: the driver (source, applicability, gathering once, metrics.json);
- ``table.py``: every metric by name, what it needs and its compute function;
- ``sample_metrics.py`` / ``likelihood.py``: the compute functions from samples / from model
  capabilities; ``sources.py``: where the images come from;
- ``features.py``, ``judges.py``, ``inception.py``: feature extractors (the domain judge
  classifiers, Inception) and reference caches;
- ``protocol.py``: the equal-N protocol (reference half, floor at the samples' N, bootstrap
  intervals);
- ``fid.py``, ``kid.py``, ``inception_score.py``, ``manifold.py``, ``memorization.py``: the maths;
- ``report.py``: a run directory's report.md; ``baseline.py``: the per-pixel independent model.
"""
