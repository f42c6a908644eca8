"""How much memory a model would take, measured before it is built, and the limit it must fit.

``registry.create`` (and ``check_config``, before the data is loaded) calls :func:`check_memory`:
the model's parameters and buffers are counted on a build on the ``meta`` device, which allocates
nothing, and a model over :func:`model_memory_limit` is refused in one line naming the config
field that makes it big.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os

import torch

#: environment variable: the most bytes a model's parameters and buffers may take (default: a
#: MEMORY_FRACTION of the memory available when it is built)
MEMORY_LIMIT_ENV = "GENVISION_MODEL_MEMORY_LIMIT"
MEMORY_FRACTION = 0.5
_ESTIMATES: dict = {}  # (class, config, parents' configs) -> bytes; meta builds are not free


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def model_memory_limit() -> int | None:
    """The most bytes a model may take: ``$GENVISION_MODEL_MEMORY_LIMIT``, else half the available memory."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ValueError(f"{MEMORY_LIMIT_ENV} must be a number of bytes (got {env!r})") from None
    available = available_memory()
    return None if available is None else int(available * MEMORY_FRACTION)


def model_bytes(cls, config, parents: dict) -> int:
    """Bytes of the parameters and buffers ``cls(config, **parents)`` would allocate.

    Counted on a build on the ``meta`` device, which allocates nothing (nor draws random numbers).
    """
    key = (cls, _key(config), tuple(sorted((r, type(p), _key(p.config)) for r, p in parents.items() if p)))
    if key not in _ESTIMATES:
        try:
            with torch.device("meta"):
                model = cls(config, **parents)
        except (NotImplementedError, RuntimeError):  # an operation the meta device lacks: no estimate
            return 0
        tensors = itertools.chain(model.parameters(), model.buffers())
        _ESTIMATES[key] = sum(t.numel() * t.element_size() for t in tensors)
    return _ESTIMATES[key]


def _key(config) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)


def check_memory(name: str, cls, config, parents: dict) -> None:
    """Refuse, in one line naming the field that makes it big, a model over :func:`model_memory_limit`."""
    limit = model_memory_limit()
    if limit is None:
        return
    need = model_bytes(cls, config, parents)
    if need <= limit:
        return
    culprit = _dominant_field(cls, config, parents, need)
    hint = (
        f"{culprit}={getattr(config, culprit)} makes it big: lower {culprit}"
        if culprit
        else "use a smaller image_size or fewer, narrower layers"
    )
    raise ValueError(
        f"{name} would take {_gb(need)} for its parameters, more than the {_gb(limit)} of memory it may use "
        f"(half of what is available; ${MEMORY_LIMIT_ENV} sets it); {hint}"
    )


def _dominant_field(cls, config, parents: dict, need: int) -> str | None:
    """The capped field whose reset to its default shrinks the model most (None if none does)."""
    best, saved = None, 0
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    for name in config.all_caps():
        if name not in defaults or getattr(config, name) == defaults[name]:
            continue
        try:
            smaller = model_bytes(cls, dataclasses.replace(config, **{name: defaults[name]}), parents)
        except ValueError:  # the default does not fit the rest of the config
            continue
        if need - smaller > saved:
            best, saved = name, need - smaller
    return best


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
