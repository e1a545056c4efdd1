"""rt silver against a real broker and Spark: for the same generated session, the stream twins
equal the batch tables value for value (book states, bars, primitives, setup vectors with their
feature_hash), with micro-batches cut at arbitrary points and malformed messages in the topic."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mbolake.io import delta_tables
from mbolake.realtime import bus, feed, jobs, rt_silver
from mbolake.realtime.bus import BusError, BusSettings
from mbolake.realtime.parity import stream_parity
from mbolake.realtime.producer import BusProducer
from mbolake.realtime.replay_leg import end_offsets
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, FEATURE_SERIES_STREAM
from mbolake.stages import SILVER_GOLD_STAGES, BronzeProcessDBN

from .conftest import consume_all
from tests.helpers import session_file

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]

SESSION = dt.date(2025, 11, 5)
BATCH_STAGES = SILVER_GOLD_STAGES
OUTPUTS = (*rt_silver.TWINS.values(), FEATURE_SERIES_STREAM)
BOOKKEEPING = ("stream_batch_id", "stream_time")


def land_and_build_batch(profile) -> list:
    """One generated session landed and run through every batch stage (local engine)."""
    [path] = synth.generate_sample(profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=SESSION,
                                                                           intensity=30_000, seed=21), progress=False)
    ctx = Context(profile=profile)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    for stage in BATCH_STAGES:
        stage().run(ctx, underlier="ES")
    return path


def test_stream_tables_equal_batch_tables(spark, pipeline_copy, broker, topic):
    profile = load_profile("local")
    path = session_file(pipeline_copy)
    settings = BusSettings(broker["bootstrap"])
    features = f"features_{uuid.uuid4().hex[:8]}"
    bus.ensure_topics(settings, {features: 1})
    producer = BusProducer(settings, topic)
    producer.send([(b"GLBX.MDP3:ESZ5", b"{not an envelope"), (b"GLBX.MDP3:ESZ5", b'{"event_key": "x"}')])
    producer.flush()
    feed.replay(path, settings, topic=topic, speed="max", report=None)
    producer.send([(b"GLBX.MDP3:ESZ5", b"\xff\xfe")])
    producer.flush()

    config = dataclasses.replace(jobs.rt_silver_config(profile, topic, max_offsets=4_999), publish_topic=features)
    batches = []
    query = rt_silver.start(spark, settings, config, available_now=True, on_batch=batches.append)
    query.awaitTermination()
    assert query.exception() is None
    assert len(batches) >= 5, "the session should be cut into several micro-batches"
    outrights = delta_tables.read(profile, BRONZE_MBO, ["instrument_type"]).column("instrument_type").to_pylist()
    assert sum(b["records"] for b in batches) == sum(kind != "SPREAD" for kind in outrights)  # each record once

    parity = stream_parity(profile, complete=True).set_index("stage")
    print(parity.to_string())
    assert parity["equal"].all(), parity.to_string()
    assert (parity["stream_rows"] > 0).all()
    vectors = int(parity.loc["gold.setup_vectors", "stream_rows"])
    assert vectors >= 2, "the generated session should hold episodes"

    published = [json.loads(m.value()) for m in consume_all(broker["bootstrap"], features)]
    kinds = {kind: [m for m in published if m["kind"] == kind] for kind in ("setup_vector", "feature_series")}
    assert len({m["episode_id"] for m in kinds["setup_vector"]}) == vectors
    assert len({m["bar_ts"] for m in kinds["feature_series"]}) == int(parity.loc["silver.bar_5s", "stream_rows"])


def test_bad_topic_checkpoint_and_parameters_fail_before_the_query(spark, project, broker, tmp_path):
    profile = load_profile("local")
    settings = BusSettings(broker["bootstrap"])
    with pytest.raises(BusError, match="no_such_topic"):
        rt_silver.start(spark, settings, jobs.rt_silver_config(profile, "no_such_topic"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    unwritable = "/proc/mbolake-checkpoint" if os.geteuid() == 0 else str(locked / "cp")  # root writes anywhere else
    config = dataclasses.replace(jobs.rt_silver_config(profile, "mbo_raw"), checkpoint=unwritable)
    bus.ensure_topics(settings, {"mbo_raw": 4, "features_gold": 1})
    with pytest.raises(PermissionError, match="checkpoint location .* is not writable"):
        rt_silver.start(spark, settings, config)
    with pytest.raises(ValueError, match="max_offsets_per_trigger"):
        dataclasses.replace(config, max_offsets_per_trigger=0)
    with pytest.raises(ValueError, match="min_read_tasks must be >= 1, got 0"):
        dataclasses.replace(config, min_read_tasks=0)
    with pytest.raises(ValueError, match="unknown underlier 'NQ'"):
        dataclasses.replace(config, underlier="NQ")
    with pytest.raises(BusError, match="127.0.0.1:1"):
        rt_silver.start(spark, BusSettings("127.0.0.1:1"), jobs.rt_silver_config(profile, "mbo_raw"))
    # the background job says the same before its process starts
    with pytest.raises(BusError, match="no_such_topic"):
        jobs.start(profile, "rt_silver", bootstrap=broker["bootstrap"], topic="no_such_topic")
    with pytest.raises(ValueError, match="max_offsets_per_trigger"):
        jobs.start(profile, "rt_silver", bootstrap=broker["bootstrap"], max_offsets=-5)
    assert jobs.status(profile, "rt_silver")[0]["pid"] is None


def drain(spark, settings, config) -> list[dict]:
    """rt silver until the topic is drained (availableNow); each micro-batch's status."""
    batches = []
    query = rt_silver.start(spark, settings, config, available_now=True, on_batch=batches.append)
    query.awaitTermination()
    assert query.exception() is None
    return batches


def stream_rows(profile, table) -> pd.DataFrame:
    """A stream table's rows without the bookkeeping, in one order (list columns left out: the
    setup vector's ``feature_hash`` stands for its numbers)."""
    data = DeltaTable(profile.table_path(table.name)).to_pyarrow_table()
    columns = [f.name for f in data.schema if f.name not in BOOKKEEPING and not pa.types.is_list(f.type)]
    return data.select(columns).to_pandas().sort_values(columns).reset_index(drop=True)


def test_a_checkpoint_deleted_and_recreated_at_the_same_path_lands_its_first_micro_batches(
        spark, project, broker, topic, tiny_session):
    """The new checkpoint's batch ids start from 0 again; its appends must not be taken for the old
    query's (issue #29: under ``rt_silver:<checkpoint path>`` they were skipped without a word)."""
    profile = load_profile("local")
    settings = BusSettings(broker["bootstrap"])
    feed.replay(tiny_session, settings, topic=topic, speed="max", report=None)
    config = dataclasses.replace(jobs.rt_silver_config(profile, topic, max_offsets=5_000), publish_topic=None)
    first = drain(spark, settings, config)
    assert len(first) >= 2
    before = {table.name: stream_rows(profile, table) for table in OUTPUTS}
    assert len(before["silver.orderbook_state_stream"]) > 0 and len(before["silver.bar_5s_stream"]) > 0

    shutil.rmtree(config.checkpoint)  # a new checkpoint at the same path: clean state, from where the feed is
    resume = json.dumps({topic: end_offsets(settings, topic)})
    feed.replay(tiny_session, settings, topic=topic, speed="max", report=None)  # the feed goes on: the session again
    again = drain(spark, settings, dataclasses.replace(config, starting_offsets=resume))

    assert again[0]["batch_id"] == 0
    for table in OUTPUTS:  # the session's rows twice: the fresh state rebuilt the same rows, every one landed
        twice = pd.concat([before[table.name]] * 2).sort_values(list(before[table.name].columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(stream_rows(profile, table), twice, check_exact=True, obj=table.name)
    assert [b["skipped"] for b in again] == [{}] * len(again)
