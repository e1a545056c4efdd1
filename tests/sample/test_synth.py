"""The synthetic ES MBO generator: real DBN files, CME record structure, a consistent book."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from mbolake.io import dbn
from mbolake.sample import synth

INTENSITY = 60_000
DATE = dt.date(2025, 11, 3)
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def params() -> synth.SynthParams:
    return synth.SynthParams(sessions=2, first_date=DATE, intensity=INTENSITY, seed=11)


@pytest.fixture(scope="module")
def sample(tmp_path_factory, params):
    root = tmp_path_factory.mktemp("synth")
    return root, synth.generate_sample(root, params, progress=False)


@pytest.fixture(scope="module")
def session(sample):
    _, paths = sample
    header, records = dbn.read_mbo(paths[0])
    return header, records


def _ny_ns(d: dt.date, h: int, m: int) -> int:
    return int(dt.datetime(d.year, d.month, d.day, h, m, tzinfo=NY).timestamp()) * 1_000_000_000


def _front_id(header) -> int:
    front, _ = synth.front_and_back_month(DATE)
    return next(iid for iid, ivs in header.instruments.items() if ivs[0].raw_symbol == front)


def replay(records: np.ndarray):
    """Plain-Python L3 book per instrument: counts faults, mid at F_LAST (per instrument)."""
    books: dict[int, dict[int, tuple[bytes, int, int]]] = {}
    levels: dict[int, dict[bytes, dict[int, int]]] = {}
    faults = {"unknown": 0, "negative": 0, "wrong_price": 0, "wrong_side": 0, "crossed": 0, "dup_add": 0}
    mids: dict[int, list[tuple[int, float]]] = {}
    last_add_id = 0
    for r in records.tolist():
        (_, _, _, iid, ts_event, oid, price, size, flags, _, action, side, ts_recv, _, _) = r
        book = books.setdefault(iid, {})
        lv = levels.setdefault(iid, {b"B": {}, b"A": {}})

        def level_add(s, px, q):
            d = lv[s]
            d[px] = d.get(px, 0) + q
            if d[px] == 0:
                del d[px]

        if action == b"R":
            book.clear()
            lv[b"B"].clear()
            lv[b"A"].clear()
        elif action == b"A":
            if oid in book:
                faults["dup_add"] += 1
            if oid <= last_add_id:
                faults["dup_add"] += 1
            last_add_id = oid
            book[oid] = (side, price, size)
            level_add(side, price, size)
        elif action in (b"C", b"F", b"M"):
            if oid not in book:
                faults["unknown"] += 1
            else:
                s, px, q = book[oid]
                if s != side:
                    faults["wrong_side"] += 1
                if action in (b"C", b"F"):
                    if px != price:
                        faults["wrong_price"] += 1
                    if size > q:
                        faults["negative"] += 1
                if action == b"C":
                    level_add(s, px, -size)
                    if size >= q:
                        del book[oid]
                    else:
                        book[oid] = (s, px, q - size)
                elif action == b"M":
                    level_add(s, px, -q)
                    book[oid] = (s, price, size)
                    level_add(s, price, size)
        if flags & dbn.F_LAST:
            bids, asks = lv[b"B"], lv[b"A"]
            if bids and asks:
                bb, ba = max(bids), min(asks)
                if bb >= ba:
                    faults["crossed"] += 1
                mids.setdefault(iid, []).append((ts_recv, (bb + ba) / 2e9))
    return faults, mids


def approach_counts(mids: list[tuple[int, float]], day: dt.date) -> dict[str, tuple[int, int]]:
    ts = np.array([m[0] for m in mids], dtype=np.int64)
    mid = np.array([m[1] for m in mids])
    pm = (ts >= _ny_ns(day, 5, 0)) & (ts < _ny_ns(day, 9, 30))
    orr = (ts >= _ny_ns(day, 9, 30)) & (ts < _ny_ns(day, 9, 45))
    after = mid[ts >= _ny_ns(day, 9, 45)]
    levels = {
        "pm_high": mid[pm].max(),
        "pm_low": mid[pm].min(),
        "or_high": mid[orr].max(),
        "or_low": mid[orr].min(),
    }
    out = {}
    for name, level in levels.items():
        sign = np.sign(after - level)
        sign = sign[sign != 0]
        ch = np.diff(sign)
        out[name] = (int((ch > 0).sum()), int((ch < 0).sum()))  # (from below, from above)
    return out


# ---------------------------------------------------------------- calendar


def test_session_dates_weekdays_only():
    dates = synth.session_dates(dt.date(2025, 11, 1), 7)  # a Saturday
    assert dates[0] == dt.date(2025, 11, 3)
    assert all(d.weekday() < 5 for d in dates)
    assert dates == sorted(set(dates))
    assert dates[5] == dt.date(2025, 11, 10)


@pytest.mark.parametrize(
    "day, expected",
    [
        (dt.date(2025, 11, 3), ("ESZ5", "ESH6")),
        (dt.date(2025, 12, 10), ("ESZ5", "ESH6")),  # expiry Fri 2025-12-19, roll 12-11
        (dt.date(2025, 12, 11), ("ESH6", "ESM6")),
        (dt.date(2026, 3, 11), ("ESH6", "ESM6")),  # expiry 2026-03-20, roll 03-12
        (dt.date(2026, 3, 12), ("ESM6", "ESU6")),
        (dt.date(2026, 7, 1), ("ESU6", "ESZ6")),
    ],
)
def test_front_and_back_month(day, expected):
    assert synth.front_and_back_month(day) == expected


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sessions": 0}, "sessions"),
        ({"intensity": 9_999}, "intensity"),
        ({"cancel_ratio": 1.5}, "cancel_ratio"),
        ({"order_size_p": 0.0}, "order_size_p"),
        ({"volatility": -1.0}, "volatility"),
        ({"back_month_share": 0.0}, "back_month_share"),
        ({"first_date": "2025-11-03"}, "first_date"),
    ],
)
def test_validation_names_the_parameter(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        synth.generate_sample(tmp_path, synth.SynthParams(**kwargs), progress=False)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- files


def test_paths_and_databento_reads_back(sample, params):
    root, paths = sample
    dates = synth.session_dates(params.first_date, params.sessions)
    assert len(paths) == params.sessions
    for d, path in zip(dates, paths):
        ymd = d.strftime("%Y%m%d")
        assert path == root / "ES" / "FUT" / ymd / f"glbx-mdp3-{ymd}.mbo.dbn.zst"
        assert d.weekday() < 5
    import databento

    store = databento.DBNStore.from_file(str(paths[0]))
    df = store.to_df()
    _, ours = dbn.read_mbo(paths[0])
    assert len(df) == len(ours)
    assert store.dataset == "GLBX.MDP3"
    front, back = synth.front_and_back_month(dates[0])
    assert set(store.symbology["mappings"]) == {front, back, f"{front}-{back}"}
    assert set(df["symbol"].unique()) == {front, back, f"{front}-{back}"}
    assert len(df["instrument_id"].unique()) == 3


def test_record_count_near_intensity(session):
    _, rec = session
    assert 0.75 * INTENSITY <= len(rec) <= 1.3 * INTENSITY


def test_header_fields(session):
    _, rec = session
    assert (rec["rtype"] == 0xA0).all() and (rec["length"] == 14).all()
    assert (rec["publisher_id"] == 1).all() and (rec["channel_id"] == 0).all()
    assert (rec["ts_in_delta"] > 0).all()
    px = rec["price"][rec["action"] != b"R"]
    assert (px % 250_000_000 == 0).all()


def test_back_month_and_spread_present_but_thin(session):
    header, rec = session
    front = _front_id(header)
    counts = {iid: int((rec["instrument_id"] == iid).sum()) for iid in header.instruments}
    for iid, n in counts.items():
        if iid == front:
            assert n / len(rec) > 0.95
        else:
            assert 0.002 < n / len(rec) < 0.04
    spread_id = next(i for i, ivs in header.instruments.items() if "-" in ivs[0].raw_symbol)
    spx = rec["price"][(rec["instrument_id"] == spread_id) & (rec["action"] != b"R")] / 1e9
    assert np.abs(spx).max() < 150
    fpx = rec["price"][(rec["instrument_id"] == front) & (rec["action"] != b"R")] / 1e9
    assert 4500 < fpx.min() and fpx.max() < 6500


def test_start_is_clear_then_snapshot(session):
    header, rec = session
    for iid in header.instruments:
        r = rec[rec["instrument_id"] == iid]
        assert r["action"][0] == b"R"
        snap = (r["flags"] & dbn.F_SNAPSHOT) != 0
        n_snap = int(np.argmin(snap))  # first non-snapshot record
        assert snap[:n_snap].all() and not snap[n_snap:].any()
        body = r[1:n_snap]
        assert (body["action"] == b"A").all()
        assert (body["ts_event"] < body["ts_recv"]).all()
        assert (body["flags"][:-1] & dbn.F_LAST == 0).all() and body["flags"][-1] & dbn.F_LAST
        for side in (b"B", b"A"):
            s = body[body["side"] == side]
            levels = np.unique(s["price"])
            assert len(levels) >= 10
            per_level = {p: int(s["size"][s["price"] == p].sum()) for p in levels}
            assert all(10 <= q <= 67 for q in per_level.values())
        if iid == _front_id(header):
            bids = body[body["side"] == b"B"]
            top = bids["price"].max()
            assert 8 <= int((bids["price"] == top).sum()) <= 40


def test_timestamps_and_sequence(session, params):
    _, rec = session
    assert (rec["ts_recv"] >= rec["ts_event"]).all()
    assert (np.diff(rec["ts_recv"].astype(np.int64)) >= 0).all()
    assert (np.diff(rec["sequence"].astype(np.int64)) >= 0).all()
    lat = (rec["ts_recv"] - rec["ts_event"])[(rec["flags"] & dbn.F_SNAPSHOT) == 0]
    assert lat.min() >= 1_000 and np.median(lat) < 1_000_000
    lo, hi = _ny_ns(DATE, 0, 0), _ny_ns(DATE + dt.timedelta(days=1), 0, 0)
    assert rec["ts_event"].min() >= lo and rec["ts_recv"].max() < hi
    stream = rec[(rec["flags"] & dbn.F_SNAPSHOT) == 0]
    assert stream["ts_event"].min() >= _ny_ns(DATE, 4, 30)
    assert stream["ts_event"].max() < _ny_ns(DATE, 13, 0)


def test_event_structure(session):
    header, rec = session
    for iid in header.instruments:
        r = rec[(rec["instrument_id"] == iid) & ((rec["flags"] & dbn.F_SNAPSHOT) == 0)]
        last = (r["flags"] & dbn.F_LAST) != 0
        assert last[-1]
        ends = np.flatnonzero(last)
        starts = np.concatenate([[0], ends[:-1] + 1])
        actions = r["action"]
        n_trades = 0
        for s, e in zip(starts, ends):
            ev = r[s : e + 1]
            assert (ev["ts_event"] == ev["ts_event"][0]).all()
            if e == s:
                assert actions[s] in (b"A", b"C", b"M")
                continue
            n_trades += 1
            acts = ev["action"]
            n = (len(ev) - 1) // 2
            assert len(ev) == 1 + 2 * n and n >= 1
            assert acts[0] == b"T" and (acts[1 : 1 + n] == b"F").all() and (acts[1 + n :] == b"C").all()
            t = ev[0]
            assert t["order_id"] == 0 and t["side"] in (b"A", b"B")
            fills, cancels = ev[1 : 1 + n], ev[1 + n :]
            assert t["size"] == fills["size"].sum()
            assert (fills["order_id"] == cancels["order_id"]).all() and (fills["size"] == cancels["size"]).all()
            resting = b"A" if t["side"] == b"B" else b"B"
            assert (fills["side"] == resting).all()
            # the print is at the touch: the first fill is at the T price
            assert fills["price"][0] == t["price"]
        assert n_trades > 0 or iid != _front_id(header)


def test_replay_consistent_book(session):
    header, rec = session
    faults, mids = replay(rec)
    assert faults == {"unknown": 0, "negative": 0, "wrong_price": 0, "wrong_side": 0, "crossed": 0, "dup_add": 0}
    assert set(mids) == set(header.instruments)


def test_trade_prints_at_touch(session):
    header, rec = session
    front = _front_id(header)
    r = rec[rec["instrument_id"] == front]
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    orders: dict[int, tuple[bytes, int, int]] = {}
    bad = 0
    for (_, _, _, _, _, oid, price, size, _, _, action, side, _, _, _) in r.tolist():
        book = bids if side == b"B" else asks
        if action == b"T":
            touch = min(asks) if side == b"B" else max(bids)
            bad += price != touch
        elif action == b"A":
            orders[oid] = (side, price, size)
            book[price] = book.get(price, 0) + size
        elif action in (b"C", b"M"):
            s, p, q = orders.pop(oid)
            book[p] -= q
            if not book[p]:
                del book[p]
            nq, np_ = (q - size, p) if action == b"C" else (size, price)
            if nq:
                orders[oid] = (s, np_, nq)
                book[np_] = book.get(np_, 0) + nq
    assert bad == 0


def test_approaches_from_both_sides(sample):
    _, paths = sample
    for path in paths:
        header, rec = dbn.read_mbo(path)
        day = header.instruments[next(iter(header.instruments))][0].start_date
        front, _ = synth.front_and_back_month(day)
        fid = next(i for i, ivs in header.instruments.items() if ivs[0].raw_symbol == front)
        _, mids = replay(rec[rec["instrument_id"] == fid])
        counts = approach_counts(mids[fid], day)
        print(day, counts)
        total = sum(a + b for a, b in counts.values())
        assert total >= 8, counts
        both = [name for name, (a, b) in counts.items() if a >= 2 and b >= 2]
        assert len(both) >= 2, counts


def test_deterministic(tmp_path, params, sample):
    _, paths = sample
    again = synth.generate_sample(tmp_path, params, progress=False)
    for a, b in zip(paths, again):
        assert a.read_bytes() == b.read_bytes()
    other = synth.generate_sample(tmp_path / "other", synth.SynthParams(sessions=1, first_date=DATE, intensity=INTENSITY, seed=12), progress=False)
    assert other[0].read_bytes() != paths[0].read_bytes()


def test_generate_session_records_matches_file(session, params):
    _, rec = session
    ours, intervals = synth.generate_session_records(DATE, params)
    assert np.array_equal(ours, rec)
    assert len(intervals) == 3
    with pytest.raises(ValueError, match="weekday"):
        synth.generate_session_records(dt.date(2025, 11, 8), params)
