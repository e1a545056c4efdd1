"""SilverRebuildOrderBook: ``bronze.mbo`` -> ``silver.orderbook_state`` + ``silver.book_quality``.

Spark groups Bronze by ``(contract_id, session_date)``; inside each group the records are
sorted by ``(ts_recv, record_index)`` (feed order, never ``ts_event``) and replayed by the
order-book kernel (``mbolake.book.OrderBook``) through ``applyInPandas``. Re-running for
the same sessions replaces those sessions' rows (Delta ``replaceWhere``).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..context import Context
from ..dbn import UNDEF_PRICE
from ..schemas import BOOK_QUALITY, BOOK_QUALITY_COUNTERS, BRONZE_MBO, ORDERBOOK_STATE, spark_schema
from .common import count_rows, data_version, in_dates, pairs_predicate, read_pinned, replace_rows

KERNEL_COLUMNS = ["ts_recv", "ts_event", "publisher_id", "instrument_id", "action", "side", "price", "size",
                  "order_id", "flags", "sequence", "channel_id", "record_index"]


def kernel_input(pdf: pd.DataFrame) -> dict[str, np.ndarray]:
    """Bronze rows of one group, in feed order, as the book kernel's columns."""
    pdf = pdf.sort_values(["ts_recv", "record_index"], kind="stable")
    cols = {name: pdf[name].to_numpy() for name in KERNEL_COLUMNS if name not in ("price", "action", "side")}
    cols["price"] = pdf["price"].to_numpy(dtype=np.int64)  # nulls were replaced by the sentinel in Spark
    cols["action"] = pdf["action"].to_numpy(dtype="S1")
    cols["side"] = pdf["side"].to_numpy(dtype="S1")
    return cols


def mbp10_frame(cols: dict[str, np.ndarray], contract_id: str, session_date) -> pd.DataFrame:
    """Kernel MBP-10 columns -> ``silver.orderbook_state`` rows (sentinel prices become null)."""
    out = {}
    for field in ORDERBOOK_STATE.schema:
        name = field.name
        if name == "contract_id":
            out[name] = contract_id
        elif name == "session_date":
            out[name] = session_date
        elif name in ("action", "side"):
            out[name] = cols[name].astype("U1")
        elif name == "price" or "_px_" in name:
            px = cols[name].astype(np.int64)
            out[name] = pd.arrays.IntegerArray(px, px == UNDEF_PRICE)
        else:
            out[name] = cols[name].astype(np.int64 if field.type.bit_width == 64 else np.int32)
    return pd.DataFrame(out, columns=ORDERBOOK_STATE.schema.names)


def _rebuild_group(pdf: pd.DataFrame) -> pd.DataFrame:
    from ..book import OrderBook

    contract_id, session_date = pdf["contract_id"].iloc[0], pdf["session_date"].iloc[0]
    rows = OrderBook().apply(kernel_input(pdf))
    return mbp10_frame(rows, contract_id, session_date)


def _quality_group(pdf: pd.DataFrame, data_version: str) -> pd.DataFrame:
    from ..book import OrderBook

    book = OrderBook()
    book.apply(kernel_input(pdf), emit_rows=False)
    quality = book.quality()
    quality.insert(0, "contract_id", pdf["contract_id"].iloc[0])
    quality.insert(1, "session_date", pdf["session_date"].iloc[0])
    quality["data_version"] = data_version
    out = quality[BOOK_QUALITY.schema.names].copy()
    out[["publisher_id", "instrument_id"]] = out[["publisher_id", "instrument_id"]].astype(np.int32)
    out[list(BOOK_QUALITY_COUNTERS)] = out[list(BOOK_QUALITY_COUNTERS)].astype(np.int64)
    return out


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
        quality = grouped.applyInPandas(lambda pdf: _quality_group(pdf, lineage_json),
                                        schema=spark_schema(BOOK_QUALITY)).toPandas()
        quality = quality.sort_values(["session_date", "contract_id"]).reset_index(drop=True)
        if quality.empty:
            return BookSummary([], 0, 0, 0, quality, lineage, time.perf_counter() - t0)
        where = pairs_predicate(quality)
        states = grouped.applyInPandas(_rebuild_group, schema=spark_schema(ORDERBOOK_STATE))
        replace_rows(ctx, ORDERBOOK_STATE, states, where, lineage_json)
        replace_rows(ctx, BOOK_QUALITY, spark.createDataFrame(quality, schema=spark_schema(BOOK_QUALITY)), where,
                     lineage_json)
        state_rows = count_rows(ctx, ORDERBOOK_STATE, where)
        return BookSummary(sorted(quality["session_date"].unique()), len(quality), int(quality["records"].sum()),
                           state_rows, quality, lineage, time.perf_counter() - t0)
