"""The broker stopped and started again in the middle of a replay: the feed waits for it (the
idempotent producer retries) and every event is in the topic once."""
from __future__ import annotations

import json
import threading
import time

import pytest

from mbolake.io.dbn import read_mbo
from mbolake.realtime import bus, feed
from mbolake.realtime.bus import BusSettings

from .conftest import consume_all

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_broker_restart_mid_replay_loses_and_duplicates_nothing(tmp_path, small_session):
    _, records = read_mbo(small_session)
    state = tmp_path / "broker"
    info = bus.start(state, port=bus.free_port())
    try:
        settings = BusSettings(info["bootstrap"])
        outcome = {}

        def run():
            try:  # about 8 h of ts_recv at 1000x: about 30 s
                outcome["result"] = feed.replay(small_session, settings, speed="1000", chunk_records=2_000,
                                                progress_file=tmp_path / "progress.json", report=None)
            except Exception as exc:  # surfaced by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(6)
        assert thread.is_alive()
        assert bus.stop(state) is True
        time.sleep(3)
        bus.start(state, port=info["port"], controller_port=info["controller_port"])
        thread.join(180)
        assert not thread.is_alive() and "error" not in outcome, outcome
        assert outcome["result"].sent == len(records)
        indices = [json.loads(m.value())["payload"]["record_index"] for m in consume_all(info["bootstrap"], "mbo_raw")]
        assert sorted(indices) == list(range(len(records)))
    finally:
        bus.stop(state)
