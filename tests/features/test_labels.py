"""Episode labels (FEATURES.md §4 "Label"), hand-computed. Look-forward candles here have
H = C + 0.5 and Lo = C - 0.5 unless written out."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mbolake.features.approach import detect_episodes
from mbolake.features.labels import LABEL_COLUMNS, LabelParams, label_episode, label_episodes

L = 6000.0


def lf(closes, wick=0.5):
    c = np.asarray(closes, dtype=float)
    return np.c_[c, c + wick, c - wick, c]


def test_break_from_below():
    closes = [6001.0, 6002.25, 5997.5, 6003.0, 6000.0, 6000.0]
    r = label_episode(+1, L, trigger_open=5999.5, confirm_ohlc=(6000.5, 6001.5, 6000.25, 6001.0),
                      lookforward_ohlc=lf(closes))
    assert set(r) == set(LABEL_COLUMNS)
    assert r["outcome"] == "BREAK" and r["first_hit_side"] == "break" and r["tie"] is False
    assert r["first_hit_offset_bars"] == 2  # 6002.25 - 6000 = 2.25 >= 2 at j = 2
    assert r["outcome_score"] == 3.0  # max up over the look-forward (j = 4)
    assert (r["max_signed_dist"], r["min_signed_dist"]) == (3.0, -2.5)
    assert r["both_sides_hit_flag"] is True  # 5997.5 at j = 3
    assert r["mfe_pts"] == 2.5  # max H 6003.5 - confirm close 6001.0
    assert r["mae_pts"] == 4.0  # 6001.0 - min Lo 5997.0
    assert r["chop_flag"] is False  # confirm low 6000.25 > trigger open 5999.5
    assert r["failed_break_flag"] is False
    assert r["label_complete"] is True and r["n_lookforward"] == 6 and r["label_basis"] == "close"


def test_reject_from_above_with_oriented_mae_mfe():
    # dir -1: up_j = L - C_j; reject = price back above the level
    closes = [6000.5, 6002.0, 5998.25, 6001.0, 6001.0, 6001.0]
    r = label_episode(-1, L, trigger_open=6000.75, confirm_ohlc=(5999.75, 6000.25, 5999.0, 5999.5),
                      lookforward_ohlc=lf(closes))
    assert r["outcome"] == "REJECT" and r["first_hit_side"] == "reject"
    assert r["first_hit_offset_bars"] == 2  # down_2 = 6000 - 6002 = -2.0 <= -2
    assert r["outcome_score"] == -2.0
    assert (r["max_signed_dist"], r["min_signed_dist"]) == (1.75, -2.0)  # up_3 = 6000 - 5998.25
    # favourable = down for dir -1: confirm close 5999.5 - min Lo (5998.25 - 0.5) = 1.75
    assert r["mfe_pts"] == 1.75
    # adverse = up for dir -1: max H (6002.0 + 0.5) - 5999.5 = 3.0
    assert r["mae_pts"] == 3.0
    assert r["both_sides_hit_flag"] is False
    assert r["chop_flag"] is False  # confirm high 6000.25 < trigger open 6000.75
    assert r["failed_break_flag"] is False  # -(5999.5 - 6000) = 0.5 > -0.5


def test_chop_neither_side():
    r = label_episode(+1, L, 5999.0, (6000.0, 6001.0, 5999.5, 6000.5), lf([6001.5, 5998.5, 6000, 6001.75, 6000, 5999]))
    assert r["outcome"] == "CHOP" and r["first_hit_side"] == "none" and r["first_hit_offset_bars"] == -1
    assert r["outcome_score"] == 0.0 and r["both_sides_hit_flag"] is False
    assert (r["max_signed_dist"], r["min_signed_dist"]) == (1.75, -1.5)


def test_same_candle_tie_on_hl_basis():
    # j = 1 spans both thresholds: H - L = 2.5, Lo - L = -2.25
    look = np.array([[6000.0, 6002.5, 5997.75, 6000.25]] + lf([6005.0] * 5).tolist())
    r = label_episode(+1, L, 5999.0, (6000.0, 6001.0, 5999.5, 6000.5), look, basis="hl")
    assert r["outcome"] == "CHOP" and r["first_hit_side"] == "tie" and r["tie"] is True
    assert r["first_hit_offset_bars"] == 1 and r["outcome_score"] == 0.0
    assert r["both_sides_hit_flag"] is True and r["label_basis"] == "hl"
    # the close basis sees 0.25 then a break at j = 2 (6005 - 6000 = 5)
    c = label_episode(+1, L, 5999.0, (6000.0, 6001.0, 5999.5, 6000.5), look)
    assert c["outcome"] == "BREAK" and c["first_hit_offset_bars"] == 2 and c["outcome_score"] == 5.0


def test_hl_basis_from_above_uses_low_for_up():
    # dir -1: up_j = L - Lo_j, down_j = L - H_j; j = 1: Lo 5997.75 -> up 2.25
    look = np.array([[5999.0, 5999.5, 5997.75, 5999.0]] * 6)
    r = label_episode(-1, L, 6001.0, (6000.0, 6000.5, 5999.0, 5999.5), look, basis="hl")
    assert r["outcome"] == "BREAK" and r["outcome_score"] == 2.25
    assert r["min_signed_dist"] == 0.5
    assert label_episode(-1, L, 6001.0, (6000.0, 6000.5, 5999.0, 5999.5), look)["outcome"] == "CHOP"


def test_chop_and_failed_break_flags():
    # dir +1: confirm low 5998.75 reaches the trigger open 5999.0; confirm close 5999.5 is
    # 0.5 back below the level
    conf = (6000.5, 6001.0, 5998.75, 5999.5)
    r = label_episode(+1, L, 5999.0, conf, lf([6000.0] * 6))
    assert r["chop_flag"] is True and r["failed_break_flag"] is True
    # cleared when the first look-forward close runs >= 10 points beyond the confirm close
    r = label_episode(+1, L, 5999.0, conf, lf([6009.5] + [6000.0] * 5))
    assert r["chop_flag"] is False
    r = label_episode(+1, L, 5999.0, conf, lf([6009.25] + [6000.0] * 5))
    assert r["chop_flag"] is True
    # dir -1 mirror: confirm high 6001.0 >= trigger open 6000.75
    r = label_episode(-1, L, 6000.75, (5999.5, 6001.0, 5999.0, 6000.5), lf([6000.0] * 6))
    assert r["chop_flag"] is True and r["failed_break_flag"] is True


def test_params_and_basis_checked():
    with pytest.raises(ValueError, match="basis"):
        label_episode(1, L, 1.0, (1, 1, 1, 1), lf([1.0]), basis="mid")
    p = LabelParams.for_tick(0.01)
    assert p.threshold_pts == pytest.approx(0.08) and p.horizon == 6


def test_lookforward_cut_by_window_end_is_incomplete():
    day = dt.date(2025, 3, 7)
    t0 = 1_741_354_200 * 1_000_000_000
    n = 120
    close = np.full(n, 5994.0)
    high = np.full(n, 5995.0)
    high[116], close[116] = 6001.0, 6000.5  # trigger 12:22, confirm 12:24, look-forward 12:26, 12:28
    close[118] = 6002.5  # first look-forward candle: up 2.5

    candles = pd.DataFrame({"candle_ts": t0 + np.arange(n) * 120_000_000_000, "open": close, "high": high,
                            "low": close - 1.0, "close": close})
    ep = detect_episodes(candles, "ESH5", day, {"pm_high": (L, t0 + 3600 * 10**9)})
    assert ep["trigger_idx"].tolist() == [116] and not ep.iloc[0]["lookforward_complete"]
    lab = label_episodes(ep, candles)
    row = lab.iloc[0]
    assert row["episode_id"] == ep.iloc[0]["episode_id"]
    assert row["n_lookforward"] == 2 and not row["label_complete"]
    assert row["outcome"] == "BREAK" and row["first_hit_offset_bars"] == 1  # labelled on what exists
    # the same episode with the whole look-forward available is complete
    more = pd.DataFrame({"candle_ts": t0 + np.arange(n, n + 6) * 120_000_000_000, "open": 6000.0, "high": 6000.0,
                         "low": 6000.0, "close": 6000.0})
    full = label_episodes(ep, pd.concat([candles, more], ignore_index=True)).iloc[0]
    assert full["n_lookforward"] == 6 and full["label_complete"]


def test_missing_confirm_candle():
    r = label_episode(1, L, 5999.0, None, np.zeros((0, 4)))
    assert r["outcome"] is None and r["label_complete"] is False
