"""``mbolake book replay``: a generated ES session replayed to Parquet, checked row for row."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbolake.book import MBP10_COLUMNS, OrderBook
from mbolake.cli import main
from mbolake.io.book_replay import replay
from mbolake.io.dbn import read_mbo
from mbolake.sample import synth

SESSION = dt.date(2025, 11, 4)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=40_000),
                                   progress=False)
    return path


@pytest.fixture(scope="module")
def whole_session_rows(session_file):
    """The rows of one ``OrderBook.apply`` over the whole decoded file: what replay must write."""
    _, records = read_mbo(session_file)
    return records, OrderBook().apply(records)


def assert_parquet_equals(path, expected: dict[str, np.ndarray]) -> None:
    table = pq.read_table(path)
    assert table.column_names == list(MBP10_COLUMNS)
    assert table.num_rows == len(expected["ts_recv"])
    for name in MBP10_COLUMNS:
        got = table.column(name).to_numpy()
        want = expected[name]
        if want.dtype.kind == "S":
            want = want.astype("U1").astype(object)
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_cli_writes_every_row_and_prints_the_counters(session_file, whole_session_rows, tmp_path, capsys):
    records, expected = whole_session_rows
    out = tmp_path / "mbp10.parquet"

    assert main(["book", "replay", str(session_file), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert f"{len(records):,} records -> {len(expected['ts_recv']):,} MBP-10 rows" in printed
    assert "unknown_order_refs" in printed and "ESZ5" in printed
    assert_parquet_equals(out, expected)


def test_small_chunks_keep_the_writer_queue_and_the_rows_exact(session_file, whole_session_rows, tmp_path):
    """Many chunks in flight between the book and the writer: the book must never reuse a
    row block the writer still holds."""
    records, expected = whole_session_rows
    out = tmp_path / "mbp10.parquet"

    result = replay(session_file, out, chunk_records=1_000)

    assert result.records == len(records) > 30 * 1_000
    assert result.rows == len(expected["ts_recv"])
    assert_parquet_equals(out, expected)
    assert result.quality["unknown_order_refs"].sum() == 0
    assert set(result.quality["symbol"]) == {"ESZ5", "ESH6", "ESZ5-ESH6"}


def test_one_instrument_and_counters_only(session_file, whole_session_rows, tmp_path):
    records, _ = whole_session_rows
    front = int(records["instrument_id"][0])
    only = records[records["instrument_id"] == front]
    expected = OrderBook().apply(only)

    result = replay(session_file, tmp_path / "front.parquet", instrument_id=front)
    assert result.records == len(only) < len(records)
    assert_parquet_equals(tmp_path / "front.parquet", expected)

    counters_only = replay(session_file, None)
    assert counters_only.rows == 0 and counters_only.records == len(records)
    assert counters_only.quality["records"].sum() == len(records)


def test_a_truncated_file_fails_naming_it_and_writes_nothing(session_file, tmp_path, capsys):
    cut = tmp_path / "cut.dbn.zst"
    cut.write_bytes(session_file.read_bytes()[: session_file.stat().st_size // 2])
    out = tmp_path / "never.parquet"

    assert main(["book", "replay", str(cut), "--out", str(out)]) == 2

    assert str(cut) in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [cut]  # no partial output left


def test_an_instrument_absent_from_the_file_gives_an_empty_file_with_every_column(session_file, tmp_path):
    out = tmp_path / "none.parquet"
    result = replay(session_file, out, instrument_id=999_999_999)
    assert result.records == 0 and result.rows == 0
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names == list(MBP10_COLUMNS)
    assert str(table.schema.field("action").type) == "string"


def test_feed_order_slices_put_permuted_blocks_back_in_order():
    from mbolake.stages.mbo_input import feed_order_slices

    ts = np.array([5, 6, 7, 1, 2, 3, 8, 9])
    assert feed_order_slices(ts, np.zeros(8, np.int64)) == [(3, 6), (0, 3), (6, 8)]
    assert feed_order_slices(np.array([1, 2, 3]), np.arange(3)) == [(0, 3)]
    # equal ts_recv: record_index decides
    assert feed_order_slices(np.array([4, 4, 1, 4]), np.array([1, 2, 0, 3])) == [(2, 3), (0, 2), (3, 4)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), min_size=1, max_size=200),
       st.lists(st.integers(1, 30), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_feed_order_slices_equal_a_stable_sort(keys, block_sizes, rnd):
    """Sorted data cut into blocks and shuffled (what Delta writers do), plus arbitrary data:
    the slices give exactly the order of ``np.lexsort`` (stable, duplicates included)."""
    from mbolake.stages.mbo_input import MAX_FEED_SLICES, feed_order_slices

    for shuffled_blocks in (True, False):
        rows = sorted(keys) if shuffled_blocks else list(keys)
        if shuffled_blocks:
            blocks, at = [], 0
            for size in block_sizes * (len(rows) // sum(block_sizes) + 1):
                blocks.append(rows[at:at + size])
                at += size
            rnd.shuffle(blocks)
            rows = [row for block in blocks for row in block]
        ts = np.array([r[0] for r in rows], np.int64)
        index = np.array([r[1] for r in rows], np.int64)
        slices = feed_order_slices(ts, index)
        assert slices is not None or len(rows) > MAX_FEED_SLICES
        order = np.concatenate([np.arange(a, b) for a, b in slices])
        np.testing.assert_array_equal(order, np.lexsort((index, ts)))
