"""rt bronze as a background job (``mbolake stream start|stop|status``), killed with SIGKILL at
random points and restarted from its checkpoint: every event of the topic lands exactly once."""
from __future__ import annotations

import os
import random
import signal
import time

import pytest
from deltalake import DeltaTable

from mbolake.io.dbn import read_mbo
from mbolake.realtime import feed, jobs
from mbolake.realtime.bus import BusSettings
from mbolake.runtime.config import load_profile
from mbolake.schemas import BRONZE_MBO_STREAM

from .conftest import last_batch, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]
JOB = "rt_bronze"


def landed(profile):
    path = profile.table_path(BRONZE_MBO_STREAM.name)
    if not DeltaTable.is_deltatable(path):
        return None
    return DeltaTable(path).to_pyarrow_table(columns=["event_key", "record_index"])


def test_sigkill_at_random_points_then_restart_loses_and_duplicates_nothing(project, broker, topic, tiny_session):
    profile = load_profile("local")
    _, records = read_mbo(tiny_session)
    feed.replay(tiny_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max", report=None)
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
