"""Decoded MBO records -> Arrow rows of ``bronze.mbo`` (pure: numpy + pyarrow, no Spark, no I/O)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..core.calendar import NS_PER_DAY, session_days
from ..core.constants import ACT_CLEAR, ACT_NONE, ACTIONS, SIDES, UNDEF_PRICE
from ..core.products import Product, instrument_type_of
from ..io.dbn import DbnHeader
from ..schemas import BRONZE_MBO, check_schema

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class FileContext:
    """What is the same for every record of one landed file."""

    header: DbnHeader
    product: Product
    source_file: str
    ingest_batch_id: str
    ingest_time: int


def order_id_unsigned(order_id_signed: np.ndarray) -> np.ndarray:
    """Undo the bit-preserving storage of Databento's u64 order ids in a signed long."""
    return np.asarray(order_id_signed, dtype=np.int64).view(np.uint64)


def _dictionary(values: list, indices: np.ndarray) -> pa.DictionaryArray:
    """A string column as a dictionary: Parquet stores it so anyway, and it is built in O(n) ints."""
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(values, type=pa.string()))


def _chars(codes: np.ndarray) -> pa.DictionaryArray:
    """S1 bytes -> string column, through a dictionary of the few distinct characters."""
    raw = codes.view(np.uint8)
    present = np.flatnonzero(np.bincount(raw, minlength=256))
    lookup = np.zeros(256, dtype=np.int32)
    lookup[present] = np.arange(present.size, dtype=np.int32)
    return _dictionary([bytes([c]).decode("latin-1") for c in present], lookup[raw])


def _symbols(header: DbnHeader, instrument_id: np.ndarray, utc_day: np.ndarray) -> tuple[list, np.ndarray]:
    """Distinct raw symbols and each record's index into them, from the file's symbology.

    Looked up once per distinct (instrument, UTC day): mapping intervals are UTC dates.
    """
    keys = instrument_id.astype(np.int64) * 100_000 + utc_day
    uniq, index = np.unique(keys, return_inverse=True)
    names = []
    for key in uniq:
        iid, day = divmod(int(key), 100_000)
        name = header.symbol_for(iid, _EPOCH + dt.timedelta(days=day))
        if name is None:
            raise ValueError(f"{header.path}: no symbology mapping for instrument_id {iid}")
        names.append(name)
    distinct = sorted(set(names))
    position = np.array([distinct.index(name) for name in names], dtype=np.int32)
    return distinct, position[index]


# Validation of each record's codes. Bit 0 of ``flags`` is not defined by DBN (bit 1 is
# publisher-specific); prices beyond a million points are no market's (random bytes are).
_ACTION_CODES = np.frombuffer("".join(ACTIONS).encode(), np.uint8)
_SIDE_CODES = np.frombuffer("".join(SIDES).encode(), np.uint8)
UNDEFINED_FLAG_BITS = 0x01
MAX_ABS_PRICE = 1_000_000 * 1_000_000_000


def invalid_records(records: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Positions (in ``records``) and reasons of the records whose codes are not MBO's:
    action not in ACMRTFN, side not in BAN, an undefined flag bit, the undefined-price
    sentinel on an order or trade (only clear and none records carry it), or a price out
    of any market's range. Vectorised: one pass per rule over the chunk."""
    action, side = records["action"].view(np.uint8), records["side"].view(np.uint8)
    flags, price = records["flags"], records["price"].astype(np.int64)
    undefined = price == UNDEF_PRICE
    rules = [
        (~np.isin(action, _ACTION_CODES), lambda r: f"action {_code(r['action'])} is not one of {''.join(ACTIONS)}"),
        (~np.isin(side, _SIDE_CODES), lambda r: f"side {_code(r['side'])} is not one of {''.join(SIDES)}"),
        ((flags & UNDEFINED_FLAG_BITS) != 0, lambda r: f"flags 0x{int(r['flags']):02x} set the undefined bit 0x01"),
        (undefined & (action != ACT_CLEAR) & (action != ACT_NONE),
         lambda r: f"undefined price on action {_code(r['action'])}"),
        (~undefined & (np.abs(price) > MAX_ABS_PRICE), lambda r: f"price {int(r['price'])} is out of range"),
    ]
    bad = np.zeros(len(records), dtype=bool)
    for mask, _ in rules:
        bad |= mask
    positions = np.flatnonzero(bad)
    reasons = []
    for i in positions:  # only the bad records, for their message: the first rule each breaks
        reasons.append(next(describe(records[i]) for mask, describe in rules if mask[i]))
    return positions, reasons


def _code(value: bytes) -> str:
    return repr(value.decode("latin-1")) if value else "0x00"


def to_bronze_table(records: np.ndarray, ctx: FileContext, first_index: int, keep: np.ndarray | None = None) -> pa.Table:
    """One chunk of MBO records as ``bronze.mbo`` rows, in the contract's column order.

    ``keep`` (boolean, optional) selects the records to convert; ``record_index`` stays
    each record's position in the file.
    """
    positions = np.arange(len(records), dtype=np.int64) if keep is None else np.flatnonzero(keep)
    if keep is not None:
        records = records[keep]
    n = len(records)
    header, product = ctx.header, ctx.product
    ts_recv = records["ts_recv"].astype(np.int64)
    # The trading date of the record is taken from ts_recv: snapshot records carry the
    # original (possibly days-old) order time in ts_event.
    days = session_days(ts_recv, product.timezone, product.session_start_hour)
    symbols, symbol_index = _symbols(header, records["instrument_id"], (ts_recv // NS_PER_DAY).astype(np.int64))
    types = [instrument_type_of(s, product.instrument_type) for s in symbols]
    price = records["price"].astype(np.int64)
    zeros = np.zeros(n, dtype=np.int32)

    def const(value):
        return _dictionary([value], zeros)

    columns = {
        "ts_recv": pa.array(ts_recv),
        "ts_event": pa.array(records["ts_event"].astype(np.int64)),
        "ts_in_delta": pa.array(records["ts_in_delta"].astype(np.int32)),
        "rtype": pa.array(records["rtype"].astype(np.int32)),
        "publisher_id": pa.array(records["publisher_id"].astype(np.int32)),
        "instrument_id": pa.array(records["instrument_id"].astype(np.int32)),
        "channel_id": pa.array(records["channel_id"].astype(np.int32)),
        "action": _chars(records["action"]),
        "side": _chars(records["side"]),
        "price": pa.array(price, mask=price == UNDEF_PRICE),
        "size": pa.array(records["size"].astype(np.int64)),
        "order_id": pa.array(records["order_id"].view(np.int64)),
        "flags": pa.array(records["flags"].astype(np.int32)),
        "sequence": pa.array(records["sequence"].astype(np.int64)),
        "record_index": pa.array(first_index + positions),
        "venue": const(header.dataset),
        "symbol": _dictionary(symbols, symbol_index),
        "instrument_type": _dictionary(types, symbol_index),
        "underlier": const(product.underlier),
        "contract_id": _dictionary([f"{header.dataset}:{s}" for s in symbols], symbol_index),
        "session_date": pa.array(days, type=pa.int32()).cast(pa.date32()),
        "ingest_time": pa.array(np.full(n, ctx.ingest_time, dtype=np.int64)),
        "source_file": const(ctx.source_file),
        "ingest_batch_id": const(ctx.ingest_batch_id),
    }
    table = pa.table(columns)
    check_schema(BRONZE_MBO, table.schema)
    return table
