"""A real Kafka broker (KRaft, 127.0.0.1, free ports) for the realtime tests, and a small DBN session."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from mbolake.realtime import bus
from mbolake.sample import synth

SESSION = dt.date(2025, 11, 4)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    state = tmp_path_factory.mktemp("broker")
    info = bus.start(state, port=bus.free_port())
    yield info
    bus.stop(state)


@pytest.fixture
def topic(broker) -> str:
    """A fresh 4-partition topic per test (the same broker serves every test)."""
    name = f"mbo_raw_{uuid.uuid4().hex[:8]}"
    bus.ensure_topics(bus.BusSettings(broker["bootstrap"]), {name: 4})
    return name


@pytest.fixture(scope="session")
def small_session(tmp_path_factory):
    """One synthetic ES session of about 20 k records (DBN v3, zstd)."""
    out = tmp_path_factory.mktemp("raw")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=20_000), progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_session(tmp_path_factory):
    """One synthetic ES session of about 10 k records (the smallest the generator makes)."""
    out = tmp_path_factory.mktemp("raw_tiny")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=10_000, seed=5),
                                   progress=False)
    return path


def consume_all(bootstrap: str, topic: str, idle: float = 3.0) -> list:
    """Every message of ``topic`` from the beginning (stops after ``idle`` seconds without one)."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    messages, last = [], time.time()
    try:
        while time.time() - last < idle or not messages and time.time() - last < 30:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            messages.append(msg)
            last = time.time()
    finally:
        consumer.close()
    return messages


def job_log(profile, job: str) -> str:
    path = jobs_module().stream_dir(profile) / f"{job}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def last_batch(profile, job: str) -> int:
    """The id of the last micro-batch background job ``job`` committed (-1: none yet)."""
    import json

    path = jobs_module().stream_dir(profile) / f"{job}.status.json"
    return json.loads(path.read_text())["batch_id"] if path.exists() else -1


def wait_for(condition, timeout: float, what: str, profile, job: str) -> None:
    """Poll ``condition`` until true; on timeout fail with the end of the job's log."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; {job} log:\n{job_log(profile, job)[-4000:]}")


def jobs_module():
    from mbolake.realtime import jobs

    return jobs
