"""Session key levels (FEATURES.md §1, ``silver.session_levels``): pre-market and opening-range
high/low of the book mid. Kernel: numpy only, no I/O.

Choices where the spec is silent (also in :func:`session_levels`):

- A book state belongs to a window when its own ``ts_recv`` lies in ``[start, end)``. The
  state carried into the window from before its start is *not* counted (rows are F_LAST
  book states; "every F_LAST state" in the window is taken literally).
- "Empty side" = a NaN (or ±inf) best bid or best ask. Crossed or locked books are *not*
  filtered: the rebuilt book is the source of truth.
- ``levels_complete`` is true only when both windows have data; ``empty_windows`` lists the
  empty ones (``"pm"``, ``"or"``), whose two levels are ``None``.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..core.calendar import as_date, local_time_to_ns

LEVEL_TYPES = ("pm_high", "pm_low", "or_high", "or_low")


def session_levels(
    ts_recv: np.ndarray,
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    session_date,
    timezone: str,
    premarket_start: tuple[int, int] = (5, 0),
    rth_open: tuple[int, int] = (9, 30),
    or_end: tuple[int, int] = (9, 45),
) -> dict[str, Any]:
    """pm_high / pm_low / or_high / or_low of one session from its book states.

    ``ts_recv`` (int64 ns UTC), ``best_bid`` / ``best_ask`` (float points, NaN for an empty
    side): one entry per F_LAST book state, any order, any time range (states outside the
    two windows are ignored). Mid = (bid + ask)/2; states with an empty side are ignored.

    Windows (exchange-local wall clock of ``session_date`` in ``timezone``, DST-safe):
    pre-market ``premarket_start <= t < rth_open`` (ES 05:00, equities 04:00: take it from
    ``Product.premarket_start``), opening range ``rth_open <= t < or_end``. A state counts
    for a window when its own timestamp is in the window (the state carried in from before
    the window start is not counted).

    Returns a dict: ``session_date`` (ISO string), the four levels (float, ``None`` when
    their window is empty), ``pm_available_from`` (= RTH open) and ``or_available_from``
    (= opening-range end) in ns UTC, the window bounds (``pm_start``, ``pm_end``,
    ``or_start``, ``or_end``, ns UTC), ``pm_n_states`` / ``or_n_states`` (states used),
    ``empty_windows`` (list of ``"pm"`` / ``"or"``) and ``levels_complete``.
    """
    day = as_date(session_date)
    ts = np.asarray(ts_recv, dtype=np.int64)
    bid = np.asarray(best_bid, dtype=np.float64)
    ask = np.asarray(best_ask, dtype=np.float64)
    if not (ts.shape == bid.shape == ask.shape):
        raise ValueError(f"ts_recv, best_bid, best_ask must have the same length ({ts.shape}, {bid.shape}, {ask.shape})")
    pm_start = local_time_to_ns(day, *premarket_start, timezone)
    open_ns = local_time_to_ns(day, *rth_open, timezone)
    or_end_ns = local_time_to_ns(day, *or_end, timezone)
    if not pm_start < open_ns < or_end_ns:
        raise ValueError("expected premarket_start < rth_open < or_end")

    valid = np.isfinite(bid) & np.isfinite(ask)
    mid = (bid + ask) / 2.0
    out: dict[str, Any] = {
        "session_date": day.isoformat(),
        "pm_start": pm_start,
        "pm_end": open_ns,
        "or_start": open_ns,
        "or_end": or_end_ns,
        "pm_available_from": open_ns,
        "or_available_from": or_end_ns,
    }
    empty = []
    for name, lo, hi in (("pm", pm_start, open_ns), ("or", open_ns, or_end_ns)):
        m = valid & (ts >= lo) & (ts < hi)
        n = int(m.sum())
        out[f"{name}_n_states"] = n
        if n == 0:
            out[f"{name}_high"] = None
            out[f"{name}_low"] = None
            empty.append(name)
        else:
            out[f"{name}_high"] = float(mid[m].max())
            out[f"{name}_low"] = float(mid[m].min())
    out["empty_windows"] = empty
    out["levels_complete"] = not empty
    return out


def available_levels(levels: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """``{level_type: (price, available_from_ns)}`` for the non-null levels of a
    :func:`session_levels` result (null levels are skipped: their window was empty)."""
    out = {}
    for lt in LEVEL_TYPES:
        px = levels.get(lt)
        if px is None or not np.isfinite(px):
            continue
        out[lt] = (float(px), int(levels[f"{lt[:2]}_available_from"]))
    return out


class LevelsAccumulator:
    """Resumable :func:`session_levels` for micro-batches (streaming): ``apply(ts_recv,
    best_bid, best_ask)`` folds book states in; ``result()`` gives the same dict as
    :func:`session_levels` over everything applied so far; ``state_bytes()`` /
    ``from_state_bytes()`` checkpoint it. Batches may come in any order."""

    FORMAT = "mbolake.levels.v1"

    def __init__(self, session_date, timezone: str, premarket_start=(5, 0), rth_open=(9, 30), or_end=(9, 45)):
        self.args = {"session_date": as_date(session_date).isoformat(), "timezone": timezone,
                     "premarket_start": list(premarket_start), "rth_open": list(rth_open), "or_end": list(or_end)}
        empty = np.zeros(0)
        base = session_levels(empty.astype(np.int64), empty, empty, **self._call_args())
        self.bounds = {"pm": (base["pm_start"], base["pm_end"]), "or": (base["or_start"], base["or_end"])}
        self.acc = {w: {"high": None, "low": None, "n": 0} for w in ("pm", "or")}

    def _call_args(self) -> dict[str, Any]:
        a = self.args
        return {"session_date": a["session_date"], "timezone": a["timezone"],
                "premarket_start": tuple(a["premarket_start"]), "rth_open": tuple(a["rth_open"]),
                "or_end": tuple(a["or_end"])}

    def apply(self, ts_recv, best_bid, best_ask) -> None:
        ts = np.asarray(ts_recv, dtype=np.int64)
        bid = np.asarray(best_bid, dtype=np.float64)
        ask = np.asarray(best_ask, dtype=np.float64)
        valid = np.isfinite(bid) & np.isfinite(ask)
        mid = (bid + ask) / 2.0
        for w, (lo, hi) in self.bounds.items():
            m = valid & (ts >= lo) & (ts < hi)
            if not m.any():
                continue
            a = self.acc[w]
            h, l = float(mid[m].max()), float(mid[m].min())
            a["high"] = h if a["high"] is None else max(a["high"], h)
            a["low"] = l if a["low"] is None else min(a["low"], l)
            a["n"] += int(m.sum())

    def result(self) -> dict[str, Any]:
        empty = np.zeros(0)
        out = session_levels(empty.astype(np.int64), empty, empty, **self._call_args())
        out["empty_windows"] = []
        for w in ("pm", "or"):
            a = self.acc[w]
            out[f"{w}_high"], out[f"{w}_low"], out[f"{w}_n_states"] = a["high"], a["low"], a["n"]
            if a["n"] == 0:
                out["empty_windows"].append(w)
        out["levels_complete"] = not out["empty_windows"]
        return out

    def state_bytes(self) -> bytes:
        return json.dumps({"format": self.FORMAT, "args": self.args, "acc": self.acc}, sort_keys=True).encode()

    @classmethod
    def from_state_bytes(cls, data: bytes) -> "LevelsAccumulator":
        doc = json.loads(data.decode())
        if doc.get("format") != cls.FORMAT:
            raise ValueError(f"not a levels accumulator state (expected format {cls.FORMAT!r})")
        obj = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in doc["args"].items()})
        obj.acc = doc["acc"]
        return obj
