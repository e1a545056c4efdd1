"""Batch / stream parity on small Delta tables: equal rows pass; a changed value, a missing due
row or an extra row fail naming the table; rows the stream has not had time to produce are not
due; the run's summary is what the validation report reads."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from mbolake.realtime import parity
from mbolake.reports.validation import parity_results
from mbolake.runtime import run_record
from mbolake.runtime.config import load_profile
from mbolake.schemas import BAR_5S, BAR_5S_STREAM, ORDERBOOK_STATE, ORDERBOOK_STATE_STREAM

SESSION = dt.date(2025, 11, 5)
T0 = 1_762_349_400_000_000_000  # 08:30 New York on the session
BAR = 5_000_000_000


def rows(table, n: int, start: int = 0, stream: bool = False, **values) -> pa.Table:
    columns = {}
    for field in table.schema:
        if field.name == "contract_id":
            columns[field.name] = pa.array(["GLBX.MDP3:ESZ5"] * n)
        elif field.name == "session_date":
            columns[field.name] = pa.array([SESSION] * n, pa.date32())
        elif field.name in ("bar_ts", "ts_recv"):
            columns[field.name] = pa.array(T0 + (np.arange(n) + start) * BAR, pa.int64())
        elif field.name == "data_version":
            columns[field.name] = pa.array(["stream" if stream else "batch"] * n)
        elif pa.types.is_string(field.type):
            columns[field.name] = pa.array(["A"] * n)
        else:
            columns[field.name] = pa.array(np.full(n, values.get(field.name, 1)), field.type)
    return pa.table(columns, schema=table.schema)


def write(profile, table, data: pa.Table) -> None:
    write_deltalake(profile.table_path(table.name), data, mode="append", partition_by=list(table.partition_by))


@pytest.fixture
def lake(project):
    profile = load_profile("local")
    write(profile, ORDERBOOK_STATE, rows(ORDERBOOK_STATE, 10))
    write(profile, BAR_5S, rows(BAR_5S, 10))
    return profile


def test_a_stream_behind_the_batch_is_equal_on_the_rows_due(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 6, stream=True))  # read up to bar 5
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 5, stream=True))  # bars 0-4 end by then
    result = parity.stream_parity(lake).set_index("stage")
    assert bool(result.loc["silver.bar_5s", "equal"]) and result.loc["silver.bar_5s", "batch_rows_due"] == 5
    assert bool(result.loc["silver.orderbook_state", "equal"])
    assert result.loc["silver.orderbook_state", "batch_rows_due"] == 5  # the frontier's own rows may be split
    assert not parity.stream_parity(lake, complete=True).set_index("stage").loc["silver.bar_5s", "equal"]


def test_a_changed_value_or_a_missing_row_is_a_difference(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    changed = rows(BAR_5S_STREAM, 10, stream=True, bar5s_midprice_eob=2.0)
    write(lake, BAR_5S_STREAM, changed)
    bars = parity.stream_parity(lake, complete=True).set_index("stage").loc["silver.bar_5s"]
    assert not bars["equal"] and bars["different_rows"] == 10 and "bar5s_midprice_eob" in bars["notes"]


def test_a_missing_due_row_is_named(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 7, stream=True))
    bars = parity.stream_parity(lake).set_index("stage").loc["silver.bar_5s"]
    assert not bars["equal"] and bars["notes"] == "7 stream rows against 9 batch rows due"


def test_the_recorded_parity_is_what_the_validation_report_shows(lake, monkeypatch, tmp_path):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 10, stream=True))
    run_dir = tmp_path / "project" / "runs" / "r1"
    monkeypatch.setenv(run_record.RUN_DIR_ENV, str(run_dir))
    parity.record(parity.stream_parity(lake, complete=True))
    summary = json.loads((run_dir / "summaries" / "stream_parity.json").read_text())
    assert summary["equal"] is True  # primitives and vectors: none on either side
    shown = parity_results(lake, "r1").set_index("check")
    assert bool(shown.loc["stream_parity: silver.bar_5s", "equal"])
    assert shown.loc["stream_parity: silver.bar_5s", "rows"] == 10
