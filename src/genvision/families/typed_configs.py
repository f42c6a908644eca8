"""Typed config fields: parsing ``--set`` strings, checking JSON values against annotations, caps.

Every config dataclass (model configs, ``TrainConfig``, ``OptimizerSpec``) runs
:func:`check_fields` first in ``__post_init__``: each value must match its annotation (int, not
bool; a finite float; str; bool; tuples and lists of those; Literal; Optional) and stay under
the class's documented ``caps``. :func:`build_dataclass` builds one from a dict (``--set`` values
arrive as strings and are parsed), refusing unknown keys and naming the known ones.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing


def parse_value(tp, raw: str, name: str):
    """Parse the string ``raw`` (from ``--set``) into the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(inner[0], raw, name)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(str, args))} (got {raw!r})")
        return raw
    if origin in (tuple, list):
        parts = [
            p for p in raw.replace("(", "").replace(")", "").replace("[", "").replace("]", "").split(",")
        ]
        inner = args[0] if args else str
        vals = [parse_value(inner, p.strip(), name) for p in parts if p.strip()]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name} must be true or false (got {raw!r})")
    if tp in (int, float, str):
        try:
            return tp(raw)
        except ValueError:
            raise ValueError(f"{name} must be {tp.__name__} (got {raw!r})") from None
    return raw


def field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@functools.cache
def _field_types(cls) -> tuple[tuple[str, typing.Any], ...]:
    return tuple(field_types(cls).items())


def describe_type(tp) -> str:
    """How an error message names what a field of annotation ``tp`` takes."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(inner) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {_plural(args[0] if args else str)}"
    return {
        int: "an integer",
        float: "a finite number",
        str: "a string",
        bool: "true or false",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp) -> str:
    return {int: "integers", float: "finite numbers", str: "strings", bool: "booleans"}.get(tp, str(tp))


def check_value(tp, value, name: str):
    """``value`` checked against the annotation ``tp`` and normalised (list -> tuple, int -> float).

    Raises a one-line ValueError naming the field, the type it takes and the value: a JSON list, dict,
    bool or string where a number goes, NaN or infinity anywhere a number goes.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    wrong = ValueError(f"{name} must be {describe_type(tp)} (got {value!r:.60})")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for inner in (a for a in args if a is not type(None)):
            try:
                return check_value(inner, value, name)
            except ValueError:
                pass
        raise wrong
    if origin is typing.Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            raise wrong
        return value
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise wrong
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            raise wrong
        inner = args if fixed else [args[0] if args else typing.Any] * len(value)
        items = []
        for t, v in zip(inner, value):
            try:
                items.append(check_value(t, v, name))
            except ValueError:
                raise wrong from None
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise wrong
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            raise wrong from None
        if not math.isfinite(value):
            raise wrong
        return value
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    return value


def class_caps(cls) -> dict[str, int]:
    """Field -> cap: the ``caps`` of ``cls`` and its bases merged (a subclass may lower a base's)."""
    caps: dict[str, int] = {}
    for klass in reversed(cls.__mro__):
        caps.update(klass.__dict__.get("caps", {}))
    return caps


def check_cap(name: str, value, cap: int) -> None:
    """Refuse a size ``value`` (or any entry of a tuple) above ``cap``, in one line."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, numbers.Real) and v > cap:
            raise ValueError(
                f"{name} must be <= {cap} (got {value!r:.60}): genvision caps it so a config cannot "
                "exhaust memory; use a smaller value"
            )


def check_fields(config) -> None:
    """Type-check and normalise every field of the dataclass ``config``, then check its caps.

    The one place configs refuse wrong types and non-finite numbers (called first in the
    ``__post_init__`` of ``ModelConfig``, ``OptimizerSpec`` and ``TrainConfig``), so the checks
    written after it compare numbers, and NaN cannot slip through a ``x < 0`` test.
    """
    cls = type(config)
    for name, tp in _field_types(cls):
        value = getattr(config, name)
        checked = check_value(tp, value, name)
        if checked is not value:
            setattr(config, name, checked)
    for name, cap in class_caps(cls).items():
        check_cap(name, getattr(config, name), cap)


def parse_field(cls, name: str, value):
    """One field's value for ``cls`` as ``build_dataclass`` takes it: a string is parsed, then checked."""
    types_ = dict(_field_types(cls))
    tp = types_[name]
    if isinstance(value, str) and tp is not str:
        value = parse_value(tp, value, name)
    value = check_value(tp, value, name)
    check_cap(name, value, class_caps(cls).get(name, math.inf))
    return value


def check_known(cls, values: dict, what: str) -> None:
    """Refuse keys of ``values`` that are not fields of ``cls``, naming the known ones."""
    known = [name for name, _ in _field_types(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {what} key(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
        )


def build_dataclass(cls, values: dict, what: str = "config"):
    """Build ``cls`` from a dict, refusing unknown keys (naming the known ones); strings are parsed.

    Values of the wrong type, non-finite numbers and sizes over the caps are refused in one line
    (``check_fields``, run by the config's ``__post_init__``; here for other dataclasses too).
    """
    check_known(cls, values, what)
    return cls(**{k: parse_field(cls, k, v) for k, v in values.items()})
