"""rt silver and gold: ``mbo_raw`` -> the order book as streaming state per contract -> the same
rows as the batch stages (Spark Structured Streaming, ``applyInPandasWithState``).

Per micro-batch, the valid envelopes of the product's outrights (the checks of rt bronze; a
malformed message is skipped here and quarantined by rt bronze) are grouped by
``(contract_id, session_date)``. For each group Spark calls ``update_contract`` once: one state
read (the ``ContractSessionStream`` blob of ``stages.contract_stream``), the group's records
through the book, bar, level and approach kernels, one state write. The state store is
RocksDB; state and Kafka offsets live in the checkpoint (``lake/checkpoints/rt_silver``), so a
query killed at any point resumes where its last committed micro-batch ended.

The function returns the rows it completed as Arrow IPC blobs, one per output table; the
micro-batch sink (``foreachBatch``) brings them to the driver (``toArrow``) and decodes them into

- ``silver.orderbook_state_stream``, ``silver.bar_5s_stream``,
  ``silver.feature_primitives_stream``, ``gold.setup_vectors_stream`` (the batch tables'
  columns plus ``stream_batch_id`` / ``stream_time``) and ``gold.feature_series_stream``,

each an idempotent Delta append by delta-rs with the application transaction
``(rt_silver:<query id>, batch id)`` (a micro-batch re-run after a crash skips the tables it
already wrote; a Spark write costs a second or more of jobs per table, delta-rs tens of
milliseconds), then publishes the setup vectors and the feature
series to ``features_gold`` (JSON, keyed by episode id / contract; at least once: a re-run
micro-batch may publish again, readers keep the last message per key).

The application id holds the query's id (``StreamingQuery.id``: Spark writes it into
``<checkpoint>/metadata`` at a checkpoint's first start and keeps it across restarts), not the
checkpoint's path: a checkpoint deleted and recreated at the same path is a new query with
batch ids from 0 again, and under a path-based id its first batches would be taken for ones
already written and dropped. The id is unique to the checkpoint, so the path adds nothing. A
skipped table is logged (``delta_tables.append_once``) and counted in the micro-batch's status
(``skipped``: table -> rows not appended again). The tables are appended in a fixed order
(``TWINS``, then the feature series), with the fault points ``rt_silver.between_appends``
(before each append after the first) and ``rt_silver.after_appends`` (all appended, before the
sink returns and Spark commits the micro-batch) of ``runtime.faults``.

The front month of a session is the roll calendar's (``core.products.front_month_symbol``), as
in batch: the stream knows it at the session's first record. Records are put in feed order
``(ts_recv, record_index)`` within a group; a record at or before the last one applied to its
contract (a message delivered twice) is skipped.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..core.products import get_product
from ..runtime.atomic_files import write_json_atomic
from ..runtime.faults import reach
from ..schemas import (
    BAR_5S,
    BAR_5S_STREAM,
    FEATURE_PRIMITIVES,
    FEATURE_PRIMITIVES_STREAM,
    FEATURE_SERIES_STREAM,
    ORDERBOOK_STATE,
    ORDERBOOK_STATE_STREAM,
    SETUP_VECTORS,
    SETUP_VECTORS_STREAM,
    STREAM_TABLES,
    Table,
)
from ..stages.base import SilverFilterFirst4Hours
from ..stages.mbo_input import KERNEL_COLUMNS
from .bus import BusSettings, check_bus
from .producer import QueryPublisher, close_when_done
from .rt_bronze import (
    ENVELOPE_COLUMNS,
    ENVELOPE_DDL,
    READ_TASKS,
    STREAM_SQL_CONF,
    QueryId,
    check_checkpoint,
    create_tables,
    invalid_reason,
    lake_table_path,
    query_conf,
)
from .rt_bronze import source as kafka_source

QUERY = "rt_silver"
TWINS = {ORDERBOOK_STATE.name: ORDERBOOK_STATE_STREAM, BAR_5S.name: BAR_5S_STREAM,
         FEATURE_PRIMITIVES.name: FEATURE_PRIMITIVES_STREAM, SETUP_VECTORS.name: SETUP_VECTORS_STREAM}
# one row per (group, output table); ``records`` counts the group's input once (a group that
# completed no row still reports its records, with a null table)
OUTPUT_DDL = "table STRING, contract_id STRING, session_date DATE, records BIGINT, rows BINARY"
STATE_DDL = "blob BINARY"
# the query's state store: RocksDB, committing a changelog per micro-batch rather than a snapshot
# (about 0.5 s less per micro-batch here); the state partitions: one task each per micro-batch,
# each with its own store and Python worker round trip, so no more than the cores that run them
# (fixed by a checkpoint's first start)
STATE_CONF = {"spark.sql.streaming.stateStore.providerClass":
              "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
              "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true"}
# feature series column <- silver.bar_5s column
SERIES = {"mid": "bar5s_midprice_eob", "microprice": "bar5s_microprice_eob", "spread_pts": "bar5s_state_spread_pts_eob",
          "ofi_l0": "bar5s_ofi_l0_sum", "ofi_l10": "bar5s_ofi_l10_sum", "obi_l0": "bar5s_state_obi0_eob",
          "obi_l10": "bar5s_state_obi10_eob", "trade_count": "bar5s_trade_cnt_sum",
          "trade_volume": "bar5s_trade_vol_sum", "trade_signed_volume": "bar5s_trade_signed_vol_sum",
          "trade_vwap": "bar5s_trade_vwap", "mid_rv": "bar5s_mid_rv"}


@dataclass(frozen=True)
class RtSilverConfig:
    lake_root: str
    checkpoint: str
    underlier: str = "ES"
    topic: str = "mbo_raw"
    publish_topic: str | None = "features_gold"
    max_offsets_per_trigger: int = 200_000
    trigger_seconds: float = 1.0
    starting_offsets: str = "earliest"
    min_read_tasks: int = READ_TASKS
    state_partitions: int = 2
    window: SilverFilterFirst4Hours = field(default_factory=SilverFilterFirst4Hours)

    def __post_init__(self):
        get_product(self.underlier)  # names the configured products when unknown
        if self.max_offsets_per_trigger < 1:
            raise ValueError(f"max_offsets_per_trigger must be >= 1, got {self.max_offsets_per_trigger}")
        if self.min_read_tasks < 1:
            raise ValueError(f"min_read_tasks must be >= 1, got {self.min_read_tasks}")
        if self.state_partitions < 1:
            raise ValueError(f"state_partitions must be >= 1, got {self.state_partitions}")
        if not self.trigger_seconds > 0:
            raise ValueError(f"trigger_seconds must be > 0, got {self.trigger_seconds}")

    def table_path(self, table: Table) -> str:
        return lake_table_path(self.lake_root, table)

    def lineage(self) -> str:
        """``data_version`` of the stream's rows (the window, as Gold's lookback_spec reads it)."""
        return json.dumps({"stream": QUERY, "topic": self.topic, "window": self.window.label()}, sort_keys=True)


def update_contract(config: RtSilverConfig):
    """The ``applyInPandasWithState`` function: one state read and one write per group and micro-batch."""
    product, window, lineage = get_product(config.underlier), config.window, config.lineage()

    def update(key, frames, state):
        import pandas as pd

        from ..stages.contract_stream import ContractSessionStream, kernel_records

        contract_id, session_date = key
        frame = pd.concat(list(frames), ignore_index=True)
        stream = (ContractSessionStream.from_state_bytes(state.get[0], product, window) if state.exists
                  else ContractSessionStream(contract_id, session_date, product, window, lineage))
        out = stream.apply(kernel_records(frame))
        state.update((stream.state_bytes(),))
        tables = [t.name for t in out] or [None]
        yield pd.DataFrame({"table": tables, "contract_id": contract_id, "session_date": [session_date] * len(tables),
                            "records": [len(frame)] + [0] * (len(tables) - 1),
                            "rows": [_ipc(rows) for rows in out.values()] or [None]})

    return update


def _ipc(table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_rows(blobs: list[bytes], target: Table, batch_id: int, stream_time: int):
    """IPC blobs of one table -> ``target`` rows (the batch columns plus the bookkeeping)."""
    import pyarrow as pa

    rows = pa.concat_tables([pa.ipc.open_stream(blob).read_all() for blob in blobs])
    n = rows.num_rows
    rows = rows.append_column("stream_batch_id", pa.array([batch_id] * n, pa.int64()))
    rows = rows.append_column("stream_time", pa.array([stream_time] * n, pa.int64()))
    return rows.select(target.schema.names).cast(target.schema)


def feature_series(bars):
    """``gold.feature_series_stream`` rows of ``silver.bar_5s_stream`` rows (Arrow)."""
    import pyarrow as pa

    names = ["contract_id", "session_date", "bar_ts", *SERIES, "stream_batch_id", "stream_time"]
    return pa.table({name: bars.column(SERIES.get(name, name)) for name in names}).cast(FEATURE_SERIES_STREAM.schema)


def ensure_tables(spark, config: RtSilverConfig) -> None:
    create_tables(spark, config.table_path, (*TWINS.values(), FEATURE_SERIES_STREAM))


def messages(rows, key: str, kind: str) -> list[tuple[bytes, bytes]]:
    """``(key, JSON)`` of each row for ``features_gold`` (``kind`` says which table it is from;
    floats at full precision, dates as ISO text)."""
    return [(str(row[key]).encode(), json.dumps({"kind": kind, **row}, default=str).encode())
            for row in rows.to_pylist()]


def app_id(query_id: str) -> str:
    """The Delta application id of the query ``query_id``'s appends (the batch id is its version)."""
    return f"{QUERY}:{query_id}"


def process_batch(config: RtSilverConfig, batch, batch_id: int, publisher=None, *, query_id: str) -> dict:
    """One micro-batch's outputs: the stateful step's IPC blobs brought to the driver, every table
    appended once (delta-rs with the application transaction ``rt_silver:<query id>`` at
    ``batch_id``: a re-run micro-batch appends nothing twice; a table found already written is
    counted in ``skipped``), then vectors and series published."""
    started = time.perf_counter()
    outputs = batch.toArrow()  # runs the micro-batch: Kafka read, parse, the stateful step
    state_seconds = time.perf_counter() - started
    stream_time = time.time_ns()
    blobs: dict[str, list[bytes]] = {}
    for name, blob in zip(outputs.column("table").to_pylist(), outputs.column("rows").to_pylist()):
        if name is not None:
            blobs.setdefault(name, []).append(blob)
    written = {target.name: decode_rows(blobs[name], target, batch_id, stream_time)
               for name, target in TWINS.items() if name in blobs}
    if BAR_5S_STREAM.name in written:
        written[FEATURE_SERIES_STREAM.name] = feature_series(written[BAR_5S_STREAM.name])
    skipped = append_all(config, written, app_id(query_id), batch_id)
    reach("rt_silver.after_appends")
    write_seconds = time.perf_counter() - started - state_seconds
    if publisher is not None:
        if SETUP_VECTORS_STREAM.name in written:
            publisher.send(messages(written[SETUP_VECTORS_STREAM.name], "episode_id", "setup_vector"))
        if FEATURE_SERIES_STREAM.name in written:
            publisher.send(messages(written[FEATURE_SERIES_STREAM.name], "contract_id", "feature_series"))
    return {"query": QUERY, "batch_id": batch_id, "records": sum(outputs.column("records").to_pylist()),
            "rows": {name: rows.num_rows for name, rows in written.items()}, "skipped": skipped,
            "state_seconds": round(state_seconds, 3), "write_seconds": round(write_seconds, 3),
            "seconds": round(time.perf_counter() - started, 3), "time": time.time()}


def append_all(config: RtSilverConfig, written: dict, app: str, batch_id: int) -> dict[str, int]:
    """Append each table's rows once, in ``written``'s order; returns the tables found already
    written at ``batch_id`` (a re-run micro-batch) with their rows, which were not appended again."""
    from ..io.delta_tables import append_once

    skipped = {}
    for i, (name, rows) in enumerate(written.items()):
        if i:
            reach("rt_silver.between_appends")
        target = STREAM_TABLES[name]
        if not append_once(config.table_path(target), target, rows, app, batch_id):
            skipped[name] = rows.num_rows
    return skipped


def source(spark, settings: BusSettings, config: RtSilverConfig):
    """The product's outright records of the topic, as Bronze-shaped columns (malformed messages dropped)."""
    from pyspark.sql import functions as F

    parsed = (kafka_source(spark, settings, config).select(F.from_json(F.col("value").cast("string"), ENVELOPE_DDL, {"mode": "PERMISSIVE"}).alias("m"))
              .withColumn("reason", invalid_reason(F)).where(F.col("reason").isNull()))
    columns = ["contract_id", "session_date", *KERNEL_COLUMNS]
    # No event-time watermark: Spark would drop the records of a partition that lags the others
    # (a thin back month, a file replayed after a later one) as late data.
    return (parsed.where((F.col("m.underlier") == config.underlier) & (F.col("m.instrument_type") != "SPREAD"))
            .select(*[F.expr(ENVELOPE_COLUMNS[c]).alias(c) for c in columns]))


def start(spark, settings: BusSettings, config: RtSilverConfig, *, available_now: bool = False,
          status_path: str | None = None, on_batch=None):
    """Check the bus, the topics and the checkpoint, then start the query; returns the StreamingQuery."""
    from pyspark.sql.streaming.state import GroupStateTimeout

    check_bus(settings, tuple(t for t in (config.topic, config.publish_topic) if t))
    check_checkpoint(config.checkpoint)
    ensure_tables(spark, config)
    outputs = (source(spark, settings, config).groupBy("contract_id", "session_date")
               .applyInPandasWithState(update_contract(config), OUTPUT_DDL, STATE_DDL, "append",
                                       GroupStateTimeout.NoTimeout))

    publisher = QueryPublisher(settings, config.publish_topic) if config.publish_topic else None
    query_id = QueryId()

    def sink(batch, batch_id):
        status = process_batch(config, batch, batch_id, publisher, query_id=query_id.get())
        if status_path:
            write_json_atomic(status_path, status)  # `mbolake stream status` may be reading it
        if on_batch:
            on_batch(status)

    writer = (outputs.writeStream.queryName(QUERY).outputMode("append")
              .option("checkpointLocation", config.checkpoint).foreachBatch(sink))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{config.trigger_seconds} seconds")
    conf = STREAM_SQL_CONF | STATE_CONF | {"spark.sql.shuffle.partitions": str(config.state_partitions)}
    with query_conf(spark, conf):
        return query_id.known(writer.start() if publisher is None else close_when_done(spark, writer, publisher))


__all__ = ["QUERY", "RtSilverConfig", "TWINS", "start", "process_batch", "ensure_tables", "update_contract", "app_id"]
