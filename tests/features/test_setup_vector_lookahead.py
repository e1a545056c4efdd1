"""No look-ahead, as a property: perturbing every trade, book mid and 5 s bar at or after an
episode's ``vector_time`` leaves that episode (and every episode asked no later) with the
same setup vector and feature_hash. The whole kernel chain runs: session levels → candles →
approach detector → signatures → setup vector."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mbolake.features.approach import detect_episodes
from mbolake.features.candles import build_candles
from mbolake.features.levels import session_levels
from mbolake.features.setup_vector import episode_setup_vector

NY = "America/New_York"
DAY = dt.date(2025, 3, 7)
S = 1_000_000_000
T0 = 1_741_354_200 * S  # 08:30 EST
N_BARS = 2880
BAR_TS = T0 + np.arange(N_BARS, dtype=np.int64) * 5 * S

BOOK_COLUMNS = {
    "bar5s_state_obi0_eob": (-1, 1), "bar5s_state_obi10_eob": (-1, 1), "bar5s_state_cdi_p0_1_eob": (-1, 1),
    "bar5s_flow_net_volnorm_bid_p0_1_sum": (-2, 2), "bar5s_flow_net_volnorm_ask_p0_1_sum": (-2, 2),
    "bar5s_wall_bid_maxz_eob": (0, 3), "bar5s_wall_ask_maxz_eob": (0, 3),
    "bar5s_wall_bid_nearest_strong_dist_pts_eob": (0, 4), "bar5s_wall_ask_nearest_strong_dist_pts_eob": (0, 4),
    "bar5s_ladder_bid_gap_max_pts_eob": (0.25, 2), "bar5s_ladder_ask_gap_max_pts_eob": (0.25, 2),
}


def make_session(seed: int):
    rng = np.random.default_rng(seed)
    mid = 6000.0 + np.cumsum(rng.choice([-0.5, -0.25, 0.0, 0.25, 0.5], size=N_BARS))
    n_tr = rng.choice([0, 0, 1, 2, 3], size=N_BARS)
    bar_of = np.repeat(np.arange(N_BARS), n_tr)
    trade_ts = BAR_TS[bar_of] + np.sort(rng.integers(0, 5 * S, size=bar_of.size))
    trade_ts = np.sort(trade_ts)
    bar_of = (trade_ts - T0) // (5 * S)
    trade_px = mid[bar_of] + rng.choice([-0.25, 0.0, 0.25], size=bar_of.size)
    trades = pd.DataFrame({"ts": trade_ts, "px": trade_px, "size": rng.integers(1, 20, size=bar_of.size),
                           "side": rng.choice([-1, 1], size=bar_of.size)})
    mids = pd.DataFrame({"ts": BAR_TS + rng.integers(0, 5 * S, size=N_BARS), "mid": mid})
    bars = make_bars(rng, trades, mids)
    return trades, mids, bars


def make_bars(rng, trades: pd.DataFrame, mids: pd.DataFrame) -> pd.DataFrame:
    """5 s bars consistent with the trades (count, volumes, last price) plus random book columns."""
    k = (trades["ts"].to_numpy() - T0) // (5 * S)
    g = trades.assign(k=k, sv=trades["size"] * trades["side"]).groupby("k")
    bars = pd.DataFrame({"bar_ts": BAR_TS})
    bars["bar5s_trade_cnt_sum"] = g.size().reindex(range(N_BARS), fill_value=0).to_numpy()
    bars["bar5s_trade_vol_sum"] = g["size"].sum().reindex(range(N_BARS), fill_value=0).to_numpy().astype(float)
    bars["bar5s_trade_signed_vol_sum"] = g["sv"].sum().reindex(range(N_BARS), fill_value=0).to_numpy().astype(float)
    bars["bar5s_trade_last_px"] = g["px"].last().reindex(range(N_BARS)).to_numpy()
    bars["bar5s_microprice_eob"] = mids["mid"].to_numpy() + rng.uniform(-0.1, 0.1, size=N_BARS)
    bars["bar5s_state_spread_pts_eob"] = rng.choice([0.25, 0.5], size=N_BARS)
    for col, (lo, hi) in BOOK_COLUMNS.items():
        bars[col] = rng.uniform(lo, hi, size=N_BARS)
    bars.loc[rng.random(N_BARS) < 0.3, "bar5s_wall_ask_nearest_strong_dist_pts_eob"] = np.nan
    return bars


def pipeline(trades, mids, bars, asked_by: int | None = None):
    """episode_id → (episode row, vector, feature_hash) for episodes with vector_time ≤ asked_by."""
    lv = session_levels(mids["ts"].to_numpy(), mids["mid"].to_numpy() - 0.125, mids["mid"].to_numpy() + 0.125, DAY, NY)
    candles = build_candles(trades["ts"].to_numpy(), trades["px"].to_numpy(), mids["ts"].to_numpy(),
                            mids["mid"].to_numpy(), T0, T0 + N_BARS * 5 * S)
    eps = detect_episodes(candles, "ESH5", DAY, lv, timezone=NY)
    out = {}
    for ep in eps.to_dict("records"):
        if not ep["confirm_in_window"] or (asked_by is not None and ep["vector_time"] > asked_by):
            continue
        vec, info = episode_setup_vector(ep, candles, bars)
        out[ep["episode_id"]] = (ep, vec, info["feature_hash"])
    return out


def perturb_from(t: int, seed: int, trades, mids, bars):
    """Everything at or after ``t`` replaced: new trade prices / sizes / sides (and some trades
    dropped), new mids, new values in every bar column."""
    rng = np.random.default_rng(seed)
    trades = trades.copy()
    late = trades["ts"].to_numpy() >= t
    shift = rng.choice([-8.0, -3.0, 3.0, 8.0])
    trades.loc[late, "px"] = trades.loc[late, "px"] + shift + rng.choice([-1.0, 0.0, 1.0], size=late.sum())
    trades.loc[late, "size"] = rng.integers(1, 50, size=late.sum())
    trades.loc[late, "side"] = -trades.loc[late, "side"]
    trades = trades[~late | (rng.random(len(trades)) < 0.8)].reset_index(drop=True)
    mids = mids.copy()
    lm = mids["ts"].to_numpy() >= t
    mids.loc[lm, "mid"] = mids.loc[lm, "mid"] + shift
    new_bars = make_bars(rng, trades, mids)
    lb = bars["bar_ts"].to_numpy() >= t
    bars = bars.copy()
    bars.loc[lb] = new_bars.loc[lb].to_numpy()
    return trades, mids, bars


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), pick=st.integers(0, 10**6), pseed=st.integers(0, 2**31))
def test_perturbing_after_vector_time_changes_nothing(seed, pick, pseed):
    trades, mids, bars = make_session(seed)
    base = pipeline(trades, mids, bars)
    if not base:
        return
    ids = sorted(base, key=lambda e: base[e][0]["vector_time"])
    target = ids[pick % len(ids)]
    vt = int(base[target][0]["vector_time"])
    after = pipeline(*perturb_from(vt, pseed, trades, mids, bars), asked_by=vt)
    before = {e: v for e, v in base.items() if v[0]["vector_time"] <= vt}
    assert set(after) == set(before)
    for eid, (ep, vec, h) in before.items():
        ep2, vec2, h2 = after[eid]
        assert ep2 == ep
        assert np.array_equal(vec2, vec)
        assert h2 == h


def test_the_generator_makes_episodes_and_the_check_has_teeth():
    trades, mids, bars = make_session(7)
    base = pipeline(trades, mids, bars)
    assert len(base) >= 3
    eid = min(base, key=lambda e: base[e][0]["vector_time"])
    vt = int(base[eid][0]["vector_time"])
    # perturbing from one bar before vector_time (inside the confirm candle) does change it
    _, _, bars2 = perturb_from(vt - 5 * S, 1, trades, mids, bars)
    vec2, _ = episode_setup_vector(base[eid][0], build_candles(
        trades["ts"].to_numpy(), trades["px"].to_numpy(), mids["ts"].to_numpy(), mids["mid"].to_numpy(),
        T0, T0 + N_BARS * 5 * S), bars2)
    assert not np.array_equal(vec2, base[eid][1])
