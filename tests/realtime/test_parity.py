"""Batch / stream parity on small Delta tables: equal rows pass; a changed value, a missing due
row or an extra row fail naming the table; a contract-session the stream lacks is "missing"; a
lost tail is caught against the feed's cut-off; no row on either side is "empty", never equal;
the run's summary is what the validation report reads."""
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
ESZ5, ESH6 = "GLBX.MDP3:ESZ5", "GLBX.MDP3:ESH6"


def rows(table, n: int, start: int = 0, stream: bool = False, contract: str = ESZ5, **values) -> pa.Table:
    columns = {}
    for field in table.schema:
        if field.name == "contract_id":
            columns[field.name] = pa.array([contract] * n)
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


def sent_through(n_states: int, contract: str = ESZ5) -> dict:
    """The feed's cut-off after sending the records of the first ``n_states`` book states."""
    return {(contract, SESSION): T0 + (n_states - 1) * BAR}


@pytest.fixture
def lake(project):
    profile = load_profile("local")
    write(profile, ORDERBOOK_STATE, rows(ORDERBOOK_STATE, 10))
    write(profile, BAR_5S, rows(BAR_5S, 10))
    return profile


def test_a_stream_behind_the_batch_is_equal_on_the_rows_due(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 6, stream=True))  # read up to bar 5
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 5, stream=True))  # bars 0-4 end by then
    result = parity.stream_parity(lake, sent=sent_through(6)).set_index("stage")
    assert result.loc["silver.bar_5s", "status"] == "equal" and result.loc["silver.bar_5s", "batch_rows_due"] == 5
    assert result.loc["silver.orderbook_state", "status"] == "equal"
    assert result.loc["silver.orderbook_state", "batch_rows_due"] == 6  # the cut-off's own book state included
    assert bool(result.loc["silver.bar_5s", "equal"]) and result.loc["silver.bar_5s", "batch_rows"] == 10
    assert not parity.stream_parity(lake, complete=True).set_index("stage").loc["silver.bar_5s", "equal"]


def test_a_lost_tail_is_not_equal(lake):
    """The feed sent all 10 book states' records; the stream's last micro-batches (states 6-9,
    bars 5-9) were lost from every table. Its own last book state would say 'not produced yet'."""
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 6, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 5, stream=True))
    result = parity.stream_parity(lake, [SESSION], sent=sent_through(10)).set_index("stage")
    states, bars = result.loc["silver.orderbook_state"], result.loc["silver.bar_5s"]
    assert (states["status"], states["batch_rows_due"], states["stream_rows"]) == ("different", 10, 6)
    assert (bars["status"], bars["batch_rows_due"], bars["stream_rows"]) == ("different", 9, 5)
    assert bars["notes"] == "5 stream rows against 9 batch rows due" and not bars["equal"]


def assert_esh6_missing(result) -> None:
    for stage in ("silver.orderbook_state", "silver.bar_5s"):
        table = result.set_index("stage").loc[stage]
        assert not table["equal"]
        assert (table["status"], table["batch_rows"], table["stream_rows"]) == ("missing", 20, 10)
        assert f"{ESH6} {SESSION}" in table["notes"] and ESZ5 not in table["notes"]


def test_a_contract_session_the_stream_lacks_is_missing(lake):
    write(lake, ORDERBOOK_STATE, rows(ORDERBOOK_STATE, 10, contract=ESH6))
    write(lake, BAR_5S, rows(BAR_5S, 10, contract=ESH6))
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 10, stream=True))
    assert_esh6_missing(parity.stream_parity(lake, complete=True))
    assert_esh6_missing(parity.stream_parity(lake, sent=sent_through(10) | sent_through(10, ESH6)))
    # a contract the feed never sent has nothing due
    only_esz5 = parity.stream_parity(lake, sent=sent_through(10)).set_index("stage").loc["silver.orderbook_state"]
    assert (only_esz5["status"], only_esz5["batch_rows"], only_esz5["batch_rows_due"]) == ("equal", 20, 10)


def test_no_row_on_either_side_is_empty_not_equal(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 10, stream=True))
    result = parity.stream_parity(lake, complete=True).set_index("stage")
    assert list(result["equal"]) == [True, True, False, False]
    assert list(result["status"]) == ["equal", "equal", "empty", "empty"]
    nothing_sent = parity.stream_parity(lake, [dt.date(2025, 11, 6)], sent={}).set_index("stage")
    assert set(nothing_sent["status"]) == {"empty"} and not nothing_sent["equal"].any()


def test_a_cut_off_is_required(lake):
    with pytest.raises(ValueError, match="sent"):
        parity.stream_parity(lake)
    with pytest.raises(ValueError, match="not both"):
        parity.stream_parity(lake, complete=True, sent=sent_through(10))


def test_a_changed_value_or_a_missing_row_is_a_difference(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    changed = rows(BAR_5S_STREAM, 10, stream=True, bar5s_midprice_eob=2.0)
    write(lake, BAR_5S_STREAM, changed)
    bars = parity.stream_parity(lake, complete=True).set_index("stage").loc["silver.bar_5s"]
    assert not bars["equal"] and bars["status"] == "different" and bars["different_rows"] == 10
    assert "bar5s_midprice_eob" in bars["notes"]


def test_a_missing_due_row_is_named(lake):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 7, stream=True))
    bars = parity.stream_parity(lake, sent=sent_through(10)).set_index("stage").loc["silver.bar_5s"]
    assert not bars["equal"] and bars["notes"] == "7 stream rows against 9 batch rows due"


def test_the_recorded_parity_is_what_the_validation_report_shows(lake, monkeypatch, tmp_path):
    write(lake, ORDERBOOK_STATE_STREAM, rows(ORDERBOOK_STATE_STREAM, 10, stream=True))
    write(lake, BAR_5S_STREAM, rows(BAR_5S_STREAM, 10, stream=True))
    run_dir = tmp_path / "project" / "runs" / "r1"
    monkeypatch.setenv(run_record.RUN_DIR_ENV, str(run_dir))
    parity.record(parity.stream_parity(lake, complete=True))
    summary = json.loads((run_dir / "summaries" / "stream_parity.json").read_text())
    assert summary["equal"] is False  # primitives and vectors: none on either side, nothing checked
    statuses = {d["table"]: d["status"] for d in summary["details"]}
    assert statuses == {"silver.orderbook_state": "equal", "silver.bar_5s": "equal",
                        "silver.feature_primitives": "empty", "gold.setup_vectors": "empty"}
    shown = parity_results(lake, "r1").set_index("check")
    assert bool(shown.loc["stream_parity: silver.bar_5s", "equal"])
    assert shown.loc["stream_parity: silver.bar_5s", "rows"] == 10
    assert not shown.loc["stream_parity: gold.setup_vectors", "equal"]
