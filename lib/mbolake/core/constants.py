"""Facts of Databento's MBO data that every layer shares, defined once: the record layout,
record types, flags, the undefined-price sentinel, action and side codes, the price scale.

No I/O and nothing but numpy: the kernels (``book``, ``features``) and the DBN reader
(``io.dbn``) import from here, never from each other.
"""
from __future__ import annotations

import numpy as np

# record types
RTYPE_MBP10 = 0x0A
RTYPE_MBO = 0xA0

# Databento MboMsg, little-endian, packed (header 16 bytes + body 40 bytes). The layout is
# the same in DBN versions 1, 2 and 3.
MBO_RECORD_BYTES = 56
MBO_DTYPE = np.dtype(
    [
        ("length", "u1"),
        ("rtype", "u1"),
        ("publisher_id", "<u2"),
        ("instrument_id", "<u4"),
        ("ts_event", "<u8"),
        ("order_id", "<u8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "S1"),
        ("side", "S1"),
        ("ts_recv", "<u8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)
assert MBO_DTYPE.itemsize == MBO_RECORD_BYTES

# record flags
F_LAST = 0x80  # last record of an event group: the book is consistent after it
F_TOB = 0x40
F_SNAPSHOT = 0x20
F_MBP = 0x10
F_BAD_TS_RECV = 0x08
F_MAYBE_BAD_BOOK = 0x04

# prices: fixed-point int64, 1e-9 points per unit; the undefined price is INT64_MAX
UNDEF_PRICE = int(np.iinfo(np.int64).max)
FIXED_SCALE = 1_000_000_000  # fixed-point units per point
PRICE_SCALE = 1e-9  # points per fixed-point unit

# actions and sides as the ASCII codes the kernels compare
ACT_ADD, ACT_CANCEL, ACT_MODIFY, ACT_CLEAR, ACT_TRADE, ACT_FILL, ACT_NONE = (ord(c) for c in "ACMRTFN")
SIDE_BID, SIDE_ASK, SIDE_NONE = (ord(c) for c in "BAN")
ACTIONS = {"A": "add", "C": "cancel", "M": "modify", "R": "clear", "T": "trade", "F": "fill", "N": "none"}
SIDES = {"B": "bid", "A": "ask", "N": "none"}


def ascii_codes(column) -> np.ndarray:
    """Action or side characters (1-byte strings, str/bytes objects, or codes already) as
    uint8 ASCII codes; an ``S1`` column is viewed without a copy."""
    column = np.asarray(column)
    if column.dtype.kind == "S" and column.dtype.itemsize == 1:
        return column.view(np.uint8)
    if column.dtype.kind in "SUO":
        return np.asarray(column, dtype="S1").view(np.uint8)
    return column.astype(np.uint8, copy=False)
