"""The test oracle: a plain-Python L3 book, small and obviously correct (dicts and lists).

Same rules and counters as the fast ``OrderBook`` (see BOOK.md and ``OrderBook.quality``):
A adds at the back; C reduces (a cancel larger than the order is counted and removes it);
M moves to the back on a price change or size increase, keeps priority on a decrease, adds
when unknown, removes at size 0; an order keeps its side; R empties the book; T, F, N never
change it. The top 10 is compared at every F_LAST and a row is emitted when it changed.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .kernel import F_BAD_TS_RECV, F_LAST, F_MAYBE_BAD_BOOK, F_SNAPSHOT, ROW_LEN, RTYPE_MBP10, TOP, UNDEF
from .mbp import rows_to_columns
from .records import record_columns

ACTION_COUNTER = {"A": "adds", "C": "cancels", "M": "modifies", "R": "clears", "T": "trades",
                  "F": "fills", "N": "nones"}
SIDES = {"B": 0, "A": 1}


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

    def top(self) -> tuple:
        px, sz, ct = [], [], []
        for side in (0, 1):
            best = self.prices(side)[:TOP]
            px += best + [UNDEF] * (TOP - len(best))
            sz += [sum(self.orders[o][2] for o in self.queues[side][p]) for p in best] + [0] * (TOP - len(best))
            ct += [len(self.queues[side][p]) for p in best] + [0] * (TOP - len(best))
        return tuple(px + sz + ct)

    def depth(self, side: int, price: int) -> int:
        if side < 0 or price == UNDEF:
            return 0
        return sum(1 for p in self.queues[side] if (p > price if side == 0 else p < price))


class ReferenceBook:
    def __init__(self) -> None:
        self.books: dict[tuple[int, int], _Book] = {}
        self.channels: dict[tuple[int, int], int] = {}  # (publisher, channel) -> last sequence
        self.last_ts: int | None = None

    def apply(self, records, every_record: bool = False) -> dict[str, np.ndarray]:
        rows = []
        for rec in zip(*(c.tolist() for c in record_columns(records))):
            row = self._apply_one(*rec)
            if row is not None and (every_record or row[1]):
                rows.append(row[0])
        return rows_to_columns(np.array(rows, dtype=np.int64).reshape(len(rows), ROW_LEN).T)

    def _apply_one(self, ts_recv, ts_event, pub, inst, action, side, price, size, oid, flags, seq, chan):
        book = self.books.setdefault((pub, inst), _Book())
        q = book.count
        act, sd = chr(action), SIDES.get(chr(side), -1)
        q["records"] += 1
        q[ACTION_COUNTER.get(act, "other_actions")] += 1
        if self.last_ts is not None and ts_recv < self.last_ts:
            q["ts_recv_non_monotonic"] += 1
        self.last_ts = ts_recv
        q["bad_ts_recv_flags"] += bool(flags & F_BAD_TS_RECV)
        q["maybe_bad_book_flags"] += bool(flags & F_MAYBE_BAD_BOOK)
        if not flags & F_SNAPSHOT:
            last = self.channels.get((pub, chan))
            if last is not None and seq < last:
                q["seq_decreases"] += 1
            elif last is not None and seq > last + 1:
                q["seq_jumps"] += 1
            self.channels[(pub, chan)] = seq
        valid_new = sd >= 0 and price != UNDEF and size > 0
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
            elif price == UNDEF:
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
        if flags & F_LAST:
            q["event_groups"] += 1
            bids, asks = book.prices(0), book.prices(1)
            if bids and asks and bids[0] > asks[0]:
                q["crossed_groups"] += 1
            if bids and asks and bids[0] == asks[0]:
                q["locked_groups"] += 1
            top = book.top()
            if top != book.last_top:
                book.last_top = top
                q["top10_changes"] += 1
                changed = True
        header = [ts_recv, ts_event, RTYPE_MBP10, pub, inst, action, side, book.depth(sd, price),
                  price, size, flags, seq]
        return header + list(book.top()), changed

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
        return [(o & ((1 << 64) - 1), book.orders[o][2]) for o in book.queues[_side(side)].get(price, [])]

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
