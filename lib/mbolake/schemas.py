"""The data contract in code: every table's schema, declared once (DATA_CONTRACT.md).

``check_schema`` is called before every write and fails naming the missing, extra or
wrongly typed column. ``render_markdown`` prints the tables of ``docs/data-contract.md``
(``mbolake.contract_doc``, ``make contract``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Table:
    name: str  # "<layer>.<table>"
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    description: str = ""


BRONZE_MBO = Table(
    "bronze.mbo",
    pa.schema(
        [
            ("ts_recv", pa.int64()),
            ("ts_event", pa.int64()),
            ("ts_in_delta", pa.int32()),
            ("rtype", pa.int32()),
            ("publisher_id", pa.int32()),
            ("instrument_id", pa.int32()),
            ("channel_id", pa.int32()),
            ("action", pa.string()),
            ("side", pa.string()),
            ("price", pa.int64()),
            ("size", pa.int64()),
            # Databento order ids are u64; stored in a signed long with the same 64 bits
            # (values >= 2**63 read back negative; mbolake.bronze.order_id_unsigned undoes it).
            ("order_id", pa.int64()),
            ("flags", pa.int32()),
            ("sequence", pa.int64()),
            ("record_index", pa.int64()),
            ("venue", pa.string()),
            ("symbol", pa.string()),
            ("instrument_type", pa.string()),
            ("underlier", pa.string()),
            ("contract_id", pa.string()),
            ("session_date", pa.date32()),
            ("ingest_time", pa.int64()),
            ("source_file", pa.string()),
            ("ingest_batch_id", pa.string()),
        ]
    ),
    partition_by=("session_date", "underlier", "instrument_type"),
    description="raw MBO events, nothing derived; append-only",
)

INGEST_MANIFEST = Table(
    "bronze.ingest_manifest",
    pa.schema(
        [
            ("path", pa.string()),
            # the idempotency key: SHA-256 of the uncompressed DBN stream (a .dbn and any zstd
            # encoding of it share it); rows written before it was the file's byte hash
            ("sha256", pa.string()),
            ("bytes", pa.int64()),
            ("dbn_version", pa.int32()),
            ("dataset", pa.string()),
            ("schema", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("underlier", pa.string()),
            ("instrument_type", pa.string()),
            ("session_dates", pa.list_(pa.date32())),
            ("record_count", pa.int64()),
            ("ingest_batch_id", pa.string()),
            ("status", pa.string()),  # ingested | skipped_duplicate | quarantined
            ("reason", pa.string()),
            ("started_at", pa.int64()),
            ("finished_at", pa.int64()),
            ("file_sha256", pa.string()),  # SHA-256 of the file's bytes
            ("rejected_records", pa.int64()),  # records that failed validation (in bronze.quarantine)
        ]
    ),
    description="one row per landed file and attempt",
)

QUARANTINE = Table(
    "bronze.quarantine",
    pa.schema(
        [
            ("source_file", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("ingest_batch_id", pa.string()),
            ("time", pa.int64()),
            ("sha256", pa.string()),  # the file's content key, as in bronze.ingest_manifest
            ("record_index", pa.int64()),  # the rejected record's index in its file; null for a whole file
        ]
    ),
    description="rejected files and records with their reason",
)

MBO_NORMALIZED = Table(
    "silver.mbo_normalized",
    pa.schema(
        list(BRONZE_MBO.schema)
        + [
            ("ts_event_local", pa.timestamp("us")),  # exchange wall clock (America/New_York), no zone
            ("session_phase", pa.string()),  # overnight | premarket | rth | post (from ts_recv)
            ("is_front_month", pa.bool_()),
            ("front_month_dominance", pa.float64()),  # front RTH volume / all outright RTH volume
            ("roll_contaminated", pa.bool_()),  # dominance < 0.6
        ]
    ),
    partition_by=("session_date", "underlier"),
    description="Bronze events of the contracts selected per session: front month by the roll calendar (no future needed), spreads only if asked",
)


def _mbp10_levels() -> list[tuple[str, pa.DataType]]:
    fields = []
    for side in ("bid", "ask"):
        fields += [(f"{side}_px_{i:02d}", pa.int64()) for i in range(10)]
        fields += [(f"{side}_sz_{i:02d}", pa.int64()) for i in range(10)]
        fields += [(f"{side}_ct_{i:02d}", pa.int32()) for i in range(10)]
    return fields


ORDERBOOK_STATE = Table(
    "silver.orderbook_state",
    pa.schema(
        [
            ("ts_recv", pa.int64()),
            ("ts_event", pa.int64()),
            ("publisher_id", pa.int32()),
            ("instrument_id", pa.int32()),
            ("action", pa.string()),
            ("side", pa.string()),
            ("depth", pa.int32()),
            ("price", pa.int64()),  # of the record that closed the event; null when undefined
            ("size", pa.int64()),
            ("flags", pa.int32()),
            ("sequence", pa.int64()),
            *_mbp10_levels(),  # fixed-point prices; an empty level has a null price, size 0, count 0
            ("contract_id", pa.string()),
            ("session_date", pa.date32()),
        ]
    ),
    partition_by=("session_date",),
    description="MBP-10 rebuilt from MBO: one row per F_LAST event group whose top ten levels changed",
)

BOOK_QUALITY_COUNTERS = (
    "records", "adds", "cancels", "modifies", "clears", "trades", "fills", "nones", "other_actions",
    "event_groups", "top10_changes", "crossed_groups", "locked_groups", "unknown_cancels", "unknown_modifies",
    "unknown_fills", "unknown_order_refs", "negative_size_attempts", "duplicate_adds", "invalid_records",
    "seq_decreases", "seq_jumps", "ts_recv_non_monotonic", "bad_ts_recv_flags", "maybe_bad_book_flags",
    "live_orders", "bid_levels", "ask_levels",
)

BOOK_QUALITY = Table(
    "silver.book_quality",
    pa.schema(
        [("contract_id", pa.string()), ("session_date", pa.date32()), ("publisher_id", pa.int32()),
         ("instrument_id", pa.int32()), ("book_complete", pa.bool_())]
        + [(name, pa.int64()) for name in BOOK_QUALITY_COUNTERS]
        + [("data_version", pa.string())]
    ),
    partition_by=("session_date",),
    description="order-book quality counters per contract and session (BOOK.md, Output 2)",
)

SESSION_LEVELS = Table(
    "silver.session_levels",
    pa.schema(
        [("contract_id", pa.string()), ("session_date", pa.date32())]
        + [(name, pa.float64()) for name in ("pm_high", "pm_low", "or_high", "or_low")]  # points; null if no data
        + [("pm_available_from", pa.int64()), ("or_available_from", pa.int64()), ("levels_complete", pa.bool_()),
           ("empty_windows", pa.string()), ("pm_n_states", pa.int64()), ("or_n_states", pa.int64()),
           ("data_version", pa.string())]
    ),
    partition_by=("session_date",),
    description="pre-market and opening-range highs and lows of the book mid (FEATURES.md §1)",
)


def _bar_schema() -> pa.Schema:
    from .features.bars import FEATURE_COLUMNS

    return pa.schema(
        [("contract_id", pa.string()), ("session_date", pa.date32()), ("bar_ts", pa.int64())]
        + [(name, pa.float64()) for name in FEATURE_COLUMNS]  # every feature as double; -1 / null as documented
        + [("data_version", pa.string())]
    )


BAR_5S = Table("silver.bar_5s", _bar_schema(), partition_by=("session_date",),
               description="5-second book, flow and trade features over the 08:30-12:30 window (FEATURES.md §3)")


def _primitives_schema() -> pa.Schema:
    from .features.signature import SIGNATURE_NAMES

    return pa.schema(
        [("contract_id", pa.string()), ("session_date", pa.date32()), ("episode_id", pa.string()),
         ("level_type", pa.string()), ("level_price", pa.float64()), ("direction", pa.int32()),
         ("trigger_ts", pa.int64()), ("confirm_ts", pa.int64()), ("vector_time", pa.int64()),
         ("confirm_in_window", pa.bool_()), ("lookforward_complete", pa.bool_()),
         ("position", pa.int32()), ("candle_ts", pa.int64()),
         ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
         ("has_trades", pa.bool_())]
        + [(name, pa.float64()) for name in SIGNATURE_NAMES]
        + [("data_version", pa.string())]
    )


FEATURE_PRIMITIVES = Table(
    "silver.feature_primitives", _primitives_schema(), partition_by=("session_date",),
    description="one row per candle (positions -5..6, 0 = confirm) of every approach episode, both directions, "
                "every level type, with its 47-number signature (FEATURES.md §4)",
)

SETUP_VECTORS = Table(
    "gold.setup_vectors",
    pa.schema(
        [("vector_time", pa.int64()), ("model_id", pa.string()), ("contract_id", pa.string()),
         ("session_date", pa.date32()), ("episode_id", pa.string()), ("level_type", pa.string()),
         ("approach_direction", pa.int32()), ("lookback_spec", pa.string()), ("feature_set", pa.string()),
         ("feature_vector", pa.list_(pa.float64())), ("feature_hash", pa.string()),
         ("context_truncated", pa.bool_()), ("n_nonfinite", pa.int64()), ("data_version", pa.string())]
    ),
    partition_by=("session_date",),
    description="one setup_v3 vector (345 numbers) per episode, valid at the confirm candle's close",
)

LABELS = Table(
    "gold.labels",
    pa.schema(
        [("episode_id", pa.string()), ("contract_id", pa.string()), ("session_date", pa.date32()),
         ("outcome", pa.string()), ("outcome_score", pa.float64()), ("max_signed_dist", pa.float64()),
         ("min_signed_dist", pa.float64()), ("first_hit_side", pa.string()), ("first_hit_offset_bars", pa.int32()),
         ("mae_pts", pa.float64()), ("mfe_pts", pa.float64()), ("chop_flag", pa.bool_()),
         ("failed_break_flag", pa.bool_()), ("both_sides_hit_flag", pa.bool_()), ("label_complete", pa.bool_()),
         ("data_version", pa.string())]
    ),
    partition_by=("session_date",),
    description="outcome of each episode over the 6 look-forward candles (historical only)",
)

TRAINING_VIEW = Table(
    "gold.training_view",
    pa.schema(
        list(SETUP_VECTORS.schema)
        + [f for f in LABELS.schema if f.name not in ("episode_id", "contract_id", "session_date", "data_version")]
        + [("levels_complete", pa.bool_()), ("front_month_dominance", pa.float64()), ("roll_contaminated", pa.bool_())]
    ),
    partition_by=("session_date",),
    description="gold.setup_vectors joined with gold.labels and session metadata",
)

TABLES = {t.name: t for t in (BRONZE_MBO, INGEST_MANIFEST, QUARANTINE, MBO_NORMALIZED, ORDERBOOK_STATE, BOOK_QUALITY,
                              SESSION_LEVELS, BAR_5S, FEATURE_PRIMITIVES, SETUP_VECTORS, LABELS, TRAINING_VIEW)}


# Streaming twins (DATA_CONTRACT.md: same schema as the batch table plus stream bookkeeping columns).
BRONZE_MBO_STREAM = Table(
    "bronze.mbo_stream",
    pa.schema(
        list(BRONZE_MBO.schema)
        + [
            ("event_key", pa.string()),  # the envelope's deterministic key: each event lands once
            ("kafka_topic", pa.string()),
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("stream_batch_id", pa.int64()),
            ("stream_time", pa.int64()),  # ns, when the micro-batch was written
        ]
    ),
    partition_by=("underlier", "instrument_type", "session_date"),
    description="raw MBO events from the bus (mbo_raw), merged on event_key",
)

QUARANTINE_STREAM = Table(
    "bronze.quarantine_stream",
    pa.schema(
        [
            ("reason", pa.string()),
            ("value", pa.string()),  # the message as received (UTF-8, replacement characters if not)
            ("kafka_topic", pa.string()),
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("stream_batch_id", pa.int64()),
            ("stream_time", pa.int64()),
        ]
    ),
    description="malformed messages of the bus with their reason",
)

STREAM_BOOKKEEPING = [
    ("stream_batch_id", pa.int64()),  # the micro-batch of the query that wrote the row
    ("stream_time", pa.int64()),  # ns, when that micro-batch was committed (latency = stream_time - event time)
]


def stream_twin(table: Table, description: str, extra: list | None = None) -> Table:
    """``<table>_stream``: the batch table's columns (equal value for value, data_version aside),
    then ``extra`` and the stream bookkeeping columns."""
    return Table(f"{table.name}_stream", pa.schema(list(table.schema) + (extra or []) + STREAM_BOOKKEEPING),
                 table.partition_by, description)


ORDERBOOK_STATE_STREAM = stream_twin(ORDERBOOK_STATE, "MBP-10 book states rebuilt by rt silver (state per contract)")
BAR_5S_STREAM = stream_twin(BAR_5S, "5-second bars of the front month, emitted as each bar closes")
FEATURE_PRIMITIVES_STREAM = stream_twin(FEATURE_PRIMITIVES, "episode candles with signatures, emitted once an "
                                        "episode's look-forward has closed (or the window ended)")
SETUP_VECTORS_STREAM = stream_twin(SETUP_VECTORS, "one setup vector per episode, emitted when its confirm candle "
                                   "closes (same feature_hash as batch)")
FEATURE_SERIES_STREAM = Table(
    "gold.feature_series_stream",
    pa.schema(
        [("contract_id", pa.string()), ("session_date", pa.date32()), ("bar_ts", pa.int64()),
         ("mid", pa.float64()), ("microprice", pa.float64()), ("spread_pts", pa.float64()),
         ("ofi_l0", pa.float64()), ("ofi_l10", pa.float64()), ("obi_l0", pa.float64()), ("obi_l10", pa.float64()),
         ("trade_count", pa.float64()), ("trade_volume", pa.float64()), ("trade_signed_volume", pa.float64()),
         ("trade_vwap", pa.float64()), ("mid_rv", pa.float64())]
        + STREAM_BOOKKEEPING
    ),
    partition_by=("session_date",),
    description="per contract and 5-second bar, the series a trader watches (from silver.bar_5s_stream)",
)
INFERENCE_SCORES_STREAM = Table(
    "gold.inference_scores_stream",
    pa.schema(
        [("episode_id", pa.string()), ("model_id", pa.string()), ("contract_id", pa.string()),
         ("session_date", pa.date32()), ("vector_time", pa.int64()), ("feature_hash", pa.string()),
         ("model_name", pa.string()), ("model_version", pa.string()), ("predicted", pa.string()),
         ("p_break", pa.float64()), ("p_reject", pa.float64()), ("p_chop", pa.float64()),
         ("scored_time", pa.int64()), ("attempts", pa.int32())]
        + STREAM_BOOKKEEPING
    ),
    partition_by=("session_date",),
    description="the champion's scores of gold.setup_vectors_stream, every N seconds",
)

STREAM_TABLES = {t.name: t for t in (BRONZE_MBO_STREAM, QUARANTINE_STREAM, ORDERBOOK_STATE_STREAM, BAR_5S_STREAM,
                                     FEATURE_PRIMITIVES_STREAM, SETUP_VECTORS_STREAM, FEATURE_SERIES_STREAM,
                                     INFERENCE_SCORES_STREAM)}

class SchemaMismatch(ValueError):
    pass


def check_schema(table: Table, actual: pa.Schema) -> None:
    """Fail naming the column when ``actual`` differs from the contract."""
    expected = {f.name: f.type for f in table.schema}
    # A dictionary-encoded column has its value type as logical type (Parquet stores it so).
    got = {f.name: f.type.value_type if pa.types.is_dictionary(f.type) else f.type for f in actual}
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    wrong = [f"{c} is {got[c]}, expected {expected[c]}" for c in expected if c in got and got[c] != expected[c]]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"extra column(s) {', '.join(extra)}")
    if wrong:
        problems.append("; ".join(wrong))
    if problems:
        raise SchemaMismatch(f"{table.name}: " + "; ".join(problems))


def spark_schema(table: Table):
    """The contract as a Spark StructType (via Arrow's type mapping)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(table.schema, prefer_timestamp_ntz=True)


def check_spark_schema(table: Table, df) -> None:
    """Check a Spark DataFrame against the contract before it is written."""
    from pyspark.sql.pandas.types import to_arrow_schema

    check_schema(table, to_arrow_schema(df.schema))


def render_markdown() -> str:
    lines = []
    for table in TABLES.values():
        if len(table.schema) > 60:  # wide feature tables: name the column groups, not every column
            lines += [f"### `{table.name}` — partitioned by {', '.join(table.partition_by)}", "", table.description, "",
                      f"{len(table.schema)} columns: " + ", ".join(f"`{f.name}`" for f in list(table.schema)[:6])
                      + f", …, `{table.schema[-1].name}` (declared in `lib/mbolake/schemas.py`).", ""]
            continue
        part = f" — partitioned by {', '.join(table.partition_by)}" if table.partition_by else ""
        lines += [f"### `{table.name}`{part}", "", table.description, "", "| column | type |", "|---|---|"]
        lines += [f"| {f.name} | {f.type} |" for f in table.schema]
        lines.append("")
    return "\n".join(lines)
