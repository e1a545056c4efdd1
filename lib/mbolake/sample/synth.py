"""Synthetic CME ES MBO sessions written as real Databento DBN files.

``generate_sample(out_root, SynthParams(...))`` writes one zstd-compressed DBN v3 MBO
file per weekday session to ``out_root/ES/FUT/yyyymmdd/glbx-mdp3-yyyymmdd.mbo.dbn.zst``.
The files are readable by ``databento.DBNStore.from_file`` and by ``mbolake.io.dbn``.

Each file holds three instruments of GLBX.MDP3 (publisher 1): the front-month outright
(e.g. ESZ5), a thin back month (ESH6) and the calendar spread (ESZ5-ESH6). Per
instrument: an R (clear) record, a start-of-day snapshot (adds flagged F_SNAPSHOT whose
``ts_event`` is the older original order time, F_LAST on the last), then a stream from
04:30 to 13:00 New York of limit adds, full and partial cancels, modifies (price and
size) and marketable orders in the CME pattern T (aggressor, order_id 0, touch price,
traded size) -> F per resting order filled -> C per filled order. F_LAST marks the last
record of every event. The generator keeps its own L3 book (numba, arrays indexed by
price tick with per-level FIFO lists) so every C/F/M refers to a live order and the
book never crosses or locks.

The front-month price follows a reference path: a random walk in the pre-market, a
more volatile opening range (09:30-09:45), then waypoints that revisit the pre-market
high/low (05:00-09:30) and opening-range high/low from both sides, some breaking
through and some rejecting, so later stages find approach episodes.

Parameters (``SynthParams``) and defaults:

=====================  ==============  ===============================================
field                  default         meaning
=====================  ==============  ===============================================
sessions               3               number of weekday sessions
first_date             2025-11-03      first session (moved to the next weekday)
intensity              400_000         approx. records per session, all instruments
seed                   7               RNG seed; same params -> byte-identical files
back_month_share       0.015           share of records of the back month
spread_share           0.01            share of records of the calendar spread
trade_ratio            0.05            share of events that are marketable orders
cancel_ratio           0.40            share of events that are cancels (full/partial)
modify_ratio           0.07            share of events that are modifies
partial_cancel_prob    0.15            probability that a cancel is partial
order_size_p           0.55            geometric p of limit order size (mean 1/p)
big_order_prob         0.04            probability of an extra 5-50 lot on an add
trade_size_p           0.35            geometric p of marketable order size
volatility             0.4             reference-path volatility, ticks per sqrt(s)
follow                 0.35            how hard the book is driven toward the path
level_cap              90              adds avoid levels holding more than this
snapshot_levels        12              levels per side in the start-of-day snapshot
latency_mean_us        40.0            mean ts_recv - ts_event (plus a 3 us floor)
zstd_level             3               compression level of the written files
=====================  ==============  ===============================================
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np

from mbolake.core.calendar import local_time_to_ns
from mbolake.io import dbn

TZ = "America/New_York"
TICK = 250_000_000  # 0.25 index points, fixed-point 1e-9
DATASET = "GLBX.MDP3"
PUBLISHER_ID = 1
NLEV = 8192  # price grid (ticks) per instrument
MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
STALL_SHARE = 0.12  # approaches that stall at the level for 13-18 minutes (the CHOP outcome)
ORDER_ID_BASE = 6_000_000_000_000

# action / side codes as bytes values
_A, _C, _M, _R, _T, _F = (ord(c) for c in "ACMRTF")
_B, _ASK, _N = ord("B"), ord("A"), ord("N")


@dataclass(frozen=True)
class SynthParams:
    sessions: int = 3
    first_date: dt.date = dt.date(2025, 11, 3)
    intensity: int = 400_000
    seed: int = 7
    back_month_share: float = 0.015
    spread_share: float = 0.01
    trade_ratio: float = 0.05
    cancel_ratio: float = 0.40
    modify_ratio: float = 0.07
    partial_cancel_prob: float = 0.15
    order_size_p: float = 0.55
    big_order_prob: float = 0.04
    trade_size_p: float = 0.35
    volatility: float = 0.4
    follow: float = 0.35
    level_cap: int = 90
    snapshot_levels: int = 12
    latency_mean_us: float = 40.0
    zstd_level: int = 3

    def validate(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"SynthParams.{name} {why}, got {getattr(self, name)!r}")

        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "first_date":
                if not isinstance(v, dt.date):
                    bad("first_date", "must be a datetime.date")
            elif f.type in ("int", int) and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                bad(f.name, "must be an int")
            elif f.type in ("float", float) and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))):
                bad(f.name, "must be a number")
        if self.sessions < 1:
            bad("sessions", "must be >= 1")
        if self.intensity < 10_000:
            bad("intensity", "must be >= 10_000")
        if self.intensity > 200_000_000:
            bad("intensity", "must be <= 200_000_000")
        for name in ("back_month_share", "spread_share"):
            if not 0.0 < getattr(self, name) <= 0.1:
                bad(name, "must be in (0, 0.1]")
        for name in ("trade_ratio", "cancel_ratio", "modify_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "must be in [0, 1)")
        if self.trade_ratio <= 0:
            bad("trade_ratio", "must be > 0")
        if self.trade_ratio + self.cancel_ratio + self.modify_ratio > 0.9:
            bad("cancel_ratio", "plus trade_ratio and modify_ratio must leave >= 0.1 for adds")
        for name in ("partial_cancel_prob", "big_order_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must be in [0, 1]")
        for name in ("order_size_p", "trade_size_p"):
            if not 0.0 < getattr(self, name) <= 1.0:
                bad(name, "must be in (0, 1]")
        if not 0.0 < self.volatility <= 5.0:
            bad("volatility", "must be in (0, 5] ticks per sqrt(second)")
        if not 0.0 <= self.follow <= 1.0:
            bad("follow", "must be in [0, 1]")
        if self.level_cap < 10:
            bad("level_cap", "must be >= 10")
        if not 10 <= self.snapshot_levels <= 100:
            bad("snapshot_levels", "must be in [10, 100]")
        if not 0.0 <= self.latency_mean_us <= 10_000:
            bad("latency_mean_us", "must be in [0, 10000]")
        if not 1 <= self.zstd_level <= 22:
            bad("zstd_level", "must be in [1, 22]")


# ---------------------------------------------------------------- calendar helpers


def _next_weekday(d: dt.date) -> dt.date:
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def session_dates(first_date: dt.date, sessions: int) -> list[dt.date]:
    """``sessions`` weekdays starting at ``first_date`` (moved forward off a weekend)."""
    out: list[dt.date] = []
    d = _next_weekday(first_date)
    while len(out) < sessions:
        out.append(d)
        d = _next_weekday(d + dt.timedelta(days=1))
    return out


def _third_friday(year: int, month: int) -> dt.date:
    d = dt.date(year, month, 1)
    d += dt.timedelta(days=(4 - d.weekday()) % 7)
    return d + dt.timedelta(days=14)


def _quarterlies_from(d: dt.date):
    year, month = d.year, d.month
    month = ((month - 1) // 3 + 1) * 3
    while True:
        yield year, month
        month += 3
        if month > 12:
            month, year = 3, year + 1


def _symbol(year: int, month: int) -> str:
    return f"ES{MONTH_CODES[month]}{year % 10}"


def _front_back_ym(session_date: dt.date) -> tuple[tuple[int, int], tuple[int, int]]:
    it = _quarterlies_from(session_date)
    for ym in it:
        roll = _third_friday(*ym) - dt.timedelta(days=8)
        if session_date < roll:
            return ym, next(it)
    raise AssertionError("unreachable")


def front_and_back_month(session_date: dt.date) -> tuple[str, str]:
    """Front and next quarterly ES contract; rolls 8 days before the 3rd-Friday expiry."""
    front, back = _front_back_ym(session_date)
    return _symbol(*front), _symbol(*back)


def _instrument_ids(session_date: dt.date) -> tuple[int, int, int]:
    (fy, fm), (by, bm) = _front_back_ym(session_date)
    front = 40_000 + fy * 12 + fm
    back = 40_000 + by * 12 + bm
    return front, back, 900_000 + front


# ---------------------------------------------------------------- numba simulation

# float params (fp) indices
_FP_TRADE, _FP_CANCEL, _FP_MODIFY, _FP_PARTIAL, _FP_SIZEP, _FP_BIG, _FP_TSIZEP, _FP_FOLLOW, _FP_LAT = range(9)
# int params (ip) indices
_IP_SEED, _IP_START, _IP_END, _IP_SNAPRECV, _IP_SNAPFIRST, _IP_CAP, _IP_LEVCAP, _IP_SNAPLEV, _IP_NEARMIN, _IP_NEARMAX, _IP_DEEPMIN, _IP_DEEPMAX = range(12)

# output columns
_O_TS, _O_RECV, _O_ACT, _O_SIDE, _O_LVL, _O_SIZE, _O_OID, _O_FLAGS = range(8)
_MAXF = 512


@numba.njit(cache=True, inline="always")
def _append(o, s, L, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size):
    o_lvl[o] = L
    o_side[o] = s
    t = tail[s, L]
    o_prev[o] = t
    o_next[o] = -1
    if t >= 0:
        o_next[t] = o
    else:
        head[s, L] = o
    tail[s, L] = o
    qty[s, L] += o_size[o]
    cnt[s, L] += 1


@numba.njit(cache=True, inline="always")
def _unlink(o, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size):
    s = o_side[o]
    L = o_lvl[o]
    p = o_prev[o]
    n = o_next[o]
    if p >= 0:
        o_next[p] = n
    else:
        head[s, L] = n
    if n >= 0:
        o_prev[n] = p
    else:
        tail[s, L] = p
    qty[s, L] -= o_size[o]
    cnt[s, L] -= 1


@numba.njit(cache=True, inline="always")
def _scan_bid(cnt, L):
    while L >= 0 and cnt[0, L] == 0:
        L -= 1
    return L


@numba.njit(cache=True, inline="always")
def _scan_ask(cnt, L, nlev):
    while L < nlev and cnt[1, L] == 0:
        L += 1
    return L


@numba.njit(cache=True, inline="always")
def _emit(out, k, ts, recv, act, side, L, size, oid, flags):
    out[k, 0] = ts
    out[k, 1] = recv
    out[k, 2] = act
    out[k, 3] = side
    out[k, 4] = L
    out[k, 5] = size
    out[k, 6] = oid
    out[k, 7] = flags


@numba.njit(cache=True)
def _pick(s, L, tail, cnt, o_prev):
    n = cnt[s, L]
    idx = np.random.randint(0, n)
    o = tail[s, L]
    for _ in range(idx):
        o = o_prev[o]
    return o


@numba.njit(cache=True)
def _simulate(ip, fp, target, rate, init_level):
    """Run one instrument; returns (out[k, 8], k). Levels are price-grid indices."""
    nlev = NLEV
    np.random.seed(ip[_IP_SEED])
    cap = ip[_IP_CAP]
    start_ns = ip[_IP_START]
    end_ns = ip[_IP_END]
    snap_recv = ip[_IP_SNAPRECV]
    snap_first = ip[_IP_SNAPFIRST]
    level_cap = ip[_IP_LEVCAP]
    snap_levels = ip[_IP_SNAPLEV]
    p_trade = fp[_FP_TRADE]
    p_cancel = fp[_FP_CANCEL]
    p_modify = fp[_FP_MODIFY]
    p_partial = fp[_FP_PARTIAL]
    size_p = fp[_FP_SIZEP]
    p_big = fp[_FP_BIG]
    tsize_p = fp[_FP_TSIZEP]
    follow = fp[_FP_FOLLOW]
    lat_mean = fp[_FP_LAT]

    out = np.empty((cap, 8), dtype=np.int64)
    maxo = cap + 2 * snap_levels * 64 + 16
    head = np.full((2, nlev), -1, dtype=np.int64)
    tail = np.full((2, nlev), -1, dtype=np.int64)
    qty = np.zeros((2, nlev), dtype=np.int64)
    cnt = np.zeros((2, nlev), dtype=np.int64)
    o_prev = np.empty(maxo, dtype=np.int64)
    o_next = np.empty(maxo, dtype=np.int64)
    o_lvl = np.empty(maxo, dtype=np.int64)
    o_side = np.empty(maxo, dtype=np.int64)
    o_size = np.empty(maxo, dtype=np.int64)
    side_n = np.zeros(2, dtype=np.int64)
    fill_o = np.empty(_MAXF, dtype=np.int64)
    fill_q = np.empty(_MAXF, dtype=np.int64)
    fill_l = np.empty(_MAXF, dtype=np.int64)
    sides = np.array([_B, _ASK], dtype=np.int64)

    k = 0
    nord = 0
    # ---- R + snapshot
    _emit(out, k, snap_recv, snap_recv, _R, _N, -1, 0, 0, 0x20)
    k += 1
    bb = init_level
    ba = init_level + 1
    for s in range(2):
        for j in range(snap_levels):
            L = bb - j if s == 0 else ba + j
            if j < 5:
                nmin, nmax = ip[_IP_NEARMIN], ip[_IP_NEARMAX]
            else:
                nmin, nmax = ip[_IP_DEEPMIN], ip[_IP_DEEPMAX]
            lsize = np.random.randint(10, 68)
            n = np.random.randint(nmin, nmax + 1)
            if n > lsize:
                n = lsize
            first = nord
            for i in range(n):
                o_size[nord + i] = 1
            for _ in range(lsize - n):
                o_size[first + np.random.randint(0, n)] += 1
            for _ in range(n):
                o = nord
                nord += 1
                _append(o, s, L, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
                side_n[s] += 1
                ts = snap_first + np.int64(np.random.random() * (snap_recv - snap_first - 1_000_000_000))
                _emit(out, k, ts, snap_recv, _A, sides[s], L, o_size[o], o, 0x20)
                k += 1
    out[k - 1, 7] |= 0x80

    # ---- stream
    t = start_ns
    last_recv = snap_recv
    nsec = target.shape[0]
    while True:
        sec = (t - start_ns) // 1_000_000_000
        if sec >= nsec:
            break
        t += 1 + np.int64(np.random.exponential(1e9 / rate[sec]))
        if t >= end_ns or k >= cap - _MAXF * 2 - 8:
            break
        sec = (t - start_ns) // 1_000_000_000
        if sec >= nsec:
            break
        recv = t + 3_000 + np.int64(np.random.exponential(lat_mean))
        if recv < last_recv:
            recv = last_recv
        last_recv = recv
        tgt = target[sec]
        bid_ok = bb >= 0
        ask_ok = ba < nlev
        if bid_ok and ask_ok:
            mid = 0.5 * (bb + ba)
        elif bid_ok:
            mid = bb + 0.5
        elif ask_ok:
            mid = ba - 0.5
        else:
            mid = tgt
        d = tgt - mid
        pr = min(4.0, max(-4.0, d))
        apr = abs(pr)
        u = np.random.random()

        ev = 4  # 0 trade, 1 cancel, 2 modify, 3 inside add, 4 add
        forced = False
        if bid_ok and ask_ok and ba - bb > 1 and np.random.random() < 0.75:
            ev = 3
        elif apr > 0.75 and np.random.random() < follow * min(1.0, (apr - 0.75) / 2.0):
            ev = 0
            forced = True
        elif u < p_trade:
            ev = 0
        elif u < p_trade + p_cancel:
            ev = 1
        elif u < p_trade + p_cancel + p_modify:
            ev = 2

        if ev == 0:
            # ---------------- marketable order: T, F..., C...
            if forced:
                buy = pr > 0
            else:
                pb = min(0.95, max(0.05, 0.5 + 0.12 * pr))
                buy = np.random.random() < pb
            sr = 1 if buy else 0
            touch = ba if buy else bb
            if touch < 0 or touch >= nlev:
                continue
            if side_n[sr] < 12:
                continue
            if forced:
                size = qty[sr, touch]
                if apr >= 3.0 and np.random.random() < 0.3:
                    nxt = touch + 1 if buy else touch - 1
                    if 0 <= nxt < nlev and cnt[sr, nxt] > 0:
                        size += 1 + np.random.randint(0, qty[sr, nxt])
            else:
                size = np.random.geometric(tsize_p)
                if np.random.random() < 0.05:
                    size += np.random.randint(5, 40)
            remaining = size
            nf = 0
            L = touch
            used = 0
            while True:
                o = head[sr, L]
                while o >= 0 and remaining > 0 and nf < _MAXF:
                    f = o_size[o] if o_size[o] < remaining else remaining
                    fill_o[nf] = o
                    fill_q[nf] = f
                    fill_l[nf] = L
                    nf += 1
                    remaining -= f
                    o = o_next[o]
                if remaining == 0 or nf >= _MAXF:
                    break
                used += 1
                if used >= 3:
                    break
                if buy:
                    L = _scan_ask(cnt, L + 1, nlev)
                    if L >= nlev:
                        break
                else:
                    L = _scan_bid(cnt, L - 1)
                    if L < 0:
                        break
            traded = size - remaining
            if nf == 0:
                continue
            _emit(out, k, t, recv, _T, _B if buy else _ASK, touch, traded, 0, 0)
            k += 1
            rs = sides[sr]
            for i in range(nf):
                _emit(out, k, t, recv, _F, rs, fill_l[i], fill_q[i], fill_o[i], 0)
                k += 1
            for i in range(nf):
                o = fill_o[i]
                _emit(out, k, t, recv, _C, rs, fill_l[i], fill_q[i], o, 0)
                k += 1
                if fill_q[i] == o_size[o]:
                    _unlink(o, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
                    side_n[sr] -= 1
                else:
                    o_size[o] -= fill_q[i]
                    qty[sr, fill_l[i]] -= fill_q[i]
            out[k - 1, 7] = 0x80
            if buy:
                ba = _scan_ask(cnt, ba, nlev)
            else:
                bb = _scan_bid(cnt, bb)
        elif ev == 1 or ev == 2:
            # ---------------- cancel or modify an order near the touch
            if ev == 1:
                s = 1 if np.random.random() < 0.5 + 0.1 * pr else 0
            else:
                s = 0 if np.random.random() < 0.5 else 1
            if side_n[s] < 12:
                continue
            kk = np.int64(np.random.exponential(2.5))
            if ev == 1 and apr >= 1.0 and ((s == 1) == (pr > 0)) and np.random.random() < 0.5:
                kk = 0
            if kk > 14:
                kk = 14
            touch = bb if s == 0 else ba
            L = touch - kk if s == 0 else touch + kk
            if L < 0 or L >= nlev or cnt[s, L] == 0:
                L = touch
            if kk == 0 and qty[s, L] < 10 and not (ev == 1 and apr >= 1.0) and np.random.random() < 0.7:
                # leave a thin touch alone: cancel one level behind it when there is one
                L2 = L - 1 if s == 0 else L + 1
                if 0 <= L2 < nlev and cnt[s, L2] > 0:
                    L = L2
            o = _pick(s, L, tail, cnt, o_prev)
            osz = o_size[o]
            if ev == 1:
                if osz > 1 and np.random.random() < p_partial:
                    c = 1 + np.random.randint(0, osz - 1)
                else:
                    c = osz
                _emit(out, k, t, recv, _C, sides[s], L, c, o, 0x80)
                k += 1
                if c == osz:
                    _unlink(o, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
                    side_n[s] -= 1
                else:
                    o_size[o] -= c
                    qty[s, L] -= c
                if s == 0:
                    bb = _scan_bid(cnt, bb)
                else:
                    ba = _scan_ask(cnt, ba, nlev)
            else:
                newl = L
                news = osz
                if np.random.random() < 0.5:
                    step = np.random.randint(1, 3)
                    if np.random.random() < 0.5:
                        step = -step
                    cand = L + step
                    if s == 0:
                        ok = cand >= 1 and (not ask_ok or cand < ba)
                    else:
                        ok = cand < nlev - 1 and (not bid_ok or cand > bb)
                    if ok:
                        newl = cand
                if newl == L:
                    delta = np.random.randint(1, 4)
                    if np.random.random() < 0.5 and osz > delta:
                        news = osz - delta
                    else:
                        news = osz + delta
                _emit(out, k, t, recv, _M, sides[s], newl, news, o, 0x80)
                k += 1
                if newl != L or news > osz:
                    _unlink(o, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
                    o_size[o] = news
                    _append(o, s, newl, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
                else:
                    qty[s, L] -= osz - news
                    o_size[o] = news
                if s == 0:
                    if newl > bb:
                        bb = newl
                    bb = _scan_bid(cnt, bb)
                else:
                    if newl < ba:
                        ba = newl
                    ba = _scan_ask(cnt, ba, nlev)
        else:
            # ---------------- limit add
            if ev == 3:
                s = 0 if np.random.random() < 0.5 + 0.12 * pr else 1
                L = bb + 1 if s == 0 else ba - 1
            else:
                s = 0 if np.random.random() < 0.5 + 0.08 * pr else 1
                kk = np.int64(np.random.exponential(3.0))
                if kk > 14:
                    kk = 14
                # replenish a thin touch level first
                if s == 0 and bid_ok and qty[0, bb] < 10 and np.random.random() < 0.6:
                    kk = 0
                if s == 1 and ask_ok and qty[1, ba] < 10 and np.random.random() < 0.6:
                    kk = 0
                if s == 0:
                    ref = bb if bid_ok else (ba - 1 if ask_ok else np.int64(tgt))
                    L = ref - kk
                    if qty[0, L] > level_cap:
                        L -= 1 + np.random.randint(0, 3)
                else:
                    ref = ba if ask_ok else (bb + 1 if bid_ok else np.int64(tgt) + 1)
                    L = ref + kk
                    if qty[1, L] > level_cap:
                        L += 1 + np.random.randint(0, 3)
            if L < 1 or L > nlev - 2:
                continue
            if s == 0 and ba < nlev and L >= ba:
                continue
            if s == 1 and bb >= 0 and L <= bb:
                continue
            size = np.random.geometric(size_p)
            if size > 50:
                size = 50
            if np.random.random() < p_big:
                size += np.random.randint(5, 51)
            o = nord
            nord += 1
            o_size[o] = size
            _append(o, s, L, head, tail, qty, cnt, o_prev, o_next, o_lvl, o_side, o_size)
            side_n[s] += 1
            _emit(out, k, t, recv, _A, sides[s], L, size, o, 0x80)
            k += 1
            if s == 0:
                if L > bb:
                    bb = L
            else:
                if L < ba:
                    ba = L
    return out, k



@numba.njit(cache=True, inline="always")
def _put(buf, off, v, nbytes):
    for b in range(nbytes):
        buf[off + b] = (v >> (8 * b)) & 0xFF


@numba.njit(cache=True)
def _assemble(out0, out1, out2, bases, iids, seq0, seed, undef_price):
    """Merge the three instruments' outputs by ts_recv (ties: instrument order, as a
    stable sort), renumber order ids in order of appearance of their adds, assign
    packet sequence numbers, and encode DBN MBO records (56 bytes each)."""
    np.random.seed(seed)
    n0, n1, n2 = out0.shape[0], out1.shape[0], out2.shape[0]
    n = n0 + n1 + n2
    buf = np.zeros(n * 56, dtype=np.uint8)
    maps0 = np.zeros(n0 + 1, dtype=np.int64)
    maps1 = np.zeros(n1 + 1, dtype=np.int64)
    maps2 = np.zeros(n2 + 1, dtype=np.int64)
    i0 = 0
    i1 = 0
    i2 = 0
    big = np.int64(2**62)
    next_id = 0
    seq = seq0
    prev_last = False
    for r in range(n):
        t0 = out0[i0, 1] if i0 < n0 else big
        t1 = out1[i1, 1] if i1 < n1 else big
        t2 = out2[i2, 1] if i2 < n2 else big
        if t0 <= t1 and t0 <= t2:
            j = 0
            row = out0[i0]
            i0 += 1
            mp = maps0
        elif t1 <= t2:
            j = 1
            row = out1[i1]
            i1 += 1
            mp = maps1
        else:
            j = 2
            row = out2[i2]
            i2 += 1
            mp = maps2
        act = row[2]
        if act == _A:
            mp[row[6]] = ORDER_ID_BASE + next_id * 7 + 3
            next_id += 1
        if act == _T or act == _R:
            oid = 0
        else:
            oid = mp[row[6]]
        price = undef_price if act == _R else (row[4] + bases[j]) * TICK
        if prev_last:
            seq += 1
        prev_last = (row[7] & 0x80) != 0
        off = r * 56
        buf[off] = 14
        buf[off + 1] = 0xA0
        _put(buf, off + 2, PUBLISHER_ID, 2)
        _put(buf, off + 4, iids[j], 4)
        _put(buf, off + 8, row[0], 8)
        _put(buf, off + 16, oid, 8)
        _put(buf, off + 24, price, 8)
        _put(buf, off + 32, row[5], 4)
        buf[off + 36] = row[7]
        buf[off + 37] = 0
        buf[off + 38] = act
        buf[off + 39] = row[3]
        _put(buf, off + 40, row[1], 8)
        _put(buf, off + 48, np.random.randint(4_000, 26_000), 4)
        _put(buf, off + 52, seq, 4)
    return buf


# ---------------------------------------------------------------- reference paths


def _session_times(session_date: dt.date) -> dict[str, int]:
    t = {
        "first": local_time_to_ns(session_date, 0, 5, TZ),
        "start": local_time_to_ns(session_date, 4, 30, TZ),
        "pm": local_time_to_ns(session_date, 5, 0, TZ),
        "open": local_time_to_ns(session_date, 9, 30, TZ),
        "or_end": local_time_to_ns(session_date, 9, 45, TZ),
        "end": local_time_to_ns(session_date, 13, 0, TZ),
    }
    return t


def _rng(params: SynthParams, session_date: dt.date, stream: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, session_date.toordinal(), stream])


def _front_target(rng: np.random.Generator, times: dict[str, int], vol: float) -> np.ndarray:
    """Reference mid path in absolute ticks, one value per second from 04:30 NY."""
    ns = 1_000_000_000
    nsec = (times["end"] - times["start"]) // ns
    i_pm = (times["pm"] - times["start"]) // ns
    i_open = (times["open"] - times["start"]) // ns
    i_or = (times["or_end"] - times["start"]) // ns
    p0 = rng.uniform(5200.0, 5900.0) / 0.25
    x = np.empty(nsec)
    # pre-market: mean-reverting random walk
    steps = rng.normal(0.0, vol, i_open)
    level = p0
    cur = p0
    for i in range(i_open):
        cur += steps[i] + 0.0002 * (level - cur)
        x[i] = cur
    # opening range: more volatile
    steps = rng.normal(0.0, vol * 2.2, i_or - i_open) + rng.choice([-1.0, 1.0]) * 0.01
    x[i_open:i_or] = cur + np.cumsum(steps)
    pm_hi, pm_lo = x[i_pm:i_open].max(), x[i_pm:i_open].min()
    or_hi, or_lo = x[i_open:i_or].max(), x[i_open:i_or].min()
    levels = np.array([pm_hi, pm_lo, or_hi, or_lo])
    # after 09:45: waypoints that revisit the four levels from both sides
    t = i_or
    cur = x[i_or - 1]
    while t < nsec:
        dist = np.abs(levels - cur)
        w = 1.0 / (dist + 8.0)
        lvl = levels[rng.choice(4, p=w / w.sum())]
        above = cur > lvl
        sgn = -1.0 if above else 1.0  # direction of travel toward the level
        fate = rng.random()
        if fate < STALL_SHARE:  # stall: poke just through the level, then hover there (CHOP)
            way = [(lvl + sgn * rng.uniform(1.0, 3.0), False), (lvl + sgn * rng.uniform(-1.5, 1.5), True)]
        elif fate < STALL_SHARE + (1.0 - STALL_SHARE) * 0.55:
            way = [(lvl + sgn * rng.uniform(3.0, 12.0), False)]  # break through
        else:
            way = [(lvl - sgn * rng.uniform(0.0, 1.5), False), (lvl - sgn * rng.uniform(5.0, 12.0), False)]  # reject
        for wp, hover in way:
            speed = rng.uniform(0.03, 0.12)
            dur = int(rng.uniform(780.0, 1100.0)) if hover else int(max(45.0, abs(wp - cur) / speed))
            dur = min(dur, nsec - t)
            if dur <= 0:
                break
            frac = np.arange(1, dur + 1) / dur
            noise = np.cumsum(rng.normal(0.0, vol * (0.12 if hover else 0.5), dur))
            noise -= frac * noise[-1]  # bridge: hit the waypoint exactly
            x[t : t + dur] = cur + (wp - cur) * frac + noise
            t += dur
            cur = x[t - 1]
    return x


def _thin_target(rng: np.random.Generator, base: np.ndarray, offset: float, vol: float) -> np.ndarray:
    walk = np.cumsum(rng.normal(0.0, vol, base.shape[0]))
    walk -= np.linspace(0.0, 1.0, base.shape[0]) * walk[-1] * 0.5
    return base + offset + walk


def _rate_profile(times: dict[str, int], nsec: int) -> np.ndarray:
    """Relative event intensity per second: quiet pre-market, 09:30 burst, decay."""
    ns = 1_000_000_000
    sec = np.arange(nsec, dtype=np.float64)
    i_830 = (times["open"] - times["start"]) // ns - 3600
    i_open = (times["open"] - times["start"]) // ns
    w = np.full(nsec, 0.3)
    w[i_830:i_open] = 0.55
    after = sec >= i_open
    ta = sec[after] - i_open
    w[after] = 0.65 + 0.9 * np.exp(-ta / 5400.0) + 4.0 * np.exp(-ta / 400.0)
    return w


_REC_PER_EVENT = 1.47
# measured records/intensity with _REC_PER_EVENT alone (fewer follow trades per record at
# higher intensity); the event rate is divided by it so the total lands near intensity
_CAL_LOG10 = np.array([4.0, 4.78, 5.6, 6.0, 6.48])
_CAL_RATIO = np.array([1.0755, 0.9907, 0.914, 0.897, 0.8866])


def _params_arrays(p: SynthParams, seed: int, times: dict[str, int], snap_recv: int, cap: int, thin: bool):
    ip = np.array(
        [
            seed,
            times["start"],
            times["end"],
            snap_recv,
            times["first"],
            cap,
            p.level_cap,
            p.snapshot_levels,
            1 if thin else 8,
            5 if thin else 40,
            1 if thin else 3,
            4 if thin else 20,
        ],
        dtype=np.int64,
    )
    fp = np.array(
        [
            p.trade_ratio,
            p.cancel_ratio,
            p.modify_ratio,
            p.partial_cancel_prob,
            p.order_size_p,
            p.big_order_prob,
            p.trade_size_p,
            p.follow,
            p.latency_mean_us * 1000.0,
        ],
        dtype=np.float64,
    )
    return ip, fp


def generate_session_records(session_date: dt.date, params: SynthParams) -> tuple[np.ndarray, dict]:
    """All records of one session (MBO_DTYPE, ts_recv order) and its symbol intervals."""
    params.validate()
    if session_date.weekday() >= 5:
        raise ValueError(f"session_date {session_date} is not a weekday")
    times = _session_times(session_date)
    nsec = (times["end"] - times["start"]) // 1_000_000_000
    front_sym, back_sym = front_and_back_month(session_date)
    spread_sym = f"{front_sym}-{back_sym}"
    ids = _instrument_ids(session_date)
    syms = (front_sym, back_sym, spread_sym)

    rng = _rng(params, session_date, 0)
    front_t = _front_target(rng, times, params.volatility)
    roll_ticks = rng.uniform(50.0, 70.0) / 0.25
    back_t = _thin_target(rng, front_t, roll_ticks, params.volatility * 0.05)
    spread_t = _thin_target(rng, np.full(nsec, roll_ticks), 0.0, params.volatility * 0.05)
    targets = (front_t, back_t, spread_t)
    shares = (1.0 - params.back_month_share - params.spread_share, params.back_month_share, params.spread_share)
    shape = _rate_profile(times, nsec)
    shape_sum = shape.sum()

    calib = float(np.interp(np.log10(params.intensity), _CAL_LOG10, _CAL_RATIO))
    seeds = rng.integers(1, 2**31 - 1, size=3)
    parts = []
    for j in range(3):
        n_rec = params.intensity * shares[j]
        rate = shape * (n_rec / _REC_PER_EVENT / calib / shape_sum)
        cap = int(n_rec * 1.6) + 4 * 512 + 4 * params.snapshot_levels * 64 + 64
        base = int(round(targets[j][0])) - NLEV // 2
        tgt = targets[j] - base
        init_level = int(np.floor(tgt[0]))
        snap_recv = times["start"] - (3 - j) * 1_000_000 - 137_000
        ip, fp = _params_arrays(params, int(seeds[j]), times, snap_recv, cap, thin=j > 0)
        out, k = _simulate(ip, fp, tgt, rate, init_level)
        parts.append((out[:k], base, ids[j], j))

    seq0 = int(rng.integers(1_000_000, 50_000_000))
    buf = _assemble(
        parts[0][0], parts[1][0], parts[2][0],
        np.array([p[1] for p in parts], dtype=np.int64),
        np.array([p[2] for p in parts], dtype=np.int64),
        seq0, int(rng.integers(1, 2**31 - 1)), int(dbn.UNDEF_PRICE),
    )
    rec = buf.view(dbn.MBO_DTYPE)
    d1 = session_date + dt.timedelta(days=1)
    symbol_intervals = {sym: [(session_date, d1, iid)] for sym, iid in zip(syms, ids)}
    return rec, symbol_intervals


def session_path(out_root: Path, session_date: dt.date) -> Path:
    ymd = session_date.strftime("%Y%m%d")
    return Path(out_root) / "ES" / "FUT" / ymd / f"glbx-mdp3-{ymd}.mbo.dbn.zst"


def generate_sample(out_root: Path, params: SynthParams, progress: bool = True) -> list[Path]:
    """Write one DBN file per session; returns the paths in date order."""
    params.validate()
    from tqdm.auto import tqdm

    paths = []
    dates = session_dates(params.first_date, params.sessions)
    for d in tqdm(dates, desc="synthetic ES sessions", unit="session", disable=not progress):
        rec, intervals = generate_session_records(d, params)
        start = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000
        meta = dbn.encode_metadata(dataset=DATASET, start=start, end=start + 86_400 * 1_000_000_000, symbol_intervals=intervals)
        path = session_path(Path(out_root), d)
        dbn.write_mbo_file(path, meta, [rec], level=params.zstd_level)
        paths.append(path)
    return paths


__all__ = [
    "SynthParams",
    "generate_sample",
    "generate_session_records",
    "session_dates",
    "front_and_back_month",
    "session_path",
]
