"""Episode labels (FEATURES.md §4 "Label", §6; ``gold.labels``). Kernel: numpy/pandas only.

Over the look-forward candles j = 1..6 after the confirm candle, with L the level and
``dir`` the approach direction:

- close basis (default): ``up_j = down_j = dir·(C_j - L)``;
  hl basis: ``up_j = H_j - L``, ``down_j = Lo_j - L`` for dir +1 and ``up_j = L - Lo_j``,
  ``down_j = L - H_j`` for dir -1 (the extreme toward the break side for up, the extreme
  toward the reject side for down).
- BREAK if the first j with ``up_j >= 2.0`` comes before the first j with
  ``down_j <= -2.0``; REJECT the other way round; the same j → CHOP with
  ``first_hit_side = "tie"``; neither → CHOP, ``first_hit_side = "none"``.

Choices where the spec is silent or ambiguous:

- ``outcome_score``: BREAK → ``max_j up_j``, REJECT → ``min_j down_j`` over all available
  look-forward candles (not only up to the first hit); CHOP (tie included) → 0.
- ``max_signed_dist = max_j up_j``, ``min_signed_dist = min_j down_j`` (basis-dependent).
- ``first_hit_side`` ∈ {"break", "reject", "tie", "none"}; ``first_hit_offset_bars`` = j
  (1..6, candles after the confirm candle) of the first hit, -1 when none. ``tie`` is also
  given as a boolean column.
- ``mae_pts`` / ``mfe_pts``: always from the candles' high / low (whatever the basis),
  measured from the confirm candle's close (the price when the model is asked, at
  ``vector_time``), as non-negative magnitudes oriented by direction (**fix**):
  dir +1: ``mfe = max(0, max_j H_j - C0)``, ``mae = max(0, C0 - min_j Lo_j)``;
  dir -1: ``mfe = max(0, C0 - min_j Lo_j)``, ``mae = max(0, max_j H_j - C0)``.
  "Favourable" = the approach (break) direction.
- ``chop_flag``: the confirm candle reached the trigger candle's open
  (dir +1: ``Lo_confirm <= O_trigger``; dir -1: ``H_confirm >= O_trigger``), cleared when
  the first look-forward close is ≥ 10 points beyond the confirm close in the approach
  direction (``dir·(C_1 - C_confirm) >= 10``).
- ``failed_break_flag``: ``dir·(C_confirm - L) <= -0.5``.
- ``both_sides_hit_flag``: some ``up_j >= 2`` and some ``down_j <= -2`` (any candles).
- ``label_complete`` = all 6 look-forward candles exist (within the window); a shortened
  look-forward is still labelled on what exists. Without a confirm candle the outcome is
  ``None`` and ``label_complete`` false.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

ES_TICK = 0.25

LABEL_COLUMNS = [
    "outcome", "tie", "outcome_score", "max_signed_dist", "min_signed_dist", "first_hit_side",
    "first_hit_offset_bars", "mae_pts", "mfe_pts", "chop_flag", "failed_break_flag",
    "both_sides_hit_flag", "n_lookforward", "label_complete", "label_basis",
]


@dataclass(frozen=True)
class LabelParams:
    threshold_pts: float = 2.0
    horizon: int = 6
    chop_clear_pts: float = 10.0
    failed_break_pts: float = 0.5

    @classmethod
    def for_tick(cls, tick_size: float, **overrides) -> "LabelParams":
        f = tick_size / ES_TICK
        b = cls()
        kw = dict(threshold_pts=b.threshold_pts * f, chop_clear_pts=b.chop_clear_pts * f,
                  failed_break_pts=b.failed_break_pts * f)
        kw.update(overrides)
        return cls(**kw)


def _empty_label(basis: str, n: int = 0) -> dict[str, Any]:
    return {
        "outcome": None, "tie": False, "outcome_score": 0.0, "max_signed_dist": np.nan,
        "min_signed_dist": np.nan, "first_hit_side": "none", "first_hit_offset_bars": -1,
        "mae_pts": np.nan, "mfe_pts": np.nan, "chop_flag": False, "failed_break_flag": False,
        "both_sides_hit_flag": False, "n_lookforward": n, "label_complete": False, "label_basis": basis,
    }


def label_episode(
    direction: int,
    level: float,
    trigger_open: float,
    confirm_ohlc,
    lookforward_ohlc,
    basis: str = "close",
    params: LabelParams | None = None,
) -> dict[str, Any]:
    """Label of one episode. ``confirm_ohlc``: (O, H, L, C) of the confirm candle;
    ``lookforward_ohlc``: array (m, 4) of the look-forward candles j = 1..m (m ≤ horizon;
    m < horizon → ``label_complete = False``). Returns a dict with :data:`LABEL_COLUMNS`."""
    p = params or LabelParams()
    if basis not in ("close", "hl"):
        raise ValueError(f"basis must be 'close' or 'hl', not {basis!r}")
    d = 1 if direction > 0 else -1
    L = float(level)
    lf = np.asarray(lookforward_ohlc, dtype=np.float64).reshape(-1, 4)[: p.horizon]
    m = lf.shape[0]
    if confirm_ohlc is None:
        return _empty_label(basis, m)
    co, ch, cl, cc = (float(x) for x in confirm_ohlc)
    out = _empty_label(basis, m)
    out["label_complete"] = m == p.horizon
    out["failed_break_flag"] = bool(d * (cc - L) <= -p.failed_break_pts)
    retraced = (cl <= trigger_open) if d > 0 else (ch >= trigger_open)
    if m == 0:
        out["outcome"] = "CHOP"
        out["chop_flag"] = bool(retraced)
        return out
    H, Lo, C = lf[:, 1], lf[:, 2], lf[:, 3]
    if basis == "close":
        up = down = d * (C - L)
    elif d > 0:
        up, down = H - L, Lo - L
    else:
        up, down = L - Lo, L - H
    hit_up = np.flatnonzero(up >= p.threshold_pts)
    hit_dn = np.flatnonzero(down <= -p.threshold_pts)
    ju = int(hit_up[0]) if hit_up.size else None
    jd = int(hit_dn[0]) if hit_dn.size else None
    if ju is not None and (jd is None or ju < jd):
        outcome, side, j, score = "BREAK", "break", ju, float(up.max())
    elif jd is not None and (ju is None or jd < ju):
        outcome, side, j, score = "REJECT", "reject", jd, float(down.min())
    elif ju is not None:  # same candle
        outcome, side, j, score = "CHOP", "tie", ju, 0.0
    else:
        outcome, side, j, score = "CHOP", "none", None, 0.0
    fav = (H.max() - cc) if d > 0 else (cc - Lo.min())
    adv = (cc - Lo.min()) if d > 0 else (H.max() - cc)
    out.update(
        outcome=outcome,
        tie=side == "tie",
        outcome_score=score,
        max_signed_dist=float(up.max()),
        min_signed_dist=float(down.min()),
        first_hit_side=side,
        first_hit_offset_bars=-1 if j is None else j + 1,
        mfe_pts=float(max(0.0, fav)),
        mae_pts=float(max(0.0, adv)),
        chop_flag=bool(retraced and not d * (C[0] - cc) >= p.chop_clear_pts),
        both_sides_hit_flag=bool(hit_up.size and hit_dn.size),
    )
    return out


def label_episodes(
    episodes: pd.DataFrame,
    candles: pd.DataFrame,
    basis: str = "close",
    params: LabelParams | None = None,
) -> pd.DataFrame:
    """Labels of approach episodes (from :mod:`mbolake.features.approach`) given the
    session's candles (``candle_ts``, ``open``, ``high``, ``low``, ``close``; the candles of
    the window only: a look-forward candle missing from ``candles`` counts as cut short).
    Returns ``episode_id`` + :data:`LABEL_COLUMNS`, one row per episode."""
    p = params or LabelParams()
    by_ts: dict[int, tuple] = {
        int(t): (o, h, l, c)
        for t, o, h, l, c in zip(candles["candle_ts"], candles["open"], candles["high"], candles["low"], candles["close"])
    }
    rows = []
    for ep in episodes.to_dict("records"):
        rows.append({"episode_id": ep["episode_id"], **label_for_episode(ep, by_ts, basis, p)})
    return pd.DataFrame(rows, columns=["episode_id", *LABEL_COLUMNS])


def label_for_episode(ep: Mapping[str, Any], by_ts: Mapping[int, tuple], basis: str = "close",
                      params: LabelParams | None = None) -> dict[str, Any]:
    p = params or LabelParams()
    cn = int(ep["confirm_ts"]) - int(ep["trigger_ts"])
    trig = by_ts.get(int(ep["trigger_ts"]))
    conf = by_ts.get(int(ep["confirm_ts"]))
    lf = []
    for j in range(1, p.horizon + 1):
        c = by_ts.get(int(ep["confirm_ts"]) + j * cn)
        if c is None:
            break
        lf.append(c)
    return label_episode(
        int(ep["direction"]), float(ep["level_price"]), np.nan if trig is None else float(trig[0]),
        conf, np.array(lf, dtype=np.float64).reshape(-1, 4), basis=basis, params=p,
    )
