"""Regression on the generated sample's first session (FEATURES.md §3, full-depth bands).

The session is the one ``make demo`` generates first (``02_generate_sample``: intensity
300,000, seed 7, 2025-11-03; front month ESZ5, 289,414 records). Before the fix the band
quantities summed the ten best levels only (about 2.5 points of ES), so p3_5 / p5_10 were
nearly always empty and the p3_5 flow was divided by 1.

What the flow definition allows: ``flow_net_volnorm_{side}_{band}_sum = N / max(q, 1)``
with N = Σ adds − Σ removals of the side attributed to the band in the bar and q the
band quantity's ``_twa``. So |flow| <= |N| and flow has N's sign, with equality only when
the band held at most one contract on average (q <= 1). N is recomputed here from the
records with a plain order dict, independent of the kernel; wherever |flow| < |N| the
implied divisor N / flow is the band's average quantity and must be > 1.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mbolake.book import OrderBook
from mbolake.core.products import get_product
from mbolake.features import BarParams, build_bars
from mbolake.features.bars import BANDS
from mbolake.sample import synth

DATE = dt.date(2025, 11, 3)
P = "bar5s_"
EDGES = (1.0, 2.0, 3.0, 5.0, 10.0)
UNDEF = np.iinfo(np.int64).max


@pytest.fixture(scope="module")
def sample():
    rec, intervals = synth.generate_session_records(DATE, synth.SynthParams(intensity=300_000, seed=7))
    front_iid = intervals["ESZ5"][0][2]
    front = rec[rec["instrument_id"] == front_iid]
    es = get_product("ES")
    prm = BarParams.for_session(DATE, tick_size=es.tick_size, timezone=es.timezone)
    rows = OrderBook().apply(front)
    return front, rows, prm, build_bars(front, rows, prm)


def net_flow(front, rows, prm) -> np.ndarray:
    """N[bar, side, band] from the records: the size changes of A/C/M (a price-moving modify
    as two legs), banded by the microprice of the last MBP-10 row strictly before the record."""
    r_ts = np.asarray(rows["ts_recv"]).astype(np.int64)
    b0, a0 = (np.asarray(rows[c]).astype(np.int64) for c in ("bid_px_00", "ask_px_00"))
    bq, aq = (np.asarray(rows[c]).astype(np.float64) for c in ("bid_sz_00", "ask_sz_00"))
    micro = np.where((b0 == UNDEF) | (a0 == UNDEF), np.nan, (a0 / 1e9 * bq + b0 / 1e9 * aq) / (bq + aq))
    ts = front["ts_recv"].astype(np.int64)
    assert (np.diff(ts) >= 0).all()  # effective time == ts_recv
    pos = np.searchsorted(r_ts, ts, side="left") - 1
    out = np.zeros((prm.n_bars, 2, 5))
    orders = {}
    for i, (t, a, s, px, sz, oid) in enumerate(zip(ts.tolist(), front["action"].tolist(), front["side"].tolist(),
                                                   front["price"].tolist(), front["size"].tolist(),
                                                   front["order_id"].tolist())):
        sd = {b"B": 0, b"A": 1}.get(s)
        legs = []
        if a == b"A" and sd is not None and px != UNDEF and sz > 0:
            if oid in orders:
                legs.append((*orders[oid][:2], -orders[oid][2]))
            orders[oid] = [sd, px, sz]
            legs.append((sd, px, sz))
        elif a == b"C" and oid in orders:
            o = orders[oid]
            rm = min(sz, o[2])
            legs.append((o[0], o[1], -rm))
            o[2] -= rm
            if o[2] == 0:
                del orders[oid]
        elif a == b"M":
            if oid not in orders:
                if sd is not None and px != UNDEF and sz > 0:
                    orders[oid] = [sd, px, sz]
                    legs.append((sd, px, sz))
            elif px != UNDEF:
                o = orders[oid]
                legs.append((o[0], o[1], -o[2]))
                if sz == 0:
                    del orders[oid]
                else:
                    legs.append((o[0], px, sz))
                    o[1], o[2] = px, sz
        elif a == b"R":
            orders.clear()
        if not legs or not prm.window_start_ns <= t < prm.window_end_ns or pos[i] < 0 or np.isnan(micro[pos[i]]):
            continue
        k = (t - prm.window_start_ns) // prm.bar_ns
        for side, price, dq in legs:
            d = micro[pos[i]] - price / 1e9 if side == 0 else price / 1e9 - micro[pos[i]]
            band = next((b for b, e in enumerate(EDGES) if d <= e), None)
            if band is not None:
                out[k, side, band] += dq
    return out


def test_deep_bands_are_populated(sample):
    _, _, _, df = sample
    assert len(df) == 2880

    def share(col):
        return round(float((df[P + col] > 0).mean()), 4)

    # bars whose band held depth at the bar's end / at any time in the bar; with the ten levels only
    # these were 15.3 % / 11.8 % (p3_5 twa, bid / ask) and 0.0 % / 0.03 % (p5_10)
    assert (share("depth_below_p3_5_frac_eob"), share("depth_above_p3_5_frac_eob")) == (0.9861, 0.9910)
    assert (share("depth_below_p5_10_frac_eob"), share("depth_above_p5_10_frac_eob")) == (0.8691, 0.8462)
    assert (share("depth_below_p3_5_frac_twa"), share("depth_above_p3_5_frac_twa")) == (0.9920, 0.9924)
    assert (share("depth_below_p5_10_frac_twa"), share("depth_above_p5_10_frac_twa")) == (0.8771, 0.8646)
    # a side's fractions add up to 1 whenever it has depth within 10 points
    for side in ("below", "above"):
        tot = sum(df[P + f"depth_{side}_{b}_frac_eob"] for b in BANDS)
        assert np.allclose(tot[tot > 0], 1.0, atol=1e-9)


def test_flow_stays_within_its_definition(sample):
    front, rows, prm, df = sample
    net = net_flow(front, rows, prm)
    on_divisor_one = {}
    for s, side in enumerate(("bid", "ask")):
        for b, band in enumerate(BANDS):
            flow = df[P + f"flow_net_volnorm_{side}_{band}_sum"].to_numpy()
            n = net[:, s, b]
            assert ((flow == 0) == (n == 0)).all(), (side, band)
            assert (np.sign(flow) == np.sign(n)).all(), (side, band)
            assert (np.abs(flow) <= np.abs(n) * (1 + 1e-12)).all(), (side, band)  # the divisor is >= 1
            moved = (n != 0) & (np.abs(flow) < np.abs(n) * (1 - 1e-12))
            assert (n[moved] / flow[moved] > 1).all(), (side, band)  # the implied divisor is q_twa > 1
            on_divisor_one[side, band] = int(((n != 0) & ~moved).sum()), int((n != 0).sum())
    # p3_5: flow in about 650 bars a side; before the fix nearly all of them were divided by 1 (raw
    # contract counts, up to 55); with the full-depth divisor only a handful are
    assert on_divisor_one["bid", "p3_5"][1] > 500 and on_divisor_one["ask", "p3_5"][1] > 500
    assert on_divisor_one["bid", "p3_5"][0] <= 10 and on_divisor_one["ask", "p3_5"][0] <= 10
    p35 = df[[P + "flow_net_volnorm_bid_p3_5_sum", P + "flow_net_volnorm_ask_p3_5_sum"]].abs()
    assert p35.max().max() <= 5.0 and int((p35 > 1).sum().sum()) == 10
