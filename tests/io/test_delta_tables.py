"""``append_once``: one append per (application id, version); a skip is logged, never silent."""
from __future__ import annotations

import datetime as dt
import logging

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from mbolake.io.delta_tables import append_once
from mbolake.schemas import FEATURE_SERIES_STREAM


def series_rows(n: int, batch_id: int) -> pa.Table:
    columns = {f.name: [None] * n for f in FEATURE_SERIES_STREAM.schema}
    columns |= {"contract_id": ["ESZ5"] * n, "session_date": [dt.date(2025, 11, 5)] * n,
                "bar_ts": list(range(n)), "mid": [6000.25 + i for i in range(n)], "stream_batch_id": [batch_id] * n}
    return pa.table(columns, schema=FEATURE_SERIES_STREAM.schema)


def test_append_once_appends_each_application_version_once_and_logs_a_skip(tmp_path, caplog):
    uri = str(tmp_path / "feature_series_stream")
    write_deltalake(uri, series_rows(0, 0), partition_by=list(FEATURE_SERIES_STREAM.partition_by))

    assert append_once(uri, FEATURE_SERIES_STREAM, series_rows(3, 0), "rt_silver:query-a", 0) is True
    assert append_once(uri, FEATURE_SERIES_STREAM, series_rows(2, 1), "rt_silver:query-a", 1) is True
    with caplog.at_level(logging.WARNING, logger="mbolake.io.delta_tables"):
        # a re-run of batch 0 (and a late one of an older batch) after batch 1 was written
        assert append_once(uri, FEATURE_SERIES_STREAM, series_rows(3, 0), "rt_silver:query-a", 0) is False
    # another query (a recreated checkpoint) starts its batch ids from 0 again: its own transaction
    assert append_once(uri, FEATURE_SERIES_STREAM, series_rows(4, 0), "rt_silver:query-b", 0) is True

    table = DeltaTable(uri)
    assert table.transaction_version("rt_silver:query-a") == 1
    assert table.transaction_version("rt_silver:query-b") == 0
    assert table.to_pyarrow_table().num_rows == 3 + 2 + 4
    assert [r.getMessage() for r in caplog.records] == [
        "gold.feature_series_stream: 3 rows not appended: application rt_silver:query-a at version 0, "
        "the table already holds version 1"]
