"""Per-candle signature (FEATURES.md §4): the 17 statistics and the pressure components,
hand-computed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbolake.features.signature import (
    COMPONENT_NAMES,
    SIGNATURE_NAMES,
    STAT_NAMES,
    candle_signature,
    lin,
    pressure_components,
    stats17,
)


def named(x):
    return dict(zip(STAT_NAMES, stats17(x).tolist()))


def test_seventeen_statistics_by_hand():
    # n = 5, t = 1: early = [1], mid = [-2], late = [3, 0, 4]
    s = named([1.0, -2.0, 3.0, 0.0, 4.0])
    assert len(s) == 17
    assert (s["start"], s["end"], s["min"], s["max"]) == (1.0, 4.0, -2.0, 4.0)
    assert s["mean"] == pytest.approx(1.2)
    assert s["std"] == pytest.approx(math.sqrt(22.8 / 5))  # population: Σ(x - 1.2)² = 22.8
    assert s["slope"] == pytest.approx(0.6)  # (4 - 1) / 5
    assert s["energy"] == pytest.approx(math.log(16.0))  # |Δ| = 3 + 5 + 3 + 4
    assert s["sign_flip_cnt"] == pytest.approx(math.log(3.0))  # (1,-2), (-2,3); 3->0->4 are not flips
    assert s["burst_frac"] == pytest.approx(0.6)  # 1, 3, 4 > 0
    assert (s["mean_early"], s["mean_mid"]) == (1.0, -2.0)
    assert s["mean_late"] == pytest.approx(7 / 3)
    assert s["energy_early"] == 0.0
    assert s["energy_late"] == pytest.approx(math.log(8.0))  # |0-3| + |4-0|
    assert s["late_minus_early"] == pytest.approx(4 / 3)
    assert s["late_vs_early"] == pytest.approx((4 / 3) / (7 / 3 + 1 + 1e-9))  # = 0.4


def test_thirds_when_n_at_most_2t():
    # n = 2, t = 1, n <= 2t: mid and late are both x[1:]
    s = named([2.0, 5.0])
    assert (s["mean_early"], s["mean_mid"], s["mean_late"]) == (2.0, 5.0, 5.0)
    assert s["energy_early"] == 0.0 and s["energy_late"] == 0.0
    assert s["late_minus_early"] == 3.0 and s["late_vs_early"] == pytest.approx(3 / 7)
    # n = 1: mid and late are empty (mean 0)
    s = named([3.0])
    assert (s["mean_early"], s["mean_mid"], s["mean_late"]) == (3.0, 0.0, 0.0)
    assert s["late_vs_early"] == pytest.approx(-1.0) and s["slope"] == 0.0 and s["std"] == 0.0
    # n = 7, t = 2: early x[:2], mid x[2:4], late x[4:]
    s = named([1, 1, 2, 2, 3, 3, 6])
    assert (s["mean_early"], s["mean_mid"], s["mean_late"]) == (1.0, 2.0, 4.0)


def test_late_vs_early_bounded_when_early_mean_near_zero():
    s = named([1e-12, -1e-12, 1e-12, 5.0, 5.0, 5.0])  # t = 2, early mean 0
    assert s["late_vs_early"] == pytest.approx(1.0, abs=1e-9)
    assert abs(s["late_vs_early"]) <= 1.0
    assert named([0.0] * 6)["late_vs_early"] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=30))
def test_statistics_always_finite_and_ratio_bounded(xs):
    s = stats17(np.array(xs, dtype=np.float64))
    assert s.shape == (17,) and np.isfinite(s).all()
    assert -1.0 - 1e-12 <= s[16] <= 1.0 + 1e-12


def test_nonfinite_become_zero_and_empty_gives_zeros():
    assert named([np.nan, np.inf, 1.0]) == named([0.0, 0.0, 1.0])
    assert (stats17([]) == 0).all()


def test_burst_threshold():
    assert stats17([0.2, 0.6, 0.5, 0.9], tau=0.5)[STAT_NAMES.index("burst_frac")] == 0.5


def test_lin():
    assert lin(0.5) == pytest.approx(math.atanh(0.5) / 2)
    assert lin(1.0) == 1.0 and lin(-3.0) == -1.0  # clipped to ±(1 - 1e-6) then to ±1
    assert lin(0.0) == 0.0


ONE_BAR = pd.DataFrame({
    "bar_ts": [0],
    "bar5s_microprice_eob": [6000.1],
    "bar5s_state_obi0_eob": [0.5],
    "bar5s_state_obi10_eob": [-0.2],
    "bar5s_state_cdi_p0_1_eob": [1.0],
    "bar5s_flow_net_volnorm_bid_p0_1_sum": [0.3],
    "bar5s_flow_net_volnorm_ask_p0_1_sum": [0.1],
    "bar5s_trade_cnt_sum": [7],
    "bar5s_trade_vol_sum": [12.0],
    "bar5s_trade_signed_vol_sum": [-3.0],
    "bar5s_trade_last_px": [6000.75],
    "bar5s_wall_bid_maxz_eob": [2.4],
    "bar5s_wall_ask_maxz_eob": [1.2],
    "bar5s_wall_bid_nearest_strong_dist_pts_eob": [np.nan],  # no strong bid wall
    "bar5s_wall_ask_nearest_strong_dist_pts_eob": [1.5],  # 6 ticks
    "bar5s_ladder_bid_gap_max_pts_eob": [0.25],
    "bar5s_ladder_ask_gap_max_pts_eob": [0.75],  # 3 ticks
    "bar5s_state_spread_pts_eob": [0.25],  # 1 tick
})


def test_pressure_components_on_one_bar_from_below():
    c = {k: float(v[0]) for k, v in pressure_components(ONE_BAR, +1, tick=0.25).items()}
    assert c["obi0_lin"] == pytest.approx(0.2746530722)  # artanh(0.5)/2
    assert c["obi10_lin"] == pytest.approx(-0.1013662770)  # artanh(-0.2)/2
    assert c["cdi_lin"] == 1.0  # artanh(1 - 1e-6)/2 = 3.63 -> clipped
    assert c["flow_norm"] == pytest.approx(0.2)
    assert c["trade_imbal"] == pytest.approx(-0.25)
    assert c["wall_support"] == pytest.approx(0.3)  # (2.4 - 1.2)/4, same side = bid
    assert c["wall_dist_support"] == pytest.approx(0.2)  # 2·(6/10) - 1, ask wall 6 ticks away
    assert c["gap_spread"] == pytest.approx(2 * (math.log(4) + math.log(2)) / 4 - 1)  # 0.0397208
    assert c["trade_activity"] == pytest.approx(0.6)  # tanh(ln 8 / 3) = tanh(ln 2) = 3/5
    book = (0.2746530722 - 0.1013662770 + 1.0) / 3
    assert c["pressure"] == pytest.approx((book + 0.2 - 0.25 + 0.3 + 0.2 + 0.0397208 + 0.6) / 7, abs=1e-6)


def test_pressure_components_on_one_bar_from_above():
    c = {k: float(v[0]) for k, v in pressure_components(ONE_BAR, -1, tick=0.25).items()}
    assert c["obi0_lin"] == pytest.approx(-0.2746530722)
    assert c["cdi_lin"] == -1.0
    assert c["flow_norm"] == pytest.approx(-0.2)
    assert c["trade_imbal"] == pytest.approx(0.25)
    assert c["wall_support"] == pytest.approx(-0.3)  # same side = ask
    assert c["wall_dist_support"] == 1.0  # no strong bid wall = 10 ticks
    assert c["gap_spread"] == pytest.approx(2 * (math.log(2) + math.log(2)) / 4 - 1)  # bid gap 1 tick


def test_candle_signature_descriptive_and_u():
    L = 6000.0
    bars = pd.DataFrame({
        "bar_ts": [0, 5, 10, 15, 20, 25],
        "bar5s_microprice_eob": [5999.0, 5999.5, 6000.5, 6001.0, 6001.5, 6002.0],
        "bar5s_trade_cnt_sum": [1, 0, 2, 0, 1, 0],
        "bar5s_trade_last_px": [5998.5, np.nan, 6000.25, np.nan, 6003.25, np.nan],
    })
    sig = dict(zip(SIGNATURE_NAMES, candle_signature(bars, L, +1, close=6002.0).tolist()))
    # c_k = 5998.5, 5999.5, 6000.25, 6001.0, 6003.25, 6002.0 -> u = -6, -2, 1, 4, 13, 8 ticks
    assert sig["time_in_zone_frac"] == pytest.approx(1 / 6)  # only the 6000.25 trade is within 1 point
    assert sig["time_far_side_frac"] == pytest.approx(4 / 6)
    assert sig["late_time_far_side_frac"] == 1.0  # last third: u[4:] = 13, 8
    assert sig["close_side"] == 1.0
    u = np.array([-6, -2, 1, 4, 13, 8], dtype=float)
    for name, want in zip(STAT_NAMES, stats17(u)):
        assert sig[f"u_{name}"] == pytest.approx(want)
    assert sig["u_mean"] == pytest.approx(3.0) and sig["u_sign_flip_cnt"] == pytest.approx(math.log(2))
    # from above, u flips sign and the close is on the far side of nothing
    down = dict(zip(SIGNATURE_NAMES, candle_signature(bars, L, -1, close=6002.0).tolist()))
    assert down["u_mean"] == pytest.approx(-3.0) and down["close_side"] == -1.0
    assert down["time_far_side_frac"] == pytest.approx(2 / 6)
    # missing book columns: components are 0 / defaults, still finite
    assert np.isfinite(list(sig.values())).all()
    assert sig["wall_dist_support_mean"] == 1.0 and sig["trade_activity_mean"] > 0


def test_empty_candle_signature():
    bars = pd.DataFrame({"bar_ts": pd.Series([], dtype="int64")})
    sig = candle_signature(bars, 6000.0, 1, close=5999.0)
    assert sig.shape == (47,)
    assert sig[3] == -1.0 and np.count_nonzero(sig) == 1
    assert len(COMPONENT_NAMES) == 9
