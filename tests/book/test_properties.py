"""Property tests: random valid MBO streams, fast kernel == plain-Python reference."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mbolake.book import MBP10_COLUMNS, OrderBook, ReferenceBook
from mbolake.io.dbn import F_LAST, F_SNAPSHOT, MBO_DTYPE, UNDEF_PRICE

TICK = 250_000_000
BASE = 4000 * 4 * TICK

op = st.tuples(
    st.integers(0, 2),  # instrument
    st.sampled_from("AAAACCCMMMTFRNX"),  # X: an add far from the touch
    st.integers(0, 1),  # side
    st.integers(-6, 6),  # price offset in ticks (both sides overlap: crossed books happen)
    st.integers(0, 12),  # size (0 is an invalid add / a zero modify)
    st.integers(0, 10_000),  # which live order to touch (or an unknown one)
    st.integers(0, 9),  # flags selector
)


def build(ops) -> np.ndarray:
    """Turn drawn ops into MBO records that mostly reference live orders."""
    live: dict[int, list[int]] = {0: [], 1: [], 2: []}
    rows = []
    next_id = 1 << 40  # large ids exercise the uint64 path
    for inst, kind, side, off, size, pick, fsel in ops:
        flags = 0 if fsel < 3 else F_LAST
        if fsel == 9:
            flags |= F_SNAPSHOT
        sd = "B" if side == 0 else "A"
        price = BASE + off * TICK
        oid = 0
        if kind in "AX":
            if kind == "X":
                price = BASE + (-1 if side == 0 else 1) * (20 + pick % 40) * TICK
            oid = next_id
            next_id += 1 + pick % 3
            if size:
                live[inst].append(oid)
            act = "A"
        elif kind in "CMF":
            act = kind
            if live[inst] and pick % 10:
                oid = live[inst][pick % len(live[inst])]
            else:
                oid = 7 + pick  # unknown to the book
            if kind == "C" and pick % 4 == 0:
                size = 1000  # larger than resting: a negative-size attempt
        elif kind == "R":
            act, sd, price, size = "R", "N", UNDEF_PRICE, 0
            live[inst].clear()
        elif kind == "T":
            act, sd = "T", "BAN"[pick % 3]
        else:
            act, sd = "N", "N"
        rows.append((inst, act, sd, price, size, oid, flags))
    rec = np.zeros(len(rows), MBO_DTYPE)
    for i, (inst, act, sd, price, size, oid, flags) in enumerate(rows):
        rec[i]["instrument_id"], rec[i]["action"], rec[i]["side"] = 100 + inst, act, sd
        rec[i]["price"], rec[i]["size"], rec[i]["order_id"], rec[i]["flags"] = price, size, oid, flags
    rec["length"], rec["rtype"], rec["publisher_id"] = 14, 0xA0, 1
    rec["channel_id"] = rec["instrument_id"] % 2
    rec["ts_recv"] = 10**18 + np.arange(len(rows), dtype=np.uint64) * 7
    rec["ts_event"] = rec["ts_recv"] - 3
    rec["sequence"] = np.arange(len(rows)) + 1
    return rec


def assert_same_rows(a, b):
    assert set(a) == set(b) == set(MBP10_COLUMNS)  # by name: the reference keeps Databento's record order
    for name in MBP10_COLUMNS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def assert_same_book(fast: OrderBook, ref: ReferenceBook):
    qf = fast.quality().set_index(["publisher_id", "instrument_id"])
    qr = ref.quality()
    assert len(qf) == len(qr)
    for key, counters in qr.items():
        row = qf.loc[key]
        for name in qf.columns:
            assert row[name] == counters.get(name, 0), (key, name)
        for side in "BA":
            levels = fast.levels(*key, side, depth=10_000)
            assert levels == ref.levels(*key, side, depth=10_000)
            for price, _, _ in levels:
                assert fast.orders_at(*key, side, price) == ref.orders_at(*key, side, price)


def cat(parts):
    return {name: np.concatenate([p[name] for p in parts]) for name in MBP10_COLUMNS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=300), st.booleans())
def test_fast_equals_reference(ops, every):
    rec = build(ops)
    fast, ref = OrderBook(), ReferenceBook()
    assert_same_rows(fast.apply(rec, every), ref.apply(rec, every))
    assert fast.check_invariants() == []
    assert_same_book(fast, ref)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=300), st.lists(st.integers(0, 300), max_size=4), st.booleans())
def test_batches_and_state_round_trips_change_nothing(ops, cuts, every):
    rec = build(ops)
    whole = OrderBook().apply(rec, every)
    cuts = sorted({c % (len(rec) + 1) for c in cuts}) + [len(rec)]
    book, parts, lo = OrderBook(), [], 0
    for hi in cuts:
        parts.append(book.apply(rec[lo:hi], every))
        assert book.check_invariants() == []
        book = OrderBook.from_state_bytes(book.state_bytes())  # stop anywhere, even mid-group
        lo = hi
    assert_same_rows(cat(parts), whole)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=200))
def test_level_aggregates_match_orders(ops):
    rec = build(ops)
    book = OrderBook()
    book.apply(rec)
    for pub, inst in book.books():
        for side in "BA":
            levels = book.levels(pub, inst, side, depth=10_000)
            prices = [p for p, _, _ in levels]
            assert prices == sorted(prices, reverse=(side == "B"))  # best first, strictly
            assert len(set(prices)) == len(prices)
            for price, size, count in levels:
                orders = book.orders_at(pub, inst, side, price)
                assert count == len(orders) > 0
                assert size == sum(s for _, s in orders)
                assert all(s > 0 for _, s in orders)


def test_state_restored_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(3)
    ops = [(int(rng.integers(3)), "AAAACCCMMMTFRNX"[rng.integers(15)], int(rng.integers(2)),
            int(rng.integers(-6, 7)), int(rng.integers(13)), int(rng.integers(10_000)), int(rng.integers(10)))
           for _ in range(3000)]
    rec = build(ops)
    cut = 1777  # whatever the group state there is
    whole = OrderBook().apply(rec)
    book = OrderBook()
    first = book.apply(rec[:cut])
    (tmp_path / "state.bin").write_bytes(book.state_bytes())
    np.save(tmp_path / "rest.npy", rec[cut:])
    script = textwrap.dedent(f"""
        import numpy as np
        from mbolake.book import OrderBook
        book = OrderBook.from_state_bytes(open({str(tmp_path / 'state.bin')!r}, 'rb').read())
        out = book.apply(np.load({str(tmp_path / 'rest.npy')!r}))
        np.savez({str(tmp_path / 'rest_rows.npz')!r}, **out)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    with np.load(tmp_path / "rest_rows.npz") as z:
        second = {name: z[name] for name in MBP10_COLUMNS}
    assert len(whole["ts_recv"]) > 100
    assert_same_rows(cat([first, second]), whole)


@pytest.mark.slow  # recompiles the kernel with NUMBA_BOUNDSCHECK in a subprocess: about 2 minutes
def test_kernel_never_indexes_outside_its_arrays(tmp_path):
    """The kernel is compiled without numba's negative-index fix-up (book/jit.py), so a
    negative or too-large index would read or write outside an array. Replay random
    streams (unknown orders, clears, growth of every table, state round trips) in a process
    where numba checks every index, and get the rows the fast build gives."""
    rng = np.random.default_rng(11)
    ops = [(int(rng.integers(3)), "AAAACCCMMMTFRNX"[rng.integers(15)], int(rng.integers(2)),
            int(rng.integers(-6, 7)), int(rng.integers(13)), int(rng.integers(10_000)), int(rng.integers(10)))
           for _ in range(6000)]
    rec = build(ops)
    np.save(tmp_path / "rec.npy", rec)
    script = textwrap.dedent(f"""
        import numpy as np, numba
        from mbolake.book import OrderBook
        from mbolake.core.jit import njit_plain_indices, plain_indices_supported
        assert numba.config.BOUNDSCHECK and plain_indices_supported()

        @njit_plain_indices()
        def item(a, i):
            return a[i]

        try:
            item(np.zeros(3), -1)
        except IndexError:
            pass
        else:
            raise SystemExit("a negative index went unchecked")
        rec = np.load({str(tmp_path / 'rec.npy')!r})
        book, parts = OrderBook(), []
        for lo in range(0, len(rec), 1500):
            parts.append(book.apply(rec[lo:lo + 1500], True))
            book = OrderBook.from_state_bytes(book.state_bytes())
        np.savez({str(tmp_path / 'rows.npz')!r}, **{{k: np.concatenate([p[k] for p in parts]) for k in parts[0]}})
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=900, env=env)
    with np.load(tmp_path / "rows.npz") as z:
        checked = {name: z[name] for name in MBP10_COLUMNS}
    assert len(checked["ts_recv"]) == len(rec)
    assert_same_rows(checked, OrderBook().apply(rec, True))
