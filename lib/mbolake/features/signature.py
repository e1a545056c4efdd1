"""Per-candle signature (FEATURES.md §4 "Per-candle signature"): 47 numbers from the
candle's 5-second bars. Kernel: numpy/pandas only.

Order: 4 descriptive, 17 statistics of u (τ = 0), 17 statistics of pressure (τ = 0.5),
9 means of the pressure components (:data:`SIGNATURE_NAMES`).

Choices where the spec is silent or ambiguous:

- ``sign_flip_cnt`` counts neighbours with ``x_i · x_{i+1} < 0`` (a zero is neither sign:
  ``+, 0, -`` counts no flip).
- ``energy_early`` / ``energy_late`` = ln(1 + Σ|Δx|) within the segment.
- The means of empty segments (``n = 1``: mid = late = ``x[1:]`` is empty) are 0.
- ``time_in_zone_frac``: a bar is "with a trade within 1.0 point of L" when it has a trade
  (``trade_cnt_sum > 0``) and ``|trade_last_px - L| <= 1.0`` (the bar's last trade is the
  only trade price a bar carries). Denominator: the number of 5 s bars of the candle.
- ``late_time_far_side_frac`` uses the same thirds as the statistics (the last third is
  ``u[2t:]``, or ``u[t:]`` when ``n <= 2t``).
- ``close_side`` = sign(dir·(C - L)) with C the candle close (trade based, from the
  candle); 0 when C is NaN.
- ``c_k`` = ``trade_last_px`` when the bar has a finite one (and ``trade_cnt_sum > 0`` if
  that column is present), else ``microprice_eob``.
- ``gap_spread`` uses the gap_max of the *opposite* side (ask for dir +1, bid for dir -1:
  the side price must move through, like ``wall_dist_support``); null gap → 0.
- Every pressure component is made finite (NaN/inf → 0) before it is averaged; ``pressure``
  is the mean of its seven terms. Nulls in inputs: wall maxz → 0, nearest-strong distance
  → "none" (d = 10 ticks), counts / volumes → 0.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

STAT_NAMES = (
    "start", "end", "min", "max", "mean", "std", "slope", "energy", "sign_flip_cnt",
    "burst_frac", "mean_early", "mean_mid", "mean_late", "energy_early", "energy_late",
    "late_minus_early", "late_vs_early",
)
DESCRIPTIVE_NAMES = ("time_in_zone_frac", "time_far_side_frac", "late_time_far_side_frac", "close_side")
COMPONENT_NAMES = (
    "obi0_lin", "obi10_lin", "cdi_lin", "flow_norm", "trade_imbal", "wall_support",
    "wall_dist_support", "gap_spread", "trade_activity",
)
SIGNATURE_NAMES = (
    DESCRIPTIVE_NAMES
    + tuple(f"u_{s}" for s in STAT_NAMES)
    + tuple(f"pressure_{s}" for s in STAT_NAMES)
    + tuple(f"{c}_mean" for c in COMPONENT_NAMES)
)
assert len(SIGNATURE_NAMES) == 47

PRESSURE_TAU = 0.5
LIN_CLIP = 1.0 - 1e-6

# bar columns used (FEATURES.md §3 names)
BAR_COLUMNS = (
    "bar_ts", "bar5s_microprice_eob", "bar5s_state_obi0_eob", "bar5s_state_obi10_eob",
    "bar5s_state_cdi_p0_1_eob", "bar5s_flow_net_volnorm_bid_p0_1_sum",
    "bar5s_flow_net_volnorm_ask_p0_1_sum", "bar5s_trade_cnt_sum", "bar5s_trade_vol_sum",
    "bar5s_trade_signed_vol_sum", "bar5s_trade_last_px", "bar5s_wall_bid_maxz_eob",
    "bar5s_wall_ask_maxz_eob", "bar5s_wall_bid_nearest_strong_dist_pts_eob",
    "bar5s_wall_ask_nearest_strong_dist_pts_eob", "bar5s_ladder_bid_gap_max_pts_eob",
    "bar5s_ladder_ask_gap_max_pts_eob", "bar5s_state_spread_pts_eob",
)


def finite(x) -> np.ndarray:
    """float64 copy with NaN/±inf → 0."""
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _energy(x: np.ndarray) -> float:
    return float(np.log1p(np.abs(np.diff(x)).sum())) if x.size > 1 else 0.0


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else 0.0


def thirds(n: int) -> tuple[slice, slice, slice]:
    """(early, mid, late) slices: t = max(1, n // 3); for n <= 2t mid and late are both x[t:]."""
    t = max(1, n // 3)
    if n <= 2 * t:
        return slice(0, t), slice(t, None), slice(t, None)
    return slice(0, t), slice(t, 2 * t), slice(2 * t, None)


def stats17(x, tau: float = 0.0) -> np.ndarray:
    """The 17 statistics of a series (:data:`STAT_NAMES` order); NaN/inf → 0 first; an
    empty series gives zeros."""
    x = finite(x).ravel()
    n = x.size
    out = np.zeros(17)
    if n == 0:
        return out
    e, m, l = thirds(n)
    me, mm, ml = _mean(x[e]), _mean(x[m]), _mean(x[l])
    out[:] = (
        x[0], x[-1], x.min(), x.max(), x.mean(), x.std(), (x[-1] - x[0]) / n, _energy(x),
        np.log1p(np.count_nonzero(x[:-1] * x[1:] < 0)), np.count_nonzero(x > tau) / n,
        me, mm, ml, _energy(x[e]), _energy(x[l]), ml - me,
        (ml - me) / (abs(ml) + abs(me) + 1e-9),
    )
    return finite(out)


def lin(x) -> np.ndarray:
    """clip(artanh(clip(x, ±(1 - 1e-6)))/2, -1, 1)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -LIN_CLIP, LIN_CLIP)
    return np.clip(np.arctanh(x) / 2.0, -1.0, 1.0)


def _col(bars: pd.DataFrame, name: str, fill: float = np.nan) -> np.ndarray:
    if name in bars.columns:
        return pd.to_numeric(bars[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.full(len(bars), fill)


def bar_prices(bars: pd.DataFrame) -> np.ndarray:
    """c_k: the bar's last trade price if it has one, else its microprice_eob."""
    last = _col(bars, "bar5s_trade_last_px")
    has = np.isfinite(last)
    if "bar5s_trade_cnt_sum" in bars.columns:
        has &= finite(_col(bars, "bar5s_trade_cnt_sum")) > 0
    return np.where(has, last, _col(bars, "bar5s_microprice_eob"))


def pressure_components(bars: pd.DataFrame, direction: int, tick: float = 0.25) -> dict[str, np.ndarray]:
    """The nine per-bar pressure components and ``pressure`` (NaN/inf → 0), each an array
    over the bars."""
    d = 1.0 if direction > 0 else -1.0
    same, opp = ("bid", "ask") if d > 0 else ("ask", "bid")
    comp = {}
    comp["obi0_lin"] = lin(d * _col(bars, "bar5s_state_obi0_eob"))
    comp["obi10_lin"] = lin(d * _col(bars, "bar5s_state_obi10_eob"))
    comp["cdi_lin"] = lin(d * _col(bars, "bar5s_state_cdi_p0_1_eob"))
    flow = _col(bars, "bar5s_flow_net_volnorm_bid_p0_1_sum", 0.0) - _col(bars, "bar5s_flow_net_volnorm_ask_p0_1_sum", 0.0)
    comp["flow_norm"] = np.clip(d * flow, -1.0, 1.0)
    sv = finite(_col(bars, "bar5s_trade_signed_vol_sum", 0.0))
    vol = finite(_col(bars, "bar5s_trade_vol_sum", 0.0))
    comp["trade_imbal"] = np.clip(d * sv / (vol + 1e-9), -1.0, 1.0)
    zs = finite(_col(bars, f"bar5s_wall_{same}_maxz_eob", 0.0))
    zo = finite(_col(bars, f"bar5s_wall_{opp}_maxz_eob", 0.0))
    comp["wall_support"] = np.clip((zs - zo) / 4.0, -1.0, 1.0)
    dist = _col(bars, f"bar5s_wall_{opp}_nearest_strong_dist_pts_eob") / tick
    dist = np.where(np.isfinite(dist), dist, 10.0)
    comp["wall_dist_support"] = 2.0 * np.clip(dist / 10.0, 0.0, 1.0) - 1.0
    gap = finite(_col(bars, f"bar5s_ladder_{opp}_gap_max_pts_eob", 0.0))
    spread = finite(_col(bars, "bar5s_state_spread_pts_eob", 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        gs = (np.log1p(gap / tick) + np.log1p(spread / tick)) / 4.0
    comp["gap_spread"] = 2.0 * np.clip(finite(gs), 0.0, 1.0) - 1.0
    cnt = np.clip(finite(_col(bars, "bar5s_trade_cnt_sum", 0.0)), 0.0, None)
    comp["trade_activity"] = np.tanh(np.log1p(cnt) / 3.0)
    comp = {k: finite(v) for k, v in comp.items()}
    book = (comp["obi0_lin"] + comp["obi10_lin"] + comp["cdi_lin"]) / 3.0
    comp["pressure"] = finite(
        (book + comp["flow_norm"] + comp["trade_imbal"] + comp["wall_support"] + comp["wall_dist_support"]
         + comp["gap_spread"] + comp["trade_activity"]) / 7.0
    )
    return comp


def candle_signature(
    bars: pd.DataFrame,
    level: float,
    direction: int,
    close: float,
    tick: float = 0.25,
    zone_pts: float = 1.0,
    pressure_tau: float = PRESSURE_TAU,
) -> np.ndarray:
    """The 47-number signature of one candle from its 5 s bars (in time order)."""
    d = 1.0 if direction > 0 else -1.0
    n = len(bars)
    u = finite(d * (bar_prices(bars) - level) / tick)
    last = _col(bars, "bar5s_trade_last_px")
    has_trade = np.isfinite(last)
    if "bar5s_trade_cnt_sum" in bars.columns:
        has_trade &= finite(_col(bars, "bar5s_trade_cnt_sum")) > 0
    in_zone = has_trade & (np.abs(np.where(has_trade, last, np.inf) - level) <= zone_pts)
    far = u > 0
    late = far[thirds(n)[2]] if n else far
    cs = d * (float(close) - level)
    desc = np.array([
        in_zone.mean() if n else 0.0,
        far.mean() if n else 0.0,
        late.mean() if late.size else 0.0,
        float(np.sign(cs)) if np.isfinite(cs) else 0.0,
    ])
    comp = pressure_components(bars, direction, tick)
    means = np.array([_mean(comp[c]) for c in COMPONENT_NAMES])
    return finite(np.concatenate([desc, stats17(u, 0.0), stats17(comp["pressure"], pressure_tau), means]))


def candle_signatures(
    bars: pd.DataFrame,
    candle_ts: Mapping[int, float] | pd.DataFrame,
    level: float,
    direction: int,
    candle_ns: int = 120 * 1_000_000_000,
    tick: float = 0.25,
    **kwargs,
) -> dict[int, np.ndarray]:
    """Signatures of several candles: ``candle_ts`` maps candle start (ns) → candle close
    price (or is a candles DataFrame restricted to the wanted candles). A candle's bars are
    those with ``candle_ts <= bar_ts < candle_ts + candle_ns``."""
    if isinstance(candle_ts, pd.DataFrame):
        candle_ts = dict(zip(candle_ts["candle_ts"].astype("int64"), candle_ts["close"]))
    bts = np.asarray(bars["bar_ts"], dtype=np.int64)
    order = np.argsort(bts, kind="stable")
    bars = bars.iloc[order]
    bts = bts[order]
    out = {}
    for t, c in candle_ts.items():
        i0, i1 = np.searchsorted(bts, [int(t), int(t) + candle_ns], side="left")
        out[int(t)] = candle_signature(bars.iloc[i0:i1], level, direction, c, tick=tick, **kwargs)
    return out
