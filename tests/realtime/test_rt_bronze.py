"""rt bronze against a real broker and Spark: Bronze from the stream equals Bronze from the file;
a file replayed twice lands once; a malformed message is quarantined while the query goes on."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mbolake.io import delta_tables
from mbolake.io.landing import day_folder
from mbolake.realtime import feed, jobs, rt_bronze
from mbolake.realtime.bus import BusError, BusSettings
from mbolake.realtime.replay_leg import end_offsets
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.schemas import BRONZE_MBO, BRONZE_MBO_STREAM, QUARANTINE_STREAM
from mbolake.stages.bronze import BronzeProcessDBN

from .conftest import SESSION

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]
BOOKKEEPING = {"ingest_time", "source_file", "ingest_batch_id"}


def stream_table(profile, table=BRONZE_MBO_STREAM) -> pa.Table:
    return DeltaTable(profile.table_path(table.name)).to_pyarrow_table()


def drain(spark, profile, settings, topic, starting_offsets: str = "earliest"):
    config = replace(jobs.rt_bronze_config(profile, topic, max_offsets=12_000), starting_offsets=starting_offsets)
    query = rt_bronze.start(spark, settings, config, available_now=True)
    query.awaitTermination()
    assert query.exception() is None


def file_bronze(profile, src: Path) -> pa.Table:
    folder = day_folder(profile.raw_dbn_root, "ES", "FUT", SESSION)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder / src.name)
    BronzeProcessDBN().run(Context(profile=profile), underlier="ES", progress=False)
    return delta_tables.read(profile, BRONZE_MBO)


def normalized(table: pa.Table) -> pa.Table:
    columns = [f.name for f in BRONZE_MBO.schema if f.name not in BOOKKEEPING]
    table = table.select(columns)
    table = table.cast(pa.schema([pa.field(n, BRONZE_MBO.schema.field(n).type) for n in columns]))
    return table.sort_by("record_index")


def test_stream_bronze_equals_file_bronze_and_lands_every_event_once(spark, project, broker, topic, small_session):
    profile = load_profile("local")
    settings = BusSettings(broker["bootstrap"])
    feed.replay(small_session, settings, topic=topic, speed="max", report=None)
    drain(spark, profile, settings, topic)

    streamed = stream_table(profile)
    expected = file_bronze(profile, small_session)
    assert streamed.num_rows == expected.num_rows > 10_000
    assert normalized(streamed).equals(normalized(expected))
    assert set(streamed.column("ingest_batch_id").to_pylist()) >= {"rt_bronze:0", "rt_bronze:1"}  # several micro-batches

    # the same file replayed again (no progress file: every message twice in the topic) and one malformed message
    feed.replay(small_session, settings, topic=topic, speed="max", report=None)
    from confluent_kafka import Producer

    producer = Producer(settings.producer_config())
    producer.produce(topic, b'{"event_key": "x:1", "venue": "GLBX.MDP3"', key=b"GLBX.MDP3:ESZ5")
    producer.produce(topic, b'{"event_key": "x:2", "event_time": "soon"}', key=b"GLBX.MDP3:ESZ5")
    producer.flush(10)
    drain(spark, profile, settings, topic)

    again = stream_table(profile)
    assert again.num_rows == expected.num_rows
    assert len(set(again.column("event_key").to_pylist())) == again.num_rows
    quarantined = stream_table(profile, QUARANTINE_STREAM).to_pylist()
    assert sorted(r["reason"] for r in quarantined) == ["field event_time is missing or not of its type",
                                                         "not a JSON envelope"]
    assert {r["kafka_topic"] for r in quarantined} == {topic}

    # the checkpoint deleted and recreated at its path, the feed going on: the new query's batch ids
    # start from 0 again, and its quarantine append is not taken for the old query's
    shutil.rmtree(jobs.rt_bronze_config(profile).checkpoint)
    resume = json.dumps({topic: end_offsets(settings, topic)})
    producer.produce(topic, b"not json at all", key=b"GLBX.MDP3:ESZ5")
    producer.flush(10)
    drain(spark, profile, settings, topic, starting_offsets=resume)
    quarantined = stream_table(profile, QUARANTINE_STREAM).to_pylist()
    assert [(r["value"], r["stream_batch_id"]) for r in quarantined if r["value"] == "not json at all"] == [
        ("not json at all", 0)]
    assert stream_table(profile).num_rows == expected.num_rows


def test_bad_topic_unreachable_broker_and_unwritable_checkpoint_fail_early(spark, project, broker, tmp_path):
    profile = load_profile("local")
    settings = BusSettings(broker["bootstrap"])
    config = jobs.rt_bronze_config(profile, "no_such_topic")
    with pytest.raises(BusError, match="no_such_topic"):
        rt_bronze.start(spark, settings, config)
    with pytest.raises(BusError, match="127.0.0.1:1 is unreachable"):
        rt_bronze.start(spark, BusSettings("127.0.0.1:1"), jobs.rt_bronze_config(profile))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    bad = replace(jobs.rt_bronze_config(profile), checkpoint=str(locked / "ckpt"))
    import os

    if os.geteuid() == 0:
        bad = replace(bad, checkpoint="/proc/mbolake-ckpt")  # root writes anywhere else
    with pytest.raises(PermissionError, match="checkpoint location .* is not writable"):
        rt_bronze.start(spark, settings, bad)
    with pytest.raises(ValueError, match="min_read_tasks must be >= 1, got 0"):
        rt_bronze.start(spark, settings, replace(jobs.rt_bronze_config(profile), min_read_tasks=0))
