"""Session levels (FEATURES.md §1) on hand-made mid series. UTC instants written by hand.

2025-03-07 is EST (UTC-5): 05:00 = 10:00 UTC, 09:30 = 14:30 UTC, 09:45 = 14:45 UTC.
2025-03-10 is EDT (UTC-4) after the 2025-03-09 change: 05:00 = 09:00 UTC, 09:30 = 13:30 UTC.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from mbolake.features.levels import LevelsAccumulator, available_levels, session_levels

NY = "America/New_York"
NAN = np.nan


def utc_ns(y, mo, d, h, mi=0, s=0, ns=0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000 + ns


def arrays(rows):
    ts, bid, ask = zip(*rows)
    return np.array(ts, dtype=np.int64), np.array(bid, dtype=float), np.array(ask, dtype=float)


EST_ROWS = [
    (utc_ns(2025, 3, 7, 9, 59), 7000.0, 7000.5),  # 04:59 EST: before pre-market
    (utc_ns(2025, 3, 7, 10, 0), 5990.0, 5990.25),  # 05:00:00 exactly: pre-market, mid 5990.125
    (utc_ns(2025, 3, 7, 12, 0), 6010.0, NAN),  # empty ask side: ignored
    (utc_ns(2025, 3, 7, 13, 0), 6005.5, 6005.75),  # pm high 6005.625
    (utc_ns(2025, 3, 7, 14, 0), 5985.0, 5985.25),  # pm low 5985.125
    (utc_ns(2025, 3, 7, 14, 29, 59, 999_999_999), 5999.0, 5999.25),  # last pm state
    (utc_ns(2025, 3, 7, 14, 30), 6001.0, 6001.25),  # 09:30:00: opening range, not pre-market
    (utc_ns(2025, 3, 7, 14, 35), NAN, 5000.0),  # empty bid side: ignored
    (utc_ns(2025, 3, 7, 14, 40), 6012.25, 6012.5),  # or high 6012.375
    (utc_ns(2025, 3, 7, 14, 44, 59), 5995.0, 5995.5),  # or low 5995.25
    (utc_ns(2025, 3, 7, 14, 45), 5900.0, 5900.25),  # 09:45:00: after the opening range
]


def test_premarket_and_opening_range_levels():
    ts, bid, ask = arrays(EST_ROWS)
    lv = session_levels(ts, bid, ask, dt.date(2025, 3, 7), NY)
    assert lv["pm_high"] == 6005.625 and lv["pm_low"] == 5985.125
    assert lv["or_high"] == 6012.375 and lv["or_low"] == 5995.25
    assert lv["pm_available_from"] == utc_ns(2025, 3, 7, 14, 30)
    assert lv["or_available_from"] == utc_ns(2025, 3, 7, 14, 45)
    assert lv["pm_n_states"] == 4 and lv["or_n_states"] == 3
    assert lv["levels_complete"] is True and lv["empty_windows"] == []
    assert lv["session_date"] == "2025-03-07"
    assert available_levels(lv) == {
        "pm_high": (6005.625, utc_ns(2025, 3, 7, 14, 30)),
        "pm_low": (5985.125, utc_ns(2025, 3, 7, 14, 30)),
        "or_high": (6012.375, utc_ns(2025, 3, 7, 14, 45)),
        "or_low": (5995.25, utc_ns(2025, 3, 7, 14, 45)),
    }


def test_input_order_does_not_matter():
    ts, bid, ask = arrays(EST_ROWS[::-1])
    lv = session_levels(ts, bid, ask, "2025-03-07", NY)
    assert (lv["pm_high"], lv["pm_low"], lv["or_high"], lv["or_low"]) == (6005.625, 5985.125, 6012.375, 5995.25)


def test_empty_opening_range_gives_null_levels():
    rows = [r for r in EST_ROWS if r[0] < utc_ns(2025, 3, 7, 14, 30)]
    lv = session_levels(*arrays(rows), dt.date(2025, 3, 7), NY)
    assert lv["pm_high"] == 6005.625 and lv["pm_low"] == 5985.125
    assert lv["or_high"] is None and lv["or_low"] is None
    assert lv["levels_complete"] is False and lv["empty_windows"] == ["or"]
    assert set(available_levels(lv)) == {"pm_high", "pm_low"}


def test_window_with_only_empty_side_states_is_empty():
    rows = [(utc_ns(2025, 3, 7, 11, 0), 6000.0, NAN), (utc_ns(2025, 3, 7, 14, 31), 6001.0, 6001.25)]
    lv = session_levels(*arrays(rows), dt.date(2025, 3, 7), NY)
    assert lv["pm_high"] is None and lv["pm_low"] is None and lv["empty_windows"] == ["pm"]
    assert lv["or_high"] == lv["or_low"] == 6001.125
    assert lv["levels_complete"] is False


def test_no_data_at_all():
    empty = np.zeros(0)
    lv = session_levels(empty.astype(np.int64), empty, empty, dt.date(2025, 3, 7), NY)
    assert lv["empty_windows"] == ["pm", "or"] and lv["levels_complete"] is False
    assert all(lv[k] is None for k in ("pm_high", "pm_low", "or_high", "or_low"))
    assert available_levels(lv) == {}


def test_dst_date_uses_summer_offsets():
    # 2025-03-10 (EDT): 05:00 = 09:00 UTC, 09:30 = 13:30 UTC, 09:45 = 13:45 UTC.
    rows = [
        (utc_ns(2025, 3, 10, 8, 59), 7000.0, 7000.25),  # 04:59 EDT: outside (inside if EST were used)
        (utc_ns(2025, 3, 10, 9, 0), 5800.0, 5800.5),  # 05:00 EDT: pm, 5800.25
        (utc_ns(2025, 3, 10, 13, 29), 5810.0, 5810.25),  # 09:29 EDT: pm, 5810.125
        (utc_ns(2025, 3, 10, 13, 30), 5820.0, 5820.25),  # 09:30 EDT: or, 5820.125
        (utc_ns(2025, 3, 10, 13, 44), 5815.0, 5815.5),  # 09:44 EDT: or, 5815.25
        (utc_ns(2025, 3, 10, 13, 45), 5900.0, 5900.25),  # 09:45 EDT: outside
        (utc_ns(2025, 3, 10, 14, 40), 5700.0, 5700.25),  # 10:40 EDT (09:40 EST): outside
    ]
    lv = session_levels(*arrays(rows), dt.date(2025, 3, 10), NY)
    assert (lv["pm_high"], lv["pm_low"]) == (5810.125, 5800.25)
    assert (lv["or_high"], lv["or_low"]) == (5820.125, 5815.25)
    assert lv["pm_available_from"] == utc_ns(2025, 3, 10, 13, 30)
    assert lv["or_available_from"] == utc_ns(2025, 3, 10, 13, 45)
    assert lv["pm_start"] == utc_ns(2025, 3, 10, 9, 0)


def test_equity_premarket_starts_at_four():
    rows = [(utc_ns(2025, 3, 7, 9, 0), 250.0, 250.02)]  # 04:00 EST
    assert session_levels(*arrays(rows), dt.date(2025, 3, 7), NY)["pm_high"] is None
    lv = session_levels(*arrays(rows), dt.date(2025, 3, 7), NY, premarket_start=(4, 0))
    assert lv["pm_high"] == lv["pm_low"] == 250.01


def test_accumulator_chunked_equals_whole():
    ts, bid, ask = arrays(EST_ROWS)
    whole = session_levels(ts, bid, ask, dt.date(2025, 3, 7), NY)
    acc = LevelsAccumulator(dt.date(2025, 3, 7), NY)
    for a, b in ((0, 3), (3, 4), (4, 4), (4, 11)):
        acc.apply(ts[a:b], bid[a:b], ask[a:b])
        acc = LevelsAccumulator.from_state_bytes(acc.state_bytes())
    assert acc.result() == whole
    empty = LevelsAccumulator("2025-03-07", NY).result()
    assert empty["levels_complete"] is False and empty["pm_high"] is None
