"""5-second bar features (FEATURES.md §3): hand-computed books through the real order book."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from mbolake.book import OrderBook
from mbolake.core.products import get_product
from mbolake.features import BAR_COLUMNS, BarBuilder, BarParams, build_bars, to_points
from mbolake.features import bars as B
from mbolake.io import dbn

S = 1_000_000_000
W0 = 1_762_263_000 * S  # 2025-11-04 08:30 New York (EST) = 13:30 UTC (aligned to 5 s)
P = "bar5s_"
EPS = 1e-9
ES = get_product("ES")


def params(nbars: int = 4, **kw) -> BarParams:
    return BarParams(W0, W0 + nbars * 5 * S, **kw)


def px(points: float) -> int:
    return int(round(points * 1e9))


def mbo(rows) -> np.ndarray:
    """rows: (t_ns, action, side, price_points or None, size, order_id[, last=True])."""
    rec = np.zeros(len(rows), dbn.MBO_DTYPE)
    for i, row in enumerate(rows):
        t, a, s, p, size, oid = row[:6]
        last = row[6] if len(row) > 6 else True
        rec[i]["length"] = 14
        rec[i]["rtype"] = dbn.RTYPE_MBO
        rec[i]["publisher_id"] = 1
        rec[i]["instrument_id"] = 42
        rec[i]["ts_event"] = rec[i]["ts_recv"] = t
        rec[i]["order_id"] = oid
        rec[i]["price"] = dbn.UNDEF_PRICE if p is None else px(p)
        rec[i]["size"] = size
        rec[i]["flags"] = dbn.F_LAST if last else 0
        rec[i]["action"] = a.encode()
        rec[i]["side"] = s.encode()
        rec[i]["sequence"] = 100 + i
    return rec


def run(rows, prm=None) -> pd.DataFrame:
    recs = mbo(rows)
    book = OrderBook()
    return build_bars(recs, book.apply(recs), prm or params())


def preopen(extra=()):
    """Book standing before the window: bid 100.00 x10 (id 1), ask 100.25 x10 (id 2)."""
    t = W0 - 60 * S
    return [(t, "R", "N", None, 0, 0), (t + 1, "A", "B", 100.00, 10, 1), (t + 2, "A", "A", 100.25, 10, 2), *extra]


# ---------------------------------------------------------------- layout
def test_bar_columns_count_and_order():
    assert BAR_COLUMNS[0] == "bar_ts"
    feats = BAR_COLUMNS[1:]
    assert len(feats) == 115 and len(set(feats)) == 115
    assert all(c.startswith(P) for c in feats)
    new = {P + n for n in ("ofi_l0_sum", "ofi_l10_sum", "trade_vwap", "mid_rv")}
    assert len([c for c in feats if c not in new]) == 111
    assert feats[:4] == tuple(P + n for n in ("microprice_eob", "midprice_eob", "state_spread_pts_twa",
                                               "state_spread_pts_eob"))
    assert feats[-4:] == tuple(P + n for n in ("ofi_l0_sum", "ofi_l10_sum", "trade_vwap", "mid_rv"))


def test_to_points():
    assert to_points(5490250000000) == 5490.25
    out = to_points(np.array([px(99.75), dbn.UNDEF_PRICE], np.int64))
    assert out[0] == 99.75 and np.isnan(out[1])


def test_params_validation():
    with pytest.raises(ValueError):
        BarParams(W0 + 1, W0 + 10 * S)
    with pytest.raises(ValueError):
        BarParams(W0, W0)
    p = BarParams.for_session(dt.date(2025, 11, 4), tick_size=ES.tick_size, timezone=ES.timezone)
    assert p.window_start_ns == W0 and p.n_bars == 2880
    assert list(BarParams(W0, W0 + 5 * S, tick_size=0.01).band_edges_pts) == pytest.approx([0.04, 0.08, 0.12, 0.2, 0.4])


# ---------------------------------------------------------------- time weighting
def test_twa_includes_last_stretch_and_carried_state():
    # spread 0.25 carried in from before the window, 0.50 from W0 + 2 s (ask moves up).
    df = run(preopen([(W0 + 2 * S, "C", "A", 100.25, 10, 2, False), (W0 + 2 * S, "A", "A", 100.50, 10, 3)]))
    assert len(df) == 4 and list(df.bar_ts) == [W0 + k * 5 * S for k in range(4)]
    b0 = df.iloc[0]
    assert b0[P + "state_spread_pts_twa"] == pytest.approx((0.25 * 2 + 0.5 * 3) / 5, rel=1e-12)
    assert b0[P + "state_spread_pts_eob"] == 0.5
    # obi0 is 0 throughout (10 vs 10); microprice moves 100.125 -> 100.25
    assert b0[P + "state_obi0_twa"] == pytest.approx(0.0, abs=1e-12)
    assert b0[P + "microprice_eob"] == 100.25 and b0[P + "midprice_eob"] == 100.25
    # above_qty p0_1 is 10 before and after: frac 10/(10+eps) both ways
    assert b0[P + "depth_above_p0_1_frac_twa"] == pytest.approx(1.0)
    # later (empty) bars carry the state: twa == eob
    for k in (1, 2, 3):
        assert df.iloc[k][P + "state_spread_pts_twa"] == 0.5 == df.iloc[k][P + "state_spread_pts_eob"]


def test_twa_over_three_states_in_one_bar():
    # bid size 10 -> 30 at +1 s -> 20 at +4 s; ask 10: obi0 = 0, 0.5, 1/3
    df = run(preopen([(W0 + 1 * S, "A", "B", 100.00, 20, 5), (W0 + 4 * S, "C", "B", 100.00, 10, 1)]))
    b0 = df.iloc[0]
    expected = (0.0 * 1 + (20 / (40 + EPS)) * 3 + (10 / (30 + EPS)) * 1) / 5
    assert b0[P + "state_obi0_twa"] == pytest.approx(expected, rel=1e-12)
    assert b0[P + "state_obi0_eob"] == pytest.approx(1 / 3, rel=1e-9)
    assert df.iloc[1][P + "state_obi0_twa"] == pytest.approx(1 / 3, rel=1e-9)


def test_state_change_at_bar_boundary_belongs_to_next_bar():
    df = run(preopen([(W0 + 5 * S, "A", "A", 100.25, 10, 3)]))  # ask 10 -> 20 exactly at bar 1's start
    assert df.iloc[0][P + "shape_ask_sz_l00_eob"] == 10
    assert df.iloc[1][P + "shape_ask_sz_l00_eob"] == 20
    assert df.iloc[0][P + "ofi_l0_sum"] == 0 and df.iloc[1][P + "ofi_l0_sum"] == -10


# ---------------------------------------------------------------- empty bars, trades
def test_empty_bar_carry_and_trade_fields():
    rows = preopen([
        # bar 0: a sell-aggressor trade of 4 at 100.00 filling order 1 (T, F, then the C), then a buy of 1
        (W0 + 1 * S, "T", "A", 100.00, 4, 0, False), (W0 + 1 * S, "F", "B", 100.00, 4, 1, False),
        (W0 + 1 * S, "C", "B", 100.00, 4, 1),
        (W0 + 3 * S, "T", "B", 100.25, 1, 0, False), (W0 + 3 * S, "F", "A", 100.25, 1, 2, False),
        (W0 + 3 * S, "C", "A", 100.25, 1, 2),
        # bar 2: a trade with side N counts in volume only
        (W0 + 12 * S, "T", "N", 100.00, 2, 0),
    ])
    df = run(rows)
    b0, b1, b2 = df.iloc[0], df.iloc[1], df.iloc[2]
    assert (b0[P + "trade_cnt_sum"], b0[P + "trade_vol_sum"], b0[P + "trade_signed_vol_sum"]) == (2, 5, -3)
    assert b0[P + "trade_last_px"] == 100.25 and b0[P + "trade_last_ts"] == W0 + 3 * S
    assert b0[P + "trade_vwap"] == pytest.approx((100.0 * 4 + 100.25 * 1) / 5)
    # bar 1 is empty: sums 0, no trade, eob/twa carried from bar 0's end
    assert b1[P + "trade_cnt_sum"] == 0 and b1[P + "trade_vol_sum"] == 0 and b1[P + "trade_signed_vol_sum"] == 0
    assert b1[P + "trade_last_ts"] == -1 and np.isnan(b1[P + "trade_last_px"]) and np.isnan(b1[P + "trade_vwap"])
    for c in BAR_COLUMNS[1:]:
        if c.endswith("_sum") or c == P + "mid_rv":
            assert b1[c] == 0, c
        elif c.endswith("_eob"):
            assert b1[c] == b0[c] or (np.isnan(b1[c]) and np.isnan(b0[c])), c
        elif c.endswith("_twa"):
            assert b1[c] == pytest.approx(b1[c[:-4] + "_eob"], rel=1e-12, nan_ok=True), c
    assert (b2[P + "trade_cnt_sum"], b2[P + "trade_vol_sum"], b2[P + "trade_signed_vol_sum"]) == (1, 2, 0)
    assert df[P + "trade_last_ts"].dtype == np.int64
    assert df[P + "trade_cnt_sum"].dtype == np.int64


def test_no_book_at_all_gives_null_state_and_every_bar():
    b = BarBuilder(params(10))
    df = b.finish()
    assert len(df) == 10 and df[P + "microprice_eob"].isna().all()
    assert (df[P + "trade_last_ts"] == -1).all() and (df[P + "wall_bid_maxz_levelidx_eob"] == -1).all()
    assert (df[P + "flow_net_volnorm_bid_p0_1_sum"] == 0).all()
    assert len(b.finish()) == 0  # every bar exactly once


# ---------------------------------------------------------------- flow attribution
def test_flow_fill_then_cancel():
    # pre-record microprice 100.125: bid 100.00 is 0.125 below -> band p0_1
    rows = preopen([(W0 + 1 * S, "T", "A", 100.00, 4, 0, False), (W0 + 1 * S, "F", "B", 100.00, 4, 1, False),
                    (W0 + 1 * S, "C", "B", 100.00, 4, 1)])
    df = run(rows)
    b0 = df.iloc[0]
    # below_qty p0_1: 10 for 1 s, then 6 (microprice (100.25*6 + 100*10)/16 = 100.09375) for 4 s
    twa_below = (10 * 1 + 6 * 4) / 5
    assert b0[P + "flow_net_volnorm_bid_p0_1_sum"] == pytest.approx(-4 / twa_below, rel=1e-12)
    for c in BAR_COLUMNS:
        if c.startswith(P + "flow_") and c != P + "flow_net_volnorm_bid_p0_1_sum":
            assert b0[c] == 0, c
    # the fill alone changes nothing
    only_fill = run(preopen([(W0 + 1 * S, "F", "B", 100.00, 4, 1)]))
    assert (only_fill.filter(like="flow_net").to_numpy() == 0).all()
    assert only_fill.iloc[0][P + "shape_bid_sz_l00_eob"] == 10


def test_flow_modify_moves_size_between_bands():
    # bid 99.00 x5 (id 3) is 1.125 below microprice 100.125 (p1_2); modified to 99.75 (0.375: p0_1)
    rows = preopen([(W0 - 30 * S, "A", "B", 99.00, 5, 3), (W0 + 1 * S, "M", "B", 99.75, 5, 3)])
    b0 = run(rows).iloc[0]
    # below qty p0_1: 10 for 1 s then 15 for 4 s; p1_2: 5 for 1 s then 0 -> twa 1 -> max(1, 1)
    assert b0[P + "flow_net_volnorm_bid_p0_1_sum"] == pytest.approx(5 / ((10 * 1 + 15 * 4) / 5), rel=1e-12)
    assert b0[P + "flow_net_volnorm_bid_p1_2_sum"] == pytest.approx(-5 / 1.0, rel=1e-12)
    assert b0[P + "depth_below_p0_1_qty_eob"] == 15


def test_flow_modify_moves_one_lot_between_bands_two_legs():
    # bid 96.50 x1 (id 3) is 3.625 below microprice 100.125 (p3_5); modified to 98.75 (1.375: p1_2).
    # Two legs: -1 in p3_5 at the old price, +1 in p1_2 at the new one (not a pure add of 1).
    rows = preopen([(W0 - 30 * S, "A", "B", 96.50, 1, 3), (W0 + 1 * S, "M", "B", 98.75, 1, 3)])
    b0 = run(rows).iloc[0]
    # p3_5 qty: 1 for 1 s then 0 -> twa 0.2 -> divisor 1; p1_2 qty: 0 for 1 s then 1 -> twa 0.8 -> 1
    assert b0[P + "flow_net_volnorm_bid_p3_5_sum"] == -1.0
    assert b0[P + "flow_net_volnorm_bid_p1_2_sum"] == 1.0
    assert b0[P + "flow_net_volnorm_bid_p0_1_sum"] == 0 and b0[P + "flow_net_volnorm_bid_p2_3_sum"] == 0
    # below qty [10, 0, 0, 1, 0] for 1 s, then [10, 1, 0, 0, 0]: fractions of 11
    assert b0[P + "depth_below_p3_5_frac_twa"] == pytest.approx((1 / (11 + EPS)) * 1 / 5, rel=1e-12)
    assert b0[P + "depth_below_p1_2_frac_twa"] == pytest.approx((1 / (11 + EPS)) * 4 / 5, rel=1e-12)
    assert b0[P + "depth_below_p1_2_frac_eob"] == pytest.approx(1 / (11 + EPS), rel=1e-12)
    assert b0[P + "depth_below_p3_5_frac_eob"] == 0


def ladder_rows(extra=()):
    """Ten bid levels 100.00 .. 97.75 x2 (ids 1-10) and one ask 100.25 x2 (id 20): microprice 100.125."""
    t = W0 - 60 * S
    rows = [(t, "R", "N", None, 0, 0)]
    rows += [(t + 1 + i, "A", "B", 100.00 - 0.25 * i, 2, 1 + i) for i in range(10)]
    return rows + [(t + 20, "A", "A", 100.25, 2, 20), *extra]


def test_add_beyond_the_tenth_level_counts_in_its_band():
    # at W0+1 s a bid of 4 at 96.75: 3.375 below the microprice (p3_5), the 11th level, so the top
    # ten (and the MBP-10 rows) do not change; the full-depth band quantities do.
    df = run(ladder_rows([(W0 + 1 * S, "A", "B", 96.75, 4, 30)]))
    b0 = df.iloc[0]
    assert b0[P + "depth_bid10_qty_eob"] == 20  # the ten levels: unchanged
    # bands before: p0_1 100.00-99.25 (8), p1_2 99.00-98.25 (8), p2_3 98.00-97.75 (4), p3_5 0; after +4
    # flow: +4 over max(twa p3_5 = (0*1 + 4*4)/5 = 3.2, 1)
    assert b0[P + "flow_net_volnorm_bid_p3_5_sum"] == pytest.approx(4 / 3.2, rel=1e-12)
    assert b0[P + "depth_below_p3_5_frac_eob"] == pytest.approx(4 / (24 + EPS), rel=1e-12)
    assert b0[P + "depth_below_p0_1_frac_eob"] == pytest.approx(8 / (24 + EPS), rel=1e-12)
    assert b0[P + "depth_below_p3_5_frac_twa"] == pytest.approx((4 / (24 + EPS)) * 4 / 5, rel=1e-12)
    assert b0[P + "depth_below_p0_1_frac_twa"] == pytest.approx((8 / (20 + EPS) * 1 + 8 / (24 + EPS) * 4) / 5,
                                                                rel=1e-12)
    assert b0[P + "state_cdi_p3_5_eob"] == pytest.approx(4 / (4 + EPS), rel=1e-12)
    assert df.iloc[1][P + "depth_below_p3_5_frac_twa"] == pytest.approx(4 / (24 + EPS), rel=1e-12)
    # an order deeper than 10 points is kept out of both: 89.75 is 10.375 away
    far = run(ladder_rows([(W0 + 1 * S, "A", "B", 89.75, 4, 30)])).iloc[0]
    assert (far.filter(like="flow_net").to_numpy() == 0).all()
    assert far[P + "depth_below_p0_1_frac_eob"] == pytest.approx(8 / (20 + EPS), rel=1e-12)


def test_side_without_depth_within_10_points_has_zero_fractions():
    # bid 100.00 x1, ask 120.00 x99: microprice (120*1 + 100*99)/100 = 100.2, the ask 19.8 away
    t = W0 - 60 * S
    rows = [(t, "R", "N", None, 0, 0), (t + 1, "A", "B", 100.00, 1, 1), (t + 2, "A", "A", 120.00, 99, 2),
            (W0 + 1 * S, "C", "A", 120.00, 9, 2)]  # a cancel beyond 10 points: no flow
    b0 = run(rows).iloc[0]
    assert b0[P + "microprice_eob"] == pytest.approx((120 * 1 + 100 * 90) / 91, rel=1e-12)  # ask 99 -> 90
    for band in B.BANDS:
        for stat in ("eob", "twa"):
            assert b0[P + f"depth_above_{band}_frac_{stat}"] == 0, band
        assert b0[P + f"flow_net_volnorm_ask_{band}_sum"] == 0
    assert b0[P + "depth_below_p0_1_frac_eob"] == pytest.approx(1 / (1 + EPS), rel=1e-12)
    assert b0[P + "state_cdi_p0_1_eob"] == pytest.approx(1 / (1 + EPS), rel=1e-12)
    assert b0[P + "state_cdi_p5_10_eob"] == 0 and b0[P + "depth_above_p0_1_qty_eob"] == 0
    assert np.isfinite(b0.drop(["bar_ts", P + "ladder_bid_gap_max_pts_eob", P + "ladder_bid_gap_mean_pts_eob",
                                P + "ladder_ask_gap_max_pts_eob", P + "ladder_ask_gap_mean_pts_eob",
                                P + "trade_last_px", P + "trade_vwap"]).to_numpy(np.float64)).all()


def test_band_edges_follow_the_microprice():
    # the ask at 100.25 x10 is cancelled and re-added at 103.00: the microprice moves 100.125 -> 101.5, so
    # the bid at 96.75 (id 3: 3.375 -> 4.75, p3_5) stays and 94.00 (id 4: 6.125 -> 7.5, p5_10) stays, while
    # 99.00 (id 5: 1.125 -> 2.5) moves from p1_2 to p2_3 and the 100.00 bid from p0_1 to p1_2.
    rows = preopen([(W0 - 30 * S, "A", "B", 96.75, 3, 3), (W0 - 29 * S, "A", "B", 94.00, 2, 4),
                    (W0 - 28 * S, "A", "B", 99.00, 5, 5),
                    (W0 + 1 * S, "C", "A", 100.25, 10, 2, False), (W0 + 1 * S, "A", "A", 103.00, 10, 6)])
    b0 = run(rows).iloc[0]
    assert b0[P + "microprice_eob"] == pytest.approx(101.5)
    tot = 20
    expect = {"p0_1": 0, "p1_2": 10, "p2_3": 5, "p3_5": 3, "p5_10": 2}
    for band, q in expect.items():
        assert b0[P + f"depth_below_{band}_frac_eob"] == pytest.approx(q / (tot + EPS), rel=1e-12, abs=0), band
    assert b0[P + "depth_above_p1_2_frac_eob"] == pytest.approx(10 / (10 + EPS), rel=1e-12)


def test_off_grid_price_is_rejected():
    with pytest.raises(ValueError, match="not a multiple of the tick size"):
        run(preopen([(W0 + 1 * S, "A", "B", 99.10, 1, 9)]))


def test_depth_array_grows_to_far_prices():
    # a bid 40 points below the market and an ask 900 points above (3,600 ticks: the depth array grows
    # twice): both are beyond 10 points, so the bands are those of the book without them
    rows = preopen([(W0 - 9 * S, "A", "B", 100.00 - 40.0, 1, 8), (W0 - 8 * S, "A", "A", 100.25 + 900.0, 1, 9)])
    got, base = run(rows), run(preopen())
    for c in BAR_COLUMNS:
        if c.startswith(P + "depth_below_") or c.startswith(P + "depth_above_") or "cdi" in c or "flow" in c:
            assert (got[c] == base[c]).all(), c


def test_a_price_far_beyond_the_depth_span_is_refused_naming_it():
    # 1,100,000 points above the market: 4.4 M ticks, more than MAX_DEPTH_TICKS (4,194,304)
    with pytest.raises(ValueError, match=r"a resting price at tick 4400401 \(1100100.25 points\) would make the "
                                         r"book's depth span 4401026 ticks \(at most 4194304"):
        run(preopen([(W0 + 1 * S, "A", "A", 1_100_100.25, 1, 9)]))


def test_flow_uses_state_strictly_before_the_record():
    # at W0+1s the ask at 100.25 is cancelled (group 1) and re-added at 101.50 x10 (group 2) at the same
    # timestamp: the add is banded with the microprice before W0+1s (100.125): 1.375 -> p1_2, not with the
    # one-sided state in between.
    rows = preopen([(W0 + 1 * S, "C", "A", 100.25, 10, 2), (W0 + 1 * S, "A", "A", 101.50, 10, 7)])
    b0 = run(rows).iloc[0]
    # after: microprice (101.5*10 + 100*10)/20 = 100.75, the ask 0.75 away -> still p0_1
    above_p0_1_twa = (10 * 1 + 10 * 4) / 5
    assert b0[P + "flow_net_volnorm_ask_p0_1_sum"] == pytest.approx(-10 / above_p0_1_twa, rel=1e-12)
    assert b0[P + "flow_net_volnorm_ask_p1_2_sum"] == pytest.approx(10 / 1.0, rel=1e-12)


def test_flow_before_window_is_not_counted():
    df = run(preopen([(W0 - 1 * S, "A", "B", 100.00, 7, 9)]))
    assert (df.filter(like="flow_net").to_numpy() == 0).all()


# ---------------------------------------------------------------- one state, hand-computed
BIDS = [(100.00, 10, 2), (99.75, 20, 3), (99.00, 5, 1), (98.50, 7, 1), (96.00, 3, 1), (89.00, 4, 1)]
ASKS = [(100.25, 30, 4), (101.50, 8, 2), (103.25, 2, 1)]


def book_rows():
    t = W0 - 60 * S
    rows = [(t, "R", "N", None, 0, 0)]
    oid = 10
    for side, levels in (("B", BIDS), ("A", ASKS)):
        for p, size, count in levels:
            for k in range(count):  # split the size over `count` orders
                part = size // count + (1 if k < size % count else 0)
                oid += 1
                rows.append((t + oid, "A", side, p, part, oid))
    return rows


def test_obi_cdi_bands_fractions_one_state():
    b = run(book_rows()).iloc[0]
    micro = (100.25 * 10 + 100.00 * 30) / 40  # 100.0625
    assert b[P + "microprice_eob"] == pytest.approx(micro) and b[P + "midprice_eob"] == 100.125
    assert b[P + "state_spread_pts_eob"] == 0.25
    assert b[P + "state_obi0_eob"] == pytest.approx((10 - 30) / (40 + EPS))
    bsum, asum = 49, 40
    assert b[P + "state_obi10_eob"] == pytest.approx((bsum - asum) / (bsum + asum + EPS))
    # bids 0.0625, 0.3125 (p0_1), 1.0625, 1.5625 (p1_2), 4.0625 (p3_5), 11.0625 (dropped)
    below = dict(zip(B.BANDS, [30, 12, 0, 3, 0]))
    # asks 0.1875 (p0_1), 1.4375 (p1_2), 3.1875 (p3_5)
    above = dict(zip(B.BANDS, [30, 8, 0, 2, 0]))
    below_tot, above_tot = 45, 40  # fractions are of the five bands' total (the 11.06 bid is out)
    for band in B.BANDS:
        lo, hi = below[band], above[band]
        assert b[P + f"state_cdi_{band}_eob"] == pytest.approx((lo - hi) / (lo + hi + EPS), abs=1e-12), band
        assert b[P + f"depth_below_{band}_frac_eob"] == pytest.approx(lo / (below_tot + EPS), abs=1e-12), band
        assert b[P + f"depth_above_{band}_frac_eob"] == pytest.approx(hi / (above_tot + EPS), abs=1e-12), band
        assert b[P + f"state_cdi_{band}_twa"] == pytest.approx(b[P + f"state_cdi_{band}_eob"], abs=1e-12)
    assert b[P + "state_cdi_p1_2_eob"] == pytest.approx(0.2) and b[P + "state_cdi_p3_5_eob"] == pytest.approx(0.2)
    assert (b[P + "depth_bid10_qty_eob"], b[P + "depth_ask10_qty_eob"]) == (49, 40)
    assert (b[P + "depth_below_p0_1_qty_eob"], b[P + "depth_above_p0_1_qty_eob"]) == (30, 30)
    # ladders: bid gaps 0.25 0.75 0.5 2.5 7.0; ask gaps 1.25 1.75
    assert (b[P + "ladder_bid_gap_max_pts_eob"], b[P + "ladder_bid_gap_mean_pts_eob"]) == (7.0, pytest.approx(2.2))
    assert (b[P + "ladder_ask_gap_max_pts_eob"], b[P + "ladder_ask_gap_mean_pts_eob"]) == (1.75, 1.5)
    # shape
    assert (b[P + "shape_bid_sz_l00_eob"], b[P + "shape_ask_sz_l00_eob"]) == (10, 30)
    assert b[P + "shape_bid_sz_frac_l01_eob"] == pytest.approx(20 / 49)
    assert b[P + "shape_bid_sz_frac_l06_eob"] == 0
    assert b[P + "shape_ask_ct_frac_l00_eob"] == pytest.approx(4 / 7)
    assert b[P + "shape_bid_ct_frac_l01_eob"] == pytest.approx(3 / 9)


def test_ladder_null_with_fewer_than_two_levels():
    b = run(preopen()).iloc[0]
    assert np.isnan(b[P + "ladder_bid_gap_max_pts_eob"]) and np.isnan(b[P + "ladder_ask_gap_mean_pts_eob"])


def test_wall_zscores_one_state():
    sizes = [1, 2, 3, 4, 100, 5, 6, 7, 8, 9]
    t = W0 - 60 * S
    rows = [(t, "R", "N", None, 0, 0)]
    for i, size in enumerate(sizes):
        rows.append((t + 1 + i, "A", "B", 100.00 - 0.25 * i, size, 100 + i))
    for i in range(10):
        rows.append((t + 20 + i, "A", "A", 100.25 + 0.25 * i, 5, 200 + i))  # flat ask side
    b = run(rows).iloc[0]
    q = [math.log(1 + s) for s in sizes]
    mean = sum(q) / 10
    std = math.sqrt(sum((x - mean) ** 2 for x in q) / 10)  # population
    z = [(x - mean) / std for x in q]
    assert b[P + "wall_bid_maxz_eob"] == pytest.approx(z[4], rel=1e-12)
    assert b[P + "wall_bid_maxz_eob"] == pytest.approx(2.6349, abs=1e-3)
    assert b[P + "wall_bid_maxz_levelidx_eob"] == 4
    micro = (100.25 * 1 + 100.00 * 5) / 6
    assert b[P + "wall_bid_nearest_strong_levelidx_eob"] == 4
    assert b[P + "wall_bid_nearest_strong_dist_pts_eob"] == pytest.approx(micro - 99.00, rel=1e-12)
    # flat side: std 0 -> z = 0 / max(0, eps) = 0 everywhere; no strong wall
    assert b[P + "wall_ask_maxz_eob"] == 0 and b[P + "wall_ask_maxz_levelidx_eob"] == 0
    assert b[P + "wall_ask_nearest_strong_levelidx_eob"] == -1
    assert np.isnan(b[P + "wall_ask_nearest_strong_dist_pts_eob"])
    # the same through the one-state view
    lv = np.zeros(60, np.int64)
    lv[:10] = [px(100.00 - 0.25 * i) for i in range(10)]
    lv[10:20] = [px(100.25 + 0.25 * i) for i in range(10)]
    lv[20:30], lv[30:40] = sizes, 5
    f = B.state_features(lv, params())
    assert f["wall_bid_maxz_eob"] == b[P + "wall_bid_maxz_eob"]


def test_ofi_and_mid_rv():
    # bid 100.00 x10 -> x15 (e = +5 at l0), then the ask moves 100.25 -> 100.50 (e = +10 at l0: ask qty removed)
    rows = preopen([(W0 + 1 * S, "A", "B", 100.00, 5, 5),
                    (W0 + 2 * S, "C", "A", 100.25, 10, 2, False), (W0 + 2 * S, "A", "A", 100.50, 10, 3)])
    b0 = run(rows).iloc[0]
    assert b0[P + "ofi_l0_sum"] == 5 + 10
    # level 1 of the ask side appears/disappears: none here (only one level each side) -> l10 == l0
    assert b0[P + "ofi_l10_sum"] == 15
    r = math.log(100.25) - math.log(100.125)
    assert b0[P + "mid_rv"] == pytest.approx(r * r, rel=1e-12)


# ---------------------------------------------------------------- resumability
def test_state_bytes_round_trip_and_bad_rows():
    recs = mbo(preopen([(W0 + 1 * S, "A", "B", 100.00, 5, 5)]))
    rows = OrderBook().apply(recs)
    b = BarBuilder(params())
    b.apply(recs[:2], OrderBook().apply(recs[:2]))
    b2 = BarBuilder.from_state_bytes(b.state_bytes())
    assert b2.params == b.params and b2.state_bytes() == b.state_bytes()
    with pytest.raises(ValueError, match="match no F_LAST"):
        BarBuilder(params()).apply(recs[:1], rows)
    # a checkpoint of the top-10 bar builder (format 1) is refused, not misread
    import io
    with np.load(io.BytesIO(b.state_bytes())) as z:
        old = dict(z)
    old["format"] = np.array("mbolake.features.bars.state/1")
    buf = io.BytesIO()
    np.savez(buf, **old)
    with pytest.raises(ValueError, match="state/2"):
        BarBuilder.from_state_bytes(buf.getvalue())


def test_every_bar_of_the_window_once():
    p = BarParams.for_session(dt.date(2025, 11, 4), tick_size=ES.tick_size, timezone=ES.timezone)
    recs = mbo(preopen([(W0 + 3600 * S + 7, "A", "B", 100.00, 5, 5)]))
    book, b = OrderBook(), BarBuilder(p)
    parts = [b.apply(recs[:3], book.apply(recs[:3])), b.apply(recs[3:], book.apply(recs[3:])), b.finish()]
    df = pd.concat(parts, ignore_index=True)
    assert len(parts[1]) == 720  # the bars before 09:30:00.000000007 are complete
    assert len(df) == 2880
    assert (df.bar_ts.to_numpy() == p.window_start_ns + np.arange(2880) * p.bar_ns).all()
