"""The band-quantity views of the Silver bar notebook (22) over a real ``silver.bar_5s`` Delta
table: a hand-made book with depth in every band, through the bar kernel, written to a lake."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mbolake.book import OrderBook
from mbolake.features import BarParams, build_bars
from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.schemas import BAR_5S
from mbolake.views import features as views

from tests.features.test_bars import W0, S, mbo

CONTRACT = "GLBX.MDP3:ESZ5"
SESSION = dt.date(2025, 11, 4)


def book_rows():
    """Bids 100.00 .. 97.75 x2 (ten levels), 94.00 x5; ask 100.25 x2 (microprice 100.125);
    at W0 + 1 s a bid of 4 at 96.75 (3.375 below: p3_5, beyond the ten levels)."""
    t = W0 - 60 * S
    rows = [(t, "R", "N", None, 0, 0)]
    rows += [(t + 1 + i, "A", "B", 100.00 - 0.25 * i, 2, 1 + i) for i in range(10)]
    rows += [(t + 15, "A", "B", 94.00, 5, 15), (t + 20, "A", "A", 100.25, 2, 20)]
    rows += [(W0 + 1 * S, "A", "B", 96.75, 4, 30)]
    return rows


@pytest.fixture
def ctx(project):
    ctx = Context(profile=load_profile("local"))
    recs = mbo(book_rows())
    bars = build_bars(recs, OrderBook().apply(recs), BarParams(W0, W0 + 4 * 5 * S))
    keys = pd.DataFrame({"contract_id": CONTRACT, "session_date": [SESSION] * len(bars),
                         "bar_ts": bars["bar_ts"].to_numpy(np.int64)})
    out = pd.concat([keys, bars.drop(columns="bar_ts").astype(np.float64),
                     pd.DataFrame({"data_version": ["test"] * len(bars)})], axis=1)
    delta_tables.append(ctx.profile, BAR_5S, pa.Table.from_pandas(out[BAR_5S.schema.names], schema=BAR_5S.schema,
                                                                  preserve_index=False))
    return ctx


def test_band_quantity_frame_recovers_every_band(ctx):
    frame = views.band_quantity_frame(ctx, CONTRACT, SESSION)
    assert len(frame) == 4 * 2 * 5 and frame.attrs["timezone"] == "America/New_York"
    assert str(frame["time"].iloc[0]) == "2025-11-04 08:30:00-05:00"
    first = frame[frame["bar_ts"] == W0].set_index(["side", "band"])["qty_eob"]
    # bid distances from 100.125: 0.125-0.875 (8), 1.125-1.875 (8), 2.125-2.375 (4), 96.75 at 3.375 (4),
    # 94.00 at 6.125 (5); the ask 100.25 x2 at 0.125
    assert first["bid"].tolist() == [8, 8, 4, 4, 5]
    assert first["ask"].tolist() == [2, 0, 0, 0, 0]
    twa = frame[(frame["bar_ts"] == W0) & (frame["side"] == "bid") & (frame["band"] == "p3_5")]["frac_twa"]
    assert twa.iloc[0] == pytest.approx((4 / 29) * 4 / 5, rel=1e-9)  # 0 for the first second, then 4 of 29


def test_band_quantity_summary_and_plot(ctx):
    frame = views.band_quantity_frame(ctx, CONTRACT, SESSION)
    summary = views.band_quantity_summary(frame)
    assert list(summary.columns) == ["side", "band", "bars", "share_with_depth_eob", "share_with_depth_twa",
                                     "mean_qty", "median_qty", "max_qty"]
    row = summary.set_index(["side", "band"]).loc[("bid", "p3_5")]
    assert (row["bars"], row["share_with_depth_eob"], row["max_qty"]) == (4, 1.0, 4)
    assert summary.set_index(["side", "band"]).loc[("ask", "p5_10"), "share_with_depth_twa"] == 0
    fig = views.plot_band_quantities(frame, "bands")
    assert len(fig.data) == 10 and {t.name for t in fig.data} == {"p0_1", "p1_2", "p2_3", "p3_5", "p5_10"}
    assert list(fig.data[3].y) == [4, 4, 4, 4]  # bid p3_5 at each bar's end


def test_band_quantities_without_p0_1_depth_are_unknown_not_zero():
    bars = pd.DataFrame({"bar_ts": [0, 1]})
    for where in ("below", "above"):
        bars[f"bar5s_depth_{where}_p0_1_qty_eob"] = [0.0, 0.0]
        for band in views.BAND_NAMES:
            f = 1.0 if band == "p2_3" and where == "below" else 0.0  # bar 0: all bid depth 2-3 points away
            bars[f"bar5s_depth_{where}_{band}_frac_eob"] = [f, np.nan]
            bars[f"bar5s_depth_{where}_{band}_frac_twa"] = [f, np.nan]
    out = views.band_quantities(bars).set_index(["bar_ts", "side", "band"])["qty_eob"]
    assert np.isnan(out[0, "bid", "p2_3"]) and out[0, "bid", "p3_5"] == 0 and out[0, "ask", "p0_1"] == 0
    assert out[1].isna().all()  # no book state yet


def test_band_quantity_frame_names_a_missing_session(ctx):
    with pytest.raises(ValueError, match="no bars for GLBX.MDP3:ESZ5 on 2025-11-05"):
        views.band_quantity_frame(ctx, CONTRACT, dt.date(2025, 11, 5))
