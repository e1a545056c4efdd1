"""rt bronze: ``mbo_raw`` -> ``bronze.mbo_stream`` (Spark Structured Streaming, Kafka source).

Every micro-batch (``foreachBatch``): parse the envelope against its schema; a message that is
not an envelope, lacks a field, has a field of the wrong type or an unknown action/side goes to
``bronze.quarantine_stream`` with its reason (an idempotent append: Delta's txnAppId/txnVersion,
``rt_bronze:<query id>`` at the batch id, skip a micro-batch already written; the query's id, not
the checkpoint's path, so a checkpoint deleted and recreated at the same path, whose batch ids
start from 0 again, is not taken for one already written); the others are MERGEd into ``bronze.mbo_stream`` on
``event_key`` (insert when not there), so a replayed file, a retried message or a micro-batch
re-run after a crash lands once. Kafka offsets live in the checkpoint under
``lake/checkpoints/rt_bronze``; a query killed at any point restarts from it (fault point
``rt_bronze.after_merge``: the micro-batch MERGEd, not yet committed).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.constants import ACTIONS, SIDES
from ..runtime.atomic_files import write_json_atomic
from ..runtime.faults import reach
from ..schemas import BRONZE_MBO, BRONZE_MBO_STREAM, QUARANTINE_STREAM, Table
from .bus import BusError, BusSettings, check_bus

QUERY = "rt_bronze"
# Kafka's ``minPartitions``: a micro-batch's offsets are read and parsed by at least this many
# tasks. The message key is the contract, so the front month (~97 % of the events) is one topic
# partition; without the split its parse runs on one core whatever the machine has.
READ_TASKS = 8
# Spark SQL settings of the stream queries. Catalyst's constraint propagation re-derives the
# constraints of the envelope checks (a CASE of some 25 branches) each time a micro-batch is
# planned: about 2.5 s of every micro-batch here, whatever its size.
STREAM_SQL_CONF = {"spark.sql.constraintPropagation.enabled": "false"}
ENVELOPE_DDL = (
    "event_key STRING, event_time BIGINT, ingest_time BIGINT, venue STRING, symbol STRING, instrument_type STRING, "
    "underlier STRING, contract_id STRING, action STRING, order_id BIGINT, side STRING, price BIGINT, size BIGINT, "
    "sequence BIGINT, payload STRUCT<ts_recv: BIGINT, ts_in_delta: INT, rtype: INT, publisher_id: INT, "
    "instrument_id: INT, channel_id: INT, flags: INT, record_index: BIGINT, session_date: DATE, source_file: STRING>"
)
# bronze.mbo column <- envelope field (everything but price must be present)
ENVELOPE_COLUMNS = {
    "ts_recv": "m.payload.ts_recv", "ts_event": "m.event_time", "ts_in_delta": "m.payload.ts_in_delta",
    "rtype": "m.payload.rtype", "publisher_id": "m.payload.publisher_id", "instrument_id": "m.payload.instrument_id",
    "channel_id": "m.payload.channel_id", "action": "m.action", "side": "m.side", "price": "m.price",
    "size": "m.size", "order_id": "m.order_id", "flags": "m.payload.flags", "sequence": "m.sequence",
    "record_index": "m.payload.record_index", "venue": "m.venue", "symbol": "m.symbol",
    "instrument_type": "m.instrument_type", "underlier": "m.underlier", "contract_id": "m.contract_id",
    "session_date": "m.payload.session_date", "ingest_time": "m.ingest_time", "source_file": "m.payload.source_file",
    "event_key": "m.event_key",
}
OPTIONAL = {"price"}  # null: undefined price (clear and none records)


@dataclass(frozen=True)
class RtBronzeConfig:
    lake_root: str
    checkpoint: str
    topic: str = "mbo_raw"
    max_offsets_per_trigger: int = 200_000
    trigger_seconds: float = 1.0
    starting_offsets: str = "earliest"
    min_read_tasks: int = READ_TASKS

    def table_path(self, table: Table) -> str:
        return lake_table_path(self.lake_root, table)


def lake_table_path(lake_root: str, table: Table) -> str:
    """``<lake_root>/<layer>/<name>`` of a table (``silver.bar_5s_stream`` -> ``lake/silver/bar_5s_stream``)."""
    layer, name = table.name.split(".", 1)
    return f"{lake_root}/{layer}/{name}"


class QueryId:
    """The id of the query a ``foreachBatch`` sink belongs to: ``known(query)`` when ``start``
    returns; a micro-batch that runs before that waits for it in ``get``. (Spark keeps the id in
    ``<checkpoint>/metadata`` across restarts; a new checkpoint, even at the same path, gets a new one.)"""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = threading.Event()

    def known(self, query):
        self._id = str(query.id)
        self._event.set()
        return query

    def get(self, timeout: float = 300.0) -> str:
        if not self._event.wait(timeout):
            raise RuntimeError(f"the streaming query's id was not known within {timeout:.0f} s of its first micro-batch")
        return self._id


def check_checkpoint(path: str) -> None:
    """Fail before the query starts when the checkpoint folder cannot be written (names it)."""
    if "://" in path:
        return
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{time.time_ns()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"checkpoint location {folder} is not writable: {exc.strerror or exc}") from None


def ensure_tables(spark, config: RtBronzeConfig) -> None:
    create_tables(spark, config.table_path, (BRONZE_MBO_STREAM, QUARANTINE_STREAM))


def create_tables(spark, table_path, tables) -> None:
    """Each stream table at ``table_path(table)``, created empty with its schema when absent."""
    from delta.tables import DeltaTable

    from ..schemas import spark_schema

    for table in tables:
        builder = DeltaTable.createIfNotExists(spark).location(table_path(table)).addColumns(spark_schema(table))
        if table.partition_by:
            builder = builder.partitionedBy(*table.partition_by)
        builder.execute()


@contextmanager
def query_conf(spark, conf: dict[str, str]):
    """``conf`` set on the session while a query starts, then restored: a streaming query runs on
    a clone of the session taken at its start, so the settings stay with it and nothing else."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def invalid_reason(F):
    """The first thing wrong with a parsed message, or null when it is a valid envelope."""
    checks = [(F.col("m").isNull() | F.col("m.event_key").isNull() & F.col("m.payload").isNull(),
               F.lit("not a JSON envelope"))]
    for column, field in sorted(ENVELOPE_COLUMNS.items(), key=lambda item: "payload" in item[1]):  # top level first
        if column not in OPTIONAL:
            checks.append((F.expr(field).isNull(), F.lit(f"field {field[2:]} is missing or not of its type")))
    checks.append((~F.col("m.action").isin(*ACTIONS), F.concat(F.lit("action "), F.col("m.action"), F.lit(f" is not one of {''.join(ACTIONS)}"))))
    checks.append((~F.col("m.side").isin(*SIDES), F.concat(F.lit("side "), F.col("m.side"), F.lit(f" is not one of {''.join(SIDES)}"))))
    reason = None
    for cond, text in reversed(checks):
        reason = F.when(cond, text) if reason is None else F.when(cond, text).otherwise(reason)
    return reason


def process_batch(spark, config: RtBronzeConfig, batch, batch_id: int, status_path: str | None = None, *,
                  query_id: str) -> dict:
    """One micro-batch: quarantine the malformed messages, MERGE the rest on event_key."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    started = time.perf_counter()
    now = time.time_ns()
    parsed = (
        batch.select(
            F.col("value").cast("string").alias("value"), F.col("topic").alias("kafka_topic"),
            F.col("partition").cast("int").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        )
        .withColumn("m", F.from_json("value", ENVELOPE_DDL, {"mode": "PERMISSIVE"}))
        .withColumn("reason", invalid_reason(F))
        .persist()
    )
    bookkeeping = [F.lit(batch_id).cast("long").alias("stream_batch_id"), F.lit(now).cast("long").alias("stream_time")]
    bad = parsed.where(F.col("reason").isNotNull()).select(
        "reason", "value", "kafka_topic", "kafka_partition", "kafka_offset", *bookkeeping)
    good = parsed.where(F.col("reason").isNull()).select(
        *[F.expr(field).alias(column) for column, field in ENVELOPE_COLUMNS.items() if column != "event_key"],
        F.lit(f"{QUERY}:{batch_id}").alias("ingest_batch_id"), F.col("m.event_key").alias("event_key"),
        "kafka_topic", "kafka_partition", "kafka_offset", *bookkeeping,
    ).dropDuplicates(["event_key"])
    good = good.select(*[f.name for f in BRONZE_MBO_STREAM.schema])
    counts = parsed.groupBy(F.col("reason").isNull().alias("ok")).count().collect()
    n_good = sum(r["count"] for r in counts if r["ok"])
    n_bad = sum(r["count"] for r in counts if not r["ok"])
    parse_seconds = time.perf_counter() - started
    if n_bad:
        (bad.write.format("delta").mode("append").option("txnAppId", f"{QUERY}:{query_id}")
         .option("txnVersion", batch_id).save(config.table_path(QUARANTINE_STREAM)))
    merge_started = time.perf_counter()
    if n_good:
        dates = sorted({r[0].isoformat() for r in good.select("session_date").distinct().collect()})
        days = ", ".join(f"DATE'{d}'" for d in dates)
        condition = ("t.underlier = s.underlier AND t.instrument_type = s.instrument_type AND "
                     f"t.session_date = s.session_date AND t.session_date IN ({days}) AND t.event_key = s.event_key")
        target = DeltaTable.forPath(spark, config.table_path(BRONZE_MBO_STREAM))
        target.alias("t").merge(good.alias("s"), condition).whenNotMatchedInsertAll().execute()
    reach("rt_bronze.after_merge")  # written, not committed: a re-run of this micro-batch inserts nothing
    parsed.unpersist()
    status = {"query": QUERY, "batch_id": batch_id, "messages": n_good + n_bad, "valid": n_good, "quarantined": n_bad,
              "parse_seconds": round(parse_seconds, 3), "merge_seconds": round(time.perf_counter() - merge_started, 3),
              "seconds": round(time.perf_counter() - started, 3), "time": time.time()}
    if status_path:
        write_json_atomic(status_path, status)  # `mbolake stream status` may be reading it
    return status


def _batch(spark, config, batch, batch_id, status_path, on_batch, query_id: QueryId) -> None:
    status = process_batch(spark, config, batch, batch_id, status_path, query_id=query_id.get())
    if on_batch:
        on_batch(status)


def source(spark, settings: BusSettings, config):
    """The topic as a Kafka stream (rt bronze's and rt silver's: ``config`` names the topic, the
    starting offsets, the offsets per micro-batch and the read tasks); lost offsets fail the query."""
    reader = spark.readStream.format("kafka")
    for key, value in settings.spark_options().items():
        reader = reader.option(key, value)
    return (reader.option("subscribe", config.topic).option("startingOffsets", config.starting_offsets)
            .option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
            .option("minPartitions", str(config.min_read_tasks)).option("failOnDataLoss", "true").load())


def start(spark, settings: BusSettings, config: RtBronzeConfig, *, available_now: bool = False,
          status_path: str | None = None, on_batch=None):
    """Check the bus, the topic and the checkpoint, then start the query; returns the StreamingQuery.
    ``on_batch(status)`` is called after each micro-batch (benchmarks collect the time breakdown)."""
    if config.max_offsets_per_trigger < 1:
        raise ValueError(f"max_offsets_per_trigger must be >= 1, got {config.max_offsets_per_trigger}")
    if config.min_read_tasks < 1:
        raise ValueError(f"min_read_tasks must be >= 1, got {config.min_read_tasks}")
    check_bus(settings, (config.topic,))
    check_checkpoint(config.checkpoint)
    ensure_tables(spark, config)
    query_id = QueryId()
    writer = (source(spark, settings, config).writeStream.queryName(QUERY)
              .option("checkpointLocation", config.checkpoint)
              .foreachBatch(lambda batch, batch_id: _batch(spark, config, batch, batch_id, status_path, on_batch,
                                                           query_id)))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    with query_conf(spark, STREAM_SQL_CONF):
        return query_id.known(writer.start())


def bronze_columns() -> list[str]:
    """The columns shared with ``bronze.mbo`` (what 'Bronze from the stream equals Bronze from the file' compares)."""
    return [f.name for f in BRONZE_MBO.schema]


__all__ = ["BusError", "RtBronzeConfig", "QUERY", "QueryId", "start", "process_batch", "ensure_tables", "check_checkpoint",
           "bronze_columns"]
