"""MBO rows (Bronze or normalized, Arrow) as order-book kernel input: the columns the kernel
reads, in feed order ``(ts_recv, record_index)`` (never ``ts_event``), in chunks.

Shared by the stages that replay the book (the order-book stage and the bar stage); not a
stage itself.
"""
from __future__ import annotations

import heapq

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.constants import UNDEF_PRICE
from ..engines.local import category_codes

# records per kernel call: the rows of a chunk stay a few tens of MB, and the book's output
# blocks are reused warm (fresh memory costs a page fault per 4 KB on this kind of VM)
CHUNK_RECORDS = 131_072
KERNEL_COLUMNS = ["ts_recv", "ts_event", "publisher_id", "instrument_id", "action", "side", "price", "size",
                  "order_id", "flags", "sequence", "channel_id", "record_index"]
GROUP_INPUT_COLUMNS = ["contract_id", "session_date", *KERNEL_COLUMNS]  # what a stage reads per group


def char_codes(column: pa.ChunkedArray) -> np.ndarray:
    """One-character string column (plain or dictionary) -> ASCII codes (uint8)."""
    codes, values = category_codes(column)
    return np.array([ord(v) if v else 0 for v in values], dtype=np.uint8)[codes]


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
            values = char_codes(col)
        elif name == "price":
            values = pc.fill_null(col, UNDEF_PRICE).to_numpy()  # null = undefined price
        else:
            values = col.to_numpy()
        cols[name] = values if order is None else values[order]
    return cols


def kernel_chunks(cols: dict[str, np.ndarray], chunk_records: int = CHUNK_RECORDS):
    """Kernel columns in consecutive slices of at most ``chunk_records`` records (views)."""
    for first in range(0, len(cols["ts_recv"]), chunk_records):
        yield {name: col[first:first + chunk_records] for name, col in cols.items()}
