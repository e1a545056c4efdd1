"""``mbolake book replay``: rebuild books from an MBO file and write MBP-10 rows to Parquet.

Prices are Databento's fixed-point int64 and empty levels hold the undefined-price
sentinel with size and count 0, as in a Databento ``mbp-10`` file, so the output can be
compared column by column with one. The file is streamed chunk by chunk.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .book import OrderBook
from .dbn import iter_mbo_chunks


@dataclass
class ReplayResult:
    records: int
    rows: int
    seconds: float
    quality: pd.DataFrame
    symbols: dict[int, str]


def _arrow_columns(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays = {}
    for name, col in cols.items():
        arrays[name] = pa.array(col.astype("U1")) if col.dtype.kind == "S" else pa.array(col)
    return pa.table(arrays)


def replay(path: str | Path, out: str | Path | None, every_record: bool = False,
           instrument_id: int | None = None, chunk_records: int = 1_000_000) -> ReplayResult:
    book = OrderBook()
    writer = None
    records = rows = 0
    symbols: dict[int, str] = {}
    t0 = time.perf_counter()
    try:
        for header, chunk in iter_mbo_chunks(path, chunk_records):
            if not symbols:
                symbols = {iid: ivs[-1].raw_symbol for iid, ivs in header.instruments.items()}
            if instrument_id is not None:
                chunk = chunk[chunk["instrument_id"] == instrument_id]
            records += len(chunk)
            cols = book.apply(chunk, every_record=every_record, emit_rows=out is not None)
            n = len(cols["ts_recv"]) if cols else 0
            rows += n
            if out is not None and n:
                table = _arrow_columns(cols)
                if writer is None:
                    Path(out).parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(str(out), table.schema, compression="zstd")
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    quality = book.quality()
    quality.insert(2, "symbol", quality["instrument_id"].map(lambda i: symbols.get(int(i), "")))
    return ReplayResult(records, rows, time.perf_counter() - t0, quality, symbols)
