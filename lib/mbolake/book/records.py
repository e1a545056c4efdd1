"""MBO input as the kernel's column arrays, from MBO_DTYPE records or a column mapping."""
from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from ..core.constants import UNDEF_PRICE as UNDEF
from ..core.constants import ascii_codes

# field -> dtype the kernel reads (u64 fields are viewed as int64 without copying)
FIELDS = (
    ("ts_recv", np.int64), ("ts_event", np.int64), ("publisher_id", np.uint16),
    ("instrument_id", np.uint32), ("action", np.uint8), ("side", np.uint8), ("price", np.int64),
    ("size", np.uint32), ("order_id", np.int64), ("flags", np.uint8), ("sequence", np.uint32),
    ("channel_id", np.uint8),
)
FIELD_NAMES = tuple(name for name, _ in FIELDS)


def _float_prices(col: np.ndarray) -> np.ndarray:
    """Float prices (Arrow/pandas turn a nullable int64 column into float64 with NaN) ->
    int64, a null (NaN, or any non-finite value) -> the undefined-price sentinel."""
    bad = ~np.isfinite(col)
    if not bad.any():
        return col.astype(np.int64)
    out = np.where(bad, 0.0, col).astype(np.int64)
    out[bad] = UNDEF
    return out


def _column(col: np.ndarray, name: str, dtype) -> np.ndarray:
    if name in ("action", "side"):
        return ascii_codes(col)
    if name == "price" and col.dtype.kind == "f":
        return _float_prices(col)
    if dtype is np.int64 and col.dtype == np.uint64:
        return col.view(np.int64)  # works on strided views of a structured array too
    return col.astype(dtype, copy=False)


def record_columns(records) -> tuple[np.ndarray, ...]:
    """The 12 kernel input columns, in FIELD_NAMES order, without per-record Python objects.

    ``records`` is an array of ``mbolake.io.dbn.MBO_DTYPE`` (fields are viewed, not copied), or
    a pandas DataFrame / mapping of columns (action and side as 1-char str/bytes or ASCII
    codes; channel_id may be absent and then is 0).
    """
    if isinstance(records, np.ndarray) and records.dtype.names:
        get = records.__getitem__
        n = len(records)
        names = records.dtype.names
    elif isinstance(records, (pd.DataFrame, Mapping)):
        get = lambda f: np.asarray(records[f])  # noqa: E731
        names = list(records.keys())
        n = len(np.asarray(records["ts_recv"]))
    else:
        raise TypeError(f"records must be an MBO structured array or a column mapping, got {type(records)!r}")
    missing = [f for f in FIELD_NAMES if f not in names and f != "channel_id"]
    if missing:
        raise ValueError(f"MBO records lack the fields {missing}")
    cols = []
    for name, dtype in FIELDS:
        if name not in names:
            cols.append(np.zeros(n, dtype))
        else:
            cols.append(_column(get(name), name, dtype))
    return tuple(cols)


def _mbo_layout(dtype: np.dtype) -> bool:
    """Whether a structured dtype is Databento's MboMsg (56 bytes, or 64 with ts_out)."""
    from ..core.constants import MBO_DTYPE

    fields = dtype.fields or {}
    return (dtype.itemsize in (56, 64) and sys.byteorder == "little"
            and all(fields.get(name) == MBO_DTYPE.fields[name] for name in MBO_DTYPE.names))


PACK_BLOCK = 1 << 16  # records packed at a time from columns (3.5 MB: stays in cache)


def packed_records(records) -> tuple[int, Iterator[np.ndarray]]:
    """The kernel's input: (record count, blocks), each block an (n, 7 or 8) int64 matrix in
    the DBN MboMsg layout (see ``kernel.R_*``). Contiguous MBO records (``iter_mbo_chunks``
    chunks and their slices) are one block, viewed without a copy; anything else (column
    mappings, strided arrays) is packed from ``record_columns`` PACK_BLOCK records at a time
    into one reused buffer, so no input-sized copy is made."""
    from . import kernel as K

    if (isinstance(records, np.ndarray) and records.ndim == 1 and records.dtype.names
            and _mbo_layout(records.dtype) and records.flags.c_contiguous and len(records)):
        words = records.dtype.itemsize // 8
        return len(records), iter((records.view(np.int64).reshape(len(records), words),))
    cols = record_columns(records)
    n = len(cols[0])

    def blocks() -> Iterator[np.ndarray]:
        buf = np.empty((min(n, PACK_BLOCK), K.R_WORDS), np.int64)
        for lo in range(0, n, PACK_BLOCK):
            part = buf[: min(PACK_BLOCK, n - lo)]
            K.pack_records(*(c[lo : lo + PACK_BLOCK] for c in cols), part)
            yield part

    return n, blocks()
