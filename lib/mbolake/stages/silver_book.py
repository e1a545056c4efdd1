"""SilverRebuildOrderBook: ``bronze.mbo`` -> ``silver.orderbook_state`` + ``silver.book_quality``.

Per ``(contract_id, session_date)`` the Bronze records are put in feed order
``(ts_recv, record_index)`` (never ``ts_event``; ``mbo_input``) and replayed by the
order-book kernel (``mbolake.book.OrderBook``) in ``CHUNK_RECORDS`` chunks: columns reach
the kernel as numpy views and leave it as Arrow arrays, without a Python object per row.
One replay gives both the MBP-10 rows and the quality counters (on the ``spark`` engine,
one replay per output table). Re-running for the same sessions replaces those sessions' rows.

Commit order: ``silver.orderbook_state`` first, then ``silver.book_quality`` (two Delta
commits: between them a reader of the current versions sees new states with the quality
rows of the run before). The summary records the versions this run left
(``data_version["outputs"]``) and reads its quality and state counts at those versions; a
reader wanting both tables of one run reads them there (``views.book.session_book(...,
version=)``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.constants import UNDEF_PRICE
from ..core.products import Product
from ..engines import Condition, Engine, Source, in_dates, where
from ..engines.local import keys_filter, read_rows
from ..io import delta_tables
from ..schemas import BOOK_QUALITY, BOOK_QUALITY_COUNTERS, BRONZE_MBO, ORDERBOOK_STATE
from .base import Stage, StageSummary
from .mbo_input import GROUP_INPUT_COLUMNS, kernel_chunks, kernel_input


def _string_column(codes: np.ndarray) -> pa.Array:
    """ASCII codes -> a string column, without a Python object per value."""
    present = np.flatnonzero(np.bincount(codes, minlength=256))
    lookup = np.zeros(256, dtype=np.int32)
    lookup[present] = np.arange(present.size, dtype=np.int32)
    dictionary = pa.array([chr(c) for c in present], type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(lookup[codes]), dictionary).cast(pa.string())


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], type=type_)).cast(type_)


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



def rebuild_contract_session(rows: pa.Table, lineage: str):
    """One contract-session of MBO rows (Arrow) replayed once: yields its MBP-10 rows chunk by
    chunk, then its quality counters (as ``(table, rows)`` pairs)."""
    from ..book import OrderBook

    contract_id = rows.column("contract_id")[0].as_py()
    session_date = rows.column("session_date")[0].as_py()
    cols = kernel_input(rows)
    del rows
    book = OrderBook()
    for chunk in kernel_chunks(cols):
        states = book.apply(chunk)
        if len(states["ts_recv"]):
            yield ORDERBOOK_STATE, mbp10_table(states, contract_id, session_date)
    yield BOOK_QUALITY, quality_table(book, contract_id, session_date, lineage)


class SilverRebuildOrderBook(Stage):
    name = "SilverRebuildOrderBook"
    inputs = (BRONZE_MBO,)
    outputs = (ORDERBOOK_STATE, BOOK_QUALITY)

    def execute(self, engine: Engine, product: Product, start_date, end_date,
                include_spreads: bool = False) -> StageSummary:
        conditions = where(underlier=product.underlier) + in_dates(start_date, end_date)
        bronze = Source(BRONZE_MBO, GROUP_INPUT_COLUMNS, conditions + (
            () if include_spreads else (Condition("instrument_type", "!=", "SPREAD"),)))
        engine.pin(BRONZE_MBO)
        lineage = engine.lineage()
        keys = engine.group_keys(bronze)
        if keys.empty:
            return self.summary(0, 0, lineage, pd.DataFrame(columns=BOOK_QUALITY.schema.names),
                                ["no Bronze records in the range"])
        engine.map_groups([bronze], lambda rows: rebuild_contract_session(rows, lineage), self.outputs, keys, lineage)
        written = {t.name: delta_tables.version(engine.ctx.profile, t) for t in self.outputs}
        quality = read_rows(engine.ctx, BOOK_QUALITY, keys_filter(keys, BOOK_QUALITY.schema),
                            version=written[BOOK_QUALITY.name]).to_pandas()
        quality = quality.sort_values(["session_date", "contract_id"]).reset_index(drop=True)
        state_rows = read_rows(engine.ctx, ORDERBOOK_STATE, keys_filter(keys, ORDERBOOK_STATE.schema),
                               ["session_date"], version=written[ORDERBOOK_STATE.name]).num_rows
        summary = self.summary(int(quality["records"].sum()), state_rows, lineage, quality)
        summary.data_version["outputs"] = written
        return summary
