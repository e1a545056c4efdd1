"""SilverRebuildOrderBook: ``bronze.mbo`` -> ``silver.orderbook_state`` + ``silver.book_quality``.

Spark groups Bronze by ``(contract_id, session_date)``; inside each group the records are
sorted by ``(ts_recv, record_index)`` (feed order, never ``ts_event``) and replayed by the
order-book kernel (``mbolake.book.OrderBook``): columns reach the kernel as numpy views and
leave it as Arrow arrays, without a Python object per row. On the ``spark`` engine Spark
groups and calls the kernel through ``applyInArrow``; on the ``local`` engine
(``local_engine``) the driver reads one session at a time, puts each contract's rows in feed
order by merging the sorted runs Delta returns (``feed_order_slices``), and replays each
contract once, in ``CHUNK_RECORDS`` chunks, for both the rows and the quality counters. Re-running for the same
sessions replaces those sessions' rows (Delta ``replaceWhere`` / delta-rs ``predicate``).
"""
from __future__ import annotations

import datetime as dt
import heapq
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..runtime.context import Context
from ..core.constants import UNDEF_PRICE
from ..schemas import BOOK_QUALITY, BOOK_QUALITY_COUNTERS, BRONZE_MBO, ORDERBOOK_STATE, spark_schema
from ..engines import local as local_engine
from ..engines.spark import data_version, in_dates, pairs_predicate, read_pinned, replace_rows
from ..engines.local import stage_engine

# records per kernel call: the rows of a chunk stay a few tens of MB, and the book's output
# blocks are reused warm (fresh memory costs a page fault per 4 KB on this kind of VM)
CHUNK_RECORDS = 131_072
KERNEL_COLUMNS = ["ts_recv", "ts_event", "publisher_id", "instrument_id", "action", "side", "price", "size",
                  "order_id", "flags", "sequence", "channel_id", "record_index"]
GROUP_INPUT_COLUMNS = ["contract_id", "session_date", *KERNEL_COLUMNS]  # what a stage reads per group


def _char_codes(column: pa.ChunkedArray) -> np.ndarray:
    """One-character string column (plain or dictionary) -> ASCII codes (uint8)."""
    codes, values = local_engine.category_codes(column)
    return np.array([ord(v) if v else 0 for v in values], dtype=np.uint8)[codes]


def _string_column(codes: np.ndarray) -> pa.Array:
    """ASCII codes -> a string column, without a Python object per value."""
    present = np.flatnonzero(np.bincount(codes, minlength=256))
    lookup = np.zeros(256, dtype=np.int32)
    lookup[present] = np.arange(present.size, dtype=np.int32)
    dictionary = pa.array([chr(c) for c in present], type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(lookup[codes]), dictionary).cast(pa.string())


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], type=type_)).cast(type_)


MAX_FEED_SLICES = 4096  # beyond this many pieces a full sort is simpler


def _run_end(ts: np.ndarray, index: np.ndarray, start: int, stop: int, key: tuple, inclusive: bool) -> int:
    """First row of the sorted run ``[start, stop)`` whose ``(ts_recv, record_index)`` is past ``key``
    (``>`` with ``inclusive``, else ``>=``)."""
    key_ts, key_index = key
    lo = start + int(np.searchsorted(ts[start:stop], key_ts, "left"))
    hi = start + int(np.searchsorted(ts[start:stop], key_ts, "right"))
    return lo + int(np.searchsorted(index[lo:hi], key_index, "right" if inclusive else "left"))


def feed_order_slices(ts: np.ndarray, index: np.ndarray) -> list[tuple[int, int]] | None:
    """``[(start, stop)]`` row ranges that, taken in this order, put the rows in feed order
    ``(ts_recv, record_index)``, exactly as a stable sort would; None when that takes more
    than MAX_FEED_SLICES pieces (then sort).

    Delta writers do not keep the order of the batches they are given, so a session reads
    back as a few long sorted runs out of order. Merging the runs piece by piece costs a
    few binary searches; sorting the rows costs a gather of every column into fresh memory.
    """
    steps_in_order = (ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (index[1:] > index[:-1]))
    breaks = (np.flatnonzero(~steps_in_order) + 1).tolist()
    if len(breaks) >= MAX_FEED_SLICES:
        return None
    bounds = [0, *breaks, len(ts)]
    stops = dict(zip(bounds[:-1], bounds[1:]))
    # heads of the runs still to take, first in feed order; rows equal in key keep file order
    heads = [(ts[start], index[start], start) for start in bounds[:-1] if stops[start] > start]
    heapq.heapify(heads)
    slices: list[tuple[int, int]] = []
    while heads:
        _, _, start = heapq.heappop(heads)
        stop = stops[start]
        if heads:
            next_ts, next_index, next_start = heads[0]
            stop = _run_end(ts, index, start, stop, (next_ts, next_index), inclusive=start < next_start)
        slices.append((start, stop))
        if len(slices) > MAX_FEED_SLICES:
            return None
        if stop < stops[start]:
            stops[stop] = stops[start]
            heapq.heappush(heads, (ts[stop], index[stop], stop))
    return slices


def kernel_input(table: pa.Table) -> dict[str, np.ndarray]:
    """Bronze rows of one group (Arrow), in feed order ``(ts_recv, record_index)``, as kernel columns."""
    ts = table.column("ts_recv").to_numpy()
    index = table.column("record_index").to_numpy()
    slices = feed_order_slices(ts, index)
    order = None
    if slices is None:
        order = np.lexsort((index, ts))
    elif len(slices) > 1:
        table = pa.concat_tables([table.slice(start, stop - start) for start, stop in slices])
    cols = {}
    for name in KERNEL_COLUMNS:
        col = table.column(name)
        if name in ("action", "side"):
            values = _char_codes(col)
        elif name == "price":
            values = pc.fill_null(col, UNDEF_PRICE).to_numpy()  # null = undefined price
        else:
            values = col.to_numpy()
        cols[name] = values if order is None else values[order]
    return cols


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


def quality_table(book, contract_id: str, session_date, data_version: str) -> pa.Table:
    """The book's quality counters as ``silver.book_quality`` rows of one contract-session."""
    quality = book.quality()
    quality.insert(0, "contract_id", contract_id)
    quality.insert(1, "session_date", session_date)
    quality["data_version"] = data_version
    out = quality[BOOK_QUALITY.schema.names].copy()
    out[["publisher_id", "instrument_id"]] = out[["publisher_id", "instrument_id"]].astype(np.int32)
    out[list(BOOK_QUALITY_COUNTERS)] = out[list(BOOK_QUALITY_COUNTERS)].astype(np.int64)
    return pa.Table.from_pandas(out, schema=BOOK_QUALITY.schema, preserve_index=False)


def _quality_group(table: pa.Table, data_version: str) -> pa.Table:
    from ..book import OrderBook

    book = OrderBook()
    book.apply(kernel_input(table), emit_rows=False)
    return quality_table(book, *_group_keys(table), data_version)


def kernel_chunks(cols: dict[str, np.ndarray], chunk_records: int = CHUNK_RECORDS):
    """Kernel columns in consecutive slices of at most ``chunk_records`` records (views)."""
    for first in range(0, len(cols["ts_recv"]), chunk_records):
        yield {name: col[first:first + chunk_records] for name, col in cols.items()}


def contract_inputs(session: pa.Table) -> list[tuple[str, dict[str, np.ndarray]]]:
    """A session's Bronze rows as ``(contract_id, kernel columns)`` per contract. The columns
    keep only what the kernel reads, so the caller can drop the session table (a gigabyte
    for a 10 M-record day) before replaying them."""
    return [(contract_id, kernel_input(rows)) for contract_id, rows in local_engine.split_by(session, "contract_id")]


def replay_group(cols: dict[str, np.ndarray], contract_id: str, session_date, data_version: str, quality: list,
                 chunk_records: int = CHUNK_RECORDS):
    """One contract-session (kernel columns) replayed in chunks: yields its MBP-10 rows
    (Arrow) chunk by chunk and appends its quality counters to ``quality`` at the end (one
    kernel pass for both)."""
    from ..book import OrderBook

    book = OrderBook()
    for chunk in kernel_chunks(cols, chunk_records):
        rows = book.apply(chunk)
        if len(rows["ts_recv"]):
            yield mbp10_table(rows, contract_id, session_date)
    quality.append(quality_table(book, contract_id, session_date, data_version))


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
            end_date: dt.date | None = None, include_spreads: bool = False,
            engine: str | None = None) -> BookSummary:
        t0 = time.perf_counter()
        if stage_engine(ctx, engine) == "local":
            quality, lineage_json = self._run_local(ctx, underlier, start_date, end_date, include_spreads)
        else:
            quality, lineage_json = self._run_spark(ctx, underlier, start_date, end_date, include_spreads)
        lineage = json.loads(lineage_json)
        if quality.empty:
            return BookSummary([], 0, 0, 0, quality, lineage, time.perf_counter() - t0)
        quality = quality.sort_values(["session_date", "contract_id"]).reset_index(drop=True)
        state_rows = int(local_engine.read_rows(ctx, ORDERBOOK_STATE, local_engine.pairs_filter(quality),
                                                ["session_date"]).num_rows)
        return BookSummary(sorted(quality["session_date"].unique()), len(quality), int(quality["records"].sum()),
                           state_rows, quality, lineage, time.perf_counter() - t0)

    def _run_local(self, ctx: Context, underlier, start_date, end_date, include_spreads) -> tuple[pd.DataFrame, str]:
        bronze = local_engine.PinnedTable(ctx, BRONZE_MBO, self.name)
        lineage_json = data_version(ctx, {BRONZE_MBO.name: bronze.version})
        chosen = local_engine.all_of([
            pc.field("underlier") == underlier, local_engine.date_filter(start_date, end_date),
            None if include_spreads else pc.field("instrument_type") != "SPREAD"])
        keys = local_engine.group_keys(bronze.read(["contract_id", "session_date"], chosen))
        if keys.empty:
            return pd.DataFrame(columns=BOOK_QUALITY.schema.names), lineage_json
        quality: list[pa.Table] = []

        def states():
            for session_date in sorted(keys["session_date"].unique()):
                contracts = contract_inputs(bronze.read(
                    GROUP_INPUT_COLUMNS, chosen & (pc.field("session_date") == pa.scalar(session_date, pa.date32()))))
                while contracts:  # each contract's columns are released once replayed
                    contract_id, cols = contracts.pop(0)
                    yield from replay_group(cols, contract_id, session_date, lineage_json, quality)
                    del cols

        where = pairs_predicate(keys)
        local_engine.replace(ctx, ORDERBOOK_STATE, states(), where, lineage_json)
        quality_rows = pa.concat_tables(quality)
        local_engine.replace(ctx, BOOK_QUALITY, [quality_rows], where, lineage_json)
        return quality_rows.to_pandas(), lineage_json

    def _run_spark(self, ctx: Context, underlier, start_date, end_date, include_spreads) -> tuple[pd.DataFrame, str]:
        from pyspark.sql import functions as F

        spark = ctx.spark
        bronze, bronze_version = read_pinned(ctx, BRONZE_MBO, self.name)
        bronze = in_dates(bronze.where(F.col("underlier") == underlier), start_date, end_date)
        if not include_spreads:
            bronze = bronze.where(F.col("instrument_type") != "SPREAD")
        bronze = bronze.select(*GROUP_INPUT_COLUMNS)
        lineage_json = data_version(ctx, {BRONZE_MBO.name: bronze_version})
        grouped = bronze.groupBy("contract_id", "session_date")
        # The quality pass (kernel without rows) also tells which contract-sessions exist.
        quality = grouped.applyInArrow(lambda table: _quality_group(table, lineage_json),
                                       schema=spark_schema(BOOK_QUALITY)).toPandas()
        if quality.empty:
            return quality, lineage_json
        where = pairs_predicate(quality)
        states = grouped.applyInArrow(_rebuild_group, schema=spark_schema(ORDERBOOK_STATE))
        replace_rows(ctx, ORDERBOOK_STATE, states, where, lineage_json)
        replace_rows(ctx, BOOK_QUALITY, spark.createDataFrame(quality, schema=spark_schema(BOOK_QUALITY)), where,
                     lineage_json)
        return quality, lineage_json
