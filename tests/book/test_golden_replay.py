"""Golden replay: one generated ES session through ``OrderBook``, its exact final book pinned
and confirmed by the self-contained ``ReferenceBook``.

The input is ``synth.generate_session_records(2025-11-04, SynthParams(intensity=40_000,
seed=2024))``: 39,855 MBO records in feed order over three books (ESZ5 64312, ESH6 64315,
the ESZ5-ESH6 spread 964312), each opened by a clear and a snapshot. It is replayed in one
``apply`` call (and once more in uneven micro-batches), and the test pins

* the input itself (record count and SHA-256 of the record bytes),
* per book: best bid and best ask (price, size, order count), the number of bid and ask
  levels, live orders, records, event groups and top-10 changes,
* the channel's last sequence,
* the MBP-10 rows: their count and a SHA-256 over every column's bytes, taken column by
  column in ``HASHED_COLUMNS`` order (Databento's mbp-10 columns and dtypes).

How the numbers were confirmed: they were first printed from a run of ``OrderBook`` on this
input and pasted here; they are confirmed independently of the kernel by the plain-Python
``ReferenceBook``, which replays the same records on its own and must give every pinned value
(``test_reference_book_gives_the_golden_values``, about 3 s). The reference shares no code
with the kernel: it decodes the DBN record bytes itself (the same records Databento's own
decoder reads, ``test_databento_reads_the_same_input``), builds its own MBP-10 rows and
defines its own constants; ``test_reference_independence.py`` and the import-linter contract
``reference-self-contained`` keep it so. A bug in code the kernel uses (record decoding, row
building, a shared constant) therefore cannot give both books the pinned values.
``HASHED_COLUMNS`` is written out here, so the hash does not depend on either book's column order.

What a change means:

* ``INPUT_SHA256`` changed: the generator (``mbolake.sample.synth``) or numpy's random streams
  changed, not the book. Check that the change was intended, then re-pin everything below
  from the ``ReferenceBook``'s replay, and check that the kernel agrees.
* the input is unchanged but a book value or ``ROWS_SHA256`` changed: the order book now
  builds a different book or emits different MBP-10 rows from the same feed. That is a
  behaviour change of the kernel (priority, level aggregation, event-group/top-10 logic,
  row layout or dtypes). A refactor or speed-up must not do that; if the reference book
  still agrees with the kernel, both changed on purpose and the new values are re-pinned
  together with a note in the commit saying why.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest

from mbolake.book import MBP10_COLUMNS, OrderBook
from mbolake.book.reference import ReferenceBook, decode_mbo
from mbolake.sample import synth

from tests.book.test_reference_independence import databento_records

SESSION = dt.date(2025, 11, 4)
PARAMS = synth.SynthParams(intensity=40_000, seed=2024)

N_RECORDS = 39_855
INPUT_SHA256 = "bc5b7e15939a0a4251329d010409111651b7da3a2fad52e27f0e7b6ff3268919"
N_ROWS = 25_675
ROWS_SHA256 = "3d34f87b5bdca328cbf94576a32da360cb7f9cf9cfafd330a8bccf8544f93642"
LAST_SEQUENCE = 25_179_033  # publisher 1, channel 0 (the only channel)

# (publisher_id, instrument_id) -> final state; best levels are (price, size, order count)
FINAL = {
    (1, 64312): dict(best_bid=(5484_500_000_000, 5, 2), best_ask=(5485_750_000_000, 4, 1),
                     bid_levels=54, ask_levels=30, live_orders=290,
                     records=38_751, event_groups=25_332, top10_changes=25_108),
    (1, 64315): dict(best_bid=(5546_250_000_000, 4, 1), best_ask=(5546_750_000_000, 8, 2),
                     bid_levels=6, ask_levels=20, live_orders=50,
                     records=689, event_groups=297, top10_changes=296),
    (1, 964312): dict(best_bid=(67_250_000_000, 3, 1), best_ask=(67_500_000_000, 2, 2),
                      bid_levels=13, ask_levels=12, live_orders=87,
                      records=415, event_groups=274, top10_changes=271),
}
ANOMALY_COUNTERS = ("crossed_groups", "locked_groups", "unknown_order_refs", "negative_size_attempts",
                    "duplicate_adds", "invalid_records", "seq_decreases", "seq_jumps", "ts_recv_non_monotonic")


HEADER = ("ts_recv", "ts_event", "rtype", "publisher_id", "instrument_id", "action", "side", "depth",
          "price", "size", "flags", "sequence")
HASHED_COLUMNS = HEADER + tuple(f"{field}_{level:02d}" for field in ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
                                for level in range(10))


def rows_sha256(rows: dict[str, np.ndarray]) -> str:
    assert sorted(rows) == sorted(HASHED_COLUMNS)
    h = hashlib.sha256()
    for name in HASHED_COLUMNS:
        h.update(np.ascontiguousarray(rows[name]).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    rec, _ = synth.generate_session_records(SESSION, PARAMS)
    return rec


@pytest.fixture(scope="module")
def replayed(records):
    book = OrderBook()
    rows = book.apply(records)
    return book, rows


def test_the_input_is_the_pinned_session(records):
    assert len(records) == N_RECORDS
    assert hashlib.sha256(records.tobytes()).hexdigest() == INPUT_SHA256


def test_final_book_per_instrument(replayed):
    book, _ = replayed
    assert sorted(book.books()) == sorted(FINAL)
    q = book.quality().set_index(["publisher_id", "instrument_id"])
    for (pub, inst), want in FINAL.items():
        assert book.levels(pub, inst, "B", 1) == [want["best_bid"]], (inst, "best bid")
        assert book.levels(pub, inst, "A", 1) == [want["best_ask"]], (inst, "best ask")
        assert len(book.levels(pub, inst, "B", depth=10_000)) == want["bid_levels"], inst
        assert len(book.levels(pub, inst, "A", depth=10_000)) == want["ask_levels"], inst
        assert len(book.orders(pub, inst)) == want["live_orders"], inst
        row = q.loc[(pub, inst)]
        for name in ("bid_levels", "ask_levels", "live_orders", "records", "event_groups", "top10_changes"):
            assert int(row[name]) == want[name], (inst, name)
        assert bool(row["book_complete"]), inst
        for name in ANOMALY_COUNTERS:
            assert int(row[name]) == 0, (inst, name)
        assert want["best_bid"][0] < want["best_ask"][0]
    assert book.check_invariants() == []


def test_last_sequence(replayed):
    book, _ = replayed
    ch = book.channel_quality()
    assert ch[["publisher_id", "channel_id", "last_sequence"]].values.tolist() == [[1, 0, LAST_SEQUENCE]]
    assert int(replayed[1]["sequence"][-1]) == LAST_SEQUENCE


def test_mbp10_rows_hash(replayed):
    _, rows = replayed
    assert len(rows["ts_recv"]) == N_ROWS
    assert rows_sha256(rows) == ROWS_SHA256


def test_micro_batches_give_the_same_rows(records):
    """Uneven chunks (cutting event groups) replay to the same rows as one call."""
    book = OrderBook()
    cuts = [0, 1, 777, 5_000, 5_001, 20_000, 33_333, len(records)]
    parts = [book.apply(records[a:b]) for a, b in zip(cuts, cuts[1:])]
    rows = {name: np.concatenate([p[name] for p in parts]) for name in MBP10_COLUMNS}
    assert rows_sha256(rows) == ROWS_SHA256


@pytest.fixture(scope="module")
def reference(records):
    book = ReferenceBook()
    rows = book.apply(records)
    return book, rows


def test_databento_reads_the_same_input(records):
    """The generated bytes are DBN MBO records as Databento's own decoder reads them, and the
    reference decodes them to the same fields."""
    raw = records.tobytes()
    assert decode_mbo(raw) == databento_records(raw, has_metadata=False)


def test_reference_book_gives_the_golden_values(reference):
    """The pinned values, from the reference book alone (no kernel code involved)."""
    ref, rows = reference
    assert len(rows["ts_recv"]) == N_ROWS
    assert rows_sha256(rows) == ROWS_SHA256
    assert int(rows["sequence"][-1]) == LAST_SEQUENCE
    assert ref.channels == {(1, 0): LAST_SEQUENCE}
    quality = ref.quality()
    assert sorted(quality) == sorted(FINAL)
    for (pub, inst), want in FINAL.items():
        assert ref.levels(pub, inst, "B", 1) == [want["best_bid"]], (inst, "best bid")
        assert ref.levels(pub, inst, "A", 1) == [want["best_ask"]], (inst, "best ask")
        assert len(ref.levels(pub, inst, "B", depth=10_000)) == want["bid_levels"], inst
        assert len(ref.levels(pub, inst, "A", depth=10_000)) == want["ask_levels"], inst
        got = quality[(pub, inst)]
        for name in ("bid_levels", "ask_levels", "live_orders", "records", "event_groups", "top10_changes"):
            assert got[name] == want[name], (inst, name)
        assert got["book_complete"], inst
        for name in ANOMALY_COUNTERS:
            assert got.get(name, 0) == 0, (inst, name)


def test_reference_book_agrees_with_the_kernel(replayed, reference):
    """Beyond the pinned values: every row, level and resting order is the same."""
    (book, rows), (ref, ref_rows) = replayed, reference
    assert sorted(rows) == sorted(ref_rows)
    for name in rows:
        np.testing.assert_array_equal(ref_rows[name], rows[name], err_msg=name)
    for pub, inst in FINAL:
        for side in ("B", "A"):
            levels = book.levels(pub, inst, side, depth=10_000)
            assert ref.levels(pub, inst, side, depth=10_000) == levels, (inst, side)
            for price, _, _ in levels:
                assert ref.orders_at(pub, inst, side, price) == book.orders_at(pub, inst, side, price)
