"""SilverRebuildOrderBook: ``bronze.mbo`` -> ``silver.orderbook_state`` + ``silver.book_quality``.

Spark groups Bronze by ``(contract_id, session_date)``; inside each group the records are
sorted by ``(ts_recv, record_index)`` (feed order, never ``ts_event``) and replayed by the
order-book kernel (``mbolake.book.OrderBook``) through ``applyInArrow``: columns reach the
kernel as numpy views and leave it as Arrow arrays, without a Python object per row. Re-running for
the same sessions replaces those sessions' rows (Delta ``replaceWhere``).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..context import Context
from ..dbn import UNDEF_PRICE
from ..schemas import BOOK_QUALITY, BOOK_QUALITY_COUNTERS, BRONZE_MBO, ORDERBOOK_STATE, spark_schema
from .common import count_rows, data_version, in_dates, pairs_predicate, read_pinned, replace_rows

KERNEL_COLUMNS = ["ts_recv", "ts_event", "publisher_id", "instrument_id", "action", "side", "price", "size",
                  "order_id", "flags", "sequence", "channel_id", "record_index"]


def _char_codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """One-character string column -> ASCII codes (uint8), through its few distinct values."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    lookup = np.array([ord(v) if v else 0 for v in encoded.dictionary.to_pylist()], dtype=np.uint8)
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)]


def _string_column(codes: np.ndarray) -> pa.Array:
    """ASCII codes -> a string column, without a Python object per value."""
    present = np.flatnonzero(np.bincount(codes, minlength=256))
    lookup = np.zeros(256, dtype=np.int32)
    lookup[present] = np.arange(present.size, dtype=np.int32)
    dictionary = pa.array([chr(c) for c in present], type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(lookup[codes]), dictionary).cast(pa.string())


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], type=type_)).cast(type_)


def kernel_input(table: pa.Table) -> dict[str, np.ndarray]:
    """Bronze rows of one group (Arrow), in feed order ``(ts_recv, record_index)``, as kernel columns."""
    ts = table.column("ts_recv").to_numpy()
    index = table.column("record_index").to_numpy()
    in_order = bool(np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (index[1:] > index[:-1]))))
    order = None if in_order else np.lexsort((index, ts))
    cols = {}
    for name in KERNEL_COLUMNS:
        col = table.column(name)
        values = _char_codes(col) if name in ("action", "side") else col.to_numpy()
        cols[name] = values if order is None else values[order]
    return cols  # price nulls were replaced by the sentinel in Spark


def mbp10_table(cols: dict[str, np.ndarray], contract_id: str, session_date) -> pa.Table:
    """Kernel MBP-10 columns -> ``silver.orderbook_state`` rows (sentinel prices become null)."""
    n = len(cols["ts_recv"])
    arrays = []
    for field in ORDERBOOK_STATE.schema:
        name = field.name
        if name == "contract_id":
            arrays.append(_constant(contract_id, n, pa.string()))
        elif name == "session_date":
            arrays.append(_constant(session_date, n, pa.date32()))
        elif name in ("action", "side"):
            arrays.append(_string_column(cols[name].view(np.uint8)))
        elif name == "price" or "_px_" in name:
            px = cols[name].astype(np.int64, copy=False)
            arrays.append(pa.array(px, mask=px == UNDEF_PRICE))
        else:
            arrays.append(pa.array(cols[name].astype(field.type.to_pandas_dtype(), copy=False)))
    return pa.Table.from_arrays(arrays, schema=ORDERBOOK_STATE.schema)


def _group_keys(table: pa.Table) -> tuple[str, object]:
    return table.column("contract_id")[0].as_py(), table.column("session_date")[0].as_py()


def _rebuild_group(table: pa.Table) -> pa.Table:
    from ..book import OrderBook

    contract_id, session_date = _group_keys(table)
    return mbp10_table(OrderBook().apply(kernel_input(table)), contract_id, session_date)


def _quality_group(table: pa.Table, data_version: str) -> pa.Table:
    from ..book import OrderBook

    book = OrderBook()
    book.apply(kernel_input(table), emit_rows=False)
    quality = book.quality()
    contract_id, session_date = _group_keys(table)
    quality.insert(0, "contract_id", contract_id)
    quality.insert(1, "session_date", session_date)
    quality["data_version"] = data_version
    out = quality[BOOK_QUALITY.schema.names].copy()
    out[["publisher_id", "instrument_id"]] = out[["publisher_id", "instrument_id"]].astype(np.int32)
    out[list(BOOK_QUALITY_COUNTERS)] = out[list(BOOK_QUALITY_COUNTERS)].astype(np.int64)
    return pa.Table.from_pandas(out, schema=BOOK_QUALITY.schema, preserve_index=False)


@dataclass
class BookSummary:
    sessions: list
    contracts: int
    bronze_rows: int
    state_rows: int
    quality: pd.DataFrame
    data_version: dict
    seconds: float

    def _repr_html_(self) -> str:
        return (f"<b>SilverRebuildOrderBook</b>: {self.contracts} contract-session(s) over {len(self.sessions)} "
                f"session(s); {self.bronze_rows:,} Bronze records → {self.state_rows:,} MBP-10 rows in "
                f"{self.seconds:.1f} s; lineage {self.data_version}" + self.quality.to_html(index=False))


class SilverRebuildOrderBook:
    name = "SilverRebuildOrderBook"
    inputs = (BRONZE_MBO.name,)
    outputs = (ORDERBOOK_STATE.name, BOOK_QUALITY.name)

    def run(self, ctx: Context, *, underlier: str, start_date: dt.date | None = None,
            end_date: dt.date | None = None, include_spreads: bool = False) -> BookSummary:
        from pyspark.sql import functions as F

        t0 = time.perf_counter()
        spark = ctx.spark
        bronze, bronze_version = read_pinned(ctx, BRONZE_MBO, self.name)
        bronze = in_dates(bronze.where(F.col("underlier") == underlier), start_date, end_date)
        if not include_spreads:
            bronze = bronze.where(F.col("instrument_type") != "SPREAD")
        # Nulls are filled before the data reaches pandas: a nullable long would arrive as float64.
        bronze = bronze.withColumn("price", F.coalesce(F.col("price"), F.lit(UNDEF_PRICE)))
        bronze = bronze.select("contract_id", "session_date", *KERNEL_COLUMNS)
        lineage_json = data_version(ctx, {BRONZE_MBO.name: bronze_version})
        lineage = json.loads(lineage_json)
        grouped = bronze.groupBy("contract_id", "session_date")
        # The quality pass (kernel without rows) also tells which contract-sessions exist.
        quality = grouped.applyInArrow(lambda table: _quality_group(table, lineage_json),
                                       schema=spark_schema(BOOK_QUALITY)).toPandas()
        quality = quality.sort_values(["session_date", "contract_id"]).reset_index(drop=True)
        if quality.empty:
            return BookSummary([], 0, 0, 0, quality, lineage, time.perf_counter() - t0)
        where = pairs_predicate(quality)
        states = grouped.applyInArrow(_rebuild_group, schema=spark_schema(ORDERBOOK_STATE))
        replace_rows(ctx, ORDERBOOK_STATE, states, where, lineage_json)
        replace_rows(ctx, BOOK_QUALITY, spark.createDataFrame(quality, schema=spark_schema(BOOK_QUALITY)), where,
                     lineage_json)
        state_rows = count_rows(ctx, ORDERBOOK_STATE, where)
        return BookSummary(sorted(quality["session_date"].unique()), len(quality), int(quality["records"].sum()),
                           state_rows, quality, lineage, time.perf_counter() - t0)
