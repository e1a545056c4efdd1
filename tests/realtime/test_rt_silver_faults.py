"""rt silver as a background job, killed and restarted from its checkpoint; the stream twins and
``gold.feature_series_stream`` still equal batch value for value, nothing lost and nothing duplicated.

- Deterministic kills at rt silver's fault points (``MBOLAKE_KILL_AT``, ``runtime.faults``):
  ``rt_silver.after_appends`` (every table of a micro-batch appended, the batch not committed)
  and ``rt_silver.between_appends`` (one table appended, the next not). Each kill is shown to
  have hit its window (a table's application transaction ahead of the last committed batch)
  before the restart, and the restart is shown to have skipped exactly the tables written.
- SIGKILL at five random moments of a paced replay (inside Spark's stateful step too), then the
  broker stopped and started again under the running query.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mbolake.io import delta_tables
from mbolake.realtime import bus, feed, jobs, rt_silver
from mbolake.realtime.bus import BusSettings
from mbolake.realtime.parity import stream_parity
from mbolake.realtime.replay_leg import committed_offsets, end_offsets
from mbolake.runtime.config import load_profile
from mbolake.runtime.faults import KILLED_EXIT_CODE
from mbolake.schemas import BAR_5S, BAR_5S_STREAM, FEATURE_SERIES_STREAM, ORDERBOOK_STATE, ORDERBOOK_STATE_STREAM

from .conftest import job_log, last_batch, wait_for
from tests.helpers import session_file

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]
JOB = "rt_silver"
OUTPUTS = (*rt_silver.TWINS.values(), FEATURE_SERIES_STREAM)
MAX_OFFSETS = 4_001


@pytest.fixture
def lake(pipeline_copy):
    """A copy of the session's pipeline home (one generated session through every batch stage) for
    one test: its own stream tables, checkpoint and job files."""
    return load_profile("local"), session_file(pipeline_copy)


def log_text(profile) -> str:
    return job_log(profile, JOB)


def rows(profile, table) -> int:
    path = profile.table_path(table.name)
    return DeltaTable(path).to_pyarrow_table(columns=["ts_recv"]).num_rows if DeltaTable.is_deltatable(path) else 0


# -- deterministic kills ------------------------------------------------------------------------


def checkpoint(profile) -> Path:
    return Path(jobs.rt_silver_config(profile).checkpoint)


def query_id(profile) -> str:
    return json.loads((checkpoint(profile) / "metadata").read_text())["id"]


def last_committed(profile) -> int:
    """The last micro-batch Spark committed in the checkpoint (-1: none)."""
    return max((int(f.name) for f in (checkpoint(profile) / "commits").glob("[0-9]*")), default=-1)


def transaction_versions(profile, app_id: str) -> dict[str, int]:
    """Each stream table's application transaction version of ``app_id`` (-1: none)."""
    versions = {}
    for table in OUTPUTS:
        version = DeltaTable(profile.table_path(table.name)).transaction_version(app_id)
        versions[table.name] = -1 if version is None else version
    return versions


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` (the job and its JVM) is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def run_until_killed(profile, job: str, point: str, **start) -> None:
    """Start background job ``job`` with ``MBOLAKE_KILL_AT=point``; wait until it ends there by
    itself (exit code 137) and its JVM is gone."""
    info = jobs.start(profile, job, env={"MBOLAKE_KILL_AT": point}, **start)
    deadline = time.time() + 600
    while (done := os.waitpid(info["pid"], os.WNOHANG))[0] == 0:
        assert time.time() < deadline, f"{job} did not reach {point}; log:\n{job_log(profile, job)[-4000:]}"
        time.sleep(0.5)
    assert os.waitstatus_to_exitcode(done[1]) == KILLED_EXIT_CODE, job_log(profile, job)[-4000:]
    wait_for(lambda: not group_alive(info["pid"]), 60, "the job's JVM to end", profile, job)


def printed_statuses(profile) -> list[dict]:
    """The micro-batch statuses the job printed, in order (a killed attempt prints none)."""
    return [json.loads(line) for line in log_text(profile).splitlines() if line.startswith('{"query": "rt_silver"')]


def statuses(profile, batch_id: int) -> list[dict]:
    return [s for s in printed_statuses(profile) if s["batch_id"] == batch_id]


def skip_line(table: str, n: int, app_id: str, batch_id: int) -> str:
    return (f"{table}: {n} rows not appended: application {app_id} at version {batch_id}, "
            f"the table already holds version {batch_id}")


def assert_series_equal_batch(profile) -> None:
    """``gold.feature_series_stream`` against what ``silver.bar_5s`` gives (``rt_silver.SERIES``), value for value."""
    keys = ["contract_id", "session_date", "bar_ts"]
    bars = delta_tables.read(profile, BAR_5S, [*keys, *rt_silver.SERIES.values()])
    expected = bars.rename_columns([*keys, *rt_silver.SERIES])
    schema = pa.schema([FEATURE_SERIES_STREAM.schema.field(name) for name in expected.column_names])
    expected = expected.cast(schema).to_pandas().sort_values(keys).reset_index(drop=True)
    stream = DeltaTable(profile.table_path(FEATURE_SERIES_STREAM.name)).to_pyarrow_table(columns=schema.names)
    stream = stream.to_pandas().sort_values(keys).reset_index(drop=True)
    assert len(stream) == len(expected) > 0
    pd.testing.assert_frame_equal(stream, expected, check_exact=True)


def test_killed_after_and_between_appends_then_restarted_the_stream_equals_batch(lake, broker, topic):
    profile, path = lake
    settings = BusSettings(broker["bootstrap"])
    feed.replay(path, settings, topic=topic, speed="max", report=None)

    # 1. every table of batch 0 appended, the process gone before Spark commits the batch
    start = {"bootstrap": broker["bootstrap"], "topic": topic, "max_offsets": MAX_OFFSETS}
    run_until_killed(profile, JOB, "rt_silver.after_appends", **start)
    app_id = rt_silver.app_id(query_id(profile))
    versions = transaction_versions(profile, app_id)
    assert last_committed(profile) == -1
    assert versions[ORDERBOOK_STATE_STREAM.name] == 0, versions  # the window: a table ahead of the commits
    written_in_0 = {name for name, version in versions.items() if version == 0}

    # 2. restarted: batch 0 re-run (skips what it wrote), then killed between two tables' appends of the first
    # micro-batch with more than one table (the first with bars)
    run_until_killed(profile, JOB, "rt_silver.between_appends", **start)
    assert rt_silver.app_id(query_id(profile)) == app_id  # the same checkpoint: the same query id
    [redo_0] = statuses(profile, 0)
    assert set(redo_0["skipped"]) == written_in_0 and redo_0["skipped"] == redo_0["rows"], redo_0
    k = last_committed(profile) + 1
    versions = transaction_versions(profile, app_id)
    assert k >= 1 and versions[ORDERBOOK_STATE_STREAM.name] == k, (k, versions)  # one table has batch k ...
    assert versions[BAR_5S_STREAM.name] < k and versions[FEATURE_SERIES_STREAM.name] < k, (k, versions)  # ... the next not
    assert statuses(profile, k) == []

    # 3. restarted without a kill point: batch k re-run appends the tables it had not, then the rest of the feed
    jobs.start(profile, JOB, **start)
    ends = end_offsets(settings, topic)
    wait_for(lambda: committed_offsets(checkpoint(profile), topic) == ends, 900, "the whole feed", profile, JOB)
    assert jobs.stop(profile, JOB) is True
    [redo_k] = statuses(profile, k)
    n = redo_k["rows"][ORDERBOOK_STATE_STREAM.name]
    assert redo_k["skipped"] == {ORDERBOOK_STATE_STREAM.name: n}, redo_k
    assert redo_k["rows"][BAR_5S_STREAM.name] > 0
    log = log_text(profile)
    assert skip_line(ORDERBOOK_STATE_STREAM.name, n, app_id, k) in log
    assert all(skip_line(name, rows, app_id, 0) in log for name, rows in redo_0["skipped"].items())
    assert [s["skipped"] for s in printed_statuses(profile) if s["batch_id"] > k] == [{}] * (last_committed(profile) - k)

    parity = stream_parity(profile, complete=True).set_index("stage")
    print(parity.to_string())
    assert parity["equal"].all(), parity.to_string()
    assert (parity["stream_rows"] > 0).all(), parity.to_string()
    assert_series_equal_batch(profile)


# -- random SIGKILLs and a broker restart -------------------------------------------------------


def test_sigkill_five_times_and_a_broker_restart_then_the_stream_still_equals_batch(lake, tmp_path):
    profile, path = lake
    expected_states = rows(profile, ORDERBOOK_STATE)
    state = tmp_path / "broker"
    broker = bus.start(state, port=bus.free_port())
    try:
        settings = BusSettings(broker["bootstrap"])
        bus.ensure_topics(settings)
        # the feed runs paced (about 23 h of ts_recv in ~3 min) while the job is killed, and goes on
        replay = threading.Thread(target=feed.replay, args=(path, settings),
                                  kwargs={"speed": "450", "chunk_records": 2_000, "report": None})
        replay.start()
        rng = random.Random(7)
        landed_after_kill = []
        # inside the first micro-batch of a fresh JVM, then alternately just after a commit and inside a later batch
        for after_commit in (False, True, False, True, False):
            before, started = last_batch(profile, JOB), log_text(profile).count(f"{JOB}: reading")
            info = jobs.start(profile, JOB, bootstrap=broker["bootstrap"], max_offsets=MAX_OFFSETS)
            wait_for(lambda: log_text(profile).count(f"{JOB}: reading") > started, 300, "the query", profile, JOB)  # noqa: B023
            if after_commit:
                wait_for(lambda: last_batch(profile, JOB) > before, 300, "a micro-batch", profile, JOB)  # noqa: B023
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                time.sleep(rng.uniform(1.0, 8.0))
            os.killpg(info["pid"], signal.SIGKILL)
            wait_for(lambda: not jobs.status(profile, JOB)[0]["running"], 30, "the kill", profile, JOB)
            landed_after_kill.append(rows(profile, ORDERBOOK_STATE_STREAM))
        assert 0 < max(landed_after_kill) < expected_states, landed_after_kill
        replay.join(600)
        assert not replay.is_alive()

        jobs.start(profile, JOB, bootstrap=broker["bootstrap"], max_offsets=MAX_OFFSETS)
        before = last_batch(profile, JOB)
        wait_for(lambda: last_batch(profile, JOB) > before, 300, "a micro-batch after the kills", profile, JOB)
        assert bus.stop(state) is True  # the broker goes away under the running query ...
        time.sleep(5)
        bus.start(state, port=broker["port"], controller_port=broker["controller_port"])  # ... and comes back
        wait_for(lambda: rows(profile, ORDERBOOK_STATE_STREAM) >= expected_states, 600, "every book state", profile, JOB)
        time.sleep(3)  # a late duplicate would show up here
        assert jobs.status(profile, JOB)[0]["running"], "the query should have outlived the broker restart"
        assert jobs.stop(profile, JOB) is True
        assert f"{JOB}: stopped on SIGTERM" in log_text(profile)
    finally:
        bus.stop(state)

    parity = stream_parity(profile, complete=True).set_index("stage")
    print(parity.to_string())
    assert parity["equal"].all(), parity.to_string()
    assert int(parity.loc["gold.setup_vectors", "stream_rows"]) >= 2
    assert_series_equal_batch(profile)
