"""The book's arrays: allocation, growth on the kernel's request, bytes round trip, L3 views."""
from __future__ import annotations

import io

import numpy as np

from . import kernel as K

FORMAT = "mbolake.book.state/4"  # /4: orders held in their hash entries (no order table)

# quality counter name -> column of the book table
QUALITY_COLUMNS = {
    "records": K.Q_RECORDS,
    "adds": K.Q_ADD,
    "cancels": K.Q_CANCEL,
    "modifies": K.Q_MODIFY,
    "clears": K.Q_CLEAR,
    "trades": K.Q_TRADE,
    "fills": K.Q_FILL,
    "nones": K.Q_NONE,
    "other_actions": K.Q_OTHER,
    "event_groups": K.Q_GROUPS,
    "top10_changes": K.Q_TOP_CHANGES,
    "crossed_groups": K.Q_CROSSED,
    "locked_groups": K.Q_LOCKED,
    "unknown_cancels": K.Q_UNK_C,
    "unknown_modifies": K.Q_UNK_M,
    "unknown_fills": K.Q_UNK_F,
    "negative_size_attempts": K.Q_NEG,
    "duplicate_adds": K.Q_DUP,
    "invalid_records": K.Q_INVALID,
    "seq_decreases": K.Q_SEQ_DEC,
    "seq_jumps": K.Q_SEQ_JUMP,
    "ts_recv_non_monotonic": K.Q_TS_BACK,
    "bad_ts_recv_flags": K.Q_BAD_TS,
    "maybe_bad_book_flags": K.Q_MAYBE_BAD,
}

_ARRAYS = ("g", "bk", "bh", "snap", "bsm", "pool", "oh", "oq", "lvls", "chn", "chh")


def _free_chain(table: np.ndarray, first: int, next_col: int, owner_col: int) -> None:
    """Link rows first.. of table into a free list ending at -1 and mark them unowned."""
    n = table.shape[0]
    table[first:, owner_col] = -1
    table[first:, next_col] = np.arange(first + 1, n + 1)
    table[n - 1, next_col] = -1


def _grow_rows(a: np.ndarray, rows: int, fill: int = 0) -> np.ndarray:
    new = np.full((rows,) + a.shape[1:], fill, dtype=a.dtype)
    new[: a.shape[0]] = a
    return new


class BookState:
    """Owner of every array of the L3 book (see ``book.kernel`` for the layout)."""

    def __init__(self, orders: int = 1024, levels: int = 256, books: int = 8, channels: int = 8,
                 pool: int = 1024):
        self.g = np.zeros(K.G_LEN, np.int64)
        self.bk = np.zeros((books, K.B_COLS), np.int64)
        self.bh = np.full(2 * books, -1, np.int64)
        self.snap = np.zeros((books, 6 * K.TOP), np.int64)
        self.bsm = np.zeros((2 * books, 4), np.int64)
        self.pool = np.zeros((pool, 2), np.int64)
        # HASH_LOAD_INVERSE * orders hash positions of (order id, level << 32 | size) and a
        # queue sequence each
        positions = K.HASH_LOAD_INVERSE * orders
        self.oh = np.full(2 * positions, K.EMPTY, np.int64)
        self.oq = np.zeros(positions, np.int64)
        self.lvls = np.zeros((levels, K.L_COLS), np.int64)
        _free_chain(self.lvls, 0, K.L_NEXT, K.L_BS)
        self.chn = np.zeros((channels, K.C_COLS), np.int64)
        self.chh = np.full(2 * channels, -1, np.int64)
        self.g[K.G_NOFREE] = orders
        self.g[K.G_LFREE], self.g[K.G_NLFREE] = 0, levels
        self.ring = np.zeros((K.RING_ROWS, K.ROW_LEN), np.int64)  # rows being built

    def arrays(self) -> tuple:
        return tuple(getattr(self, name) for name in _ARRAYS)

    # ---- growth (called between kernel runs, never inside) ----
    def grow(self, status: int) -> None:
        if status == K.NEED_ORDERS:
            self.g[K.G_NOFREE] += self.order_capacity
            self._rehash(2 * self.oq.shape[0])
        elif status == K.NEED_REHASH:  # long probes under the sequential hash: mix instead
            self.g[K.G_HMODE] = K.HASH_MIX
            self.g[K.G_HREQ] = 0
            self._rehash(self.oq.shape[0])
        elif status == K.NEED_LEVELS:
            old = self.lvls.shape[0]
            self.lvls = _grow_rows(self.lvls, 2 * old)
            _free_chain(self.lvls, old, K.L_NEXT, K.L_BS)
            self.lvls[-1, K.L_NEXT] = self.g[K.G_LFREE]
            self.g[K.G_LFREE] = old
            self.g[K.G_NLFREE] += old
        elif status == K.NEED_POOL:
            nbs = 2 * int(self.g[K.G_NBOOKS])
            caps = self.bsm[:nbs, K.S_CAP]
            live = int(caps.sum())
            size = 2 * live + 2 * int(caps.max(initial=0)) + 4 * K.SEG0 + 1024
            new = np.zeros((size, 2), np.int64)
            self.g[K.G_PUSED] = K.compact_pool(self.pool, new, self.bsm, self.g[K.G_NBOOKS])
            self.pool = new
        elif status == K.NEED_BOOKS:
            old = self.bk.shape[0]
            self.bk = _grow_rows(self.bk, 2 * old)
            self.snap = _grow_rows(self.snap, 2 * old)
            self.bsm = _grow_rows(self.bsm, 4 * old)
            self.bh = np.full(4 * old, -1, np.int64)
            K.rehash_keys(self.bh, self.bk, self.g[K.G_NBOOKS])
        elif status == K.NEED_CHANNELS:
            old = self.chn.shape[0]
            self.chn = _grow_rows(self.chn, 2 * old)
            self.chh = np.full(4 * old, -1, np.int64)
            K.rehash_keys(self.chh, self.chn, self.g[K.G_NCH])
        else:
            raise RuntimeError(f"order book kernel returned unknown status {status}")

    @property
    def order_capacity(self) -> int:
        return self.oq.shape[0] // K.HASH_LOAD_INVERSE

    def _rehash(self, positions: int) -> None:
        oh, oq = self.oh, self.oq
        self.oh = np.full(2 * positions, K.EMPTY, np.int64)
        self.oq = np.zeros(positions, np.int64)
        K.rehash_orders(self.oh, self.oq, oh, oq, self.lvls, self.g[K.G_HMODE])

    # ---- checkpoint ----
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, format=np.array(FORMAT), **{name: getattr(self, name) for name in _ARRAYS})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "BookState":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if "format" not in z.files:
                raise ValueError(f"not an order book state (expected format {FORMAT!r})")
            if str(z["format"]) != FORMAT:
                raise ValueError(f"order book state of format {str(z['format'])!r}, written by another "
                                 f"version of mbolake; this version reads {FORMAT!r}: replay from the "
                                 "start of the session instead of restoring")
            state = cls.__new__(cls)
            for name in _ARRAYS:
                setattr(state, name, np.array(z[name]))
        state.ring = np.zeros((K.RING_ROWS, K.ROW_LEN), np.int64)
        return state

    # ---- read-only views (Python, on demand) ----
    def book_index(self, publisher_id: int, instrument_id: int) -> int:
        key = (int(publisher_id) << 32) | int(instrument_id)
        hits = np.flatnonzero(self.bk[: self.g[K.G_NBOOKS], K.B_KEY] == key)
        return int(hits[0]) if hits.size else -1

    def level_ids(self, book: int, side: int) -> list[int]:
        """Level ids from best to worst."""
        bs = 2 * book + side
        start, n = int(self.bsm[bs, K.S_START]), int(self.bsm[bs, K.S_N])
        return [int(x) for x in self.pool[start : start + n, 1][::-1]]

    # Orders are named by hash position: valid until the kernel runs again.
    def queue(self, level: int) -> list[int]:
        """Order positions of a level in queue (priority) order."""
        return self.queues().get(int(level), [])

    def queues(self) -> dict[int, list[int]]:
        """Every level's order positions in queue order (by queue sequence), one pass over the hash."""
        positions = self.live_positions()
        levels = self.oh[2 * positions + 1] >> 32
        order = np.lexsort((self.oq[positions], levels))
        positions, levels = positions[order], levels[order]
        cuts = np.flatnonzero(np.diff(levels)) + 1
        return {int(group_levels[0]): [int(p) for p in group]
                for group, group_levels in zip(np.split(positions, cuts), np.split(levels, cuts)) if len(group)}

    def live_positions(self) -> np.ndarray:
        return np.flatnonzero(self.oh[1::2] >= 0)

    def order_id(self, position: int) -> int:
        return int(self.oh[2 * position])

    def order_size(self, position: int) -> int:
        return int(self.oh[2 * position + 1]) & 0xFFFFFFFF

    def check_invariants(self) -> list[str]:
        """Every structural invariant of the book; returns the violations (empty = sound)."""
        bad: list[str] = []
        live = 0
        queues = self.queues()
        sequences = self.oq[self.live_positions()]
        if len(np.unique(sequences)) != len(sequences) or np.any(sequences >= self.g[K.G_QSEQ]):
            bad.append("queue sequences repeat or run ahead of the counter")
        for b in range(int(self.g[K.G_NBOOKS])):
            for side in range(2):
                bs = 2 * b + side
                start, n = int(self.bsm[bs, K.S_START]), int(self.bsm[bs, K.S_N])
                keys = self.pool[start : start + n, 0]
                if n > self.bsm[bs, K.S_CAP]:
                    bad.append(f"book {b} side {side}: {n} levels over capacity")
                if np.any(np.diff(keys) <= 0):
                    bad.append(f"book {b} side {side}: level keys not strictly sorted")
                for j, l in enumerate(self.pool[start : start + n, 1]):
                    px = self.lvls[l, K.L_PX]
                    if keys[j] != (px if side == 0 else -px) or self.lvls[l, K.L_BS] != bs:
                        bad.append(f"level {l}: key/price/side mismatch")
                    q = queues.get(int(l), [])
                    sizes = [self.order_size(o) for o in q]
                    if not q:
                        bad.append(f"level {l}: empty level kept")
                    if any(s <= 0 for s in sizes):
                        bad.append(f"level {l}: order with size <= 0")
                    if sum(sizes) != self.lvls[l, K.L_SZ] or len(q) != self.lvls[l, K.L_CT]:
                        bad.append(f"level {l}: aggregate size/count differ from its orders")
                    for p in q:
                        at, found = K.find_order(self.oh, self.lvls, self.g, self.order_id(p), b)
                        if not found or at != p:
                            bad.append(f"order at position {p}: not found through the hash")
                    live += len(q)
            if self.bk[b, K.B_NORD] != sum(
                len(queues.get(l, [])) for side in range(2) for l in self.level_ids(b, side)
            ):
                bad.append(f"book {b}: live order count differs from its queues")
        used = len(self.live_positions())
        if used != live:
            bad.append(f"{used} hash entries for {live} queued orders")
        if self.g[K.G_NOFREE] != self.order_capacity - live:
            bad.append("order free count is wrong")
        return bad
