"""5-second bar features of one instrument's session (FEATURES.md §3, ``silver.bar_5s``).

``BarBuilder`` is a kernel (DESIGN.md §2): numpy/pandas/numba only, no I/O. It is fed the
MBO records of ONE instrument in feed order together with the MBP-10 rows the order book
(``mbolake.book.OrderBook``) produced from exactly those records, whole session at once or
chunk by chunk, and its state round-trips through bytes; the rows are the same either way.

Time model
    Every record gets an effective time ``t`` = the running maximum of ``ts_recv`` (equal to
    ``ts_recv`` when the feed is monotonic; a record stamped earlier than one before it is
    held at the later time). A book state (an MBP-10 row) is matched to the F_LAST record it
    was emitted for (same ts_recv, action, side, price, size, flags, in order) and takes
    effect at that record's effective time, so the merge of the two streams is exactly the
    feed order whatever the chunking. Bar ``k`` covers ``[window_start + k*bar_ns,
    window_start + (k+1)*bar_ns)``; an event at exactly a bar end belongs to the next bar.

State metrics (``_eob``, ``_twa``)
    ``_eob`` is the value of the last state at or before the bar's end (carried in from
    earlier bars when nothing changed). ``_twa`` weights every state by the time it stood
    inside the bar, including the state carried in from before the bar's first change and
    the stretch from the last change to the bar's end (the fix). A metric undefined in a
    state (NaN: microprice, spread, bands while a side is empty) is left out of the
    average, whose weights are the time it was defined; never defined -> NaN.

Flow (``flow_net_volnorm_*``)
    Per book-changing record (A, C, M; T/F/R/N change nothing, the C that follows a fill
    does): the size change at the order's price on its side, mirroring the book kernel's
    rules (a duplicate add replaces the order; a cancel removes at most the order's size; a
    modify removes the old size at the old price and adds the new size at the new price; a
    modify of an unknown order is an add; a modify to size 0 removes the order; invalid
    records change nothing). Orders are tracked in an open-addressing hash (order_id ->
    side, price, size) kept in the builder's state; an R clears it. The band is taken from
    the distance to the **pre-record microprice = the microprice of the last book state
    whose effective time is strictly before the record's effective time** (states at the
    same timestamp are not yet "before" it); no such state, or an undefined microprice,
    leaves the record unattributed. Net = sum of adds - sum of removals per side x band
    over the bar, divided by max(that side's band qty ``_twa``, 1) (bid: below_qty, ask:
    above_qty; a NaN twa counts as 1).

Band quantities (full depth)
    Every level of the rebuilt book within 10 points of the state's microprice counts, not
    only the ten best. The builder keeps, per side, the resting size of every price tick
    (``depth``, the same size changes as the flow, so numerator and divisor see the same
    book) and, per side and band edge, the running total of the size on the near side of
    the edge (``cum``; band b = cum[b] - cum[b-1]). A size change updates five totals; when
    the microprice moves, an edge moves by the ticks it crosses and only those ticks are
    added or removed, so no record scans the book. A book state is every F_LAST boundary:
    a change deeper than the ten levels (no MBP-10 row) still starts a new state of the
    band metrics. Fractions are relative to the side's total over the five bands (0 when
    the side has no depth within 10 points). Prices must lie on the tick grid (a multiple
    of ``tick_size``); an off-grid price of a resting order raises ValueError.

Band edges are (1, 2, 3, 5, 10) points for ES and scale with ``tick_size / 0.25`` for
other products (FEATURES.md: "other products scale by their tick size"); the column
names keep the ES spelling (p0_1 ... p5_10). Distances to the microprice are compared in
fixed-point units (exact for prices; only the microprice itself is rounded).

Other choices
    * ``apply`` returns the bars whose end is at or before the latest effective time seen
      (an event at exactly a bar's end opens the next bar, so that bar is final).
    * Before the first book state every state column is NaN (level indices -1).
    * ``trade_last_ts`` is the trade's effective ts_recv; ``trade_vwap`` (points) is NaN
      without volume; ``mid_rv`` = sum of squared log changes of the mid over the bar's
      states (the first against the last defined mid before it), 0 for an empty bar.
    * ``ofi_l0_sum`` / ``ofi_l10_sum``: Cont-Kukanov-Stoikov e_n per level between each
      state in the bar and the state before it (empty bid/ask levels at -inf/+inf price
      with size 0), summed over level 0 / levels 0-9, in contracts.
    * Records at or after window_end are not read (nothing after the window matters).
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from ..core.calendar import local_time_to_ns
from ..core.constants import (
    ACT_ADD,
    ACT_CANCEL,
    ACT_CLEAR,
    ACT_MODIFY,
    ACT_TRADE,
    F_LAST,
    FIXED_SCALE,
    SIDE_ASK,
    SIDE_BID,
    ascii_codes,
)
from ..core.constants import UNDEF_PRICE as UNDEF
from .stats import EPS, INT64_MIN, band_index, ofi_level, wall_scores
from .units import px_points

BANDS = ("p0_1", "p1_2", "p2_3", "p3_5", "p5_10")
ES_BAND_EDGES_PTS = (1.0, 2.0, 3.0, 5.0, 10.0)
ES_TICK = 0.25
TOP = 10
NB_ = len(BANDS)


def _feature_names() -> list[str]:
    c = ["microprice_eob", "midprice_eob"]
    for m in ("spread_pts", "obi0", "obi10"):
        c += [f"state_{m}_twa", f"state_{m}_eob"]
    for b in BANDS:
        c += [f"state_cdi_{b}_twa", f"state_cdi_{b}_eob"]
    for s in ("below", "above"):
        for b in BANDS:
            c += [f"depth_{s}_{b}_frac_twa", f"depth_{s}_{b}_frac_eob"]
    c += ["depth_bid10_qty_eob", "depth_ask10_qty_eob", "depth_below_p0_1_qty_eob", "depth_above_p0_1_qty_eob"]
    for s in ("ask", "bid"):
        c += [f"ladder_{s}_gap_max_pts_eob", f"ladder_{s}_gap_mean_pts_eob"]
    c += ["shape_bid_sz_l00_eob", "shape_ask_sz_l00_eob"]
    for what in ("sz", "ct"):
        for s in ("bid", "ask"):
            c += [f"shape_{s}_{what}_frac_l{i:02d}_eob" for i in range(TOP)]
    for s in ("bid", "ask"):
        c += [f"flow_net_volnorm_{s}_{b}_sum" for b in BANDS]
    c += ["trade_cnt_sum", "trade_vol_sum", "trade_signed_vol_sum", "trade_last_px", "trade_last_ts"]
    c += ["wall_bid_maxz_eob", "wall_ask_maxz_eob", "wall_bid_maxz_levelidx_eob", "wall_ask_maxz_levelidx_eob"]
    c += ["wall_bid_nearest_strong_dist_pts_eob", "wall_ask_nearest_strong_dist_pts_eob",
          "wall_bid_nearest_strong_levelidx_eob", "wall_ask_nearest_strong_levelidx_eob"]
    c += ["ofi_l0_sum", "ofi_l10_sum", "trade_vwap", "mid_rv"]  # beyond the original
    return c


PREFIX = "bar5s_"
_NAMES = _feature_names()
N_ORIGINAL_FEATURES = 111
NEW_FEATURES = tuple(PREFIX + n for n in ("ofi_l0_sum", "ofi_l10_sum", "trade_vwap", "mid_rv"))
FEATURE_COLUMNS: tuple[str, ...] = tuple(PREFIX + n for n in _NAMES)
BAR_COLUMNS: tuple[str, ...] = ("bar_ts",) + FEATURE_COLUMNS
NCOL = len(_NAMES)
assert NCOL == N_ORIGINAL_FEATURES + len(NEW_FEATURES), NCOL
INT_COLUMNS = tuple(PREFIX + n for n in _NAMES
                    if n.endswith("levelidx_eob") or n in ("trade_cnt_sum", "trade_vol_sum",
                                                             "trade_signed_vol_sum", "trade_last_ts"))
# columns that may legitimately be null (NaN) once a two-sided book stands
NULLABLE_COLUMNS = tuple(PREFIX + n for n in _NAMES
                         if n.startswith("ladder_") or n in ("trade_last_px", "trade_vwap")
                         or n.endswith("nearest_strong_dist_pts_eob"))

_IX = {n: i for i, n in enumerate(_NAMES)}
C_MICRO, C_MID = _IX["microprice_eob"], _IX["midprice_eob"]
C_SPREAD, C_OBI0, C_OBI10 = _IX["state_spread_pts_twa"], _IX["state_obi0_twa"], _IX["state_obi10_twa"]
C_CDI = _IX["state_cdi_p0_1_twa"]            # band b: twa at C_CDI + 2b, eob at +1
C_BELOW = _IX["depth_below_p0_1_frac_twa"]   # idem
C_ABOVE = _IX["depth_above_p0_1_frac_twa"]
C_BID10, C_ASK10 = _IX["depth_bid10_qty_eob"], _IX["depth_ask10_qty_eob"]
C_BELOW_Q0, C_ABOVE_Q0 = _IX["depth_below_p0_1_qty_eob"], _IX["depth_above_p0_1_qty_eob"]
C_LAD_A_MAX, C_LAD_A_MEAN = _IX["ladder_ask_gap_max_pts_eob"], _IX["ladder_ask_gap_mean_pts_eob"]
C_LAD_B_MAX, C_LAD_B_MEAN = _IX["ladder_bid_gap_max_pts_eob"], _IX["ladder_bid_gap_mean_pts_eob"]
C_BSZ0, C_ASZ0 = _IX["shape_bid_sz_l00_eob"], _IX["shape_ask_sz_l00_eob"]
C_SZF = _IX["shape_bid_sz_frac_l00_eob"]     # side s level i at C_SZF + 10s + i
C_CTF = _IX["shape_bid_ct_frac_l00_eob"]
C_FLOW = _IX["flow_net_volnorm_bid_p0_1_sum"]  # side s band b at C_FLOW + 5s + b
C_TCNT, C_TVOL, C_TSIGN = _IX["trade_cnt_sum"], _IX["trade_vol_sum"], _IX["trade_signed_vol_sum"]
C_TLPX, C_TLTS = _IX["trade_last_px"], _IX["trade_last_ts"]
C_WMAXZ = _IX["wall_bid_maxz_eob"]           # side s at +s
C_WMAXI = _IX["wall_bid_maxz_levelidx_eob"]
C_WDIST = _IX["wall_bid_nearest_strong_dist_pts_eob"]
C_WIDX = _IX["wall_bid_nearest_strong_levelidx_eob"]
C_OFI0, C_OFI10, C_VWAP, C_RV = _IX["ofi_l0_sum"], _IX["ofi_l10_sum"], _IX["trade_vwap"], _IX["mid_rv"]
for _b, _band in enumerate(BANDS):
    assert _IX[f"state_cdi_{_band}_eob"] == C_CDI + 2 * _b + 1
    assert _IX[f"depth_below_{_band}_frac_eob"] == C_BELOW + 2 * _b + 1
    assert _IX[f"depth_above_{_band}_frac_eob"] == C_ABOVE + 2 * _b + 1
    assert _IX[f"flow_net_volnorm_ask_{_band}_sum"] == C_FLOW + NB_ + _b
assert _IX["shape_ask_ct_frac_l09_eob"] == C_CTF + 19 and _IX["shape_ask_sz_frac_l09_eob"] == C_SZF + 19
assert _IX["wall_ask_nearest_strong_levelidx_eob"] == C_WIDX + 1

# time-weighted metrics of a state (tw vector): spread, obi0, obi10, cdi[5], below_frac[5],
# above_frac[5] (output as _twa), then below_qty[5], above_qty[5] (flow normalisation only)
T_BQ, T_AQ, NTW = 18, 23, 28
TW_COL = np.array([C_SPREAD, C_OBI0, C_OBI10] + [C_CDI + 2 * b for b in range(NB_)]
                  + [C_BELOW + 2 * b for b in range(NB_)] + [C_ABOVE + 2 * b for b in range(NB_)], np.int64)

# accumulators (acc, float64)
A_TWV, A_TWW = 0, NTW                      # sum w*v, sum w
A_FLOW = 2 * NTW                           # 10: side*5 + band
A_TCNT, A_TVOL, A_TSIGN, A_TLPX, A_PXVOL, A_VOLPX, A_OFI0, A_OFI10, A_RV = range(A_FLOW + 10, A_FLOW + 19)
ACC_LEN = A_FLOW + 19

# integer globals (gi)
(G_K, G_CURSOR, G_HAVE_STATE, G_LAST_T, G_HAVE_T, G_MP_T, G_HAVE_MP, G_NORD, G_TLTS, G_NOUT, G_TW_DIRTY,
 G_CUR_DIRTY, G_DBASE, G_HAVE_LIM, G_NEED_TICK, G_BAD_REC) = range(16)
GI_LEN = 16
# float globals (gf)
F_MP_LAST, F_MP_PRIOR, F_LAST_MID, F_CUR_MID, F_LIM_MP = range(5)  # F_MP_LAST: the current state's microprice;
# F_LIM_MP: the microprice the band edges (lim) stand at
GF_LEN = 8

OK, NEED_ORDERS, NEED_DEPTH, OFF_GRID = 0, 1, 2, 3
FORMAT = "mbolake.features.bars.state/2"
MAX_DEPTH_TICKS = 1 << 22  # price span the depth array may cover (ES: about a million points)

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


@dataclass(frozen=True)
class BarParams:
    """One instrument-session's bar window (ns UTC) and the feature thresholds."""

    window_start_ns: int
    window_end_ns: int
    bar_ns: int = 5_000_000_000
    tick_size: float = 0.25
    wall_z: float = 2.0

    def __post_init__(self) -> None:
        if self.bar_ns <= 0:
            raise ValueError(f"bar_ns must be > 0, got {self.bar_ns}")
        if self.window_end_ns <= self.window_start_ns:
            raise ValueError("window_end_ns must be after window_start_ns")
        if self.window_start_ns % self.bar_ns or (self.window_end_ns - self.window_start_ns) % self.bar_ns:
            raise ValueError("window_start_ns and the window length must be multiples of bar_ns (clock-aligned bars)")
        if not self.tick_size > 0 or round(self.tick_size * FIXED_SCALE) < 1:
            raise ValueError(f"tick_size must be > 0 (at least 1e-9), got {self.tick_size}")
        if not math.isfinite(self.wall_z):
            raise ValueError(f"wall_z must be finite, got {self.wall_z}")

    @property
    def n_bars(self) -> int:
        return (self.window_end_ns - self.window_start_ns) // self.bar_ns

    @property
    def band_edges_pts(self) -> np.ndarray:
        return np.array(ES_BAND_EDGES_PTS, np.float64) * (self.tick_size / ES_TICK)

    @property
    def tick_fixed(self) -> int:
        """The tick size in fixed-point units (every resting price is a multiple of it)."""
        return int(round(self.tick_size * FIXED_SCALE))

    @property
    def band_edges_fixed(self) -> np.ndarray:
        """Band edges in fixed-point units (what the kernels compare distances with)."""
        return self.band_edges_pts * FIXED_SCALE

    @classmethod
    def for_session(cls, session_date, *, tick_size: float, timezone: str, start=(8, 30), end=(12, 30),
                    **kw) -> "BarParams":
        """``start``-``end`` (default 08:30-12:30) in ``timezone`` (IANA name) on ``session_date``;
        the caller passes the product's tick size and exchange time zone (``core.products``)."""
        return cls(local_time_to_ns(session_date, *start, timezone), local_time_to_ns(session_date, *end, timezone),
                   tick_size=tick_size, **kw)


# ---------------------------------------------------------------- order hash (numba)
# otab[h] = (order_id, side (-1 = free slot), price, size): one 32-byte row per slot, linear
# probing with backward-shift deletion, load <= 0.5 (the caller doubles it on NEED_ORDERS).
O_KEY, O_SIDE, O_PX, O_SZ = range(4)


@njit(cache=True, inline="always")
def _hash(oid, mask):
    x = np.uint64(oid)
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return np.int64(x & np.uint64(mask))


@njit(cache=True, inline="always")
def _ofind(otab, oid):
    mask = otab.shape[0] - 1
    h = _hash(oid, mask)
    while otab[h, O_SIDE] >= 0:
        if otab[h, O_KEY] == oid:
            return h, True
        h = (h + 1) & mask
    return h, False


@njit(cache=True)
def _odelete(otab, h):
    """Backward-shift deletion (linear probing without tombstones)."""
    mask = otab.shape[0] - 1
    otab[h, O_SIDE] = -1
    j = h
    while True:
        j = (j + 1) & mask
        if otab[j, O_SIDE] < 0:
            return
        k = _hash(otab[j, O_KEY], mask)
        if h <= j:
            stay = h < k <= j
        else:
            stay = k > h or k <= j
        if stay:
            continue
        for c in range(4):
            otab[h, c] = otab[j, c]
        otab[j, O_SIDE] = -1
        h = j


@njit(cache=True)
def _orehash(otab, ntab):
    for h in range(otab.shape[0]):
        if otab[h, O_SIDE] >= 0:
            g, _ = _ofind(ntab, otab[h, O_KEY])
            for c in range(4):
                ntab[g, c] = otab[h, c]


# ---------------------------------------------------------------- state metrics (numba)
@njit(cache=True)
def _micro_mid(lv):
    """(microprice, mid) of a state in points; NaN when a side is empty."""
    if lv[0] == UNDEF or lv[TOP] == UNDEF:
        return np.nan, np.nan
    b0 = px_points(lv[0])
    a0 = px_points(lv[TOP])
    B0 = float(lv[2 * TOP])
    A0 = float(lv[3 * TOP])
    mid = (b0 + a0) / 2.0
    micro = (a0 * B0 + b0 * A0) / (B0 + A0) if B0 + A0 > 0 else mid
    return micro, mid


@njit(cache=True)
def _tw_metrics(lv, bq, tw):
    """The time-weighted metrics of a state into ``tw``: spread, obi0, obi10, cdi[5],
    below_frac[5], above_frac[5], below_qty[5], above_qty[5]. ``lv``: bid_px[10],
    ask_px[10], bid_sz, ask_sz, bid_ct, ask_ct (mbp-10 order), prices fixed-point,
    empty levels at UNDEF with size 0; ``bq``: the state's band quantities (below[5],
    above[5], full depth; NaN while the microprice is undefined)."""
    nan = np.nan
    nb = 0
    while nb < TOP and lv[nb] != UNDEF:
        nb += 1
    na = 0
    while na < TOP and lv[TOP + na] != UNDEF:
        na += 1
    B0 = float(lv[2 * TOP]) if nb > 0 else 0.0
    A0 = float(lv[3 * TOP]) if na > 0 else 0.0
    bsum = 0.0
    asum = 0.0
    for i in range(TOP):
        bsum += lv[2 * TOP + i]
        asum += lv[3 * TOP + i]
    tw[0] = px_points(lv[TOP]) - px_points(lv[0]) if nb > 0 and na > 0 else nan
    tw[1] = (B0 - A0) / (B0 + A0 + EPS)
    tw[2] = (bsum - asum) / (bsum + asum + EPS)
    btot = 0.0
    atot = 0.0
    for b in range(NB_):
        tw[T_BQ + b] = bq[b]
        tw[T_AQ + b] = bq[NB_ + b]
        btot += bq[b]
        atot += bq[NB_ + b]
    for b in range(NB_):
        below = tw[T_BQ + b]
        above = tw[T_AQ + b]
        tw[3 + b] = (below - above) / (below + above + EPS)
        tw[8 + b] = below / (btot + EPS)
        tw[13 + b] = above / (atot + EPS)


@njit(cache=True)
def _levels_band_qty(lv, edges, micro, bq):
    """Band quantities of a book that is just these ten levels a side (``state_features``)."""
    if not (micro == micro):
        bq[:] = np.nan
        return
    bq[:] = 0.0
    mf = micro * FIXED_SCALE
    for s in range(2):
        for i in range(TOP):
            px = lv[s * TOP + i]
            if px == UNDEF:
                break
            k = band_index((mf - px) if s == 0 else (px - mf), edges)
            if k >= 0:
                bq[NB_ * s + k] += lv[(2 + s) * TOP + i]


# ---------------------------------------------------------------- full-depth bands (numba)
# depth[s, i]: resting size of side s (0 bid, 1 ask) at tick gi[G_DBASE] + i. Edges live in
# key space, key = tick for bids and -tick for asks (the nearer the microprice, the larger):
# lim[s, b] = the smallest key within edge b of the microprice, cum[s, b] = the size at keys
# >= lim[s, b] (bands 0..b together), so band b holds cum[s, b] - cum[s, b - 1].
@njit(cache=True)
def _limit(s, mf, e, tick):
    """The smallest key within distance e of mf (fixed-point), decided by the very comparison
    band_index makes for the flow (float distance <= edge), so both agree on every tick."""
    if s == 0:
        t = np.int64(math.ceil((mf - e) / tick))
        while mf - (t - 1) * tick <= e:
            t -= 1
        while not (mf - t * tick <= e):
            t += 1
        return t
    t = np.int64(math.floor((mf + e) / tick))
    while (t + 1) * tick - mf <= e:
        t += 1
    while not (t * tick - mf <= e):
        t -= 1
    return -t


@njit(cache=True)
def _key_sum(depth, base, s, k0, k1):
    """Size of side s at keys k0 <= key < k1 (ticks outside the array hold nothing)."""
    lo, hi = (k0, k1 - 1) if s == 0 else (1 - k1, -k0)
    a = max(lo - base, 0)
    b = min(hi - base, depth.shape[1] - 1)
    tot = 0
    for i in range(a, b + 1):
        tot += depth[s, i]
    return tot


@njit(cache=True)
def _move_edges(depth, base, lim, cum, mf, edges, tick, have):
    """Put the band edges at microprice mf: an edge that moves adds or removes only the
    ticks it crosses (the first time, the totals are summed over the array)."""
    n = depth.shape[1]
    for s in range(2):
        for b in range(NB_):
            new = _limit(s, mf, edges[b], tick)
            if have == 0:
                far = base + n + 1 if s == 0 else 1 - base  # past every tick of the array
                cum[s, b] = _key_sum(depth, base, s, new, far)
            else:
                old = lim[s, b]
                if new < old:
                    cum[s, b] += _key_sum(depth, base, s, new, old)
                elif new > old:
                    cum[s, b] -= _key_sum(depth, base, s, old, new)
            lim[s, b] = new


@njit(cache=True, inline="always")
def _tick_of(px, tick, itick):
    """px / tick for a price on the grid (a float product: an integer division costs ten times
    more); off the grid, tick * result != px."""
    return np.int64(math.floor(px * itick + 0.5))


@njit(cache=True, inline="always")
def _depth_add(depth, gi, lim, cum, s, px, dq, tick, itick):
    t = _tick_of(px, tick, itick)
    depth[s, t - gi[G_DBASE]] += dq
    if gi[G_HAVE_LIM] != 0:
        key = t if s == 0 else -t
        for b in range(NB_):
            if key >= lim[s, b]:
                cum[s, b] += dq


@njit(cache=True)
def _eob_metrics(lv, wall_z, micro, mid, tw, cur, z):
    """Every _eob value of a state into ``cur`` (output column positions); ``tw`` must
    hold the state's time-weighted metrics (``_tw_metrics``)."""
    nan = np.nan
    nb = 0
    while nb < TOP and lv[nb] != UNDEF:
        nb += 1
    na = 0
    while na < TOP and lv[TOP + na] != UNDEF:
        na += 1
    bsum = 0.0
    asum = 0.0
    bct = 0.0
    act = 0.0
    for i in range(TOP):
        bsum += lv[2 * TOP + i]
        asum += lv[3 * TOP + i]
        bct += lv[4 * TOP + i]
        act += lv[5 * TOP + i]
    cur[C_MICRO] = micro
    cur[C_MID] = mid
    cur[C_SPREAD + 1] = tw[0]
    cur[C_OBI0 + 1] = tw[1]
    cur[C_OBI10 + 1] = tw[2]
    for b in range(NB_):
        cur[C_CDI + 2 * b + 1] = tw[3 + b]
        cur[C_BELOW + 2 * b + 1] = tw[8 + b]
        cur[C_ABOVE + 2 * b + 1] = tw[13 + b]
    cur[C_BID10] = bsum
    cur[C_ASK10] = asum
    cur[C_BELOW_Q0] = tw[T_BQ]
    cur[C_ABOVE_Q0] = tw[T_AQ]
    # ladder gaps between adjacent populated levels
    for s in range(2):
        n = nb if s == 0 else na
        cmax = C_LAD_B_MAX if s == 0 else C_LAD_A_MAX
        cmean = C_LAD_B_MEAN if s == 0 else C_LAD_A_MEAN
        if n < 2:
            cur[cmax] = nan
            cur[cmean] = nan
        else:
            gmax = -np.inf
            gsum = 0.0
            for i in range(n - 1):
                d = px_points(lv[s * TOP + i]) - px_points(lv[s * TOP + i + 1])
                g = d if s == 0 else -d
                gsum += g
                if g > gmax:
                    gmax = g
            cur[cmax] = gmax
            cur[cmean] = gsum / (n - 1)
    # shape
    cur[C_BSZ0] = lv[2 * TOP]
    cur[C_ASZ0] = lv[3 * TOP]
    for i in range(TOP):
        cur[C_SZF + i] = lv[2 * TOP + i] / (bsum + EPS)
        cur[C_SZF + TOP + i] = lv[3 * TOP + i] / (asum + EPS)
        cur[C_CTF + i] = lv[4 * TOP + i] / (bct + EPS)
        cur[C_CTF + TOP + i] = lv[5 * TOP + i] / (act + EPS)
    # walls
    for s in range(2):
        mz, mi = wall_scores(lv[(2 + s) * TOP:(3 + s) * TOP], z)
        cur[C_WMAXZ + s] = mz
        cur[C_WMAXI + s] = mi
        n = nb if s == 0 else na
        cur[C_WDIST + s] = nan
        cur[C_WIDX + s] = -1
        for i in range(n):
            if z[i] >= wall_z:
                px = px_points(lv[s * TOP + i])
                cur[C_WDIST + s] = (micro - px) if s == 0 else (px - micro)
                cur[C_WIDX + s] = i
                break


def state_features(lv, params: "BarParams") -> dict[str, float]:
    """The _eob features and twa metrics of ONE book state (60 level values in mbp-10
    order) whose whole book is those ten levels a side, by name without prefix: a view
    for tests and notebooks."""
    lv = np.ascontiguousarray(lv, dtype=np.int64)
    micro, mid = _micro_mid(lv)
    tw = np.empty(NTW)
    cur = _no_state_row()
    bq = np.empty(2 * NB_)
    _levels_band_qty(lv, params.band_edges_fixed, micro, bq)
    _tw_metrics(lv, bq, tw)
    _eob_metrics(lv, float(params.wall_z), micro, mid, tw, cur, np.empty(TOP))
    d = {n: cur[i] for i, n in enumerate(_NAMES) if n.endswith("_eob")}
    for b, band in enumerate(BANDS):
        d[f"below_qty_{band}"] = tw[T_BQ + b]
        d[f"above_qty_{band}"] = tw[T_AQ + b]
    return d


# ---------------------------------------------------------------- bar clock (numba)
@njit(cache=True)
def _accumulate(gi, lv, bq, tw, acc, a, b):
    if b <= a or gi[G_HAVE_STATE] == 0:
        return
    if gi[G_TW_DIRTY]:
        _tw_metrics(lv, bq, tw)
        gi[G_TW_DIRTY] = 0
    w = float(b - a)
    for m in range(NTW):
        v = tw[m]
        if v == v:
            acc[A_TWV + m] += w * v
            acc[A_TWW + m] += w


@njit(cache=True)
def _reset(gi, acc):
    for m in range(ACC_LEN):
        acc[m] = 0.0
    acc[A_TLPX] = np.nan
    gi[G_TLTS] = -1


@njit(cache=True)
def _close(gi, gf, lv, bq, wall_z, tw, cur, z, acc, out, out_ts, out_k):
    if gi[G_CUR_DIRTY]:
        if gi[G_TW_DIRTY]:
            _tw_metrics(lv, bq, tw)
            gi[G_TW_DIRTY] = 0
        _eob_metrics(lv, wall_z, gf[F_MP_LAST], gf[F_CUR_MID], tw, cur, z)
        gi[G_CUR_DIRTY] = 0
    r = gi[G_NOUT]
    for c in range(NCOL):
        out[r, c] = cur[c]
    for m in range(T_BQ):
        w = acc[A_TWW + m]
        out[r, TW_COL[m]] = acc[A_TWV + m] / w if w > 0 else np.nan
    for s in range(2):
        for b in range(NB_):
            m = (T_BQ if s == 0 else T_AQ) + b
            w = acc[A_TWW + m]
            q = acc[A_TWV + m] / w if w > 0 else np.nan
            den = q if q > 1.0 else 1.0  # NaN -> 1
            out[r, C_FLOW + NB_ * s + b] = acc[A_FLOW + NB_ * s + b] / den
    out[r, C_TCNT] = acc[A_TCNT]
    out[r, C_TVOL] = acc[A_TVOL]
    out[r, C_TSIGN] = acc[A_TSIGN]
    out[r, C_TLPX] = acc[A_TLPX]
    out[r, C_TLTS] = 0.0
    out_ts[r] = gi[G_TLTS]
    out[r, C_VWAP] = acc[A_PXVOL] / acc[A_VOLPX] if acc[A_VOLPX] > 0 else np.nan
    out[r, C_OFI0] = acc[A_OFI0]
    out[r, C_OFI10] = acc[A_OFI10]
    out[r, C_RV] = acc[A_RV]
    out_k[r] = gi[G_K]
    gi[G_NOUT] = r + 1


@njit(cache=True)
def _advance(t, w0, bar, nbars, bq, wall_z, gi, gf, lv, tw, cur, z, acc, out, out_ts, out_k):
    """Move the clock to t: close every bar ending at or before t. The current state's
    time inside the open bar is accumulated lazily (at the next state change or bar close)."""
    while gi[G_K] < nbars:
        bend = w0 + (gi[G_K] + 1) * bar
        if t < bend:
            break
        _accumulate(gi, lv, bq, tw, acc, gi[G_CURSOR], bend)
        _close(gi, gf, lv, bq, wall_z, tw, cur, z, acc, out, out_ts, out_k)
        _reset(gi, acc)
        gi[G_K] += 1
        gi[G_CURSOR] = bend


@njit(cache=True, inline="always")
def _flow(acc, side, px, dq, p_fixed, edges_fixed):
    """Add dq to the flow of side x band of price px; p_fixed = pre-record microprice in
    fixed-point units (distances are compared in fixed-point units: exact for prices)."""
    if not (p_fixed == p_fixed) or px == UNDEF or dq == 0:
        return
    d = (p_fixed - px) if side == 0 else (px - p_fixed)
    k = band_index(d, edges_fixed)
    if k >= 0:
        acc[A_FLOW + NB_ * side + k] += dq


@njit(cache=True)
def _match_states(ts, act, side, px, sz, fl, s_ts, s_act, s_side, s_px, s_sz, s_fl, sidx):
    """sidx[i] = the MBP-10 row emitted at record i (an F_LAST record), else -1. Returns
    the number of rows matched (greedy, in order)."""
    j = 0
    ns = s_ts.shape[0]
    for i in range(ts.shape[0]):
        sidx[i] = -1
        if (j < ns and (fl[i] & F_LAST) and ts[i] == s_ts[j] and act[i] == s_act[j] and side[i] == s_side[j]
                and px[i] == s_px[j] and sz[i] == s_sz[j] and fl[i] == s_fl[j]):
            sidx[i] = j
            j += 1
    return j


@njit(cache=True, inline="always")
def _change(acc, depth, gi, lim, cum, s, px, dq, p, edges, tick, itick):
    """One size change of the book: the flow of its band and the depth."""
    _flow(acc, s, px, dq, p, edges)
    _depth_add(depth, gi, lim, cum, s, px, dq, tick, itick)


@njit(cache=True)
def _bands_changed(cum, bq):
    for s in range(2):
        for b in range(NB_):
            v = float(cum[s, b] - (cum[s, b - 1] if b > 0 else 0))
            if bq[NB_ * s + b] != v:
                return True
    return False


@njit(cache=True)
def _take_bands(cum, bq):
    for s in range(2):
        for b in range(NB_):
            bq[NB_ * s + b] = float(cum[s, b] - (cum[s, b - 1] if b > 0 else 0))


@njit(cache=True)
def _run(ts, act, side, price, size, oid, fl, sidx, spx, sszct, start, w0, bar, nbars, edges, tick, wall_z,
         gi, gf, lv, cur, tw, acc, z, otab, depth, lim, cum, bq, out, out_ts, out_k):
    """Feed records[start:] (with their matched states); returns (next record, status)."""
    n = ts.shape[0]
    cap = otab.shape[0]
    itick = 1.0 / tick
    for i in range(start, n):
        if gi[G_K] >= nbars:
            return n, OK  # window over: nothing left to compute
        a = np.int64(act[i])
        if a == ACT_ADD or a == ACT_MODIFY:
            if 2 * (gi[G_NORD] + 1) > cap:
                return i, NEED_ORDERS
            # a price this record may rest at: on the grid and inside the depth array
            px = np.int64(price[i])
            if px != UNDEF and np.int64(size[i]) > 0 and (a == ACT_MODIFY or side[i] == SIDE_BID
                                                          or side[i] == SIDE_ASK):
                tk = _tick_of(px, tick, itick)
                if tk * tick != px:
                    gi[G_BAD_REC] = i
                    return i, OFF_GRID
                if tk < gi[G_DBASE] or tk - gi[G_DBASE] >= depth.shape[1]:
                    gi[G_NEED_TICK] = tk
                    return i, NEED_DEPTH
        t = np.int64(ts[i])
        if gi[G_HAVE_T] != 0 and t < gi[G_LAST_T]:
            t = gi[G_LAST_T]
        gi[G_LAST_T] = t
        gi[G_HAVE_T] = 1
        if t >= w0 + (gi[G_K] + 1) * bar:
            _advance(t, w0, bar, nbars, bq, wall_z, gi, gf, lv, tw, cur, z, acc, out, out_ts, out_k)
        inwin = t >= w0 and gi[G_K] < nbars
        if a == ACT_TRADE:
            if inwin:
                sz = np.int64(size[i])
                sd = np.int64(side[i])
                px = np.int64(price[i])
                acc[A_TCNT] += 1.0
                acc[A_TVOL] += sz
                if sd == SIDE_BID:
                    acc[A_TSIGN] += sz
                elif sd == SIDE_ASK:
                    acc[A_TSIGN] -= sz
                if px != UNDEF:
                    x = px_points(px)
                    acc[A_TLPX] = x
                    if sz > 0:
                        acc[A_PXVOL] += x * sz
                        acc[A_VOLPX] += sz
                else:
                    acc[A_TLPX] = np.nan
                gi[G_TLTS] = t
        elif a == ACT_ADD or a == ACT_CANCEL or a == ACT_MODIFY:
            # pre-record microprice (fixed-point units): last state strictly before t
            if not inwin or gi[G_HAVE_MP] == 0:
                p = np.nan  # outside the window nothing is attributed (orders are still tracked)
            elif gi[G_MP_T] < t:
                p = gf[F_MP_LAST] * FIXED_SCALE
            else:
                p = gf[F_MP_PRIOR] * FIXED_SCALE
            sd = np.int64(side[i])
            s = 0 if sd == SIDE_BID else (1 if sd == SIDE_ASK else -1)
            px = np.int64(price[i])
            sz = np.int64(size[i])
            h, found = _ofind(otab, np.int64(oid[i]))
            if a == ACT_ADD:
                if s >= 0 and px != UNDEF and sz > 0:
                    if found:  # duplicate add: the order is replaced
                        _change(acc, depth, gi, lim, cum, otab[h, O_SIDE], otab[h, O_PX], -otab[h, O_SZ], p, edges, tick, itick)
                    else:
                        otab[h, O_KEY] = oid[i]
                        gi[G_NORD] += 1
                    otab[h, O_SIDE] = s
                    otab[h, O_PX] = px
                    otab[h, O_SZ] = sz
                    _change(acc, depth, gi, lim, cum, s, px, sz, p, edges, tick, itick)
            elif a == ACT_CANCEL:
                if found:
                    osz = otab[h, O_SZ]
                    rm = sz if sz < osz else osz
                    if rm > 0:
                        _change(acc, depth, gi, lim, cum, otab[h, O_SIDE], otab[h, O_PX], -rm, p, edges, tick, itick)
                    if rm == osz:
                        _odelete(otab, h)
                        gi[G_NORD] -= 1
                    else:
                        otab[h, O_SZ] = osz - rm
            else:  # modify
                if not found:  # a modify of an unknown order is an add
                    if s >= 0 and px != UNDEF and sz > 0:
                        otab[h, O_KEY] = oid[i]
                        otab[h, O_SIDE] = s
                        otab[h, O_PX] = px
                        otab[h, O_SZ] = sz
                        gi[G_NORD] += 1
                        _change(acc, depth, gi, lim, cum, s, px, sz, p, edges, tick, itick)
                elif px != UNDEF:
                    os_ = otab[h, O_SIDE]
                    _change(acc, depth, gi, lim, cum, os_, otab[h, O_PX], -otab[h, O_SZ], p, edges, tick, itick)
                    if sz <= 0:
                        _odelete(otab, h)
                        gi[G_NORD] -= 1
                    else:
                        _change(acc, depth, gi, lim, cum, os_, px, sz, p, edges, tick, itick)
                        otab[h, O_PX] = px
                        otab[h, O_SZ] = sz
        elif a == ACT_CLEAR:
            for h in range(cap):
                otab[h, O_SIDE] = -1
            gi[G_NORD] = 0
            depth[:, :] = 0
            cum[:, :] = 0
        j = sidx[i]
        if j >= 0:
            # the book state after this record's event group, effective from t: the old one
            # stood until t; OFI against it while copying the new one in
            if t > gi[G_CURSOR]:
                _accumulate(gi, lv, bq, tw, acc, gi[G_CURSOR], t)
                gi[G_CURSOR] = t
            doofi = inwin and gi[G_HAVE_STATE] != 0
            e10 = 0.0
            for l in range(TOP):
                pb1 = spx[l][j]
                pa1 = spx[TOP + l][j]
                qb1 = np.int64(sszct[l][j])
                qa1 = np.int64(sszct[TOP + l][j])
                if doofi:
                    pb0 = lv[l] if lv[l] != UNDEF else INT64_MIN
                    e = ofi_level(pb0, float(lv[2 * TOP + l]), lv[TOP + l], float(lv[3 * TOP + l]),
                                  pb1 if pb1 != UNDEF else INT64_MIN, float(qb1), pa1, float(qa1))
                    if l == 0:
                        acc[A_OFI0] += e
                    e10 += e
                lv[l] = pb1
                lv[TOP + l] = pa1
                lv[2 * TOP + l] = qb1
                lv[3 * TOP + l] = qa1
                lv[4 * TOP + l] = np.int64(sszct[2 * TOP + l][j])
                lv[5 * TOP + l] = np.int64(sszct[3 * TOP + l][j])
            if doofi:
                acc[A_OFI10] += e10
            micro, mid = _micro_mid(lv)
            gf[F_CUR_MID] = mid
            gi[G_TW_DIRTY] = 1
            gi[G_CUR_DIRTY] = 1
            if mid == mid:
                last = gf[F_LAST_MID]
                if inwin and last == last and mid > 0 and last > 0:
                    r = math.log(mid) - math.log(last)
                    acc[A_RV] += r * r
                gf[F_LAST_MID] = mid
            if gi[G_HAVE_MP] == 0:
                gf[F_MP_PRIOR] = np.nan
            elif t > gi[G_MP_T]:
                gf[F_MP_PRIOR] = gf[F_MP_LAST]
            gf[F_MP_LAST] = micro
            gi[G_MP_T] = t
            gi[G_HAVE_MP] = 1
            gi[G_HAVE_STATE] = 1
            if micro == micro:
                if gi[G_HAVE_LIM] == 0 or micro != gf[F_LIM_MP]:
                    _move_edges(depth, gi[G_DBASE], lim, cum, micro * FIXED_SCALE, edges, tick, gi[G_HAVE_LIM])
                    gi[G_HAVE_LIM] = 1
                    gf[F_LIM_MP] = micro
                _take_bands(cum, bq)
            else:
                bq[:] = np.nan
        elif (fl[i] & F_LAST) and gi[G_HAVE_STATE] != 0 and gf[F_MP_LAST] == gf[F_MP_LAST] \
                and _bands_changed(cum, bq):
            # a change deeper than the ten levels (no MBP-10 row): a new state of the bands
            if t > gi[G_CURSOR]:
                _accumulate(gi, lv, bq, tw, acc, gi[G_CURSOR], t)
                gi[G_CURSOR] = t
            _take_bands(cum, bq)
            gi[G_TW_DIRTY] = 1
            gi[G_CUR_DIRTY] = 1
    return n, OK


# ---------------------------------------------------------------- inputs
def _get(data, name):
    if isinstance(data, np.ndarray) and data.dtype.names:
        if name not in data.dtype.names:
            raise ValueError(f"input lacks the field {name!r}")
        return data[name]
    if isinstance(data, (pd.DataFrame, Mapping)):
        if name not in data:
            raise ValueError(f"input lacks the column {name!r}")
        return np.asarray(data[name])
    raise TypeError(f"expected a structured array, DataFrame or column mapping, got {type(data)!r}")


def _int64(col) -> np.ndarray:
    """int64 values without a copy where possible (u64 viewed, strided views kept)."""
    col = np.asarray(col)
    if col.dtype == np.uint64:
        return col.view(np.int64)
    if col.dtype.kind in "iu" and col.dtype.itemsize <= 4 or col.dtype == np.int64:
        return col  # numba reads any integer width; strided field views are fine
    return col.astype(np.int64)


def _mbo_columns(mbo):
    return (_int64(_get(mbo, "ts_recv")), ascii_codes(_get(mbo, "action")), ascii_codes(_get(mbo, "side")),
            _int64(_get(mbo, "price")), _int64(_get(mbo, "size")), _int64(_get(mbo, "order_id")),
            _int64(_get(mbo, "flags")))


def _mbp_columns(mbp):
    hdr = (_int64(_get(mbp, "ts_recv")), ascii_codes(_get(mbp, "action")), ascii_codes(_get(mbp, "side")),
           _int64(_get(mbp, "price")), _int64(_get(mbp, "size")), _int64(_get(mbp, "flags")))
    px = tuple(np.ascontiguousarray(_int64(_get(mbp, f"{s}_px_{i:02d}")), dtype=np.int64)
               for s in ("bid", "ask") for i in range(TOP))
    szct = tuple(np.ascontiguousarray(_get(mbp, f"{s}_{f}_{i:02d}"), dtype=np.uint32)
                 for f in ("sz", "ct") for s in ("bid", "ask") for i in range(TOP))
    return hdr, px, szct


def _no_state_row() -> np.ndarray:
    cur = np.full(NCOL, np.nan)
    for c in (C_WMAXI, C_WMAXI + 1, C_WIDX, C_WIDX + 1):
        cur[c] = -1
    return cur


class BarBuilder:
    """Resumable 5-second bar builder for one instrument of one session (see module doc)."""

    def __init__(self, params: BarParams, order_capacity: int = 1 << 12) -> None:
        self.params = params
        self._edges = params.band_edges_fixed
        self.gi = np.zeros(GI_LEN, np.int64)
        self.gi[G_CURSOR] = params.window_start_ns
        self.gi[G_TLTS] = -1
        self.gf = np.full(GF_LEN, np.nan)
        self.lv = np.zeros(6 * TOP, np.int64)
        self.lv[: 2 * TOP] = UNDEF
        self.cur = _no_state_row()
        self.tw = np.full(NTW, np.nan)
        self.acc = np.zeros(ACC_LEN)
        self.acc[A_TLPX] = np.nan
        cap = 1 << max(4, int(order_capacity - 1).bit_length())
        self._alloc_orders(cap)
        self.depth = np.zeros((2, 0), np.int64)  # placed around the first resting price
        self.lim = np.zeros((2, NB_), np.int64)
        self.cum = np.zeros((2, NB_), np.int64)
        self.bq = np.full(2 * NB_, np.nan)

    def _alloc_orders(self, cap: int) -> None:
        self.otab = np.zeros((cap, 4), np.int64)
        self.otab[:, O_SIDE] = -1

    def _grow_orders(self) -> None:
        old = self.otab
        self._alloc_orders(2 * old.shape[0])
        _orehash(old, self.otab)

    def _grow_depth(self, tick: int) -> None:
        """Widen the per-tick depth array to hold ``tick`` (with room on both sides)."""
        old, base = self.depth, int(self.gi[G_DBASE])
        n = old.shape[1]
        lo, hi = (tick, tick) if n == 0 else (min(base, tick), max(base + n - 1, tick))
        span = hi - lo + 1
        size = max(2 * n, span + 2048)
        if size > MAX_DEPTH_TICKS:
            raise ValueError(f"a resting price at tick {tick} ({tick * self.params.tick_size} points) would make "
                             f"the book's depth span {span} ticks (at most {MAX_DEPTH_TICKS} are kept)")
        new_base = lo - (size - span) // 2
        self.depth = np.zeros((2, size), np.int64)
        if n:
            self.depth[:, base - new_base:base - new_base + n] = old
        self.gi[G_DBASE] = new_base

    @property
    def bars_emitted(self) -> int:
        return int(self.gi[G_K])

    @property
    def live_orders(self) -> int:
        return int(self.gi[G_NORD])

    # ---- feeding ----
    def apply(self, mbo, mbp10) -> pd.DataFrame:
        """Feed MBO records (feed order) and the MBP-10 rows the book emitted for exactly
        them; return the bars completed so far (every bar ending at or before the latest
        effective time seen), in bar order."""
        ts, act, side, px, sz, oid, fl = _mbo_columns(mbo)
        hdr, spx, sszct = _mbp_columns(mbp10)
        n, ns = ts.shape[0], hdr[0].shape[0]
        sidx = np.empty(n, np.int64)
        matched = _match_states(ts, act, side, px, sz, fl, *hdr, sidx) if n else 0
        if matched != ns:
            raise ValueError(f"{ns - matched} of {ns} MBP-10 rows match no F_LAST record of this batch "
                             "(feed the rows the order book produced from exactly these records)")
        if n == 0:
            return self._frame(*self._empty_out(0))
        if ns == 0:  # numba needs typed tuples even when there are no states
            spx = tuple(np.zeros(0, np.int64) for _ in range(2 * TOP))
            sszct = tuple(np.zeros(0, np.uint32) for _ in range(4 * TOP))
        p = self.params
        tmax = int(ts.max())
        if self.gi[G_HAVE_T]:
            tmax = max(tmax, int(self.gi[G_LAST_T]))
        out = self._empty_out(self._bound(tmax))
        i = 0
        while True:
            i, status = _run(ts, act, side, px, sz, oid, fl, sidx, spx, sszct, i, p.window_start_ns, p.bar_ns,
                             p.n_bars, self._edges, p.tick_fixed, float(p.wall_z), self.gi, self.gf, self.lv,
                             self.cur, self.tw, self.acc, np.empty(TOP), self.otab, self.depth, self.lim, self.cum,
                             self.bq, *out)
            if status == OK:
                break
            if status == NEED_ORDERS:
                self._grow_orders()
            elif status == NEED_DEPTH:
                self._grow_depth(int(self.gi[G_NEED_TICK]))
            else:
                r = int(self.gi[G_BAD_REC])
                raise ValueError(f"record {r} of the batch (order_id {int(oid[r])}, action "
                                 f"{chr(int(act[r]))}): price {int(px[r])} (fixed-point) is not a multiple of "
                                 f"the tick size {p.tick_size}")
        return self._frame(*out)

    def finish(self) -> pd.DataFrame:
        """Close every remaining bar through window_end (carrying the last state)."""
        p = self.params
        out = self._empty_out(self._bound(p.window_end_ns))
        _advance(p.window_end_ns, p.window_start_ns, p.bar_ns, p.n_bars, self.bq, float(p.wall_z), self.gi,
                 self.gf, self.lv, self.tw, self.cur, np.empty(TOP), self.acc, *out)
        return self._frame(*out)

    def _bound(self, t: int) -> int:
        p = self.params
        k = int(self.gi[G_K])
        ends = (t - p.window_start_ns) // p.bar_ns if t >= p.window_start_ns else 0
        return int(max(0, min(p.n_bars - k, ends - k + 1)))

    def _empty_out(self, cap: int):
        self.gi[G_NOUT] = 0
        return np.empty((cap, NCOL)), np.empty(cap, np.int64), np.empty(cap, np.int64)

    def _frame(self, out, out_ts, out_k) -> pd.DataFrame:
        m = int(self.gi[G_NOUT])
        self.gi[G_NOUT] = 0
        p = self.params
        cols = {"bar_ts": p.window_start_ns + out_k[:m] * p.bar_ns}
        for c, name in enumerate(FEATURE_COLUMNS):
            if c == C_TLTS:
                cols[name] = out_ts[:m].copy()
            elif name in INT_COLUMNS:
                cols[name] = out[:m, c].astype(np.int64)
            else:
                cols[name] = out[:m, c].copy()
        return pd.DataFrame(cols, columns=list(BAR_COLUMNS))

    # ---- checkpoint ----
    _STATE = ("gi", "gf", "lv", "cur", "tw", "acc", "otab", "depth", "lim", "cum", "bq")

    def state_bytes(self) -> bytes:
        p = self.params
        buf = io.BytesIO()
        np.savez(buf, format=np.array(FORMAT),
                 params_i=np.array([p.window_start_ns, p.window_end_ns, p.bar_ns], np.int64),
                 params_f=np.array([p.tick_size, p.wall_z], np.float64),
                 **{k: getattr(self, k) for k in self._STATE})
        return buf.getvalue()

    @classmethod
    def from_state_bytes(cls, data: bytes) -> "BarBuilder":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise ValueError(f"not a bar-builder state ({z['format']!r}, expected {FORMAT!r})")
            pi, pf = z["params_i"], z["params_f"]
            params = BarParams(int(pi[0]), int(pi[1]), int(pi[2]), float(pf[0]), float(pf[1]))
            b = cls.__new__(cls)
            b.params = params
            b._edges = params.band_edges_fixed
            for k in cls._STATE:
                setattr(b, k, z[k].copy())
        return b


def build_bars(mbo, mbp10, params: BarParams) -> pd.DataFrame:
    """All bars of the window from one session's records in one pass."""
    b = BarBuilder(params)
    return pd.concat([b.apply(mbo, mbp10), b.finish()], ignore_index=True)
