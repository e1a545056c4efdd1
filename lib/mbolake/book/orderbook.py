"""``OrderBook``: the fast L3 book over many instruments (numba kernel + array state)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import kernel as K
from .mbp import RowBlocks
from .records import packed_records
from .state import QUALITY_COLUMNS, BookState

U64 = (1 << 64) - 1


def side_index(side) -> int:
    """0 for bid ('B'), 1 for ask ('A')."""
    if isinstance(side, (bytes, bytearray)):
        side = side.decode()
    if isinstance(side, int) and not isinstance(side, bool):
        side = chr(side)
    if side in ("B", "b", "bid"):
        return 0
    if side in ("A", "a", "ask"):
        return 1
    raise ValueError(f"side must be 'B' or 'A', got {side!r}")


class OrderBook:
    """L3 books keyed by (publisher_id, instrument_id), fed MBO records in feed order.

    ``apply`` may be called with a whole session or micro-batch by micro-batch, and the
    state can be saved anywhere (even mid event group) with ``state_bytes``: the rows are
    the same either way.
    """

    def __init__(self, row_blocks: int = 2) -> None:
        """``row_blocks``: output blocks kept for reuse. Two suffice for ``rows =
        book.apply(chunk)``; a caller that keeps more chunks' rows alive at once (a writer
        queue) passes more, so the book keeps writing into warm memory."""
        if row_blocks < 1:
            raise ValueError(f"row_blocks must be >= 1, got {row_blocks}")
        self._st = BookState()
        self._outs: list[RowBlocks] = []
        self._row_blocks = row_blocks

    # ---- feeding ----
    def apply(self, records, every_record: bool = False, emit_rows: bool = True) -> dict[str, np.ndarray]:
        """Apply MBO records; return MBP-10 rows (Databento mbp-10 layout) as columns.

        One row per event group (closed by F_LAST) whose top 10 levels of that instrument
        changed, carrying the F_LAST record's fields; with ``every_record`` one row after
        every record instead. ``emit_rows=False`` updates books and counters (including
        top-10 change tracking, so later calls emit the same rows) but builds no row.
        """
        n, blocks = packed_records(records)
        # rows <= records: a block sized by the record count is reused by equal-sized chunks
        # (np.empty / mmap: pages never written cost nothing)
        cap = n if emit_rows else 0
        if not emit_rows:
            out = RowBlocks(0)
        else:
            # reuse an output block whose rows the caller has dropped (``rows =
            # book.apply(chunk)`` still holds the previous rows during the call)
            out = next((o for o in self._outs if o.cap >= cap and o.free()), None)
            if out is None:
                out = RowBlocks(cap)
                self._outs = (self._outs + [out])[-self._row_blocks:]
        st = self._st
        for rec in blocks:
            i = 0
            while True:
                i, status = K.apply_records(rec, i, bool(every_record), bool(emit_rows), *st.arrays(),
                                            st.ring, *out.arrays())
                K.flush_rows(st.g, st.ring, *out.arrays())
                if status == K.OK:
                    break
                if status == K.NEED_OUT:
                    out.grow()
                else:
                    st.grow(status)
        nrows = int(st.g[K.G_OUTN])
        st.g[K.G_OUTN] = 0
        return out.columns(nrows) if nrows else RowBlocks(0).columns(0)

    # ---- checkpoint ----
    def state_bytes(self) -> bytes:
        return self._st.to_bytes()

    @classmethod
    def from_state_bytes(cls, data: bytes) -> "OrderBook":
        book = cls()
        book._st = BookState.from_bytes(data)
        return book

    # ---- views ----
    def books(self) -> list[tuple[int, int]]:
        n = int(self._st.g[K.G_NBOOKS])
        return [(int(p), int(i)) for p, i in self._st.bk[:n, [K.B_PUB, K.B_INST]]]

    def levels(self, publisher_id: int, instrument_id: int, side, depth: int = 10) -> list[tuple[int, int, int]]:
        """[(price, size, order count)] from the best level, at most ``depth`` of them."""
        st, b = self._st, self._st.book_index(publisher_id, instrument_id)
        if b < 0:
            return []
        ids = st.level_ids(b, side_index(side))[:depth]
        return [tuple(int(x) for x in st.lvls[l, [K.L_PX, K.L_SZ, K.L_CT]]) for l in ids]

    def orders_at(self, publisher_id: int, instrument_id: int, side, price: int) -> list[tuple[int, int]]:
        """[(order_id, size)] resting at that price, in queue (priority) order."""
        st, b = self._st, self._st.book_index(publisher_id, instrument_id)
        if b < 0:
            return []
        for l in st.level_ids(b, side_index(side)):
            if st.lvls[l, K.L_PX] == price:
                return [(st.order_id(o) & U64, st.order_size(o))
                        for o in st.queue(l)]
        return []

    def orders(self, publisher_id: int, instrument_id: int) -> pd.DataFrame:
        """Every resting order: side, price, level (0 = best), queue position, order_id, size."""
        st, b = self._st, self._st.book_index(publisher_id, instrument_id)
        rows = []
        if b >= 0:
            queues = st.queues()
            for side, name in ((0, "B"), (1, "A")):
                for depth, l in enumerate(st.level_ids(b, side)):
                    for pos, o in enumerate(queues[l]):
                        rows.append((name, int(st.lvls[l, K.L_PX]), depth, pos,
                                     st.order_id(o) & U64, st.order_size(o)))
        return pd.DataFrame(rows, columns=["side", "price", "level", "queue_position", "order_id", "size"])

    def quality(self) -> pd.DataFrame:
        """One row per instrument: record counts by action and every quality counter.

        Choices: ``seq_decreases`` / ``seq_jumps`` compare each record's ``sequence`` with
        the previous record of the same (publisher_id, channel_id) (F_SNAPSHOT records
        skipped), counted on the instrument of the record that saw it; jumps > 1 are
        normal when a file holds a subset of a channel's instruments, decreases are not.
        ``ts_recv_non_monotonic`` counts records whose ts_recv is below the previous
        record's (any instrument). ``negative_size_attempts``: cancels larger than the
        resting size (the order is removed). ``duplicate_adds``: an A for a live order id
        (re-queued at the back). ``invalid_records``: A (or M of an unknown order) with
        side N, undefined price or size 0 (ignored). ``crossed_groups`` /
        ``locked_groups`` are checked at every F_LAST.
        """
        st = self._st
        n = int(st.g[K.G_NBOOKS])
        bk = st.bk[:n]
        df = pd.DataFrame({"publisher_id": bk[:, K.B_PUB].astype(np.uint16),
                           "instrument_id": bk[:, K.B_INST].astype(np.uint32),
                           "book_complete": bk[:, K.B_COMPLETE].astype(bool)})
        for name, col in QUALITY_COLUMNS.items():
            df[name] = bk[:, col]
        df["unknown_order_refs"] = df["unknown_cancels"] + df["unknown_modifies"] + df["unknown_fills"]
        df["live_orders"] = bk[:, K.B_NORD]
        df["bid_levels"] = st.bsm[0 : 2 * n : 2, K.S_N]
        df["ask_levels"] = st.bsm[1 : 2 * n : 2, K.S_N]
        return df

    def channel_quality(self) -> pd.DataFrame:
        """One row per (publisher_id, channel_id): last sequence, decreases, jumps > 1."""
        ch = self._st.chn[: int(self._st.g[K.G_NCH])]
        return pd.DataFrame({"publisher_id": (ch[:, K.C_KEY] >> 8).astype(np.uint16),
                             "channel_id": (ch[:, K.C_KEY] & 0xFF).astype(np.uint8),
                             "last_sequence": ch[:, K.C_SEQ], "seq_decreases": ch[:, K.C_DEC],
                             "seq_jumps": ch[:, K.C_JUMP]})

    def check_invariants(self) -> list[str]:
        return self._st.check_invariants()
