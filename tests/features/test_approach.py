"""Approach episodes (FEATURES.md §4 trigger rule) on hand-made 2-minute candles.

Session 2025-03-07 (EST, UTC-5): the window starts 08:30 EST = 13:30 UTC (candle index 0);
candle k starts 13:30 UTC + 2k minutes, so 09:30 = index 30, 09:46 = index 38.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbolake.features.approach import EPISODE_COLUMNS, ApproachDetector, ApproachParams, detect_episodes

NY = "America/New_York"
DAY = dt.date(2025, 3, 7)
MIN = 60_000_000_000
T0 = int(dt.datetime(2025, 3, 7, 13, 30, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000
L = 6000.0
AT_0930 = T0 + 60 * MIN
AT_0945 = T0 + 75 * MIN

BELOW = (5995.0, 5993.0, 5994.0)  # (H, Lo, C): fully below L (H < L - 0.01), close 6 below
ABOVE = (6006.0, 6004.0, 6005.0)
UP = (6001.0, 5995.0, 6000.5)  # crosses L from below (H >= L + 0.01)
DOWN = (6005.0, 5999.0, 5999.5)  # crosses L from above (Lo <= L - 0.01)


def ts(k: int) -> int:
    return T0 + 2 * k * MIN


def candles(spec: dict[int, tuple], n: int = 120, default=BELOW) -> pd.DataFrame:
    rows = [spec.get(k, default) for k in range(n)]
    h, lo, c = (np.array(x, dtype=float) for x in zip(*rows))
    return pd.DataFrame({"candle_ts": [ts(k) for k in range(n)], "open": c, "high": h, "low": lo, "close": c,
                         "has_trades": True})


def pm_high(level=L, avail=AT_0930):
    return {"pm_high": (level, avail)}


def run(spec, levels=None, default=BELOW, **kw):
    return detect_episodes(candles(spec, default=default), "ESH5", DAY, levels or pm_high(), timezone=NY, **kw)


def test_episode_from_below_and_from_above_in_one_session():
    # 30, 31 below; 32 crosses up -> trigger +1. 33, 34 above; 35 crosses down -> trigger -1.
    spec = {32: UP, 33: ABOVE, 34: ABOVE, 35: DOWN}
    ep = run(spec)
    assert list(ep.columns) == EPISODE_COLUMNS
    assert ep["direction"].tolist() == [1, -1]
    assert ep["trigger_idx"].tolist() == [32, 35]
    up, down = ep.iloc[0], ep.iloc[1]
    assert up["trigger_ts"] == ts(32) == T0 + 64 * MIN  # 09:34 EST
    assert up["confirm_idx"] == 33 and up["confirm_ts"] == ts(33)
    assert up["vector_time"] == ts(34)  # confirm candle close, 09:38 EST
    assert up["lookback_start_idx"] == 28 and up["lookback_start_ts"] == ts(28)
    assert (up["lookforward_start_idx"], up["lookforward_end_idx"]) == (34, 39)
    assert up["lookforward_end_ts"] == ts(40)
    assert up["episode_id"] == f"ESH5|2025-03-07|pm_high|+1|{ts(32)}"
    assert down["episode_id"] == f"ESH5|2025-03-07|pm_high|-1|{ts(35)}"
    assert bool(up["confirm_in_window"]) and bool(up["lookforward_complete"])
    assert up["level_price"] == L and up["trigger_seq"] == 1 and down["trigger_seq"] == 2


def test_needs_two_candles_on_side_and_previous_on_side():
    # only one candle on side before the cross (31 touches the zone: H = L exactly)
    touch = (6000.0, 5995.0, 5996.0)
    assert run({31: touch, 32: UP}).empty
    assert run({30: touch, 32: UP}).empty  # only 31 on side
    assert run({29: touch, 32: UP})["trigger_idx"].tolist() == [32]  # 29 is before available_from anyway
    assert run({30: UP, 31: BELOW, 32: UP}).empty  # n_side before 32 is 1


def test_cooldown_three_candles():
    # 32 triggers; 33 closes 1.1 below L (reset); 35 crosses 3 candles after -> blocked;
    # 38 crosses 6 candles after the trigger -> triggers.
    spec = {32: UP, 33: (5995.0, 5993.0, 5998.9), 35: UP, 38: UP}
    assert run(spec)["trigger_idx"].tolist() == [32, 38]
    # with a 2-candle cooldown the cross at 35 would trigger
    assert run(spec, params=ApproachParams(cooldown_candles=2))["trigger_idx"].tolist() == [32, 35, 38]


def test_reset_needs_close_one_point_back():
    near = (5999.5, 5999.0, 5999.25)  # fully below, but the close is only 0.75 below L
    spec = {32: UP, 33: near, 34: near, 35: near, 36: near, 37: UP, 38: near,
            39: (5999.5, 5998.5, 5999.0), 40: UP}  # 39 closes exactly 1.0 below -> reset
    assert run(spec, default=near)["trigger_idx"].tolist() == [32, 40]
    # without the reset at 39 nothing after 32 can trigger
    spec[39] = near
    assert run(spec, default=near)["trigger_idx"].tolist() == [32]


def test_ten_trigger_cap_per_level():
    # crosses every 4 candles from 32 (three below candles closing 6 below in between):
    # 22 would-be triggers in 09:34..12:26, only the first 10 count.
    spec = {k: UP for k in range(32, 120, 4)}
    ep = run(spec)
    assert ep["trigger_idx"].tolist() == list(range(32, 72, 4))
    assert ep["trigger_seq"].tolist() == list(range(1, 11))
    assert len(run(spec, params=ApproachParams(max_triggers=3))) == 3


def test_cap_counts_both_directions():
    # alternate: below, below, up-cross, above, above, down-cross, ...  (period 6)
    spec = {}
    for base in range(30, 120, 6):
        spec.update({base: BELOW, base + 1: BELOW, base + 2: UP, base + 3: ABOVE, base + 4: ABOVE, base + 5: DOWN})
    ep = run(spec)
    assert len(ep) == 10
    assert ep["direction"].tolist() == [1, -1] * 5
    assert ep["trigger_idx"].tolist() == [32, 35, 38, 41, 44, 47, 50, 53, 56, 59]


def test_no_opening_range_trigger_before_0945():
    levels = {"or_high": (L, AT_0945)}
    spec = {32: UP, 38: UP, 42: UP}  # 09:34, 09:46, 09:54
    # candles are used from 09:46 (index 38, the first starting at/after 09:45): 38 has no
    # on-side history yet; 40, 41 below then 42 crosses.
    assert run(spec, levels=levels)["trigger_idx"].tolist() == [42]
    # the same candles against a level available from 09:30 trigger at 09:34 and 09:46 too
    assert run(spec, levels={"or_high": (L, AT_0930)})["trigger_idx"].tolist() == [32, 38, 42]


def test_triggers_only_from_0930():
    early = {"pm_high": (L, T0)}  # level usable from 08:30
    spec = {2: UP, 29: UP, 30: BELOW, 31: BELOW, 32: UP}
    assert run(spec, levels=early)["trigger_idx"].tolist() == [32]


def test_null_levels_are_skipped():
    det = ApproachDetector("ESH5", DAY, {"pm_high": 6000.0, "pm_low": 5990.0, "pm_available_from": AT_0930,
                                         "or_high": None, "or_low": None, "or_available_from": AT_0945},
                           timezone=NY)
    assert det.skipped_levels == ["or_high", "or_low"]
    assert det.apply(candles({32: UP}))["level_type"].tolist() == ["pm_high"]


def test_confirm_and_lookforward_outside_window():
    # trigger at 116 (12:22): confirm 117 is in the window, the look-forward (118..123) is cut
    ep = run({116: UP})
    assert ep["trigger_idx"].tolist() == [116]
    e = ep.iloc[0]
    assert bool(e["confirm_in_window"]) and not bool(e["lookforward_complete"])
    # trigger at 119 (12:28): the confirm candle would start at 12:30, outside the window
    ep = run({119: UP})
    assert ep["trigger_idx"].tolist() == [119] and not bool(ep.iloc[0]["confirm_in_window"])


def test_gaps_and_disorder_are_rejected():
    det = ApproachDetector("ESH5", DAY, pm_high(), timezone=NY)
    c = candles({})
    det.apply(c.iloc[:5])
    with pytest.raises(ValueError, match="contiguous"):
        det.apply(c.iloc[6:8])
    with pytest.raises(ValueError, match="grid"):
        det.apply(c.iloc[5:6].assign(candle_ts=ts(5) + 1))


def test_state_format_checked():
    with pytest.raises(ValueError, match="approach detector state"):
        ApproachDetector.from_state_bytes(b'{"format": "other"}')


# ---- chunked equals whole ----
def random_session(seed: int) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    n = 120
    close = 6000.0 + np.cumsum(rng.choice([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0], size=n))
    opn = np.r_[close[0], close[:-1]]
    high = np.maximum(opn, close) + rng.choice([0.0, 0.25, 0.5, 1.0], size=n)
    low = np.minimum(opn, close) - rng.choice([0.0, 0.25, 0.5, 1.0], size=n)
    c = pd.DataFrame({"candle_ts": [ts(k) for k in range(n)], "open": opn, "high": high, "low": low,
                      "close": close, "has_trades": True})
    mid = close[30]
    levels = {"pm_high": (mid + 2.0, AT_0930), "pm_low": (mid - 2.0, AT_0930),
              "or_high": (close[37] + 1.0, AT_0945), "or_low": (close[37] - 1.0, AT_0945)}
    return c, levels


def test_random_sessions_have_episodes():
    total = sum(len(detect_episodes(*random_session(s)[:1], "ESH5", DAY, random_session(s)[1], timezone=NY))
                for s in range(5))
    assert total > 5


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), cuts=st.lists(st.integers(0, 120), max_size=6))
def test_chunked_equals_whole_with_state_round_trips(seed, cuts):
    c, levels = random_session(seed)
    whole = detect_episodes(c, "ESH5", DAY, levels, timezone=NY)
    det = ApproachDetector("ESH5", DAY, levels, timezone=NY)
    parts = []
    bounds = sorted({0, 120, *cuts})
    for a, b in zip(bounds[:-1], bounds[1:]):
        new = det.apply(c.iloc[a:b])
        if len(new):
            parts.append(new)
        det = ApproachDetector.from_state_bytes(det.state_bytes())
    if not parts:
        assert whole.empty
    else:
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True)
    assert det.state_bytes() == ApproachDetector.from_state_bytes(det.state_bytes()).state_bytes()
