"""``mbolake book replay``: rebuild books from an MBO file and write MBP-10 rows to Parquet.

Prices are Databento's fixed-point int64 and empty levels hold the undefined-price
sentinel with size and count 0, as in a Databento ``mbp-10`` file, so the output can be
compared column by column with one. The file is streamed chunk by chunk; decoding and
the book overlap with the Parquet encoding.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..book import OrderBook
from ..core.prefetch import prefetch
from .dbn import iter_mbo_chunks


@dataclass
class ReplayResult:
    records: int
    rows: int
    seconds: float
    quality: pd.DataFrame
    symbols: dict[int, str]


CHUNK_RECORDS = 131_072  # small chunks: the book's row blocks and the decode buffers stay warm
WRITE_QUEUE = 2  # Arrow tables waiting for the Parquet writer
# Dictionary pages only where values repeat (the header's codes): for the 60 level columns
# they cost a third more write time and gave larger files (measured on a 10 M-record session).
DICTIONARY_COLUMNS = ["rtype", "publisher_id", "instrument_id", "action", "side", "depth", "flags"]


def arrow_rows(cols: dict[str, np.ndarray]) -> pa.Table:
    """MBP-10 row columns as an Arrow table: numbers without a copy, action/side as strings."""
    return pa.table({name: pa.array(col).cast(pa.string()) if col.dtype.kind == "S" else pa.array(col)
                     for name, col in cols.items()})


def replay(path: str | Path, out: str | Path | None, every_record: bool = False,
           instrument_id: int | None = None, chunk_records: int = CHUNK_RECORDS) -> ReplayResult:
    """Replay an MBO file; with ``out``, write the MBP-10 rows to that Parquet file.

    Decoding and the book run on a second thread while this one encodes Parquet, so the
    two overlap on two cores; the rows reach the writer as Arrow views of the book's
    output blocks, which the book reuses once the writer has dropped them.
    """
    # blocks alive at once: one being filled, one waiting to be queued, the queue, the writer's
    book = OrderBook(row_blocks=WRITE_QUEUE + 3)

    def replayed_chunks():
        """(file header, records applied, their rows as Arrow or None without ``out``)"""
        for header, chunk in iter_mbo_chunks(path, chunk_records):
            if instrument_id is not None:
                chunk = chunk[chunk["instrument_id"] == instrument_id]
            cols = book.apply(chunk, every_record=every_record, emit_rows=out is not None)
            yield header, len(chunk), None if out is None else arrow_rows(cols)

    t0 = time.perf_counter()
    # written under a temporary name and renamed at the end: a failed replay (a corrupt
    # file) leaves no partial output that could pass for a whole day
    partial = None if out is None else Path(out).with_name(Path(out).name + ".partial")
    writer = None
    records = rows = 0
    symbols: dict[int, str] = {}
    try:
        for header, n, table in prefetch(replayed_chunks(), WRITE_QUEUE, name="mbolake-book-replay"):
            symbols = symbols or {iid: ivs[-1].raw_symbol for iid, ivs in header.instruments.items()}
            records += n
            if table is None:
                continue
            if writer is None:
                partial.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(str(partial), table.schema, compression="zstd",
                                         use_dictionary=DICTIONARY_COLUMNS)
            if table.num_rows:
                writer.write_table(table)
                rows += table.num_rows
    except BaseException:
        if writer is not None:
            writer.close()
            partial.unlink(missing_ok=True)
        raise
    if writer is not None:  # an empty day still gets its (empty) file
        writer.close()
        os.replace(partial, out)
    quality = book.quality()
    quality.insert(2, "symbol", quality["instrument_id"].map(lambda i: symbols.get(int(i), "")))
    return ReplayResult(records, rows, time.perf_counter() - t0, quality, symbols)
