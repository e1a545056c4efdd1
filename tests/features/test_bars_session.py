"""5-second bars over a synthetic session: end-to-end smoke and chunked == whole."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mbolake.book import OrderBook
from mbolake.core.products import get_product
from mbolake.features import BAR_COLUMNS, BarBuilder, BarParams, build_bars
from mbolake.features import bars as B
from mbolake.io import dbn
from mbolake.sample import synth

DATE = dt.date(2025, 11, 4)
P = "bar5s_"
ES = get_product("ES")


@pytest.fixture(scope="module")
def session():
    rec, intervals = synth.generate_session_records(DATE, synth.SynthParams(intensity=60_000))
    spreads = {iid for sym, ivs in intervals.items() if "-" in sym for _, _, iid in ivs}
    ids, counts = np.unique(rec["instrument_id"], return_counts=True)
    order = [i for i in np.argsort(-counts) if ids[i] not in spreads]
    front = rec[rec["instrument_id"] == ids[order[0]]]
    prm = BarParams.for_session(DATE, tick_size=ES.tick_size, timezone=ES.timezone)
    rows = OrderBook().apply(front)
    whole = build_bars(front, rows, prm)
    return front, rows, prm, whole


def test_end_to_end_smoke(session):
    front, rows, prm, df = session
    assert list(df.columns) == list(BAR_COLUMNS)
    assert len(df) == 2880 and df.bar_ts.is_unique
    assert (df.bar_ts.to_numpy() == prm.window_start_ns + np.arange(2880) * prm.bar_ns).all()
    num = df.drop(columns="bar_ts").to_numpy(np.float64)
    assert not np.isinf(num).any()
    nulls = df.isna().sum()
    assert set(nulls[nulls > 0].index) <= set(B.NULLABLE_COLUMNS), nulls[nulls > 0]
    # nulls only where the definition says so
    assert (df[P + "trade_last_px"].isna() == (df[P + "trade_cnt_sum"] == 0)).all()
    assert (df[P + "trade_last_ts"].eq(-1) == (df[P + "trade_cnt_sum"] == 0)).all()
    for s in ("bid", "ask"):
        assert (df[P + f"wall_{s}_nearest_strong_dist_pts_eob"].isna()
                == df[P + f"wall_{s}_nearest_strong_levelidx_eob"].eq(-1)).all()
    # the book is two-sided and sane in the window
    assert (df[P + "state_spread_pts_eob"] > 0).all()
    assert (df[P + "trade_cnt_sum"] > 0).sum() > 100
    assert df[P + "trade_vol_sum"].sum() > 0 and df[P + "flow_net_volnorm_bid_p0_1_sum"].abs().sum() > 0
    ts = df[P + "trade_last_ts"]
    has = ts >= 0
    assert ((ts[has] >= df.bar_ts[has]) & (ts[has] < df.bar_ts[has] + prm.bar_ns)).all()
    # trade counts equal the T records of the window
    t = front["ts_recv"].astype(np.int64)
    in_win = (t >= prm.window_start_ns) & (t < prm.window_end_ns) & (front["action"] == b"T")
    assert df[P + "trade_cnt_sum"].sum() == in_win.sum()
    assert df[P + "trade_vol_sum"].sum() == front["size"][in_win].sum()
    for c in df.columns:
        if c.endswith("_frac_twa") or c.endswith("_frac_eob"):
            assert df[c].between(0, 1).all(), c
        if "obi" in c or "cdi" in c:
            assert df[c].between(-1, 1).all(), c


def _chunked(front, rows_unused, prm, cuts, roundtrip=True) -> pd.DataFrame:
    book = OrderBook()
    bars = BarBuilder(prm)
    parts = []
    bounds = [0, *sorted(set(cuts)), len(front)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        chunk = front[a:b]
        parts.append(bars.apply(chunk, book.apply(chunk)))
        if roundtrip:
            bars = BarBuilder.from_state_bytes(bars.state_bytes())
            book = OrderBook.from_state_bytes(book.state_bytes())
    parts.append(bars.finish())
    return pd.concat(parts, ignore_index=True)


def test_chunked_equals_whole_at_awkward_cuts(session):
    front, rows, prm, whole = session
    t = front["ts_recv"].astype(np.int64)
    i0 = int(np.searchsorted(t, prm.window_start_ns))
    not_last = np.flatnonzero((front["flags"] & dbn.F_LAST) == 0)
    mid_group = [int(i) + 1 for i in not_last[np.searchsorted(not_last, i0):][:5]]
    # cuts inside event groups, around the window start, at bar ends, and many one-record chunks
    bar_end = int(np.searchsorted(t, prm.window_start_ns + 100 * prm.bar_ns))
    cuts = mid_group + [i0 - 1, i0, i0 + 1, bar_end, bar_end + 1] + list(range(i0 + 200, i0 + 260))
    got = _chunked(front, rows, prm, cuts)
    pd.testing.assert_frame_equal(got, whole, check_exact=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12))
def test_chunked_equals_whole_random(session, raw):
    front, rows, prm, whole = session
    cuts = [r % len(front) for r in raw]
    got = _chunked(front, rows, prm, cuts)
    pd.testing.assert_frame_equal(got, whole, check_exact=True)


def test_dataframe_inputs_give_the_same_bars(session):
    """Stages feed pandas frames (applyInPandas): action/side as str, prices int64."""
    front, rows, prm, whole = session
    from mbolake.book import to_frame

    mbo = pd.DataFrame({c: front[c] for c in ("ts_recv", "action", "side", "price", "size", "order_id", "flags")})
    mbo["action"] = mbo["action"].str.decode("ascii")
    mbo["side"] = mbo["side"].str.decode("ascii")
    mbo["ts_recv"] = mbo["ts_recv"].astype(np.int64)
    got = build_bars(mbo, to_frame(rows), prm)
    pd.testing.assert_frame_equal(got, whole, check_exact=True)


def test_full_depth_agrees_with_the_order_book(session):
    """The builder's per-tick depth (what the bands sum) is the order book's: at the end of the
    session its sizes at the last MBP-10 row's ten prices a side are the row's sizes."""
    front, rows, prm, whole = session
    t_end = int(front["ts_recv"].astype(np.int64).max())
    end = (t_end // prm.bar_ns + 2) * prm.bar_ns
    b = BarBuilder(BarParams(prm.window_start_ns, end, tick_size=prm.tick_size))
    b.apply(front, rows)
    base, tick = int(b.gi[B.G_DBASE]), prm.tick_fixed

    def last(col):
        return int(np.asarray(rows[col])[-1])

    checked = 0
    for s, name in enumerate(("bid", "ask")):
        for i in range(10):
            price = last(f"{name}_px_{i:02d}")
            if price == dbn.UNDEF_PRICE:
                continue
            assert b.depth[s, price // tick - base] == last(f"{name}_sz_{i:02d}"), (name, i)
            checked += 1
    assert checked == 20
    # and nothing rests between the best bid and the best ask
    bid, ask = last("bid_px_00") // tick - base, last("ask_px_00") // tick - base
    assert b.depth[:, bid + 1:ask].sum() == 0 and b.depth[0, bid + 1:].sum() == 0 and b.depth[1, :ask].sum() == 0
