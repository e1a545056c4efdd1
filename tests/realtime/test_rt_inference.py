"""rt inference against a real champion (a tiny sweep, registered, ``mlflow models serve``), a real broker
and Spark: every setup vector of the stream scored once, stamped with its feature_hash and the served
version, equal to the endpoint's own answer; vectors that arrive while the server is down are scored
once it is back; the topic carries exactly the table's rows; a re-run micro-batch is not scored twice."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable

from mbolake.features.setup_vector import FEATURE_SET, feature_hash
from mbolake.ml.inference_client import InferenceClient
from mbolake.ml.serve import free_port, serve_info_path, serving
from mbolake.realtime import bus, rt_inference
from mbolake.realtime.bus import BusError, BusSettings
from mbolake.realtime.rt_inference import RtInferenceConfig
from mbolake.schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS, SETUP_VECTORS_STREAM

from .conftest import consume_all
from tests.helpers import make_project

RUN_DATE = dt.date(2024, 6, 1)


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A champion ES_MODEL_setup_v3 trained on a synthetic snapshot (one sweep trial) in a project of its own."""
    import mlflow

    from mbolake.ml.registry import register_best
    from mbolake.ml.snapshot import load_snapshot
    from mbolake.ml.split import split_snapshot
    from mbolake.ml.sweep import run_sweep
    from mbolake.ml.tracking import setup_mlflow
    from mbolake.runtime.config import load_profile
    from mbolake.sample.ml_snapshot import write_synthetic_snapshot

    root = make_project(tmp_path_factory.mktemp("rt_inference_project"))
    old_home, old_uri = os.environ.get("MBOLAKE_HOME"), mlflow.get_tracking_uri()
    os.environ["MBOLAKE_HOME"] = str(root)
    try:
        profile = load_profile("local")
    finally:
        if old_home is None:
            os.environ.pop("MBOLAKE_HOME", None)
        else:
            os.environ["MBOLAKE_HOME"] = old_home
    setup_mlflow(profile, experiment="rt-inference-test")
    write_synthetic_snapshot(profile.ml_artifacts_root, run_date=RUN_DATE, n_sessions=4, episodes_per_session=20)
    snapshot = load_snapshot(profile.ml_artifacts_root, "ES_MODEL", RUN_DATE)
    split = split_snapshot(snapshot, name="main", fractions=(0.5, 0.25, 0.25))
    version = register_best(run_sweep(split, max_evals=1, seed=3, plots=False, log_split=False))
    yield {"profile": profile, "snapshot": snapshot, "name": version.name, "version": str(version.version)}
    mlflow.set_tracking_uri(old_uri)
    mlflow.set_registry_uri(old_uri)


def stream_vectors(snapshot, n: int) -> pd.DataFrame:
    """``n`` setup vectors as rt gold writes them (real feature hashes; the stream bookkeeping set on write)."""
    frame = snapshot.frame.tail(n).reset_index(drop=True)[[f.name for f in SETUP_VECTORS.schema]].copy()
    frame["feature_hash"] = [feature_hash(FEATURE_SET, v) for v in frame["feature_vector"]]
    return frame


def append_vectors(spark, config: RtInferenceConfig, vectors: pd.DataFrame, batch_id: int) -> None:
    from mbolake.schemas import spark_schema

    rows = vectors.assign(stream_batch_id=batch_id, stream_time=time.time_ns())
    rows["approach_direction"] = rows["approach_direction"].astype("int32")
    (spark.createDataFrame(rows, schema=spark_schema(SETUP_VECTORS_STREAM)).write.format("delta").mode("append")
     .save(config.table_path(SETUP_VECTORS_STREAM)))


def scores_table(config: RtInferenceConfig) -> pd.DataFrame:
    return DeltaTable(config.table_path(INFERENCE_SCORES_STREAM)).to_pandas()


def wait_for_scores(config, query, n: int, timeout: float = 300.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert query.isActive, f"the query stopped: {query.exception()}"
        scores = scores_table(config)
        if len(scores) >= n:
            return scores
        time.sleep(0.5)
    raise AssertionError(f"{len(scores_table(config))} of {n} vectors scored within {timeout:.0f} s")


def fresh_topic(broker) -> str:
    name = f"inference_scores_{uuid.uuid4().hex[:8]}"
    bus.ensure_topics(BusSettings(broker["bootstrap"]), {name: 1})
    return name


@pytest.mark.spark
@pytest.mark.kafka
@pytest.mark.serve
@pytest.mark.slow
def test_every_vector_scored_once_also_across_an_endpoint_outage(spark, broker, champion, tmp_path):
    profile, name = champion["profile"], champion["name"]
    settings = BusSettings(broker["bootstrap"])
    config = RtInferenceConfig(lake_root=str(tmp_path / "lake"), checkpoint=str(tmp_path / "lake/checkpoints/rt_inference"),
                               topic=fresh_topic(broker), trigger_seconds=1.0, max_wait_seconds=300.0,
                               first_backoff_seconds=0.5, max_backoff_seconds=2.0)
    resolve = rt_inference.profile_resolver(profile)
    vectors = stream_vectors(champion["snapshot"], 7)
    first, second = vectors.iloc[:4], vectors.iloc[4:]
    info_path = serve_info_path(profile, name)
    rt_inference.ensure_tables(spark, config)
    append_vectors(spark, config, first.iloc[:2], 0)
    append_vectors(spark, config, first.iloc[2:], 1)
    batches: list[dict] = []
    model_uri = f"models:/{name}@champion"

    with serving(model_uri, profile.mlflow_tracking_uri, info_path=info_path, log_dir=tmp_path / "serve") as server:
        assert json.loads(info_path.read_text())["model_version"] == champion["version"]
        query = rt_inference.start(spark, settings, config, resolve, on_batch=batches.append)
        wait_for_scores(config, query, 4)
        direct_first = InferenceClient(server.url).predict(rt_inference.model_input(first, FEATURE_SET))
    assert not info_path.exists()  # the server is gone and says so

    # the endpoint is down: new vectors wait (the micro-batch retries with backoff), nothing is dropped
    append_vectors(spark, config, second, 2)
    time.sleep(6)
    assert len(scores_table(config)) == 4 and query.isActive
    with serving(model_uri, profile.mlflow_tracking_uri, info_path=info_path, log_dir=tmp_path / "serve") as server:
        scores = wait_for_scores(config, query, 7)
        direct_second = InferenceClient(server.url).predict(rt_inference.model_input(second, FEATURE_SET))
    query.stop()

    scores = scores_table(config).sort_values("vector_time", kind="stable").reset_index(drop=True)
    assert len(scores) == 7 and scores["episode_id"].is_unique
    assert list(scores["episode_id"]) == list(vectors["episode_id"])
    assert list(scores["feature_hash"]) == list(vectors["feature_hash"])
    assert set(scores["model_version"]) == {champion["version"]} and set(scores["model_name"]) == {name}
    direct = pd.concat([direct_first, direct_second], ignore_index=True)
    for cls in ("BREAK", "REJECT", "CHOP"):
        np.testing.assert_allclose(scores[f"p_{cls.lower()}"], direct[f"p_{cls}"], rtol=0, atol=1e-12)
    assert list(scores["predicted"]) == list(direct["predicted"])
    assert (scores["attempts"].iloc[:4] == 1).all() and (scores["attempts"].iloc[4:] > 1).all()
    scored = [b for b in batches if b["scores"]]
    print("rt_inference micro-batches:", [(b["batch_id"], b["scores"], b["attempts"], b["seconds"],
                                           b["vector_to_score_seconds_max"]) for b in scored])

    # the topic carries each table row once, key = episode_id
    messages = consume_all(broker["bootstrap"], config.topic)
    assert sorted(m.key().decode() for m in messages) == sorted(scores["episode_id"])
    published = pd.DataFrame([json.loads(m.value()) for m in messages]).set_index("episode_id").sort_index()
    table = scores.set_index("episode_id").sort_index()
    table["session_date"] = [d.isoformat() for d in table["session_date"]]
    pd.testing.assert_frame_equal(published[table.columns], table, check_dtype=False, check_exact=True)

    # a micro-batch re-run after a crash (already committed) is read back, not scored nor written again
    last = max(b["batch_id"] for b in scored)
    empty = spark.createDataFrame([], schema=spark.read.format("delta").load(config.table_path(SETUP_VECTORS_STREAM)).schema)
    again = rt_inference.process_batch(spark, config, empty, last, resolve, publisher=None, query_id=str(query.id))
    assert again["rerun"] and again["scores"] == 3 and len(scores_table(config)) == 7
    # ... but the same batch id of another query (a checkpoint deleted and recreated at the same path) is new work
    fresh = rt_inference.process_batch(spark, config, empty, last, resolve, publisher=None, query_id="a-new-query")
    assert not fresh["rerun"] and fresh["scores"] == 0 and len(scores_table(config)) == 7


@pytest.mark.kafka
def test_a_bad_parameter_topic_broker_or_checkpoint_fails_before_the_query(broker, tmp_path):
    config = RtInferenceConfig(lake_root=str(tmp_path / "lake"), checkpoint=str(tmp_path / "ckpt"),
                               topic=fresh_topic(broker))
    settings = BusSettings(broker["bootstrap"])
    # every check runs before Spark is touched: no session is needed to see them fail
    with pytest.raises(ValueError, match="trigger_seconds must be a number > 0, got 0"):
        rt_inference.start(None, settings, replace(config, trigger_seconds=0), lambda *_: None)
    with pytest.raises(ValueError, match="max_wait_seconds must be a number > 0, got -1"):
        rt_inference.start(None, settings, replace(config, max_wait_seconds=-1), lambda *_: None)
    with pytest.raises(BusError, match="no_such_topic"):
        rt_inference.start(None, settings, replace(config, topic="no_such_topic"), lambda *_: None)
    with pytest.raises(BusError, match="127.0.0.1:1 is unreachable"):
        rt_inference.start(None, BusSettings("127.0.0.1:1"), config, lambda *_: None)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    bad = str(locked / "ckpt") if os.geteuid() else "/proc/mbolake-ckpt"  # root writes anywhere else
    with pytest.raises(PermissionError, match="checkpoint location .* is not writable"):
        rt_inference.start(None, settings, replace(config, checkpoint=bad), lambda *_: None)


def test_an_endpoint_that_stays_down_is_retried_with_backoff_then_fails_naming_it(tmp_path):
    from mbolake.realtime.rt_inference import Endpoint, EndpointDown, score_group
    from mbolake.sample.ml_snapshot import synthetic_training_frame

    vectors = synthetic_training_frame(n_sessions=1, episodes_per_session=3)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
    endpoint = Endpoint(InferenceClient(url), "ES_MODEL_setup_v3", "1")
    config = RtInferenceConfig(lake_root=str(tmp_path), checkpoint=str(tmp_path / "ckpt"), max_wait_seconds=3.0,
                               first_backoff_seconds=0.25, max_backoff_seconds=1.0)
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    started = time.monotonic()
    with pytest.raises(EndpointDown, match=rf"ES_MODEL \({url}/invocations\) did not answer within 3 s \(\d+ attempts\)"):
        score_group(vectors, "ES_MODEL", FEATURE_SET, lambda *_: endpoint, config, sleep)
    assert waits[:3] == [0.25, 0.5, 1.0] and set(waits[3:]) <= {1.0}
    assert 2.0 <= time.monotonic() - started < 6.0

    # no endpoint known at all is the same wait, then the same failure
    with pytest.raises(EndpointDown, match="no endpoint serves ES_MODEL_setup_v3"):
        score_group(vectors, "ES_MODEL", FEATURE_SET, lambda *_: None, replace(config, max_wait_seconds=0.5), sleep)
    with pytest.raises(ValueError, match="feature_set 'setup_v1' cannot be scored"):
        score_group(vectors, "ES_MODEL", "setup_v1", lambda *_: endpoint, config, sleep)


def wait_for_text(path, text: str, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace") if path.exists() else ""
        if text in log:
            return log
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path} within {timeout:.0f} s:\n{log[-3000:]}")


@pytest.mark.spark
@pytest.mark.kafka
@pytest.mark.serve
@pytest.mark.slow
def test_the_stream_job_waits_for_an_endpoint_scores_when_served_and_stops_inside_a_wait(spark, broker, champion,
                                                                                         capsys):
    from mbolake.realtime import jobs

    profile, name = champion["profile"], champion["name"]
    conf = profile.root / "conf" / "local.yaml"
    settings = yaml.safe_load(conf.read_text())
    settings["streams"] |= {"score_trigger_seconds": 1, "score_max_wait_seconds": 600, "score_max_backoff_seconds": 2}
    conf.write_text(yaml.safe_dump(settings))  # the job process reads the project's profile
    topic = fresh_topic(broker)
    with pytest.raises(BusError, match="127.0.0.1:1 is unreachable"):
        jobs.start(profile, "rt_inference", bootstrap="127.0.0.1:1", topic=topic)
    bad = replace(profile, settings={**profile.settings, "streams": {"score_trigger_seconds": "soon"}})
    with pytest.raises(ValueError, match="streams.score_trigger_seconds must be a number of seconds > 0, got 'soon'"):
        jobs.start(bad, "rt_inference", bootstrap=broker["bootstrap"], topic=topic)

    config = jobs.rt_inference_config(profile, topic)
    rt_inference.ensure_tables(spark, config)
    vectors = stream_vectors(champion["snapshot"], 4)
    append_vectors(spark, config, vectors.iloc[:3], 0)
    capsys.readouterr()
    info = jobs.start(profile, "rt_inference", bootstrap=broker["bootstrap"], topic=topic)
    assert f"no endpoint serves {name} yet; its vectors wait until one does" in capsys.readouterr().out
    log = Path(info["log"])
    try:
        wait_for_text(log, "3 vector(s) of ES_MODEL wait for no endpoint")
        # the champion served in the background the way a user does it: python -m mbolake.ml.serve
        server = subprocess.Popen([sys.executable, "-m", "mbolake.ml.serve", "--profile", "local"],
                                  env={**os.environ, "MBOLAKE_HOME": str(profile.root)}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300  # a loaded 2-core machine: the server alone may take a minute
            while len(scores_table(config)) < 3 and time.monotonic() < deadline and server.poll() is None:
                time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGTERM)
            out = server.communicate(timeout=60)[0].decode()
        assert f"{name} v{champion['version']} served at http://127.0.0.1:" in out, out[-2000:]
        assert server.returncode == 0 and not serve_info_path(profile, name).exists()
        scores = scores_table(config)
        assert len(scores) == 3, log.read_text(errors="replace")[-3000:]
        assert sorted(scores["episode_id"]) == sorted(vectors["episode_id"].iloc[:3])
        assert set(scores["model_version"]) == {champion["version"]}
        [row] = jobs.status(profile, "rt_inference")
        assert row["running"] and row["last_batch"]["scores"] == 3

        # the endpoint gone again: a new vector waits, and a stop cuts the wait short (nothing written)
        append_vectors(spark, config, vectors.iloc[3:], 1)
        wait_for_text(log, "1 vector(s) of ES_MODEL wait for no endpoint")
    finally:
        started = time.monotonic()
        assert jobs.stop(profile, "rt_inference")
        stop_seconds = time.monotonic() - started
    assert "rt_inference: stopped on SIGTERM" in log.read_text(), log.read_text(errors="replace")[-3000:]
    assert stop_seconds < 60, stop_seconds  # not the 90 s after which jobs.stop sends SIGKILL
    assert len(scores_table(config)) == 3


def test_latest_scores_and_their_figure(project):
    import pyarrow as pa
    from deltalake import write_deltalake

    from mbolake.runtime.config import load_profile

    profile = load_profile("local")
    empty = rt_inference.latest_scores(profile)
    assert empty.empty and rt_inference.plot_scores(empty).layout.title.text == "rt inference: no scores yet"

    t0 = 1_762_266_600 * 10**9  # 2025-11-04 09:30 New York
    predicted = ["BREAK", "REJECT", "BREAK", "CHOP", "REJECT"]
    rows = [{"episode_id": f"e{i}", "model_id": "ES_MODEL", "contract_id": "GLBX.MDP3:ESZ5",
             "session_date": dt.date(2025, 11, 4), "vector_time": t0 + i * 60 * 10**9, "feature_hash": f"h{i}",
             "model_name": "ES_MODEL_setup_v3", "model_version": "2", "predicted": cls,
             "p_break": 0.6 if cls == "BREAK" else 0.2, "p_reject": 0.6 if cls == "REJECT" else 0.2,
             "p_chop": 0.6 if cls == "CHOP" else 0.2, "scored_time": t0 + i * 60 * 10**9 + 10**9, "attempts": 1,
             "stream_batch_id": i, "stream_time": t0 + i * 60 * 10**9 + 1_500_000_000} for i, cls in enumerate(predicted)]
    write_deltalake(profile.table_path(INFERENCE_SCORES_STREAM.name),
                    pa.Table.from_pylist(rows, schema=INFERENCE_SCORES_STREAM.schema), partition_by=["session_date"])

    scores = rt_inference.latest_scores(profile, limit=4)
    assert list(scores["episode_id"]) == ["e4", "e3", "e2", "e1"]
    assert str(scores["vector_at"].iloc[-1]) == "2025-11-04 09:31:00-05:00"
    assert list(scores["score_latency_s"]) == [1.5] * 4
    fig = rt_inference.plot_scores(scores)
    assert {t.name: len(t.x) for t in fig.data} == {"BREAK": 1, "REJECT": 2, "CHOP": 1}
    assert all(set(t.y) == {0.6} for t in fig.data)


def test_busy_answers_are_retried_a_refusal_fails_at_once_and_a_broken_registry_is_a_wait(tmp_path):
    """503 (a busy server) is waited out, 400 (the input does not fit the model) is not: a stdlib HTTP server
    stands in for the endpoint's answers here; the real server's are in the tests above."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mbolake.ml.inference_client import InferenceError
    from mbolake.realtime.rt_inference import Endpoint, EndpointDown, score_group
    from mbolake.sample.ml_snapshot import synthetic_training_frame

    answers = [503, 503, 400]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            code = answers.pop(0)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b'{"error_code": "BAD_REQUEST"}' if code == 400 else b"busy")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vectors = synthetic_training_frame(n_sessions=1, episodes_per_session=2)
    config = RtInferenceConfig(lake_root=str(tmp_path), checkpoint=str(tmp_path / "ckpt"), max_wait_seconds=30.0,
                               first_backoff_seconds=0.1, max_backoff_seconds=0.2)
    endpoint = Endpoint(InferenceClient(f"http://127.0.0.1:{server.server_port}"), "ES_MODEL_setup_v3", "1")
    waits: list[float] = []
    try:
        with pytest.raises(InferenceError, match="answered 400"):
            score_group(vectors, "ES_MODEL", FEATURE_SET, lambda *_: endpoint, config, waits.append)
    finally:
        server.shutdown()
    assert waits == [0.1, 0.2] and answers == []

    def broken_registry(*_):
        raise RuntimeError("database is locked")

    with pytest.raises(EndpointDown, match="cannot be resolved now: database is locked"):
        score_group(vectors, "ES_MODEL", FEATURE_SET, broken_registry, replace(config, max_wait_seconds=0.3),
                    time.sleep)


def test_the_job_reads_its_trigger_from_the_profile_and_refuses_a_bad_one(project):
    from mbolake.realtime import jobs
    from mbolake.runtime.config import load_profile

    profile = load_profile("local")
    config = jobs.rt_inference_config(profile)
    assert (config.trigger_seconds, config.max_wait_seconds, config.topic) == (5.0, 600.0, "inference_scores")
    assert config.checkpoint == f"{profile.lake_root}/checkpoints/rt_inference"
    for bad in (0, -1, "soon", None):
        broken = replace(profile, settings={**profile.settings, "streams": {"score_trigger_seconds": bad}})
        with pytest.raises(ValueError, match=rf"streams.score_trigger_seconds must be a number of seconds > 0, got {bad!r}"):
            jobs.rt_inference_config(broken)
