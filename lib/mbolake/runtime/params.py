"""Notebook parameters: one resolve call per notebook.

``params(spec, injected)`` merges, in increasing priority: the declared defaults, the
values papermill injected (the notebook's globals after the ``parameters`` and
``injected-parameters`` cells), and Databricks widgets when ``dbutils`` exists. Every
value is coerced to its declared type and range-checked, then the cross-parameter rules
(``not_before``: e.g. ``end_date`` not before ``start_date``) are checked; the first bad
one raises ``ParameterError`` naming it, before any work starts.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.calendar import as_date


class ParameterError(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    type: type
    default: Any = None
    min: Any = None
    max: Any = None
    choices: tuple | None = None
    help: str = ""
    optional: bool = False  # None allowed
    not_before: str | None = None  # the name of a parameter this one must not be less than


def _coerce(name: str, value: Any, p: Param) -> Any:
    if p.optional and isinstance(value, str) and not value.strip():
        value = None  # a blank widget / ``-p name=`` means "not set" for an optional parameter
    if value is None:
        if p.optional:
            return None
        raise ParameterError(f"parameter {name!r} is required ({p.help or p.type.__name__})")
    try:
        if p.type is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("true", "1", "yes")
            if not isinstance(value, (bool, int)):
                raise ValueError(value)
            return bool(value)
        if p.type is dt.date:
            return as_date(value)
        if p.type is dt.time:
            if isinstance(value, dt.time):
                return value
            return dt.time.fromisoformat(str(value).strip())
        if p.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(str(value).strip().replace("_", "")) if isinstance(value, str) else int(value)
        if p.type is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if p.type is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        return p.type(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"parameter {name!r}: {value!r} is not a valid {p.type.__name__}" + (f" ({p.help})" if p.help else "")
        ) from None


def _check(name: str, value: Any, p: Param) -> None:
    if value is None:
        return
    if p.choices is not None:
        items = value if isinstance(value, list) else [value]
        bad = [v for v in items if v not in p.choices]
        if bad:
            raise ParameterError(f"parameter {name!r}: {bad[0]!r} is not one of {list(p.choices)}")
    if p.min is not None and value < p.min:
        raise ParameterError(f"parameter {name!r}: {value!r} is below the minimum {p.min!r}")
    if p.max is not None and value > p.max:
        raise ParameterError(f"parameter {name!r}: {value!r} is above the maximum {p.max!r}")


def _widget_values(names) -> dict:
    try:
        import IPython

        shell = IPython.get_ipython()
        dbutils = shell.user_ns.get("dbutils") if shell is not None else None
    except ImportError:
        dbutils = None
    if dbutils is None:
        return {}
    values = {}
    for name in names:
        try:
            values[name] = dbutils.widgets.get(name)
        except Exception:  # widget not defined for this job: keep the other sources
            continue
    return values


class Resolved(dict):
    """The resolved parameters; also readable as attributes (``p.sessions``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in self.items())
        return f"| parameter | value |\n|---|---|\n{rows}"


def params(spec: Mapping[str, Param], injected: Mapping[str, Any] | None = None, **overrides: Any) -> Resolved:
    """Resolve and validate notebook parameters.

    ``injected`` is usually ``globals()`` of the notebook; only names in ``spec`` are read.
    Unknown names in ``overrides`` are an error (a typo must not silently use a default).
    """
    unknown = [k for k in overrides if k not in spec]
    if unknown:
        raise ParameterError(f"unknown parameter {unknown[0]!r}; known: {', '.join(spec)}")
    merged = {name: p.default for name, p in spec.items()}
    if injected:
        merged.update({k: v for k, v in injected.items() if k in spec})
    merged.update(_widget_values(spec))
    merged.update(overrides)
    resolved = Resolved()
    for name, p in spec.items():
        value = _coerce(name, merged[name], p)
        _check(name, value, p)
        resolved[name] = value
    for name, p in spec.items():
        _check_order(name, p, resolved)
    return resolved


def _check_order(name: str, p: Param, resolved: Mapping[str, Any]) -> None:
    """Cross-parameter rule: ``name`` must not be before ``p.not_before`` (when both are set)."""
    if p.not_before is None:
        return
    if p.not_before not in resolved:
        raise ParameterError(f"parameter {name!r}: not_before names {p.not_before!r}, which is not a parameter")
    value, other = resolved[name], resolved[p.not_before]
    if value is not None and other is not None and value < other:
        raise ParameterError(f"parameter {name!r}: {value} is before {p.not_before} {other}")
