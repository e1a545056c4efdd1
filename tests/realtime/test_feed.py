"""The DBN replay feed against a real broker: envelope, keys, partitions, resume without duplicates."""
from __future__ import annotations

import json

import pytest

from mbolake.io.dbn import read_mbo
from mbolake.realtime import envelope, feed
from mbolake.realtime.bus import BusError, BusSettings

from .conftest import consume_all

pytestmark = pytest.mark.kafka


def test_replay_publishes_every_record_once_as_the_envelope(broker, topic, small_session, tmp_path):
    _, records = read_mbo(small_session)
    result = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max",
                         progress_file=tmp_path / "progress.json", chunk_records=5_000, report=None)
    assert result.sent == len(records) > 10_000
    messages = consume_all(broker["bootstrap"], topic)
    assert len(messages) == len(records)
    values = [json.loads(m.value()) for m in messages]
    assert sorted(v["payload"]["record_index"] for v in values) == list(range(len(records)))
    assert set(values[0]) == set(envelope.TOP_FIELDS) and set(values[0]["payload"]) == set(envelope.PAYLOAD_FIELDS)
    assert len({v["event_key"] for v in values}) == len(records)
    # keyed by contract: one contract's events sit in one partition, in file order
    partitions = {}
    for m, v in zip(messages, values):
        assert m.key().decode() == v["contract_id"]
        partitions.setdefault(v["contract_id"], set()).add(m.partition())
        assert v["payload"]["ts_recv"] == int(records["ts_recv"][v["payload"]["record_index"]])
    assert all(len(p) == 1 for p in partitions.values()) and len(partitions) >= 2
    by_contract = {}
    for v in values:
        by_contract.setdefault(v["contract_id"], []).append(v["payload"]["record_index"])
    assert all(idx == sorted(idx) for idx in by_contract.values())
    # the same file again with the same progress file: nothing is sent
    again = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max",
                        progress_file=tmp_path / "progress.json", report=None)
    assert again.sent == 0 and again.resumed_from == {str(small_session): len(records)}


def test_a_killed_replay_resumes_after_its_last_acknowledged_chunk(broker, topic, small_session, tmp_path):
    _, records = read_mbo(small_session)
    progress = feed.Progress(tmp_path / "progress.json")
    from mbolake.io import landing

    progress.record(landing.sha256_of(small_session), small_session, 5_000)  # as left by a feed killed after chunk 1
    result = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max",
                         progress_file=tmp_path / "progress.json", chunk_records=5_000, report=None)
    assert result.sent == len(records) - 5_000
    indices = sorted(json.loads(m.value())["payload"]["record_index"] for m in consume_all(broker["bootstrap"], topic))
    assert indices == list(range(5_000, len(records)))


def test_the_replay_reports_the_last_ts_recv_it_sent_per_contract_session(broker, topic, small_session, tmp_path):
    """The parity's cut-off: what the feed sent, per contract-session, also after a resumed replay."""
    import datetime as dt

    result = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max", end="10:00",
                         progress_file=tmp_path / "progress.json", chunk_records=5_000, report=None)
    expected = {}
    for message in consume_all(broker["bootstrap"], topic):
        value = json.loads(message.value())
        key = (value["contract_id"], dt.date.fromisoformat(value["payload"]["session_date"]))
        expected[key] = max(expected.get(key, 0), value["payload"]["ts_recv"])
    assert result.sent > 0 and len(expected) >= 2
    assert result.last_ts_recv == expected
    # the same file again: nothing sent, and the progress file still knows what was
    again = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max", end="10:00",
                        progress_file=tmp_path / "progress.json", report=None)
    assert again.sent == 0 and again.last_ts_recv == expected


def test_paced_replay_and_time_window(broker, topic, small_session):
    _, records = read_mbo(small_session)
    # 09:30-09:31 New York on the session day, at 10x: about 6 s of wall clock for one minute of data
    import time

    started = time.perf_counter()
    result = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="10", start="09:30",
                         end="09:31", report=None)
    took = time.perf_counter() - started
    from mbolake.core.calendar import local_ns

    minute = (local_ns(records["ts_recv"].astype("int64"), "America/New_York") % 86_400_000_000_000) // 60_000_000_000
    expected = int(((minute >= 570) & (minute < 571)).sum())
    assert result.sent == expected > 0
    assert 4.0 < took < 12.0


def test_bad_parameters_and_unknown_topic_fail_before_anything_is_sent(broker, small_session):
    settings = BusSettings(broker["bootstrap"])
    with pytest.raises(ValueError, match="--speed"):
        feed.replay(small_session, settings, speed="fast")
    with pytest.raises(ValueError, match="--from"):
        feed.replay(small_session, settings, start="25:00")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        feed.replay("/nowhere/x.dbn.zst", settings)
    with pytest.raises(BusError, match="no_such_topic"):
        feed.replay(small_session, settings, topic="no_such_topic")
    with pytest.raises(BusError, match="unreachable"):
        feed.replay(small_session, BusSettings("127.0.0.1:1"), report=None)


@pytest.mark.slow
def test_the_feed_process_killed_mid_file_resumes_where_it_stopped(broker, topic, small_session, tmp_path, project):
    import os
    import signal
    import subprocess
    import sys
    import time

    _, records = read_mbo(small_session)
    progress = tmp_path / "progress.json"
    cmd = [sys.executable, "-m", "mbolake.cli", "feed", "replay", str(small_session), "--bootstrap", broker["bootstrap"],
           "--topic", topic, "--progress-file", str(progress), "--chunk-records", "2000"]
    # paced so the session (about 8 h of ts_recv) takes about 30 s: killed somewhere in the middle
    proc = subprocess.Popen([*cmd, "--speed", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MBOLAKE_HOME": str(project)})
    deadline = time.time() + 60
    while time.time() < deadline and not (progress.exists() and json.loads(progress.read_text())):
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent_before = next(iter(json.loads(progress.read_text()).values()))["sent"]
    assert 0 < sent_before < len(records)
    done = subprocess.run([*cmd, "--speed", "max"], capture_output=True, text=True, env={**os.environ, "MBOLAKE_HOME": str(project)})
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout
    indices = [json.loads(m.value())["payload"]["record_index"] for m in consume_all(broker["bootstrap"], topic)]
    assert sorted(set(indices)) == list(range(len(records)))  # nothing lost
    # at most the chunk in flight when the feed was killed goes out twice (Bronze lands it once by event_key)
    assert len(indices) - len(records) <= 2_000
