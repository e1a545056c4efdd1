"""Databento ``mbp-10`` output layout: the kernel's int64 rows -> typed columns."""
from __future__ import annotations

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


class RowBlocks:
    """Column-major output of one apply call: header (12, cap) int64, prices (20, cap) int64,
    sizes and counts (40, cap) uint32. Allocated with np.empty at the call's upper bound of
    rows: pages never written are never touched, so only the rows emitted use memory."""

    def __init__(self, cap: int) -> None:
        self.hdr = np.empty((K.ROW_HDR, cap), np.int64)
        self.px = np.empty((2 * K.TOP, cap), np.int64)
        self.szct = np.empty((4 * K.TOP, cap), np.uint32)

    def grow(self) -> None:
        for name in ("hdr", "px", "szct"):
            old = getattr(self, name)
            new = np.empty((old.shape[0], 2 * old.shape[1] + 1024), old.dtype)
            new[:, : old.shape[1]] = old
            setattr(self, name, new)

    def columns(self, n: int) -> dict[str, np.ndarray]:
        cols = {}
        for j, (name, dt) in enumerate(HEADER):
            col = self.hdr[j, :n]
            if name in ("ts_recv", "ts_event"):
                cols[name] = col.view(np.uint64)
            elif name == "depth":
                cols[name] = np.minimum(col, 255).astype(np.uint8)
            elif dt == "S1":
                cols[name] = col.astype(np.uint8).view("S1")
            else:
                cols[name] = col.astype(dt)
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
