"""rt silver as a background job, killed with SIGKILL at five random points during a paced replay
and restarted from its checkpoint, then the broker stopped and started again under the running
query: the stream twins still equal the batch tables, nothing lost and nothing duplicated."""
from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest
from deltalake import DeltaTable

from mbolake.realtime import bus, feed, jobs
from mbolake.realtime.bus import BusSettings
from mbolake.realtime.parity import stream_parity
from mbolake.runtime.config import load_profile
from mbolake.schemas import ORDERBOOK_STATE, ORDERBOOK_STATE_STREAM

from .conftest import job_log, last_batch, wait_for
from .test_rt_silver import land_and_build_batch

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]
JOB = "rt_silver"


def log_text(profile) -> str:
    return job_log(profile, JOB)


def rows(profile, table) -> int:
    path = profile.table_path(table.name)
    return DeltaTable(path).to_pyarrow_table(columns=["ts_recv"]).num_rows if DeltaTable.is_deltatable(path) else 0


def test_sigkill_five_times_and_a_broker_restart_then_the_stream_still_equals_batch(project, tmp_path):
    profile = load_profile("local")
    path = land_and_build_batch(profile)
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
            info = jobs.start(profile, JOB, bootstrap=broker["bootstrap"], max_offsets=4_001)
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

        jobs.start(profile, JOB, bootstrap=broker["bootstrap"], max_offsets=4_001)
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
