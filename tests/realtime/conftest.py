"""A real Kafka broker (KRaft, 127.0.0.1, free ports) for the realtime tests, and a small DBN session."""
from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

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


@pytest.fixture(scope="session")
def pipeline_home(tmp_path_factory) -> Path:
    """A project home built once: one generated session landed and run through every batch stage
    (``test_rt_silver.land_and_build_batch``: Bronze, Silver, Gold on the local engine) and a champion
    of the same feature set registered by 41_split + 42_sweep on a generated training snapshot.

    The replay leg (``test_replay_leg.py``) and then the tutorial notebook (``test_tutorial.py``) run
    on it. The fixture sets no environment for the tests: each one points ``MBOLAKE_HOME`` at it."""
    from mbolake.runtime.config import load_profile
    from mbolake.runtime.orchestrator import run_notebooks
    from mbolake.sample.ml_snapshot import write_synthetic_snapshot

    from .test_rt_silver import land_and_build_batch
    from tests.helpers import make_project

    root = make_project(tmp_path_factory.mktemp("pipeline_home") / "project")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MBOLAKE_HOME", str(root))
        profile = load_profile("local")
        land_and_build_batch(profile)
        # a champion of the same feature set (trained on a generated snapshot: the leg only needs one served)
        write_synthetic_snapshot(profile.ml_artifacts_root, "ES_MODEL", dt.date(2026, 1, 6), n_sessions=8,
                                 episodes_per_session=20)
        run_notebooks(["40_ml/41_split.ipynb", "40_ml/42_sweep.ipynb"], {"max_evals": 2, "seed": 3}, run_id="ml",
                      log=lambda _: None)
    return root


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
