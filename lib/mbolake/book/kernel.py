"""numba hot loop of the L3 order book: arrays in, arrays out, no Python object per record.

State (int64 arrays, owned and grown by ``book.state.BookState``):

* Orders live in an open-addressing hash (linear probing, backward-shift delete) keyed by
  (book, order id): ``oh[2h]`` the order id, ``oh[2h+1]`` its level id << 32 | size (the
  u32 bits), -1 when the position is empty; ``oq[h]`` its queue sequence. Price and
  book-side are the level's (the book of an entry is its level's). So finding an order
  yields everything the hot loop needs in one 16-byte entry: there is no separate order
  table to load. Capacity is a quarter of the positions (load <= 0.25: ids that lie a
  table size apart collide under the sequential hash, and a sparse table has fewer such
  pairs; 96 bytes per order of capacity). The hash (``g[G_HMODE]``)
  starts locality-preserving (the id itself: CME ids grow with time, so recent orders
  share cache lines and do not collide); a probe longer than ``MAX_PROBE`` (adversarial
  ids) makes the kernel return NEED_REHASH and the table is rebuilt with a mixing hash.
  The next records' hash entries are prefetched. An order's position moves when a delete
  shifts it back, so positions name orders only between kernel runs (views).
* Queue priority: every placement at a level (add, or a modify that loses priority) takes
  the next value of a global counter (``g[G_QSEQ]``); a level's queue is its orders in
  sequence order. Keeping priority (partial cancel, size decrease) keeps the sequence. So
  the hot loop never reads or writes queue neighbours (a linked FIFO costs two more random
  rows per cancel); the queue of a level is sorted on demand (``BookState.queue``), and a
  clear (R, rare) scans the hash.
* ``lvls[l, L_*]``     price levels: price, aggregate size, order count, book-side (-1 =
  free), free-list link.
* ``pool[., 0:2]``     per book-side a segment of (key, level id) sorted by key ascending,
  **best level last**. key = price for bids, -price for asks, so "better" is "larger" on
  both sides. A lookup scans at most 8 entries from the best end, then binary-searches,
  so touching a level near the top is O(1) and anywhere else O(log levels); inserting or
  removing a level moves only the levels better than it (memmove from the best end).
  ``bsm[bs]`` holds (start, cap, n) of each segment; a full segment is moved to the pool's
  end with twice the capacity (the pool is compacted when it runs out).
* ``bk[book, B_*]``    book key, dirty flag, completeness, live orders and quality counters;
  ``snap[book]`` the top 10 before an open multi-record group; ``bh`` the book hash; ``chn``/``chh`` channels.
* ``g[G_*]``           globals (free lists, counts, last ts_recv, output row count).

The loop never allocates. Before touching anything for record ``i`` it checks capacities;
when one is short it returns ``(i, NEED_*)`` and the caller grows that table and resumes at
``i``, so a record is applied whole or not at all.

Top-10 change detection: a change can only alter the top 10 if the touched level's index
(before the change) is < 10, which is O(1) to test (``n < 10 or key >= key[n-10]``). When
the touching record alone closes its event group (F_LAST, nothing touched before) every
book change it makes is effective, so the top 10 changed and nothing is compared. Otherwise
(multi-record groups, duplicate adds) the top 10 is saved at the group's first touch and
compared at F_LAST. A row is written only when the top 10 changed.

Rows are built in a row-major ring of a few hundred rows and flushed in blocks to the typed
column-major outputs with streaming stores (``flush_rows``), so writing hundreds of MB of
rows neither evicts the book from the caches nor reads the output lines first.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..core.constants import (
    ACT_ADD,
    ACT_CANCEL,
    ACT_CLEAR,
    ACT_FILL,
    ACT_MODIFY,
    ACT_NONE,
    ACT_TRADE,
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    RTYPE_MBP10,
    SIDE_ASK,
    SIDE_BID,
)
from ..core.constants import UNDEF_PRICE as UNDEF
from ..core.jit import njit_plain_indices

TOP = 10
SEG0 = 16  # initial level capacity of a book side

# order hash entry: (order id, level << 32 | size); EMPTY marks a free position
EMPTY = -1
# level table columns
L_PX, L_SZ, L_CT, L_BS, L_NEXT = range(5)
L_COLS = 8  # padded: one 64-byte line per level
# book-side segment columns
S_START, S_CAP, S_N, S_SPARE = range(4)
# book columns: identity, state, then quality counters
B_KEY, B_PUB, B_INST, B_DIRTY, B_COMPLETE, B_NORD = range(6)
B_CERTAIN = 30  # scratch: the current record alone closes its group (set per record)
(Q_RECORDS, Q_ADD, Q_CANCEL, Q_MODIFY, Q_CLEAR, Q_TRADE, Q_FILL, Q_NONE, Q_OTHER, Q_GROUPS,
 Q_CROSSED, Q_LOCKED, Q_UNK_C, Q_UNK_M, Q_UNK_F, Q_NEG, Q_DUP, Q_INVALID, Q_SEQ_DEC,
 Q_SEQ_JUMP, Q_TS_BACK, Q_BAD_TS, Q_MAYBE_BAD, Q_TOP_CHANGES) = range(6, 30)
B_COLS = 32
# channel columns
C_KEY, C_SEQ, C_DEC, C_JUMP = range(4)
C_COLS = 4
# globals
(G_NBOOKS, G_NCH, G_NOFREE, G_LFREE, G_NLFREE, G_PUSED, G_OUTN, G_LAST_TS,
 G_HAVE_TS, G_RING, G_HMODE, G_HREQ, G_QSEQ) = range(13)
G_LEN = 16
# output row: 12 header columns then bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct (10 each)
ROW_HDR = 12
ROW_LEN = ROW_HDR + 6 * TOP
# rows per ring: 256 x 72 int64 = 147 KB (in L2). A flush writes runs of 256 values per column,
# long enough for the streaming stores to combine well: 64-row rings were 7-15 % slower with
# rows, 1024 rows slower again
RING_ROWS = 256

# input: the records as an (n, 7) int64 matrix in the DBN MboMsg layout (56 bytes, little
# endian; a 64-byte ts_out variant has an 8th word): words and the fields packed in them
R_W0, R_TS_EVENT, R_OID, R_PRICE, R_W4, R_TS_RECV, R_W6 = range(7)
# R_W0: length u8 | rtype u8 << 8 | publisher_id u16 << 16 | instrument_id u32 << 32
# R_W4: size u32 | flags u8 << 32 | channel_id u8 << 40 | action u8 << 48 | side u8 << 56
# R_W6: ts_in_delta i32 | sequence u32 << 32
R_WORDS = 7

OK, NEED_ORDERS, NEED_LEVELS, NEED_POOL, NEED_BOOKS, NEED_CHANNELS, NEED_OUT, NEED_REHASH = range(8)
HASH_SEQ, HASH_MIX = 0, 1  # order hash: locality-preserving (ids mostly increase) / mixed
HASH_LOAD_INVERSE = 4  # hash positions per order of capacity
MAX_PROBE = 48  # a longer probe under HASH_SEQ asks for HASH_MIX (adversarial ids)
BOOK_MUL = 7146012727573221401


# records ahead of the current one whose hash entry (the whole order) is prefetched
PF_HASH = 16


@intrinsic
def _prefetch(typingctx, arr, i, j):
    """Hint the CPU to load arr[i] (1-D) or arr[i, j] (2-D) into cache; no effect on results."""
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [args[1], args[2]][: aryty.ndim]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _nt_store(typingctx, arr, i, j, val):
    """arr[i, j] = val with a non-temporal (streaming) store: the output rows do not go
    through the cache, so writing them neither evicts the book nor reads the lines first.
    (x86 keeps a thread's own stores ordered for itself; other threads synchronise through
    the GIL's locked instructions.) Sizes without a streaming store become plain stores."""
    sig = types.void(arr, i, j, val)

    def codegen(context, builder, signature, args):
        aryty, _, _, valty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]], wraparound=False)
        v = context.cast(builder, args[3], valty, aryty.dtype)
        st = builder.store(v, ptr)
        st.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always", _nrt=False)
def _mix(x):
    x = x * -7046029254386353131  # 0x9E3779B97F4A7C15, wraps
    return x ^ (x >> 31)


@njit(cache=True, inline="always", _nrt=False)
def _ohash(oid, book, mode, mask):
    """Hash position of (book, order id). HASH_SEQ is the id itself, so nearby ids sit in
    nearby positions: CME ids grow with time, so recent (busy) orders share cache lines and
    never collide, and a delete's backward shift needs no book. Ids that books share, or
    that lie a table size apart, collide: long probes switch to HASH_MIX."""
    if mode == HASH_SEQ:
        return oid & mask
    return _mix(oid ^ (book * BOOK_MUL)) & mask


@njit(cache=True, inline="always", _nrt=False)
def _entry_book(lvls, v):
    """Book of the order whose hash entry value is v (level << 32 | size): its level's."""
    return lvls[v >> 32, L_BS] >> 1


@njit(cache=True, inline="always", _nrt=False)
def _ofind(oh, lvls, g, oid, book, mode):
    """(position, found): the order's hash position, or the empty position where it would go.

    An entry is the order when its id matches and its level belongs to the book."""
    mask = (oh.shape[0] >> 1) - 1
    h = _ohash(oid, book, mode, mask)
    p = 0
    while True:
        v = oh[2 * h + 1]
        if v < 0:
            if p > MAX_PROBE and mode == HASH_SEQ:
                g[G_HREQ] = 1
            return h, False
        if oh[2 * h] == oid and _entry_book(lvls, v) == book:
            if p > MAX_PROBE and mode == HASH_SEQ:
                g[G_HREQ] = 1
            return h, True
        h = (h + 1) & mask
        p += 1


@njit(cache=True, inline="always", _nrt=False)
def _odel(oh, oq, lvls, h, mode):
    """Delete hash position h with backward shift (no tombstones); entries keep their sequence."""
    mask = (oh.shape[0] >> 1) - 1
    i = h
    j = h
    while True:
        j = (j + 1) & mask
        v = oh[2 * j + 1]
        if v < 0:
            break
        if mode == HASH_SEQ:  # the home needs no book: no level to load
            k = oh[2 * j] & mask
        else:
            k = _ohash(oh[2 * j], _entry_book(lvls, v), mode, mask)
        if (j > i and (k <= i or k > j)) or (j < i and k <= i and k > j):
            oh[2 * i] = oh[2 * j]
            oh[2 * i + 1] = v
            oq[i] = oq[j]
            i = j
    oh[2 * i + 1] = EMPTY


@njit(cache=True, inline="always", _nrt=False)
def _kfind(table, keys, key):
    """Generic hash lookup key -> row (book and channel tables): (row or -1, position)."""
    mask = table.shape[0] - 1
    h = _mix(key) & mask
    while True:
        r = table[h]
        if r < 0:
            return -1, h
        if keys[r, 0] == key:
            return r, h
        h = (h + 1) & mask


@njit(cache=True, inline="always", _nrt=False)
def _seek(pool, start, n, k):
    """Index (relative to start) of the last key <= k in the sorted segment, or -1."""
    j = n - 1
    lim = n - 8
    while j >= 0 and j >= lim:
        if pool[start + j, 0] <= k:
            return j
        j -= 1
    if j < 0:
        return -1
    lo = 0
    hi = j + 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if pool[start + mid, 0] <= k:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@njit(cache=True, inline="always", _nrt=False)
def _key(side, price):
    return price if side == 0 else -price


@njit(cache=True, inline="always", _nrt=False)
def _level_for(pool, bsm, lvls, g, bs, price):
    """Level id at price on book-side bs, inserted (empty) if absent."""
    k = _key(bs & 1, price)
    start = bsm[bs, S_START]
    n = bsm[bs, S_N]
    j = _seek(pool, start, n, k)
    if j >= 0 and pool[start + j, 0] == k:
        return pool[start + j, 1]
    l = g[G_LFREE]
    g[G_LFREE] = lvls[l, L_NEXT]
    g[G_NLFREE] -= 1
    lvls[l, L_PX] = price
    lvls[l, L_SZ] = 0
    lvls[l, L_CT] = 0
    lvls[l, L_BS] = bs
    lvls[l, L_NEXT] = -1
    m = n - 1
    while m > j:
        pool[start + m + 1, 0] = pool[start + m, 0]
        pool[start + m + 1, 1] = pool[start + m, 1]
        m -= 1
    pool[start + j + 1, 0] = k
    pool[start + j + 1, 1] = l
    bsm[bs, S_N] = n + 1
    return l


@njit(cache=True, inline="always", _nrt=False)
def _level_drop(pool, bsm, lvls, g, l):
    bs = lvls[l, L_BS]
    k = _key(bs & 1, lvls[l, L_PX])
    start = bsm[bs, S_START]
    n = bsm[bs, S_N]
    j = _seek(pool, start, n, k)
    for m in range(j, n - 1):
        pool[start + m, 0] = pool[start + m + 1, 0]
        pool[start + m, 1] = pool[start + m + 1, 1]
    bsm[bs, S_N] = n - 1
    lvls[l, L_BS] = -1
    lvls[l, L_NEXT] = g[G_LFREE]
    g[G_LFREE] = l
    g[G_NLFREE] += 1


@njit(cache=True, inline="always", _nrt=False)
def _place(pool, bsm, lvls, oh, oq, bk, snap, g, h, bs, px, sz):
    """Queue the order at hash position h with size sz at the back of the level at px on
    book-side bs."""
    _touch(pool, bsm, lvls, bk, snap, bs, _key(bs & 1, px))
    l = _level_for(pool, bsm, lvls, g, bs, px)
    q = g[G_QSEQ]
    g[G_QSEQ] = q + 1
    oh[2 * h + 1] = (l << 32) | sz
    oq[h] = q
    lvls[l, L_SZ] += sz
    lvls[l, L_CT] += 1


@njit(cache=True, inline="always", _nrt=False)
def _detach(pool, bsm, lvls, oh, bk, snap, g, h):
    """Take the order at hash position h out of its queue (dropping an emptied level); the
    entry stays."""
    v = oh[2 * h + 1]
    l = v >> 32
    bs = lvls[l, L_BS]
    _touch(pool, bsm, lvls, bk, snap, bs, _key(bs & 1, lvls[l, L_PX]))
    lvls[l, L_SZ] -= v & 0xFFFFFFFF
    lvls[l, L_CT] -= 1
    if lvls[l, L_CT] == 0:
        _level_drop(pool, bsm, lvls, g, l)


@njit(cache=True, inline="always", _nrt=False)
def _reduce(pool, bsm, lvls, oh, bk, snap, h, new_size):
    """Size decrease in place (keeps queue priority)."""
    v = oh[2 * h + 1]
    l = v >> 32
    bs = lvls[l, L_BS]
    _touch(pool, bsm, lvls, bk, snap, bs, _key(bs & 1, lvls[l, L_PX]))
    lvls[l, L_SZ] -= (v & 0xFFFFFFFF) - new_size
    oh[2 * h + 1] = (l << 32) | new_size


@njit(cache=True, inline="always", _nrt=False)
def _new_order(oh, bk, g, h, oid, b):
    """Enter order oid of book b at its empty hash position h (``_place`` fills the rest)."""
    oh[2 * h] = oid
    g[G_NOFREE] -= 1
    bk[b, B_NORD] += 1


@njit(cache=True, inline="always", _nrt=False)
def _free_order(oh, oq, lvls, bk, g, h, hm, b):
    _odel(oh, oq, lvls, h, hm)
    bk[b, B_NORD] -= 1
    g[G_NOFREE] += 1


@njit(cache=True, _nrt=False)
def _clear_book(pool, bsm, lvls, oh, oq, bk, snap, g, b, hm):
    for side in range(2):
        if bsm[2 * b + side, S_N] > 0:
            bs = 2 * b + side
            _touch(pool, bsm, lvls, bk, snap, bs, pool[bsm[bs, S_START] + bsm[bs, S_N] - 1, 0])
    if bk[b, B_NORD] > 0:  # orders are not linked per book: scan the hash (R is rare)
        for h in range(oh.shape[0] >> 1):
            # a delete shifts later entries back into h (never past it): look at h again
            while oh[2 * h + 1] >= 0 and _entry_book(lvls, oh[2 * h + 1]) == b:
                _free_order(oh, oq, lvls, bk, g, h, hm, b)
    for side in range(2):
        bs = 2 * b + side
        start = bsm[bs, S_START]
        for j in range(bsm[bs, S_N]):
            l = pool[start + j, 1]
            lvls[l, L_BS] = -1
            lvls[l, L_NEXT] = g[G_LFREE]
            g[G_LFREE] = l
            g[G_NLFREE] += 1
        bsm[bs, S_N] = 0


@njit(cache=True, inline="always", _nrt=False)
def _fill_top(pool, bsm, lvls, b, dst, r, off):
    """dst[r, off:off+60] = bid_px, ask_px, bid_sz, ask_sz, bid_ct, ask_ct (10 levels each)."""
    for side in range(2):
        bs = 2 * b + side
        start = bsm[bs, S_START]
        n = bsm[bs, S_N]
        o = off + side * TOP
        for m in range(TOP):
            if m < n:
                l = pool[start + n - 1 - m, 1]
                dst[r, o + m] = lvls[l, L_PX]
                dst[r, o + 2 * TOP + m] = lvls[l, L_SZ]
                dst[r, o + 4 * TOP + m] = lvls[l, L_CT]
            else:
                dst[r, o + m] = UNDEF
                dst[r, o + 2 * TOP + m] = 0
                dst[r, o + 4 * TOP + m] = 0


@njit(cache=True, inline="always", _nrt=False)
def _fill_out(pool, bsm, lvls, b, pxo, szo, r):
    """Row r of the column-major outputs: pxo[0:20] bid/ask prices, szo[0:40] bid/ask sizes then counts."""
    for side in range(2):
        bs = 2 * b + side
        start = bsm[bs, S_START]
        n = bsm[bs, S_N]
        o = side * TOP
        top = n if n < TOP else TOP
        for m in range(top):
            l = pool[start + n - 1 - m, 1]
            pxo[o + m, r] = lvls[l, L_PX]
            szo[o + m, r] = lvls[l, L_SZ]
            szo[2 * TOP + o + m, r] = lvls[l, L_CT]
        for m in range(top, TOP):
            pxo[o + m, r] = UNDEF
            szo[o + m, r] = 0
            szo[2 * TOP + o + m, r] = 0


@njit(cache=True, inline="always", _nrt=False)
def _top_differs(pool, bsm, lvls, b, snap):
    """Whether the top 10 of book b differs from snap[b] (laid out as _fill_top writes it)."""
    for side in range(2):
        bs = 2 * b + side
        start = bsm[bs, S_START]
        n = bsm[bs, S_N]
        o = side * TOP
        for m in range(TOP):
            if m < n:
                l = pool[start + n - 1 - m, 1]
                if (snap[b, o + m] != lvls[l, L_PX] or snap[b, o + 2 * TOP + m] != lvls[l, L_SZ]
                        or snap[b, o + 4 * TOP + m] != lvls[l, L_CT]):
                    return True
            elif snap[b, o + m] != UNDEF or snap[b, o + 2 * TOP + m] != 0 or snap[b, o + 4 * TOP + m] != 0:
                return True
    return False


@njit(cache=True, inline="always", _nrt=False)
def _touch(pool, bsm, lvls, bk, snap, bs, k):
    """Called before a change at key k on book-side bs: note whether the top 10 can change.

    B_DIRTY 0: untouched this group. 1: the group is this one record and it certainly
    changed the top 10 (set by the caller through B_CERTAIN). 2: uncertain (several
    records, or a duplicate add): snap holds the top 10 from before the first touch.
    """
    n = bsm[bs, S_N]
    if n < TOP or k >= pool[bsm[bs, S_START] + n - TOP, 0]:
        b = bs >> 1
        if bk[b, B_DIRTY] == 0:
            if bk[b, B_CERTAIN] != 0:
                bk[b, B_DIRTY] = 1
            else:
                _fill_top(pool, bsm, lvls, b, snap, b, 0)
                bk[b, B_DIRTY] = 2


@njit(cache=True, inline="always", _nrt=False)
def _depth(pool, bsm, b, side, price):
    """Number of levels strictly better than price on that side (after the change)."""
    if side < 0 or price == UNDEF:
        return 0
    bs = 2 * b + side
    n = bsm[bs, S_N]
    return n - 1 - _seek(pool, bsm[bs, S_START], n, _key(side, price))


@njit(cache=True, _nrt=False)
def _relocate(pool, bsm, g, bs):
    """Move a full segment to the pool's end with twice the capacity (caller checked room)."""
    start = bsm[bs, S_START]
    cap = bsm[bs, S_CAP]
    new = g[G_PUSED]
    for j in range(bsm[bs, S_N]):
        pool[new + j, 0] = pool[start + j, 0]
        pool[new + j, 1] = pool[start + j, 1]
    bsm[bs, S_START] = new
    bsm[bs, S_CAP] = 2 * cap
    g[G_PUSED] = new + 2 * cap


@njit(cache=True, inline="always", _nrt=False)
def _leave(g, chn, c, last_seq, have_ts, last_ts, i, status):
    """Store what the loop keeps in locals (the channel's last sequence, the last ts_recv);
    returns the kernel's result."""
    if c >= 0:
        chn[c, C_SEQ] = last_seq
    g[G_LAST_TS] = last_ts
    g[G_HAVE_TS] = 1 if have_ts else 0
    return i, status


@njit_plain_indices(cache=True, nogil=True, _nrt=False)
def apply_records(rec, start, every, rows, g, bk, bh, snap, bsm, pool, oh, oq, lvls, chn, chh,
                  ring, h64, h32, h16, h8, pxo, szo):
    """Apply records[start:]; returns (next record, status). status OK means all applied.

    Rows are built in ``ring`` (row-major, ``RING_ROWS`` rows) and flushed in blocks to
    the column-major outputs (see ``flush_rows``); the caller flushes after every return;
    ``rows`` False keeps the book, counters and top-10 tracking but writes no row.
    """
    n = rec.shape[0]
    cap = h64.shape[1]
    hm = g[G_HMODE]
    last_key = -1
    b = -1
    last_ck = -1
    c = -1
    last_seq = -1
    have_ts = g[G_HAVE_TS] != 0
    last_ts = g[G_LAST_TS]
    hmask = (oh.shape[0] >> 1) - 1
    for i in range(start, n):
        j = i + PF_HASH  # assuming the same book, the common case
        if j < n and b >= 0:
            _prefetch(oh, 2 * _ohash(rec[j, R_OID], b, hm, hmask), 0)
        w0 = rec[i, R_W0]
        pub = (w0 >> 16) & 0xFFFF
        inst = (w0 >> 32) & 0xFFFFFFFF
        oid = rec[i, R_OID]
        w4 = rec[i, R_W4]
        key = (pub << 32) | inst
        if key != last_key:
            b, h = _kfind(bh, bk, key)
            if b < 0:
                if g[G_NBOOKS] >= bk.shape[0]:
                    return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_BOOKS)
                if pool.shape[0] - g[G_PUSED] < 2 * SEG0:
                    return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_POOL)
                b = g[G_NBOOKS]
                g[G_NBOOKS] = b + 1
                bh[h] = b
                for m in range(B_COLS):
                    bk[b, m] = 0
                bk[b, B_KEY] = key
                bk[b, B_PUB] = pub
                bk[b, B_INST] = inst
                for s2 in range(2):
                    bsm[2 * b + s2, S_START] = g[G_PUSED]
                    bsm[2 * b + s2, S_CAP] = SEG0
                    bsm[2 * b + s2, S_N] = 0
                    g[G_PUSED] += SEG0
                _fill_top(pool, bsm, lvls, b, snap, b, 0)
            last_key = key
        if g[G_NOFREE] < 1:
            return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_ORDERS)
        if g[G_NLFREE] < 2:
            return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_LEVELS)
        if g[G_HREQ] != 0:
            return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_REHASH)
        if rows and g[G_OUTN] + g[G_RING] >= cap:
            return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_OUT)
        a = (w4 >> 48) & 0xFF
        fl = (w4 >> 32) & 0xFF
        if a == ACT_ADD or a == ACT_MODIFY:
            for s2 in range(2):
                bs = 2 * b + s2
                if bsm[bs, S_N] == bsm[bs, S_CAP]:
                    if pool.shape[0] - g[G_PUSED] < 2 * bsm[bs, S_CAP]:
                        return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_POOL)
                    _relocate(pool, bsm, g, bs)
        if not (fl & F_SNAPSHOT):
            ck = (pub << 8) | ((w4 >> 40) & 0xFF)
            if ck != last_ck:
                if c >= 0:
                    chn[c, C_SEQ] = last_seq
                c, h = _kfind(chh, chn, ck)
                if c < 0:
                    if g[G_NCH] >= chn.shape[0]:
                        return _leave(g, chn, c, last_seq, have_ts, last_ts, i, NEED_CHANNELS)
                    c = g[G_NCH]
                    g[G_NCH] = c + 1
                    chh[h] = c
                    chn[c, C_KEY] = ck
                    chn[c, C_SEQ] = -1
                    chn[c, C_DEC] = 0
                    chn[c, C_JUMP] = 0
                last_ck = ck
                last_seq = chn[c, C_SEQ]
            # ---- from here on the record is applied whole ----
            sq = (rec[i, R_W6] >> 32) & 0xFFFFFFFF
            if last_seq >= 0:
                if sq < last_seq:
                    chn[c, C_DEC] += 1
                    bk[b, Q_SEQ_DEC] += 1
                elif sq > last_seq + 1:
                    chn[c, C_JUMP] += 1
                    bk[b, Q_SEQ_JUMP] += 1
            last_seq = sq

        bk[b, Q_RECORDS] += 1
        t = rec[i, R_TS_RECV]
        if have_ts and t < last_ts:
            bk[b, Q_TS_BACK] += 1
        last_ts = t
        have_ts = True
        if fl & (F_BAD_TS_RECV | F_MAYBE_BAD_BOOK):
            if fl & F_BAD_TS_RECV:
                bk[b, Q_BAD_TS] += 1
            if fl & F_MAYBE_BAD_BOOK:
                bk[b, Q_MAYBE_BAD] += 1

        bk[b, B_CERTAIN] = 1 if (fl & F_LAST) and bk[b, B_DIRTY] == 0 else 0
        sd = (w4 >> 56) & 0xFF
        s = 0 if sd == SIDE_BID else (1 if sd == SIDE_ASK else -1)
        px = rec[i, R_PRICE]
        sz0 = w4 & 0xFFFFFFFF
        sz = sz0
        if a == ACT_CANCEL:
            bk[b, Q_CANCEL] += 1
            h, found = _ofind(oh, lvls, g, oid, b, hm)
            if not found:
                bk[b, Q_UNK_C] += 1
            else:
                osz = oh[2 * h + 1] & 0xFFFFFFFF
                if sz > osz:
                    bk[b, Q_NEG] += 1
                    sz = osz
                if sz == osz:
                    _detach(pool, bsm, lvls, oh, bk, snap, g, h)
                    _free_order(oh, oq, lvls, bk, g, h, hm, b)
                elif sz > 0:
                    _reduce(pool, bsm, lvls, oh, bk, snap, h, osz - sz)
        elif a == ACT_ADD:
            bk[b, Q_ADD] += 1
            if s < 0 or px == UNDEF or sz <= 0:
                bk[b, Q_INVALID] += 1
            else:
                h, found = _ofind(oh, lvls, g, oid, b, hm)
                if found:
                    bk[b, Q_DUP] += 1
                    bk[b, B_CERTAIN] = 0  # a re-add of the same order may change nothing
                    _detach(pool, bsm, lvls, oh, bk, snap, g, h)
                else:
                    _new_order(oh, bk, g, h, oid, b)
                _place(pool, bsm, lvls, oh, oq, bk, snap, g, h, 2 * b + s, px, sz)
        elif a == ACT_FILL:
            bk[b, Q_FILL] += 1
            h, found = _ofind(oh, lvls, g, oid, b, hm)
            if not found:
                bk[b, Q_UNK_F] += 1
        elif a == ACT_TRADE:
            bk[b, Q_TRADE] += 1
        elif a == ACT_MODIFY:
            bk[b, Q_MODIFY] += 1
            h, found = _ofind(oh, lvls, g, oid, b, hm)
            if not found:
                bk[b, Q_UNK_M] += 1
                if s < 0 or px == UNDEF or sz <= 0:
                    bk[b, Q_INVALID] += 1
                else:
                    _new_order(oh, bk, g, h, oid, b)
                    _place(pool, bsm, lvls, oh, oq, bk, snap, g, h, 2 * b + s, px, sz)
            elif px == UNDEF:
                bk[b, Q_INVALID] += 1
            elif sz == 0:
                _detach(pool, bsm, lvls, oh, bk, snap, g, h)
                _free_order(oh, oq, lvls, bk, g, h, hm, b)
            else:
                v = oh[2 * h + 1]
                l = v >> 32
                osz = v & 0xFFFFFFFF
                if px != lvls[l, L_PX] or sz > osz:
                    bs = lvls[l, L_BS]
                    _detach(pool, bsm, lvls, oh, bk, snap, g, h)
                    _place(pool, bsm, lvls, oh, oq, bk, snap, g, h, bs, px, sz)
                elif sz < osz:
                    _reduce(pool, bsm, lvls, oh, bk, snap, h, sz)
        elif a == ACT_CLEAR:
            bk[b, Q_CLEAR] += 1
            _clear_book(pool, bsm, lvls, oh, oq, bk, snap, g, b, hm)
            bk[b, B_COMPLETE] = 1
        elif a == ACT_NONE:
            bk[b, Q_NONE] += 1
        else:
            bk[b, Q_OTHER] += 1
        if fl & F_SNAPSHOT:
            bk[b, B_COMPLETE] = 1

        emit = every
        if fl & F_LAST:
            bk[b, Q_GROUPS] += 1
            nb = bsm[2 * b, S_N]
            na = bsm[2 * b + 1, S_N]
            if nb > 0 and na > 0:
                bid = pool[bsm[2 * b, S_START] + nb - 1, 0]
                ask = -pool[bsm[2 * b + 1, S_START] + na - 1, 0]
                if bid > ask:
                    bk[b, Q_CROSSED] += 1
                elif bid == ask:
                    bk[b, Q_LOCKED] += 1
            dirty = bk[b, B_DIRTY]
            if dirty != 0:
                bk[b, B_DIRTY] = 0
                if dirty == 1 or _top_differs(pool, bsm, lvls, b, snap):
                    bk[b, Q_TOP_CHANGES] += 1
                    emit = True
        if emit and rows:
            rr = g[G_RING]
            _fill_top(pool, bsm, lvls, b, ring, rr, ROW_HDR)
            ring[rr, 0] = t
            ring[rr, 1] = rec[i, R_TS_EVENT]
            ring[rr, 2] = RTYPE_MBP10
            ring[rr, 3] = pub
            ring[rr, 4] = inst
            ring[rr, 5] = a
            ring[rr, 6] = sd
            ring[rr, 7] = _depth(pool, bsm, b, s, px)
            ring[rr, 8] = px
            ring[rr, 9] = sz0
            ring[rr, 10] = fl
            ring[rr, 11] = (rec[i, R_W6] >> 32) & 0xFFFFFFFF
            g[G_RING] = rr + 1
            if rr + 1 == ring.shape[0]:
                flush_rows(g, ring, h64, h32, h16, h8, pxo, szo)
    return _leave(g, chn, c, last_seq, have_ts, last_ts, n, OK)


@njit(cache=True, nogil=True, _nrt=False)
def pack_records(ts_recv, ts_event, pub, inst, action, side, price, size, oid, flags, seq, chan, out):
    """Columns -> out (n, R_WORDS) int64 in the DBN MboMsg layout (see R_*)."""
    for i in range(ts_recv.shape[0]):
        out[i, R_W0] = (np.int64(14) | (np.int64(0xA0) << 8) | ((np.int64(pub[i]) & 0xFFFF) << 16)
                        | ((np.int64(inst[i]) & 0xFFFFFFFF) << 32))
        out[i, R_TS_EVENT] = ts_event[i]
        out[i, R_OID] = oid[i]
        out[i, R_PRICE] = price[i]
        out[i, R_W4] = ((np.int64(size[i]) & 0xFFFFFFFF) | ((np.int64(flags[i]) & 0xFF) << 32)
                        | ((np.int64(chan[i]) & 0xFF) << 40) | ((np.int64(action[i]) & 0xFF) << 48)
                        | ((np.int64(side[i]) & 0xFF) << 56))
        out[i, R_TS_RECV] = ts_recv[i]
        out[i, R_W6] = (np.int64(seq[i]) & 0xFFFFFFFF) << 32


@njit_plain_indices(cache=True, nogil=True, _nrt=False)
def flush_rows(g, ring, h64, h32, h16, h8, pxo, szo):
    """Move the ring's rows to the column-major outputs at g[G_OUTN] in their final dtypes
    (blocked transpose: each column gets a contiguous run), empty the ring.

    h64 (ts_recv, ts_event, price), h32 (instrument_id, size, sequence), h16
    (publisher_id), h8 (rtype, action, side, depth, flags), pxo (bid/ask prices), szo
    (bid/ask sizes then counts)."""
    nr = g[G_RING]
    base = g[G_OUTN]
    for r in range(nr):
        _nt_store(h64, 0, base + r, ring[r, 0])
    for r in range(nr):
        _nt_store(h64, 1, base + r, ring[r, 1])
    for r in range(nr):
        _nt_store(h64, 2, base + r, ring[r, 8])
    for r in range(nr):
        _nt_store(h32, 0, base + r, ring[r, 4])
    for r in range(nr):
        _nt_store(h32, 1, base + r, ring[r, 9])
    for r in range(nr):
        _nt_store(h32, 2, base + r, ring[r, 11])
    for r in range(nr):
        h16[0, base + r] = ring[r, 3]
    for r in range(nr):
        h8[0, base + r] = ring[r, 2]
    for r in range(nr):
        h8[1, base + r] = ring[r, 5]
    for r in range(nr):
        h8[2, base + r] = ring[r, 6]
    for r in range(nr):
        d = ring[r, 7]
        h8[3, base + r] = d if d < 255 else 255
    for r in range(nr):
        h8[4, base + r] = ring[r, 10]
    for j in range(2 * TOP):
        for r in range(nr):
            _nt_store(pxo, j, base + r, ring[r, ROW_HDR + j])
    for j in range(4 * TOP):
        for r in range(nr):
            _nt_store(szo, j, base + r, ring[r, ROW_HDR + 2 * TOP + j])
    g[G_OUTN] = base + nr
    g[G_RING] = 0


@njit(cache=True, _nrt=False)
def rehash_orders(oh, oq, old_oh, old_oq, lvls, mode):
    """Enter every order of (old_oh, old_oq) into the empty (oh, oq) under hash mode."""
    mask = (oh.shape[0] >> 1) - 1
    for p in range(old_oh.shape[0] >> 1):
        v = old_oh[2 * p + 1]
        if v >= 0:
            oid = old_oh[2 * p]
            h = _ohash(oid, _entry_book(lvls, v), mode, mask)
            while oh[2 * h + 1] >= 0:
                h = (h + 1) & mask
            oh[2 * h] = oid
            oh[2 * h + 1] = v
            oq[h] = old_oq[p]


@njit(cache=True, _nrt=False)
def rehash_keys(table, keys, nrows):
    table[:] = -1
    mask = table.shape[0] - 1
    for r in range(nrows):
        h = _mix(keys[r, 0]) & mask
        while table[h] >= 0:
            h = (h + 1) & mask
        table[h] = r


@njit(cache=True, _nrt=False)
def compact_pool(pool, new_pool, bsm, nbooks):
    """Copy every live segment to new_pool back to back; returns the space used."""
    used = 0
    for bs in range(2 * nbooks):
        start = bsm[bs, S_START]
        for j in range(bsm[bs, S_N]):
            new_pool[used + j, 0] = pool[start + j, 0]
            new_pool[used + j, 1] = pool[start + j, 1]
        bsm[bs, S_START] = used
        used += bsm[bs, S_CAP]
    return used


@njit(cache=True, _nrt=False)
def find_order(oh, lvls, g, oid, book):
    """Python-callable lookup (checks and views): (hash position, found)."""
    return _ofind(oh, lvls, g, oid, book, g[G_HMODE])
