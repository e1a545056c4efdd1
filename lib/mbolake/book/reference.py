"""The test oracle: a plain-Python L3 book, small and obviously correct (dicts and lists).

Same rules and counters as the fast ``OrderBook`` (see BOOK.md and ``OrderBook.quality``):
A adds at the back; C reduces (a cancel larger than the order is counted and removes it);
M moves to the back on a price change or size increase, keeps priority on a decrease, adds
when unknown, removes at size 0; an order keeps its side; R empties the book; T, F, N never
change it. The top 10 is compared at every F_LAST and a row is emitted when it changed.

Self-contained on purpose: it decodes the DBN record bytes itself, builds its own MBP-10
rows and defines its own constants from Databento's DBN documentation. It imports nothing
of mbolake (no kernel, record or row helpers, no ``core.constants``), so a bug in code the
kernel uses cannot pass both (``tests/book/test_reference_independence.py`` checks that, and
checks the decoding against Databento's own decoder, ``databento_dbn``).
"""
from __future__ import annotations

import struct
from collections import Counter
from typing import NamedTuple

import numpy as np

# ---- facts from Databento's DBN documentation (https://databento.com/docs/standards-and-conventions) ----
RTYPE_MBO = 0xA0  # rtype of an MboMsg
RTYPE_MBP10 = 0x0A  # rtype of an Mbp10Msg
UNDEF_PRICE = 2**63 - 1  # "UNDEF_PRICE": i64::MAX, a null price
F_LAST = 1 << 7  # last record of an event for an instrument
F_SNAPSHOT = 1 << 5  # replays the standing book
F_BAD_TS_RECV = 1 << 3  # ts_recv inaccurate
F_MAYBE_BAD_BOOK = 1 << 2  # an unrecoverable gap: the book may be wrong
LEVELS = 10  # mbp-10: ten bid/ask levels

# MboMsg, little-endian and packed, the same in DBN versions 1, 2 and 3: the record header
# (length in 4-byte words, rtype, publisher_id, instrument_id, ts_event), then order_id,
# price, size, flags, channel_id, action, side, ts_recv, ts_in_delta, sequence.
MBO_STRUCT = struct.Struct("<BBHIQQqIBBccQiI")
assert MBO_STRUCT.size == 56


class MboRecord(NamedTuple):
    length: int
    rtype: int
    publisher_id: int
    instrument_id: int
    ts_event: int
    order_id: int
    price: int
    size: int
    flags: int
    channel_id: int
    action: bytes
    side: bytes
    ts_recv: int
    ts_in_delta: int
    sequence: int


# Mbp10Msg as Databento's DataFrames show it (ts_recv first), without the header's length and
# ts_in_delta (a feed latency, not part of the book), then the ten BidAskPair levels.
MBP10_HEADER = (
    ("ts_recv", np.uint64), ("ts_event", np.uint64), ("rtype", np.uint8), ("publisher_id", np.uint16),
    ("instrument_id", np.uint32), ("action", "S1"), ("side", "S1"), ("depth", np.uint8),
    ("price", np.int64), ("size", np.uint32), ("flags", np.uint8), ("sequence", np.uint32),
)
BID_ASK_PAIR = (("bid_px", np.int64), ("ask_px", np.int64), ("bid_sz", np.uint32),
                ("ask_sz", np.uint32), ("bid_ct", np.uint32), ("ask_ct", np.uint32))
MBP10_COLUMNS = MBP10_HEADER + tuple((f"{name}_{i:02d}", dtype) for i in range(LEVELS) for name, dtype in BID_ASK_PAIR)
MAX_DEPTH = 255  # depth is a u8: a level index beyond it is written as 255
U32 = 2**32  # level sizes and counts are u32

ACTION_COUNTER = {"A": "adds", "C": "cancels", "M": "modifies", "R": "clears", "T": "trades",
                  "F": "fills", "N": "nones"}
SIDES = {"B": 0, "A": 1}


def decode_mbo(data) -> list[MboRecord]:
    """DBN MBO record bytes (no metadata header) -> records, walking each record's length."""
    view = memoryview(data).cast("B")
    out, offset = [], 0
    while offset < len(view):
        size = view[offset] * 4
        if size < MBO_STRUCT.size or offset + size > len(view):
            raise ValueError(f"not an MBO record at byte {offset}: length {size} bytes")
        rec = MboRecord(*MBO_STRUCT.unpack_from(view, offset))
        if rec.rtype != RTYPE_MBO:
            raise ValueError(f"record at byte {offset} has rtype {rec.rtype:#x}, not MBO")
        out.append(rec)
        offset += size
    return out


def record_bytes(records) -> bytes:
    """The raw DBN bytes of MBO records given as bytes or as a numpy array of MboMsg records."""
    if isinstance(records, np.ndarray):
        return np.ascontiguousarray(records).tobytes()
    return bytes(records)


class _Book:
    def __init__(self) -> None:
        self.orders: dict[int, list] = {}  # order_id -> [side, price, size]
        self.queues: list[dict[int, list[int]]] = [{}, {}]  # side -> price -> [order_id] FIFO
        self.count: Counter = Counter()
        self.complete = False
        self.last_top = self.top()

    def add_back(self, oid: int, side: int, price: int, size: int) -> None:
        self.orders[oid] = [side, price, size]
        self.queues[side].setdefault(price, []).append(oid)

    def remove(self, oid: int) -> None:
        side, price, _ = self.orders.pop(oid)
        self.queues[side][price].remove(oid)
        if not self.queues[side][price]:
            del self.queues[side][price]

    def prices(self, side: int) -> list[int]:
        return sorted(self.queues[side], reverse=(side == 0))  # best first

    def side_levels(self, side: int) -> list[tuple[int, int, int]]:
        """(price, size, order count) of the ten best levels, padded with empty levels
        (UNDEF_PRICE, 0, 0). The size is the mbp-10 u32: a level past 2**32 - 1 wraps."""
        levels = [(p, sum(self.orders[o][2] for o in self.queues[side][p]) % U32, len(self.queues[side][p]))
                  for p in self.prices(side)[:LEVELS]]
        return levels + [(UNDEF_PRICE, 0, 0)] * (LEVELS - len(levels))

    def top(self) -> tuple:
        """The ten BidAskPairs flattened: bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct per level."""
        out = []
        for (bid_px, bid_sz, bid_ct), (ask_px, ask_sz, ask_ct) in zip(self.side_levels(0), self.side_levels(1)):
            out += [bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct]
        return tuple(out)

    def depth(self, side: int, price: int) -> int:
        if side < 0 or price == UNDEF_PRICE:
            return 0
        better = sum(1 for p in self.queues[side] if (p > price if side == 0 else p < price))
        return min(better, MAX_DEPTH)


class ReferenceBook:
    def __init__(self) -> None:
        self.books: dict[tuple[int, int], _Book] = {}
        self.channels: dict[tuple[int, int], int] = {}  # (publisher, channel) -> last sequence
        self.last_ts: int | None = None

    def apply(self, records, every_record: bool = False) -> dict[str, np.ndarray]:
        """MBO records (raw DBN bytes, or a numpy array of MboMsg records) -> mbp-10 columns."""
        rows = []
        for rec in decode_mbo(record_bytes(records)):
            row, changed = self._apply_one(rec)
            if every_record or changed:
                rows.append(row)
        return {name: np.array([row[j] for row in rows], dtype=dtype)
                for j, (name, dtype) in enumerate(MBP10_COLUMNS)}

    def _apply_one(self, rec: MboRecord) -> tuple[tuple, bool]:
        pub, inst, price, size, oid, flags = (rec.publisher_id, rec.instrument_id, rec.price, rec.size,
                                              rec.order_id, rec.flags)
        book = self.books.setdefault((pub, inst), _Book())
        q = book.count
        act, sd = rec.action.decode(), SIDES.get(rec.side.decode(), -1)
        q["records"] += 1
        q[ACTION_COUNTER.get(act, "other_actions")] += 1
        if self.last_ts is not None and rec.ts_recv < self.last_ts:
            q["ts_recv_non_monotonic"] += 1
        self.last_ts = rec.ts_recv
        q["bad_ts_recv_flags"] += bool(flags & F_BAD_TS_RECV)
        q["maybe_bad_book_flags"] += bool(flags & F_MAYBE_BAD_BOOK)
        if not flags & F_SNAPSHOT:
            last = self.channels.get((pub, rec.channel_id))
            if last is not None and rec.sequence < last:
                q["seq_decreases"] += 1
            elif last is not None and rec.sequence > last + 1:
                q["seq_jumps"] += 1
            self.channels[(pub, rec.channel_id)] = rec.sequence
        valid_new = sd >= 0 and price != UNDEF_PRICE and size > 0
        known = book.orders.get(oid)

        if act == "A":
            if not valid_new:
                q["invalid_records"] += 1
            else:
                if known:
                    q["duplicate_adds"] += 1
                    book.remove(oid)
                book.add_back(oid, sd, price, size)
        elif act == "C":
            if not known:
                q["unknown_cancels"] += 1
            else:
                if size > known[2]:
                    q["negative_size_attempts"] += 1
                known[2] -= min(size, known[2])  # in place: keeps its queue position
                if known[2] == 0:
                    book.remove(oid)
        elif act == "M":
            if not known:
                q["unknown_modifies"] += 1
                if valid_new:
                    book.add_back(oid, sd, price, size)
                else:
                    q["invalid_records"] += 1
            elif price == UNDEF_PRICE:
                q["invalid_records"] += 1
            elif size == 0:
                book.remove(oid)
            elif price != known[1] or size > known[2]:
                book.remove(oid)
                book.add_back(oid, known[0], price, size)
            else:
                known[2] = size
        elif act == "F":
            if not known:
                q["unknown_fills"] += 1
        elif act == "R":
            book.orders.clear()
            book.queues = [{}, {}]
            book.complete = True
        if flags & F_SNAPSHOT:
            book.complete = True

        changed = False
        top = book.top()
        if flags & F_LAST:
            q["event_groups"] += 1
            bids, asks = book.prices(0), book.prices(1)
            if bids and asks and bids[0] > asks[0]:
                q["crossed_groups"] += 1
            if bids and asks and bids[0] == asks[0]:
                q["locked_groups"] += 1
            if top != book.last_top:
                book.last_top = top
                q["top10_changes"] += 1
                changed = True
        header = (rec.ts_recv, rec.ts_event, RTYPE_MBP10, pub, inst, rec.action, rec.side,
                  book.depth(sd, price), price, size, flags, rec.sequence)
        return header + top, changed

    # ---- the same views as OrderBook ----
    def levels(self, publisher_id, instrument_id, side, depth=10):
        book = self.books.get((publisher_id, instrument_id))
        if book is None:
            return []
        s = _side(side)
        return [(p, sum(book.orders[o][2] for o in book.queues[s][p]), len(book.queues[s][p]))
                for p in book.prices(s)[:depth]]

    def orders_at(self, publisher_id, instrument_id, side, price):
        book = self.books.get((publisher_id, instrument_id))
        if book is None:
            return []
        return [(o, book.orders[o][2]) for o in book.queues[_side(side)].get(price, [])]

    def quality(self) -> dict[tuple[int, int], dict]:
        out = {}
        for key, book in self.books.items():
            d = dict(book.count)
            d["book_complete"] = book.complete
            d["unknown_order_refs"] = sum(d.get(k, 0) for k in ("unknown_cancels", "unknown_modifies", "unknown_fills"))
            d["live_orders"] = len(book.orders)
            d["bid_levels"], d["ask_levels"] = len(book.queues[0]), len(book.queues[1])
            out[key] = d
        return out


def _side(side) -> int:
    if isinstance(side, (bytes, bytearray)):
        side = side.decode()
    return SIDES[side]
