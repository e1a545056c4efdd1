"""Hand-written MBO streams with exact end states: one test per action and priority rule."""
from __future__ import annotations

import numpy as np
import pytest

from mbolake.book import MBP10_COLUMNS, OrderBook, ReferenceBook
from mbolake.io.dbn import F_BAD_TS_RECV, F_LAST, F_MAYBE_BAD_BOOK, F_SNAPSHOT, MBO_DTYPE, UNDEF_PRICE

PX = 1_000_000_000  # 1.0 in Databento fixed-point
PUB, INST = 1, 42


def mbo(rows, pub=PUB, inst=INST, start_seq=1):
    """rows: (action, side, price in units, size, order_id[, flags]) -> MBO_DTYPE records."""
    rec = np.zeros(len(rows), MBO_DTYPE)
    for i, row in enumerate(rows):
        act, side, price, size, oid = row[:5]
        rec[i]["action"], rec[i]["side"] = act, side
        rec[i]["price"] = UNDEF_PRICE if price is None else int(round(price * PX))
        rec[i]["size"], rec[i]["order_id"] = size, oid
        rec[i]["flags"] = row[5] if len(row) > 5 else F_LAST
    rec["length"], rec["rtype"] = 14, 0xA0
    rec["publisher_id"], rec["instrument_id"] = pub, inst
    rec["ts_recv"] = 1_000 + np.arange(len(rows), dtype=np.uint64) * 10
    rec["ts_event"] = rec["ts_recv"] - 5
    rec["sequence"] = start_seq + np.arange(len(rows))
    return rec


def run(rows, every_record=False, **kw):
    """Apply to both books; assert they agree; return (fast book, rows)."""
    rec = mbo(rows, **kw) if not isinstance(rows, np.ndarray) else rows
    fast, ref = OrderBook(), ReferenceBook()
    out, out_ref = fast.apply(rec, every_record), ref.apply(rec, every_record)
    for name in MBP10_COLUMNS:
        np.testing.assert_array_equal(out[name], out_ref[name], err_msg=name)
    assert fast.check_invariants() == []
    return fast, out


def q(book, name, pub=PUB, inst=INST):
    df = book.quality()
    return df.loc[(df.publisher_id == pub) & (df.instrument_id == inst), name].item()


def test_add_queues_at_back_and_levels_sorted():
    book, out = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 3, 2), ("A", "B", 9.75, 4, 3),
                     ("A", "A", 10.25, 7, 4), ("A", "A", 10.5, 1, 5), ("A", "B", 10.0, 2, 6)])
    assert book.levels(PUB, INST, "B") == [(10 * PX, 10, 3), (int(9.75 * PX), 4, 1)]
    assert book.levels(PUB, INST, "A") == [(int(10.25 * PX), 7, 1), (int(10.5 * PX), 1, 1)]
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(1, 5), (2, 3), (6, 2)]
    assert len(out["ts_recv"]) == 6  # every add changed the top 10


def test_partial_cancel_keeps_priority_full_cancel_removes():
    book, _ = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 3, 2), ("C", "B", 10.0, 2, 1),
                   ("C", "B", 10.0, 3, 2)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(1, 3)]
    assert book.levels(PUB, INST, "B") == [(10 * PX, 3, 1)]
    assert q(book, "negative_size_attempts") == 0


def test_cancel_larger_than_resting_is_counted_and_removes():
    book, _ = run([("A", "A", 11.0, 2, 7), ("C", "A", 11.0, 5, 7)])
    assert book.levels(PUB, INST, "A") == []
    assert q(book, "negative_size_attempts") == 1 and q(book, "live_orders") == 0


def test_modify_size_decrease_keeps_priority():
    book, _ = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 3, 2), ("M", "B", 10.0, 2, 1)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(1, 2), (2, 3)]


def test_modify_size_increase_loses_priority():
    book, _ = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 3, 2), ("M", "B", 10.0, 6, 1)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(2, 3), (1, 6)]
    assert book.levels(PUB, INST, "B") == [(10 * PX, 9, 2)]


def test_modify_price_change_crosses_levels_and_goes_to_back():
    book, out = run([("A", "A", 10.5, 5, 1), ("A", "A", 10.25, 3, 2), ("A", "A", 10.25, 1, 3),
                     ("M", "A", 10.25, 5, 1)])
    assert book.levels(PUB, INST, "A") == [(int(10.25 * PX), 9, 3)]
    assert book.orders_at(PUB, INST, "A", int(10.25 * PX)) == [(2, 3), (3, 1), (1, 5)]
    # the modify emptied level 10.5 and joined the best level: depth 0
    assert out["depth"][-1] == 0 and out["ask_px_01"][-1] == UNDEF_PRICE


def test_same_price_same_size_modify_changes_nothing():
    book, out = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 3, 2), ("M", "B", 10.0, 5, 1)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(1, 5), (2, 3)]
    assert len(out["ts_recv"]) == 2  # no row for an unchanged top 10


def test_modify_of_unknown_order_is_an_add_and_is_counted():
    book, _ = run([("A", "B", 10.0, 5, 1), ("M", "B", 10.0, 4, 99)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(1, 5), (99, 4)]
    assert q(book, "unknown_modifies") == 1 and q(book, "unknown_order_refs") == 1


def test_trade_and_fill_never_change_the_book():
    book, out = run([("A", "A", 10.0, 5, 1), ("T", "N", 10.0, 2, 0, 0), ("F", "A", 10.0, 2, 1, 0),
                     ("T", "B", 10.0, 1, 0, F_LAST), ("F", "N", 10.0, 1, 1, F_LAST)])
    assert book.levels(PUB, INST, "A") == [(10 * PX, 5, 1)]
    assert len(out["ts_recv"]) == 1  # only the add
    assert q(book, "trades") == 2 and q(book, "fills") == 2 and q(book, "unknown_fills") == 0


def test_fill_then_cancel_removes_the_quantity():
    book, out = run([("A", "A", 10.0, 5, 1), ("T", "B", 10.0, 2, 0, 0), ("F", "A", 10.0, 2, 1, 0),
                     ("C", "A", 10.0, 2, 1, F_LAST)])
    assert book.levels(PUB, INST, "A") == [(10 * PX, 3, 1)]
    assert len(out["ts_recv"]) == 2
    last = {k: v[-1] for k, v in out.items()}
    assert (last["action"], last["side"], last["depth"], last["ask_sz_00"]) == (b"C", b"A", 0, 3)


def test_clear_in_the_middle_of_a_session():
    book, out = run([("A", "B", 10.0, 5, 1), ("A", "A", 10.5, 5, 2), ("R", "N", None, 0, 0),
                     ("A", "B", 9.0, 1, 3), ("C", "B", 10.0, 5, 1)])
    assert book.levels(PUB, INST, "B") == [(9 * PX, 1, 1)]
    assert book.levels(PUB, INST, "A") == []
    assert q(book, "book_complete") and q(book, "clears") == 1
    assert q(book, "unknown_cancels") == 1  # order 1 went with the clear
    assert out["bid_px_00"][2] == UNDEF_PRICE and out["ask_px_00"][2] == UNDEF_PRICE


def test_book_complete_only_after_clear_or_snapshot():
    book, _ = run([("A", "B", 10.0, 5, 1)])
    assert not q(book, "book_complete")
    book, _ = run([("A", "B", 10.0, 5, 1, F_SNAPSHOT | F_LAST)])
    assert q(book, "book_complete")


def test_unknown_cancel_and_fill_are_counted_not_raised():
    book, out = run([("C", "B", 10.0, 5, 11), ("F", "A", 10.0, 1, 12), ("N", "N", None, 0, 0)])
    assert q(book, "unknown_cancels") == 1 and q(book, "unknown_fills") == 1
    assert q(book, "unknown_order_refs") == 2 and q(book, "nones") == 1
    assert len(out["ts_recv"]) == 0


def test_crossed_and_locked_feed_counted_at_f_last():
    book, _ = run([("A", "B", 10.0, 1, 1), ("A", "A", 10.0, 1, 2),  # locked
                   ("A", "B", 10.25, 1, 3, 0), ("C", "B", 10.25, 1, 3, F_LAST),  # crossed mid-group only
                   ("A", "B", 10.5, 1, 4)])  # crossed
    assert q(book, "locked_groups") == 2 and q(book, "crossed_groups") == 1
    assert book.levels(PUB, INST, "B")[0] == (int(10.5 * PX), 1, 1)


def test_rows_only_at_f_last_and_every_record_mode():
    rows = [("A", "B", 10.0, 5, 1, 0), ("A", "B", 10.0, 3, 2, 0), ("C", "B", 10.0, 1, 1, F_LAST),
            ("A", "A", 11.0, 1, 3, 0)]  # unfinished group: no row yet
    _, out = run(rows)
    assert len(out["ts_recv"]) == 1
    assert (out["action"][0], out["size"][0], out["bid_sz_00"][0], out["bid_ct_00"][0]) == (b"C", 1, 7, 2)
    assert out["ask_px_00"][0] == UNDEF_PRICE
    _, every = run(rows, every_record=True)
    assert list(every["bid_sz_00"]) == [5, 8, 7, 7] and list(every["ask_sz_00"]) == [0, 0, 0, 1]


def test_group_that_restores_the_top_emits_nothing():
    _, out = run([("A", "B", 10.0, 5, 1), ("A", "B", 10.0, 2, 2, 0), ("C", "B", 10.0, 2, 2, F_LAST)])
    assert len(out["ts_recv"]) == 1


def test_mbp10_layout_and_empty_level_sentinels():
    rows = [("A", "B", 100 - k * 0.25, 1 + k, 100 + k) for k in range(12)] + [("A", "A", 101.0, 9, 1)]
    book, out = run(rows)
    assert list(out) == list(MBP10_COLUMNS)
    assert list(MBP10_COLUMNS[:12]) == ["ts_recv", "ts_event", "rtype", "publisher_id", "instrument_id",
                                        "action", "side", "depth", "price", "size", "flags", "sequence"]
    assert MBP10_COLUMNS[12] == "bid_px_00" and MBP10_COLUMNS[-1] == "ask_ct_09"
    assert out["rtype"].dtype == np.uint8 and set(out["rtype"]) == {10}
    assert out["bid_px_00"].dtype == np.int64 and out["bid_sz_00"].dtype == np.uint32
    last = {k: v[-1] for k, v in out.items()}
    assert [last[f"bid_px_{m:02d}"] for m in range(10)] == [int((100 - m * 0.25) * PX) for m in range(10)]
    assert [last[f"bid_sz_{m:02d}"] for m in range(10)] == list(range(1, 11))
    assert last["ask_px_00"] == 101 * PX and last["ask_sz_00"] == 9 and last["ask_ct_00"] == 1
    assert all(last[f"ask_px_{m:02d}"] == UNDEF_PRICE and last[f"ask_sz_{m:02d}"] == 0
               and last[f"ask_ct_{m:02d}"] == 0 for m in range(1, 10))
    # adds below the 10th bid do not change the top 10: 13 records, 11 rows
    assert len(out["ts_recv"]) == 11
    assert len(book.levels(PUB, INST, "B", depth=50)) == 12


def test_depth_is_the_level_index_touched():
    _, out = run([("A", "B", 10.0, 1, 1), ("A", "B", 9.0, 1, 2), ("A", "B", 9.5, 1, 3),
                  ("C", "B", 9.5, 1, 3)])
    assert list(out["depth"]) == [0, 1, 1, 1]


def test_instruments_are_separate_books_and_flags_counted():
    a = mbo([("A", "B", 10.0, 5, 1, F_LAST | F_BAD_TS_RECV)], inst=1)
    b = mbo([("A", "B", 20.0, 5, 1, F_LAST | F_MAYBE_BAD_BOOK), ("C", "B", 20.0, 5, 1)], inst=2, start_seq=2)
    book, out = run(np.concatenate([a, b]))
    assert book.levels(PUB, 1, "B") == [(10 * PX, 5, 1)] and book.levels(PUB, 2, "B") == []
    assert q(book, "bad_ts_recv_flags", inst=1) == 1 and q(book, "maybe_bad_book_flags", inst=2) == 1
    assert list(out["instrument_id"]) == [1, 2, 2]


def test_sequence_gaps_and_ts_recv_going_back():
    rec = mbo([("A", "B", 10.0, 1, 1), ("A", "B", 10.0, 1, 2), ("A", "B", 10.0, 1, 3), ("A", "B", 10.0, 1, 4)])
    rec["sequence"] = [10, 11, 15, 12]  # a jump of 4, then a decrease
    rec["ts_recv"][3] = 0
    book, _ = run(rec)
    assert q(book, "seq_jumps") == 1 and q(book, "seq_decreases") == 1
    assert q(book, "ts_recv_non_monotonic") == 1
    ch = book.channel_quality()
    assert ch[["seq_jumps", "seq_decreases", "last_sequence"]].values.tolist() == [[1, 1, 12]]


def test_column_mapping_input_matches_structured_input():
    rec = mbo([("A", "B", 10.0, 5, 1), ("A", "A", 11.0, 2, 2), ("C", "B", 10.0, 1, 1)])
    import pandas as pd

    df = pd.DataFrame({name: rec[name] for name in rec.dtype.names})
    df["action"] = df["action"].str.decode("ascii")
    df["side"] = df["side"].str.decode("ascii")
    a, b = OrderBook().apply(rec), OrderBook().apply(df)
    for name in MBP10_COLUMNS:
        np.testing.assert_array_equal(a[name], b[name])


def test_arrow_shaped_columns_with_null_prices():
    """Arrow/Parquet columns: int32 ids and flags, int64 sizes, price float64 with NaN for
    null. NaN is the undefined-price sentinel, without a RuntimeWarning from the cast."""
    import warnings

    rec = mbo([("R", "N", None, 0, 0, F_LAST | F_SNAPSHOT), ("A", "B", 10.0, 5, 1), ("A", "A", 11.0, 2, 2),
               ("T", "N", None, 1, 0), ("C", "B", 10.0, 1, 1), ("A", "N", None, 3, 3)])
    cols = {name: rec[name] for name in rec.dtype.names}
    for name in ("publisher_id", "instrument_id", "flags", "channel_id"):
        cols[name] = rec[name].astype(np.int32)
    for name in ("size", "sequence"):
        cols[name] = rec[name].astype(np.int64)
    price = rec["price"].astype(np.float64)
    price[rec["price"] == UNDEF_PRICE] = np.nan
    cols["price"] = price
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = OrderBook().apply(rec, every_record=True), OrderBook().apply(cols, every_record=True)
    for name in MBP10_COLUMNS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert b["price"][0] == UNDEF_PRICE and b["price"][3] == UNDEF_PRICE


def test_growth_beyond_initial_capacities():
    n = 5000  # more orders, levels and rows than the initial tables hold
    rows = [("A", "B" if k % 2 else "A", (100 - k * 0.25) if k % 2 else (101 + k * 0.25), 1, k + 1) for k in range(n)]
    rows += [("C", "B" if k % 2 else "A", 0.0, 1, k + 1) for k in range(0, n, 3)]
    book, _ = run(rows)
    assert q(book, "live_orders") == n - len(range(0, n, 3))


def test_bad_state_bytes_rejected():
    with pytest.raises(ValueError):
        OrderBook.from_state_bytes(b"not a state")


def test_state_of_an_older_format_rejected_by_name():
    import io

    book, _ = run([("A", "B", 10.0, 5, 1)])
    with np.load(io.BytesIO(book.state_bytes())) as z:
        arrays = {name: z[name] for name in z.files}
    arrays["format"] = np.array("mbolake.book.state/2")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(ValueError, match="'mbolake.book.state/2', written by another version"):
        OrderBook.from_state_bytes(buf.getvalue())


def test_sizes_use_all_32_bits():
    """DBN sizes are u32; order entries keep them in 32 bits, so sizes past 2**31 must survive."""
    big = 3_000_000_000
    book, out = run([("A", "B", 10.0, big, 1), ("A", "B", 10.0, 4_000_000_000, 2),
                     ("C", "B", 10.0, 1_000_000_000, 1), ("M", "B", 10.0, 4_294_967_295, 1)])
    assert book.orders_at(PUB, INST, "B", 10 * PX) == [(2, 4_000_000_000), (1, 4_294_967_295)]
    assert book.levels(PUB, INST, "B") == [(10 * PX, 8_294_967_295, 2)]
    assert out["bid_sz_00"][0] == big and out["bid_sz_00"].dtype == np.uint32


def test_colliding_order_ids_switch_the_hash_and_lose_nothing():
    """Ids 2**24 apart share one home position under the locality-preserving hash: the
    long probes make the kernel rehash with the mixing hash mid-stream. Two instruments
    reuse the same ids, and a clear of one of them removes only its orders."""
    from mbolake.book import kernel as K

    ids = [(k + 1) << 24 for k in range(300)]
    a = mbo([("A", "B" if k % 2 else "A", 100 - k % 7 if k % 2 else 101 + k % 7, k + 1, oid)
             for k, oid in enumerate(ids)], inst=1)
    b = mbo([("A", "B", 50 - k % 5, 2, oid) for k, oid in enumerate(ids)], inst=2, start_seq=1000)
    clear = mbo([("R", "N", None, 0, 0)], inst=1, start_seq=2000)
    cancels = mbo([("C", "B", 50 - k % 5, 2, oid) for k, oid in enumerate(ids) if k % 3 == 0], inst=2,
                  start_seq=3000)
    book, _ = run(np.concatenate([a, b, clear, cancels]))
    assert book._st.g[K.G_HMODE] == K.HASH_MIX
    assert book.levels(PUB, 1, "B") == [] and book.levels(PUB, 1, "A") == []
    assert q(book, "live_orders", inst=2) == 200 and q(book, "live_orders", inst=1) == 0
    assert book.orders_at(PUB, 2, "B", 50 * PX) == [(oid, 2) for k, oid in enumerate(ids) if k % 5 == 0 and k % 3]


def test_clear_removes_orders_that_deletes_shift_back():
    """Ids 2**30 apart share home positions, so removing one order of the cleared book
    shifts another of its orders back into the position just scanned."""
    ids = [k + 1 for k in range(10)] + [(1 << 30) + k + 1 for k in range(10)]
    rows = [("A", "B", 10.0 - k % 3, 1, oid) for k, oid in enumerate(ids)]
    rows += [("R", "N", None, 0, 0), ("A", "A", 11.0, 4, 99), ("C", "B", 10.0, 1, (1 << 30) + 1)]
    book, _ = run(rows)
    assert book.levels(PUB, INST, "B") == [] and book.levels(PUB, INST, "A") == [(11 * PX, 4, 1)]
    assert q(book, "live_orders") == 1 and q(book, "unknown_cancels") == 1
