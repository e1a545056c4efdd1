"""rt bronze as a background job (``mbolake stream start|stop|status``), killed at its fault point
``rt_bronze.after_merge`` (a micro-batch MERGEd, not committed) and with SIGKILL at random points,
restarted from its checkpoint each time: every event of the topic lands exactly once, with the
values of ``bronze.mbo`` from the same file."""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from mbolake.io.dbn import read_mbo
from mbolake.realtime import feed, jobs
from mbolake.realtime.bus import BusSettings
from mbolake.runtime.config import load_profile
from mbolake.schemas import BRONZE_MBO_STREAM

from .conftest import last_batch, wait_for
from .test_rt_bronze import file_bronze, normalized
from .test_rt_silver_faults import run_until_killed

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]
JOB = "rt_bronze"


def landed(profile, columns=("event_key", "record_index")):
    path = profile.table_path(BRONZE_MBO_STREAM.name)
    if not DeltaTable.is_deltatable(path):
        return None
    return DeltaTable(path).to_pyarrow_table(columns=list(columns))


def first_batch_rows(profile) -> set[tuple]:
    """``(event_key, stream_time)`` of the rows micro-batch 0 inserted (a re-run inserting again would change them)."""
    rows = landed(profile, ("event_key", "stream_time", "ingest_batch_id")).to_pylist()
    return {(r["event_key"], r["stream_time"]) for r in rows if r["ingest_batch_id"] == "rt_bronze:0"}


def test_killed_after_a_merge_and_at_random_points_then_restart_lands_every_event_once(project, broker, topic,
                                                                                       tiny_session):
    profile = load_profile("local")
    _, records = read_mbo(tiny_session)
    feed.replay(tiny_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max", report=None)
    # micro-batch 0 MERGEd, the process gone before Spark commits it: the window is hit when the
    # table holds batch 0's rows and the checkpoint no commit
    run_until_killed(profile, JOB, "rt_bronze.after_merge", bootstrap=broker["bootstrap"], topic=topic, max_offsets=700)
    commits = Path(jobs.rt_bronze_config(profile).checkpoint) / "commits"
    assert not list(commits.glob("[0-9]*"))
    merged_in_0 = first_batch_rows(profile)
    assert 0 < len(merged_in_0) < len(records)
    rng = random.Random(15)
    log = jobs.stream_dir(profile) / "rt_bronze.log"
    landed_after_kill = []
    # five kill points: inside the first micro-batch of a fresh JVM (nothing committed yet), then
    # alternately just after a micro-batch committed and inside a later one
    for after_commit in (False, True, False, True, False):
        before, started = last_batch(profile, JOB), log.read_text().count("rt_bronze: reading") if log.exists() else 0
        info = jobs.start(profile, "rt_bronze", bootstrap=broker["bootstrap"], topic=topic, max_offsets=700)
        with pytest.raises(RuntimeError, match="already running"):
            jobs.start(profile, "rt_bronze", bootstrap=broker["bootstrap"], topic=topic)
        wait_for(lambda: log.read_text().count("rt_bronze: reading") > started, 180, "the query", profile, JOB)  # noqa: B023
        if after_commit:
            wait_for(lambda: last_batch(profile, JOB) > before, 180, "a micro-batch", profile, JOB)  # noqa: B023
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            time.sleep(rng.uniform(1.0, 6.0))
        os.killpg(info["pid"], signal.SIGKILL)
        wait_for(lambda: not jobs.status(profile, "rt_bronze")[0]["running"], 30, "the kill", profile, JOB)  # noqa: B023
        table = landed(profile)
        landed_after_kill.append(0 if table is None else table.num_rows)
    assert 0 < max(landed_after_kill) < len(records), landed_after_kill  # killed with part of the topic landed
    jobs.start(profile, "rt_bronze", bootstrap=broker["bootstrap"], topic=topic, max_offsets=5_000)
    wait_for(lambda: (t := landed(profile)) is not None and t.num_rows >= len(records), 300, "every event", profile, JOB)
    time.sleep(3)  # a late duplicate would show up here
    assert jobs.stop(profile, "rt_bronze") is True
    log = (jobs.stream_dir(profile) / "rt_bronze.log").read_text()
    assert "rt_bronze: stopped on SIGTERM" in log  # a clean stop, not the SIGKILL fallback
    assert jobs.status(profile, "rt_bronze")[0]["running"] is False
    table = landed(profile)
    assert len(landed_after_kill) == 5
    assert table.num_rows == len(records)
    assert len(set(table.column("event_key").to_pylist())) == len(records)
    assert sorted(table.column("record_index").to_pylist()) == list(range(len(records)))
    assert first_batch_rows(profile) == merged_in_0  # batch 0's re-run inserted nothing again
    assert normalized(landed(profile, BRONZE_MBO_STREAM.schema.names)).equals(normalized(file_bronze(profile, tiny_session)))
