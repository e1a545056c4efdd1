"""setup_v3 vectors (FEATURES.md §5): layout, part B differences, truncation, feature_hash."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from mbolake.features.setup_vector import (
    FEATURE_SET,
    PART_B_SIGNALS,
    SETUP_V3_LAYOUT,
    build_setup_vector,
    episode_setup_vector,
    episode_signature_rows,
    episode_signatures,
    feature_hash,
    setup_vector_with_info,
    setup_vectors,
)
from mbolake.features.signature import SIGNATURE_NAMES

IDX = {n: i for i, n in enumerate(SETUP_V3_LAYOUT)}


def sigs_with(signal_values: dict[str, list[float]]) -> dict[int, np.ndarray]:
    out = {}
    for i, p in enumerate(range(-5, 1)):
        s = np.zeros(47)
        for name, vals in signal_values.items():
            s[SIGNATURE_NAMES.index(name)] = vals[i]
        out[p] = s
    return out


def test_layout():
    assert len(SETUP_V3_LAYOUT) == 345 and len(set(SETUP_V3_LAYOUT)) == 345
    assert SETUP_V3_LAYOUT[0] == "p-5_time_in_zone_frac"
    assert SETUP_V3_LAYOUT[46] == "p-5_trade_activity_mean"
    assert SETUP_V3_LAYOUT[47] == "p-4_time_in_zone_frac"
    assert SETUP_V3_LAYOUT[281] == "p0_trade_activity_mean"
    assert SETUP_V3_LAYOUT[282:291] == (
        "d1_p-4_u_mean", "d1_p-3_u_mean", "d1_p-2_u_mean", "d1_p-1_u_mean", "d1_p0_u_mean",
        "d2_p-3_u_mean", "d2_p-2_u_mean", "d2_p-1_u_mean", "d2_p0_u_mean")
    assert SETUP_V3_LAYOUT[-1] == "d2_p0_gap_spread_mean"
    assert len(PART_B_SIGNALS) == 7 and all(s in SIGNATURE_NAMES for s in PART_B_SIGNALS)


def test_part_a_positions_in_order():
    sigs = {p: np.arange(47, dtype=float) + 100 * (p + 5) for p in range(-5, 1)}
    v = build_setup_vector(sigs)
    assert v.shape == (345,) and v.dtype == np.float64
    assert v[IDX["p-5_u_start"]] == SIGNATURE_NAMES.index("u_start")
    assert v[IDX["p0_close_side"]] == 500 + 3
    # a sequence of six signatures is the same as the mapping
    assert np.array_equal(build_setup_vector([sigs[p] for p in range(-5, 1)]), v)


def test_part_b_differences_by_hand():
    sigs = sigs_with({"u_mean": [0, 1, 3, 6, 10, 15], "gap_spread_mean": [2, 2, 1, -1, -1, 4]})
    v = build_setup_vector(sigs)
    assert [v[IDX[f"d1_p{p}_u_mean"]] for p in range(-4, 1)] == [1, 2, 3, 4, 5]
    assert [v[IDX[f"d2_p{p}_u_mean"]] for p in range(-3, 1)] == [1, 1, 1, 1]
    assert [v[IDX[f"d1_p{p}_gap_spread_mean"]] for p in range(-4, 1)] == [0, -1, -2, 0, 5]
    assert [v[IDX[f"d2_p{p}_gap_spread_mean"]] for p in range(-3, 1)] == [-1, -1, 2, 5]
    assert v[IDX["d1_p0_pressure_mean"]] == 0.0


def test_context_truncated_zeros():
    sigs = sigs_with({"u_mean": [7, 7, 3, 6, 10, 15]})
    sigs[-5] = None
    del sigs[-4]
    v, info = setup_vector_with_info(sigs)
    assert info["context_truncated"] is True and info["truncated_positions"] == [-5, -4]
    assert (v[:94] == 0).all()  # positions -5 and -4
    assert v[IDX["p-3_u_mean"]] == 3.0
    d1 = [v[IDX[f"d1_p{p}_u_mean"]] for p in range(-4, 1)]
    d2 = [v[IDX[f"d2_p{p}_u_mean"]] for p in range(-3, 1)]
    assert d1 == [0, 0, 3, 4, 5]  # differences touching -5 / -4 are 0
    assert d2 == [0, 0, 1, 1]
    _, full = setup_vector_with_info(sigs_with({}))
    assert full["context_truncated"] is False


def test_nonfinite_counted_and_zeroed():
    sigs = sigs_with({"u_mean": [0, np.nan, 1, np.inf, 2, 3]})
    v, info = setup_vector_with_info(sigs)
    assert info["n_nonfinite"] == 2 and np.isfinite(v).all()
    assert v[IDX["p-4_u_mean"]] == 0.0 and v[IDX["d1_p-3_u_mean"]] == 1.0


def test_feature_hash():
    v = build_setup_vector(sigs_with({"u_mean": [0, 1, 3, 6, 10, 15]}))
    h = feature_hash(FEATURE_SET, v)
    assert h == hashlib.sha256(b"setup_v3" + v.astype("<f8").tobytes()).hexdigest()
    assert feature_hash(FEATURE_SET, v.copy()) == h  # stable
    w = v.copy()
    w[100] += 1e-12
    assert feature_hash(FEATURE_SET, w) != h  # any value change
    assert feature_hash("setup_v2", v) != h  # the feature-set name is covered
    z = np.zeros(345)
    assert feature_hash(FEATURE_SET, z) == hashlib.sha256(b"setup_v3" + bytes(345 * 8)).hexdigest()
    nan = z.copy()
    nan[[0, 7]] = [np.nan, -np.inf]
    nan[9] = -0.0
    assert feature_hash(FEATURE_SET, nan) == feature_hash(FEATURE_SET, z)


def test_bad_signature_length():
    with pytest.raises(ValueError, match="47"):
        build_setup_vector({0: np.zeros(46)})


def test_episode_vector_from_candles_and_bars():
    cn = 120
    candles = pd.DataFrame({"candle_ts": np.arange(0, 10 * cn, cn), "close": 6000.0 + np.arange(10)})
    bars = pd.DataFrame({"bar_ts": np.arange(0, 10 * cn, 5), "bar5s_microprice_eob": 6000.0,
                         "bar5s_trade_cnt_sum": 0, "bar5s_trade_last_px": np.nan})
    ep = {"trigger_ts": 2 * cn, "confirm_ts": 3 * cn, "level_price": 5999.0, "direction": 1}
    sigs = episode_signatures(ep, candles, bars)
    assert [p for p, s in sigs.items() if s is None] == [-5, -4]  # before the first candle
    assert all(sigs[p] is not None for p in range(-3, 7))
    assert sigs[0][SIGNATURE_NAMES.index("u_mean")] == 4.0  # (6000 - 5999)/0.25
    v, info = episode_setup_vector(ep, candles, bars)
    assert info["context_truncated"] and info["truncated_positions"] == [-5, -4]
    assert info["feature_hash"] == feature_hash(FEATURE_SET, v)


def test_batch_rows_and_vectors():
    cn = 120
    candles = pd.DataFrame({"candle_ts": np.arange(0, 12 * cn, cn), "close": 6000.0 + np.arange(12)})
    bars = pd.DataFrame({"bar_ts": np.arange(0, 12 * cn, 5), "bar5s_microprice_eob": 6000.0})
    eps = pd.DataFrame([
        {"episode_id": "a", "trigger_ts": 6 * cn, "confirm_ts": 7 * cn, "vector_time": 8 * cn, "level_price": 6001.0,
         "direction": -1},
        {"episode_id": "b", "trigger_ts": 11 * cn, "confirm_ts": 12 * cn, "vector_time": 13 * cn,
         "level_price": 6001.0, "direction": 1},  # confirm candle outside the candles
    ])
    rows = episode_signature_rows(eps, candles, bars)
    assert rows[rows["episode_id"] == "a"]["position"].tolist() == [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert rows[rows["episode_id"] == "b"]["position"].tolist() == [-5, -4, -3, -2, -1]
    assert rows.shape[1] == 3 + 47
    vecs = setup_vectors(eps, candles, bars)
    assert vecs["episode_id"].tolist() == ["a"] and vecs.iloc[0]["vector"].shape == (345,)
    assert not vecs.iloc[0]["context_truncated"]
    assert vecs.iloc[0]["vector"][IDX["p0_u_mean"]] == 4.0  # dir -1: -(6000 - 6001)/0.25
