"""2-minute candles from trade prints (FEATURES.md §4 "Candles")."""
from __future__ import annotations

import numpy as np
import pytest

from mbolake.features.candles import CANDLE_COLUMNS, build_candles

S = 1_000_000_000
T0 = 1_741_354_200 * S  # 2025-03-07 13:30 UTC = 08:30 EST, on the 2-minute grid


def test_ohlc_from_trades_and_mid_for_empty_candles():
    trade_ts = np.array([T0 + 1 * S, T0 + 30 * S, T0 + 31 * S, T0 + 119 * S,  # candle 0
                         T0 + 120 * S,  # exactly the start of candle 1
                         T0 + 400 * S])  # candle 3
    trade_px = np.array([6000.0, 6003.5, 5998.25, 6001.0, 6002.0, 5990.0])
    mid_ts = np.array([T0 - 10 * S, T0 + 200 * S, T0 + 240 * S, T0 + 250 * S])
    mid_px = np.array([5999.875, 6004.125, np.nan, 6010.0])  # NaN = an empty side: skipped
    c = build_candles(trade_ts, trade_px, mid_ts, mid_px, T0, T0 + 480 * S)
    assert list(c.columns) == CANDLE_COLUMNS
    assert c["candle_ts"].tolist() == [T0, T0 + 120 * S, T0 + 240 * S, T0 + 360 * S]
    assert c["close_ts"].tolist() == [T0 + 120 * S, T0 + 240 * S, T0 + 360 * S, T0 + 480 * S]
    assert c.iloc[0][["open", "high", "low", "close"]].tolist() == [6000.0, 6003.5, 5998.25, 6001.0]
    assert c.iloc[1][["open", "high", "low", "close"]].tolist() == [6002.0] * 4
    # candle 2 (no trades): the mid standing at its start (set at T0+200 s; the NaN at the
    # start itself is an empty side and is skipped)
    assert c.iloc[2][["open", "high", "low", "close"]].tolist() == [6004.125] * 4
    assert c["has_trades"].tolist() == [True, True, False, True]
    assert c["trade_cnt"].tolist() == [4, 1, 0, 1]


def test_trades_outside_window_ignored_and_no_mid_gives_nan():
    c = build_candles(np.array([T0 - S, T0 + 240 * S]), np.array([1.0, 2.0]), np.array([], dtype=np.int64),
                      np.array([]), T0, T0 + 240 * S)
    assert len(c) == 2 and not c["has_trades"].any()
    assert np.isnan(c["close"]).all()


def test_tied_timestamps_keep_file_order():
    c = build_candles(np.array([T0 + S, T0 + S, T0 + S]), np.array([5.0, 7.0, 6.0]), np.array([T0]), np.array([1.0]),
                      T0, T0 + 120 * S)
    assert c.iloc[0][["open", "high", "low", "close"]].tolist() == [5.0, 7.0, 5.0, 6.0]


def test_full_window_has_120_candles():
    c = build_candles(np.array([], dtype=np.int64), np.array([]), np.array([T0]), np.array([6000.0]),
                      T0, T0 + 4 * 3600 * S)
    assert len(c) == 120 and (c["close"] == 6000.0).all()


@pytest.mark.parametrize("start", [T0 + 7 * S])
def test_start_is_floored_to_the_grid(start):
    c = build_candles(np.array([T0 + 2 * S]), np.array([1.0]), np.array([T0]), np.array([0.0]), start, T0 + 120 * S)
    assert c["candle_ts"].tolist() == [T0]
