"""Replays of Databento's real DBN test files (GLBX.MDP3 ESH1, 2020-12-28, mid-session)."""
from __future__ import annotations

import numpy as np
import pytest

from mbolake.book import MBP10_COLUMNS, OrderBook, ReferenceBook
from mbolake.io.dbn import read_mbo


def replay(fixtures, version: int, every: bool = False):
    _, records = read_mbo(fixtures / f"test_data.mbo.v{version}.dbn.zst")
    book = OrderBook()
    return records, book, book.apply(records, every)


@pytest.mark.parametrize("every", [False, True])
def test_v1_v2_v3_replay_identically(dbn_fixtures, every):
    outs = [replay(dbn_fixtures, v, every)[2] for v in (1, 2, 3)]
    for out in outs[1:]:
        for name in MBP10_COLUMNS:
            np.testing.assert_array_equal(out[name], outs[0][name], err_msg=name)


def test_mid_session_cancels_are_counted_not_raised(dbn_fixtures):
    records, book, out = replay(dbn_fixtures, 3)
    assert len(records) == 2 and set(records["action"]) == {b"C"}
    q = book.quality()
    assert q[["publisher_id", "instrument_id"]].values.tolist() == [[1, 5482]]
    row = q.iloc[0]
    assert row.records == 2 and row.cancels == 2
    assert row.unknown_cancels == 2 and row.unknown_order_refs == 2
    assert not row.book_complete  # the file starts mid-session: no R, no snapshot
    assert row.live_orders == 0 and row.event_groups == 2 and row.seq_jumps == 0
    assert len(out["ts_recv"]) == 0  # an empty book stayed empty: its top 10 never changed
    assert book.check_invariants() == []


def test_every_record_rows_carry_the_record_fields(dbn_fixtures):
    records, _, out = replay(dbn_fixtures, 3, every=True)
    assert len(out["ts_recv"]) == 2
    np.testing.assert_array_equal(out["ts_recv"], records["ts_recv"])
    np.testing.assert_array_equal(out["ts_event"], records["ts_event"])
    np.testing.assert_array_equal(out["sequence"], records["sequence"])
    np.testing.assert_array_equal(out["price"], records["price"])
    assert list(out["action"]) == [b"C", b"C"] and list(out["side"]) == [b"A", b"A"]
    assert set(out["rtype"]) == {10} and set(out["flags"]) == {0x80}


def test_reference_agrees_on_the_real_file(dbn_fixtures):
    _, records = read_mbo(dbn_fixtures / "test_data.mbo.v3.dbn")  # the uncompressed copy
    for every in (False, True):
        a, b = OrderBook().apply(records, every), ReferenceBook().apply(records, every)
        for name in MBP10_COLUMNS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_output_layout_matches_databento_mbp10(dbn_fixtures):
    """Our column names and dtypes are those of Databento's own mbp-10 file."""
    import databento

    store = databento.DBNStore.from_file(str(dbn_fixtures / "test_data.mbp-10.v3.dbn.zst"))
    theirs = store.to_ndarray().dtype
    _, _, ours = replay(dbn_fixtures, 3)
    for name in MBP10_COLUMNS:
        assert name in theirs.names, name
        assert np.dtype(ours[name].dtype) == theirs[name], name
