"""2-minute clock-aligned candles from trade prints (FEATURES.md §4). Kernel: numpy/pandas.

**fix** kept: O/H/L/C come from the trade prints inside the candle (true high / low). A
candle without trades has O = H = L = C = the book mid at its start and
``has_trades = False``.

Choices where the spec is silent:

- Candle boundaries are ``start_ns + k * candle_ns`` with ``start_ns`` floored to a multiple
  of ``candle_ns`` since the epoch (UTC). For zones whose UTC offset is a whole number of
  minutes that are a multiple of the candle length (New York: whole hours) this is the
  local clock grid, so 09:30 is a boundary.
- A trade at ``ts`` belongs to the candle with ``candle_ts <= ts < close_ts``; trades are
  taken in the given (file) order when timestamps tie (stable sort), so O is the first
  print and C the last print of the candle in file order.
- "The mid at its start" = the last valid mid with ``mid_ts <= candle_ts`` (the state
  standing at the start). NaN mids (an empty side) are skipped. When there is no such mid
  the empty candle's prices are NaN (the approach detector treats a NaN candle as neither
  on the approach side nor crossing).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CANDLE_NS = 120 * 1_000_000_000
CANDLE_COLUMNS = ["candle_ts", "close_ts", "open", "high", "low", "close", "has_trades", "trade_cnt"]


def build_candles(
    trade_ts: np.ndarray,
    trade_px: np.ndarray,
    mid_ts: np.ndarray,
    mid_px: np.ndarray,
    start_ns: int,
    end_ns: int,
    candle_ns: int = CANDLE_NS,
) -> pd.DataFrame:
    """Every candle of ``[start_ns, end_ns)`` (empty ones included), in time order.

    ``trade_ts`` / ``trade_px``: trade prints (ns UTC, float points). ``mid_ts`` / ``mid_px``:
    the book mid series (one entry per book state; NaN for an empty side).

    Columns: ``candle_ts`` (start, ns UTC), ``close_ts`` (= start + ``candle_ns``), ``open``,
    ``high``, ``low``, ``close``, ``has_trades``, ``trade_cnt``. The last candle is the one
    starting before ``end_ns`` (a partial last candle, if ``end_ns`` is off the grid, is
    still emitted with its full close_ts).
    """
    candle_ns = int(candle_ns)
    start = (int(start_ns) // candle_ns) * candle_ns
    end = int(end_ns)
    n = max(0, -(-(end - start) // candle_ns))
    starts = start + np.arange(n, dtype=np.int64) * candle_ns

    tts = np.asarray(trade_ts, dtype=np.int64)
    tpx = np.asarray(trade_px, dtype=np.float64)
    ok = np.isfinite(tpx)
    tts, tpx = tts[ok], tpx[ok]
    order = np.argsort(tts, kind="stable")
    tts, tpx = tts[order], tpx[order]
    keep = (tts >= start) & (tts < min(end, start + n * candle_ns))
    tts, tpx = tts[keep], tpx[keep]
    k = (tts - start) // candle_ns

    cnt = np.bincount(k, minlength=n).astype(np.int64) if n else np.zeros(0, np.int64)
    o = np.full(n, np.nan)
    h = np.full(n, -np.inf)
    lo = np.full(n, np.inf)
    c = np.full(n, np.nan)
    if tts.size:
        first = np.r_[True, k[1:] != k[:-1]]
        last = np.r_[k[1:] != k[:-1], True]
        o[k[first]] = tpx[first]
        c[k[last]] = tpx[last]
        np.maximum.at(h, k, tpx)
        np.minimum.at(lo, k, tpx)

    has = cnt > 0
    if (~has).any():
        mts = np.asarray(mid_ts, dtype=np.int64)
        mpx = np.asarray(mid_px, dtype=np.float64)
        good = np.isfinite(mpx)
        mts, mpx = mts[good], mpx[good]
        morder = np.argsort(mts, kind="stable")
        mts, mpx = mts[morder], mpx[morder]
        j = np.searchsorted(mts, starts[~has], side="right") - 1
        fill = np.where(j >= 0, mpx[np.clip(j, 0, None)] if mpx.size else np.nan, np.nan)
        for arr in (o, h, lo, c):
            arr[~has] = fill
    return pd.DataFrame(
        {
            "candle_ts": starts,
            "close_ts": starts + candle_ns,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "has_trades": has,
            "trade_cnt": cnt,
        },
        columns=CANDLE_COLUMNS,
    )
