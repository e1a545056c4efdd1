"""Databento ``mbp-10`` output layout: the kernel's int64 rows -> typed columns."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from . import kernel as K

HEADER = (
    ("ts_recv", np.uint64), ("ts_event", np.uint64), ("rtype", np.uint8),
    ("publisher_id", np.uint16), ("instrument_id", np.uint32), ("action", "S1"), ("side", "S1"),
    ("depth", np.uint8), ("price", np.int64), ("size", np.uint32), ("flags", np.uint8),
    ("sequence", np.uint32),
)
LEVEL_FIELDS = (("bid_px", np.int64), ("ask_px", np.int64), ("bid_sz", np.uint32),
                ("ask_sz", np.uint32), ("bid_ct", np.uint32), ("ask_ct", np.uint32))
LEVEL_COLUMNS = tuple((f"{name}_{m:02d}", dt) for name, dt in LEVEL_FIELDS for m in range(K.TOP))
COLUMNS = HEADER + LEVEL_COLUMNS
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
assert len(COLUMNS) == K.ROW_LEN


def rows_to_columns(table: np.ndarray) -> dict[str, np.ndarray]:
    """(72, n) int64 column-major rows in kernel layout -> {column: typed array} (mbp-10 order)."""
    table = np.asarray(table, dtype=np.int64).reshape(K.ROW_LEN, -1)
    cols = {}
    for j, (name, dt) in enumerate(COLUMNS):
        col = table[j]
        if name in ("ts_recv", "ts_event"):
            cols[name] = col.view(np.uint64).copy()
        elif name == "depth":
            cols[name] = np.minimum(col, 255).astype(np.uint8)
        elif dt == "S1":
            cols[name] = col.astype(np.uint8).view("S1")
        else:
            cols[name] = col.astype(dt)
    return cols


# header columns by storage group: (group, row in the group)
_H64 = ("ts_recv", "ts_event", "price")
_H32 = ("instrument_id", "size", "sequence")
_H16 = ("publisher_id",)
_H8 = ("rtype", "action", "side", "depth", "flags")


def _big_empty(nbytes: int) -> np.ndarray:
    """Uninitialised uint8 buffer. Large ones are plain anonymous memory from the
    allocator: pages never written cost nothing, first writes fault in 4 KB pages (about
    0.2 s per GB). Deliberately no MADV_HUGEPAGE: with the usual THP defrag setting
    (``madvise``) every huge-page fault may compact memory synchronously, and on a busy
    machine a whole session's rows (2-3 GB) then took 10-20 s to fault in instead of 0.5 s."""
    return np.empty(nbytes, np.uint8)


class RowBlocks:
    """Column-major output rows in their final dtypes, carved from one buffer:
    h64 (3, cap) int64 (ts_recv, ts_event, price), h32 (3, cap) uint32 (instrument_id,
    size, sequence), h16 (1, cap) uint16 (publisher_id), h8 (5, cap) uint8 (rtype, action,
    side, depth, flags), px (20, cap) int64 (bid/ask prices), szct (40, cap) uint32 (bid/ask
    sizes then counts). ``columns`` returns views (no copy). Pages never written are never
    touched. ``free`` tells when no returned view is alive any more, so the owner can reuse
    the block: a chunked replay then writes into warm pages instead of faulting in new ones."""

    NAMES = ("h64", "h32", "h16", "h8", "px", "szct")
    _LAYOUT = (("h64", len(_H64), np.int64), ("px", 2 * K.TOP, np.int64), ("h32", len(_H32), np.uint32),
               ("szct", 4 * K.TOP, np.uint32), ("h16", len(_H16), np.uint16), ("h8", len(_H8), np.uint8))

    def __init__(self, cap: int) -> None:
        cap = -(-cap // 8) * 8  # every array starts 8-byte aligned
        total = sum(rows * np.dtype(dt).itemsize * cap for _, rows, dt in self._LAYOUT)
        self._buf = _big_empty(total)
        off = 0
        for name, rows, dt in self._LAYOUT:
            nbytes = rows * np.dtype(dt).itemsize * cap
            setattr(self, name, self._buf[off : off + nbytes].view(dt).reshape(rows, cap))
            off += nbytes
        self._base_refs = sys.getrefcount(self._buf)

    @property
    def cap(self) -> int:
        return self.h64.shape[1]

    def arrays(self) -> tuple:
        return tuple(getattr(self, name) for name in self.NAMES)

    def free(self) -> bool:
        """True when nothing but this object refers to its buffer (no returned view alive)."""
        return sys.getrefcount(self._buf) <= self._base_refs

    def grow(self) -> None:
        old = self.arrays()
        n = self.cap
        new = RowBlocks(2 * n + 1024)
        for name, a in zip(self.NAMES, old):
            getattr(new, name)[:, :n] = a
        self.__dict__.update(new.__dict__)

    def columns(self, n: int) -> dict[str, np.ndarray]:
        group = {}
        for arr, names in ((self.h64, _H64), (self.h32, _H32), (self.h16, _H16), (self.h8, _H8)):
            for j, name in enumerate(names):
                group[name] = arr[j, :n]
        cols = {}
        for name, dt in HEADER:
            col = group[name]
            if name in ("ts_recv", "ts_event"):
                col = col.view(np.uint64)
            elif dt == "S1":
                col = col.view("S1")
            cols[name] = col
        for j, (name, _) in enumerate(LEVEL_COLUMNS[: 2 * K.TOP]):
            cols[name] = self.px[j, :n]
        for j, (name, _) in enumerate(LEVEL_COLUMNS[2 * K.TOP :]):
            cols[name] = self.szct[j, :n]
        return cols


def to_frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """A pandas DataFrame of the rows (action/side as 1-character str)."""
    df = pd.DataFrame(cols, columns=list(COLUMN_NAMES))
    for name in ("action", "side"):
        df[name] = cols[name].astype("U1")
    return df
