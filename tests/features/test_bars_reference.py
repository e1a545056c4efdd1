"""The numba bar kernel against a slow, plain-Python reading of FEATURES.md §3.

The reference below is written from the spec text, not from the kernel: an order dict for
flow and for the full-depth band quantities (a state at every F_LAST record, its bands
summed over every price of the rebuilt book), a list of (time, state) for time weighting,
per-state formulas in points. It runs over
a whole synthetic session (so the state carried into the window is real) and is compared on
10 minutes of bars around the 09:30 open.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from mbolake.book import OrderBook
from mbolake.core.calendar import local_time_to_ns
from mbolake.features import BAR_COLUMNS, BarParams, build_bars, to_points
from mbolake.features.bars import BANDS
from mbolake.sample import synth

DATE = dt.date(2025, 11, 4)
EDGES = (1.0, 2.0, 3.0, 5.0, 10.0)
EPS = 1e-9
UNDEF = np.iinfo(np.int64).max


def band(d):
    for b, e in enumerate(EDGES):
        if d <= e:
            return b
    return None


def band_quantities(depth, micro):
    """(below[5], above[5]) over every price of the book (depth: (side, price) -> size)."""
    below, above = [0.0] * 5, [0.0] * 5
    for (side, price), q in depth.items():
        d = micro - price / 1e9 if side == 0 else price / 1e9 - micro
        b = band(d)
        if b is not None and q:
            (below if side == 0 else above)[b] += q
    return below, above


def micro_of(lv):
    b, a = lv["bid_px"][0], lv["ask_px"][0]
    if b == UNDEF or a == UNDEF:
        return math.nan
    B0, A0 = lv["bid_sz"][0], lv["ask_sz"][0]
    return (a / 1e9 * B0 + b / 1e9 * A0) / (B0 + A0) if B0 + A0 else (a + b) / 2e9


def metrics(lv, bands):
    """Every per-state metric by name (without prefix) + band quantities, plain Python."""
    bpx = [None if p == UNDEF else p / 1e9 for p in lv["bid_px"]]
    apx = [None if p == UNDEF else p / 1e9 for p in lv["ask_px"]]
    bsz, asz, bct, act = lv["bid_sz"], lv["ask_sz"], lv["bid_ct"], lv["ask_ct"]
    nb = sum(p is not None for p in bpx)
    na = sum(p is not None for p in apx)
    B0, A0 = (bsz[0] if nb else 0), (asz[0] if na else 0)
    Bs, As = sum(bsz), sum(asz)
    m = {}
    if nb and na:
        mid = (bpx[0] + apx[0]) / 2
        micro = (apx[0] * B0 + bpx[0] * A0) / (B0 + A0) if B0 + A0 else mid
        spread = apx[0] - bpx[0]
    else:
        mid = micro = spread = math.nan
    m["microprice_eob"], m["midprice_eob"], m["state_spread_pts"] = micro, mid, spread
    m["state_obi0"] = (B0 - A0) / (B0 + A0 + EPS)
    m["state_obi10"] = (Bs - As) / (Bs + As + EPS)
    below, above = bands if not math.isnan(micro) else ([math.nan] * 5, [math.nan] * 5)
    for b, name in enumerate(BANDS):
        m[f"state_cdi_{name}"] = (below[b] - above[b]) / (below[b] + above[b] + EPS)
        m[f"depth_below_{name}_frac"] = below[b] / (sum(below) + EPS)
        m[f"depth_above_{name}_frac"] = above[b] / (sum(above) + EPS)
        m[f"below_qty_{name}"], m[f"above_qty_{name}"] = below[b], above[b]
    m["depth_bid10_qty_eob"], m["depth_ask10_qty_eob"] = Bs, As
    m["depth_below_p0_1_qty_eob"], m["depth_above_p0_1_qty_eob"] = below[0], above[0]
    for side, p, n in (("bid", bpx, nb), ("ask", apx, na)):
        gaps = [abs(p[i] - p[i + 1]) for i in range(n - 1)]
        m[f"ladder_{side}_gap_max_pts_eob"] = max(gaps) if gaps else math.nan
        m[f"ladder_{side}_gap_mean_pts_eob"] = sum(gaps) / len(gaps) if gaps else math.nan
    m["shape_bid_sz_l00_eob"], m["shape_ask_sz_l00_eob"] = bsz[0], asz[0]
    for side, sz, ct in (("bid", bsz, bct), ("ask", asz, act)):
        for i in range(10):
            m[f"shape_{side}_sz_frac_l{i:02d}_eob"] = sz[i] / (sum(sz) + EPS)
            m[f"shape_{side}_ct_frac_l{i:02d}_eob"] = ct[i] / (sum(ct) + EPS)
    for side, sz, p, n, sign in (("bid", bsz, bpx, nb, 1), ("ask", asz, apx, na, -1)):
        q = [math.log(1 + s) for s in sz]
        mean = sum(q) / 10
        std = max(math.sqrt(sum((x - mean) ** 2 for x in q) / 10), EPS)
        z = [(x - mean) / std for x in q]
        m[f"wall_{side}_maxz_eob"] = max(z)
        m[f"wall_{side}_maxz_levelidx_eob"] = z.index(max(z))
        strong = [i for i in range(n) if z[i] >= 2.0]
        m[f"wall_{side}_nearest_strong_levelidx_eob"] = strong[0] if strong else -1
        m[f"wall_{side}_nearest_strong_dist_pts_eob"] = sign * (micro - p[strong[0]]) if strong else math.nan
    return m


class Lazy(tuple):
    """(time, metrics, levels) with the metrics computed on first use."""

    def __new__(cls, t, lv, bands):
        self = super().__new__(cls, (t, None, lv))
        self._m = None
        self._bands = bands
        return self

    def __getitem__(self, i):
        if i == 1:
            if self._m is None:
                self._m = metrics(tuple.__getitem__(self, 2), self._bands)
            return self._m
        return tuple.__getitem__(self, i)


TWA = ["state_spread_pts", "state_obi0", "state_obi10"] + [f"state_cdi_{b}" for b in BANDS] + \
      [f"depth_{s}_{b}_frac" for s in ("below", "above") for b in BANDS]


def reference_bars(rec, rows, w0, w1, bar):
    rows = pd.DataFrame(rows)
    fields = ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
    lvcols = {f: [f"{f}_{i:02d}" for i in range(10)] for f in fields}
    nbars = (w1 - w0) // bar
    trades = [[] for _ in range(nbars)]
    flow = [[[0.0] * 5 for _ in range(2)] for _ in range(nbars)]
    states = []  # (t, metrics, levels): one per F_LAST record (the rows' levels, the book's bands)
    times = []
    rows_at = []  # positions in states of the states that are MBP-10 rows (OFI and mid RV run over those)
    orders = {}
    depth = {}  # (side, price) -> resting size
    j, running = 0, None
    ts, acts, sides = rec["ts_recv"].astype(np.int64), rec["action"], rec["side"]
    prices, sizes, oids, flags = rec["price"], rec["size"], rec["order_id"], rec["flags"]
    r_ts, r_act, r_side = rows.ts_recv.to_numpy(np.int64), rows.action.to_numpy(), rows.side.to_numpy()
    levels = np.column_stack([rows[c].to_numpy(np.int64) for cols in lvcols.values() for c in cols])
    r_px, r_sz, r_fl = rows.price.to_numpy(), rows["size"].to_numpy(), rows["flags"].to_numpy()
    for i in range(len(rec)):
        t = int(ts[i]) if running is None else max(running, int(ts[i]))
        running = t
        if t >= w1:
            break
        k = (t - w0) // bar if t >= w0 else None
        a, s = acts[i].decode(), sides[i].decode()
        px, sz, oid = int(prices[i]), int(sizes[i]), int(oids[i])
        if a == "T" and k is not None:
            trades[k].append((t, s, px / 1e9, sz))
        if a in "ACM":
            pos = bisect.bisect_left(times, t) - 1  # last state strictly before t
            p = micro_of(tuple.__getitem__(states[pos], 2)) if pos >= 0 else math.nan
            deltas = []  # (side, price, dq)
            sd = {"B": 0, "A": 1}.get(s)
            if a == "A" and sd is not None and px != UNDEF and sz > 0:
                if oid in orders:
                    deltas.append((orders[oid][0], orders[oid][1], -orders[oid][2]))
                orders[oid] = [sd, px, sz]
                deltas.append((sd, px, sz))
            elif a == "C" and oid in orders:
                o = orders[oid]
                rm = min(sz, o[2])
                deltas.append((o[0], o[1], -rm))
                o[2] -= rm
                if o[2] == 0:
                    del orders[oid]
            elif a == "M":
                if oid not in orders:
                    if sd is not None and px != UNDEF and sz > 0:
                        orders[oid] = [sd, px, sz]
                        deltas.append((sd, px, sz))
                elif px != UNDEF:
                    o = orders[oid]
                    deltas.append((o[0], o[1], -o[2]))
                    if sz == 0:
                        del orders[oid]
                    else:
                        deltas.append((o[0], px, sz))
                        o[1], o[2] = px, sz
            for side, price, dq in deltas:
                depth[side, price] = depth.get((side, price), 0) + dq
            if k is not None and not math.isnan(p):
                for side, price, dq in deltas:
                    d = (p - price / 1e9) if side == 0 else (price / 1e9 - p)
                    b = band(d)
                    if b is not None and dq:
                        flow[k][side][b] += dq
        elif a == "R":
            orders.clear()
            depth.clear()
        if (flags[i] & 0x80 and j < len(rows) and r_ts[j] == ts[i] and r_act[j] == acts[i] and r_side[j] == sides[i]
                and r_px[j] == prices[i] and r_sz[j] == sizes[i] and r_fl[j] == flags[i]):
            lv = {f: [int(x) for x in levels[j, n * 10:(n + 1) * 10]] for n, f in enumerate(lvcols)}
            rows_at.append(len(states))
            j += 1
        elif flags[i] & 0x80 and states:
            lv = tuple.__getitem__(states[-1], 2)  # no row: the ten levels stand, deeper ones may not
        else:
            continue
        micro = micro_of(lv)
        bands = band_quantities(depth, micro) if t >= w0 - 60 * bar and not math.isnan(micro) else None
        states.append(Lazy(t, lv, bands))
        times.append(t)
    out = []
    for k in range(nbars):
        bs, be = w0 + k * bar, w0 + (k + 1) * bar
        row = {"bar_ts": bs}
        # segments: state standing at u = last state with time <= u
        cuts = [bs] + [t for t in times if bs < t < be] + [be]
        segs = []
        for u, v in zip(cuts[:-1], cuts[1:]):
            pos = bisect.bisect_right(times, u) - 1
            if v > u and pos >= 0:
                segs.append((v - u, states[pos][1]))

        def twa(name):
            num = sum(w * m[name] for w, m in segs if not math.isnan(m[name]))
            den = sum(w for w, m in segs if not math.isnan(m[name]))
            return num / den if den else math.nan

        pos = bisect.bisect_left(times, be) - 1
        eob = states[pos][1]
        for name, v in eob.items():
            if name.endswith("_eob"):
                row["bar5s_" + name] = v
        for name in TWA:
            row[f"bar5s_{name}_twa"] = twa(name)
            row[f"bar5s_{name}_eob"] = eob[name]
        for s, qname in ((0, "below_qty"), (1, "above_qty")):
            for b, bn in enumerate(BANDS):
                q = twa(f"{qname}_{bn}")
                row[f"bar5s_flow_net_volnorm_{('bid', 'ask')[s]}_{bn}_sum"] = flow[k][s][b] / max(q if q == q else 1, 1)
        tr = trades[k]
        row["bar5s_trade_cnt_sum"] = len(tr)
        row["bar5s_trade_vol_sum"] = sum(x[3] for x in tr)
        row["bar5s_trade_signed_vol_sum"] = sum(x[3] * {"B": 1, "A": -1}.get(x[1], 0) for x in tr)
        row["bar5s_trade_last_px"] = tr[-1][2] if tr else math.nan
        row["bar5s_trade_last_ts"] = tr[-1][0] if tr else -1
        vol = sum(x[3] for x in tr)
        row["bar5s_trade_vwap"] = sum(x[2] * x[3] for x in tr) / vol if vol else math.nan
        # OFI and mid RV over the bar's states vs their predecessors
        ofi0 = ofi10 = rv = 0.0
        idx = [r for r, n in enumerate(rows_at) if bs <= times[n] < be]
        for r in idx:
            if r == 0:
                continue
            n, prev = rows_at[r], rows_at[r - 1]
            a, b = states[prev][2], states[n][2]
            for lvl in range(10):
                def bp(x):
                    return -math.inf if x["bid_px"][lvl] == UNDEF else x["bid_px"][lvl]

                def ap(x):
                    return math.inf if x["ask_px"][lvl] == UNDEF else x["ask_px"][lvl]
                e = ((b["bid_sz"][lvl] if bp(b) >= bp(a) else 0) - (a["bid_sz"][lvl] if bp(b) <= bp(a) else 0)
                     - (b["ask_sz"][lvl] if ap(b) <= ap(a) else 0) + (a["ask_sz"][lvl] if ap(b) >= ap(a) else 0))
                ofi10 += e
                if lvl == 0:
                    ofi0 += e
            m_new = states[n][1]["midprice_eob"]
            q = r - 1
            while q >= 0 and math.isnan(states[rows_at[q]][1]["midprice_eob"]):
                q -= 1
            if not math.isnan(m_new) and q >= 0:
                rv += (math.log(m_new) - math.log(states[rows_at[q]][1]["midprice_eob"])) ** 2
        row["bar5s_ofi_l0_sum"], row["bar5s_ofi_l10_sum"], row["bar5s_mid_rv"] = ofi0, ofi10, rv
        out.append(row)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def session():
    rec, intervals = synth.generate_session_records(DATE, synth.SynthParams(intensity=60_000))
    front_iid = intervals["ESZ5"][0][2]
    front = rec[rec["instrument_id"] == front_iid]
    return front, OrderBook().apply(front)


def test_kernel_matches_plain_python_reference(session):
    front, rows = session
    w0 = local_time_to_ns(DATE, 9, 25, "America/New_York")
    w1 = local_time_to_ns(DATE, 9, 35, "America/New_York")
    got = build_bars(front, rows, BarParams(w0, w1))
    ref = reference_bars(front, rows, w0, w1, 5_000_000_000)
    assert len(got) == len(ref) == 120
    assert set(ref.columns) == set(BAR_COLUMNS)
    assert got["bar5s_trade_cnt_sum"].sum() > 20  # the stretch is not trivial
    for c in BAR_COLUMNS:
        g, r = got[c].to_numpy(np.float64), ref[c].to_numpy(np.float64)
        if c == "bar5s_trade_last_ts":
            assert (got[c].to_numpy() == ref[c].to_numpy()).all(), c
            continue
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)
    assert to_points(int(front["price"][1])) > 0
