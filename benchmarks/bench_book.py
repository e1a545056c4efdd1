"""Benchmark of the order-book kernel: apply-only records/s and peak memory.

    .venv/bin/python benchmarks/bench_book.py [--records 8000000] [--live 40000] [--instruments 2]

Input: a synthetic but valid MBO stream (``mbolake.synth`` when it exists, else the
generator below): adds / cancels / partial cancels / modifies / trade groups (T, F, C)
on both sides of a mid, with tens of thousands of live orders, hundreds of price
levels per side and multi-record event groups. The stream is built before timing; the
timed part is ``OrderBook.apply`` only (book updates, quality counters, top-10 change
detection and MBP-10 rows at F_LAST), after a warm-up run that compiles the kernel.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import resource
import time

import numpy as np
from numba import njit

from mbolake.book import OrderBook
from mbolake.dbn import F_LAST, MBO_DTYPE, RTYPE_MBO

TICK = 250_000_000  # 0.25 in Databento fixed-point


@njit(cache=True)
def _generate(n, n_instr, target_live, seed, action, side, price, size, oid, flags, inst):
    np.random.seed(seed)
    cap = target_live * 4
    live_id = np.zeros((n_instr, cap), np.int64)
    live_side = np.zeros((n_instr, cap), np.int64)
    live_px = np.zeros((n_instr, cap), np.int64)
    live_sz = np.zeros((n_instr, cap), np.int64)
    nlive = np.zeros(n_instr, np.int64)
    mid = np.full(n_instr, 4000 * 4, np.int64)  # in ticks
    next_id = 1
    i = 0
    while i < n:
        k = np.random.randint(0, n_instr)
        m = nlive[k]
        u = np.random.random()
        p_add = 0.42 + (0.3 if m < target_live else -0.1)
        if m == 0 or u < p_add:
            if m >= cap:
                continue
            s = 0 if np.random.random() < 0.5 else 1
            d = 0
            while np.random.random() < 0.75 and d < 400:
                d += 1
            if np.random.random() < 0.05:
                d += np.random.randint(0, 300)
            px = (mid[k] - d) if s == 0 else (mid[k] + 1 + d)
            q = 1 + np.random.randint(0, 20)
            live_id[k, m] = next_id
            live_side[k, m] = s
            live_px[k, m] = px
            live_sz[k, m] = q
            nlive[k] = m + 1
            action[i] = 65
            side[i] = 66 if s == 0 else 65
            price[i] = px * TICK
            size[i] = q
            oid[i] = next_id
            flags[i] = F_LAST
            inst[i] = k
            next_id += 1
            i += 1
            continue
        j = np.random.randint(0, m)
        s = live_side[k, j]
        sch = 66 if s == 0 else 65
        if u < 0.88:  # cancel (full or partial)
            q = live_sz[k, j]
            if q > 1 and np.random.random() < 0.2:
                q = 1 + np.random.randint(0, q - 1)
            action[i] = 67
        elif u < 0.95:  # modify: price move, size up or size down
            r = np.random.random()
            if r < 0.5:  # one tick, staying on its own side of the mid (no crossed book)
                step = 1 if np.random.random() < 0.5 else -1
                if (s == 0 and live_px[k, j] + step <= mid[k]) or (s == 1 and live_px[k, j] + step > mid[k]):
                    live_px[k, j] += step
            elif r < 0.75:
                live_sz[k, j] += 1 + np.random.randint(0, 5)
            elif live_sz[k, j] > 1:
                live_sz[k, j] -= 1
            action[i] = 77
            q = live_sz[k, j]
        else:  # trade group: T (aggressor), F (resting), then C removing the fill
            if i + 3 > n:
                break
            q = live_sz[k, j]
            for t in range(3):
                side[i + t] = sch if t > 0 else (65 if s == 0 else 66)
                price[i + t] = live_px[k, j] * TICK
                size[i + t] = q
                oid[i + t] = live_id[k, j] if t > 0 else 0
                flags[i + t] = F_LAST if t == 2 else 0
                inst[i + t] = k
            action[i] = 84
            action[i + 1] = 70
            action[i + 2] = 67
            i += 3
            m -= 1
            live_id[k, j] = live_id[k, m]
            live_side[k, j] = live_side[k, m]
            live_px[k, j] = live_px[k, m]
            live_sz[k, j] = live_sz[k, m]
            nlive[k] = m
            continue
        side[i] = sch
        price[i] = live_px[k, j] * TICK
        size[i] = q
        oid[i] = live_id[k, j]
        # a few multi-record event groups: leave F_LAST off when the next record is a cancel
        flags[i] = F_LAST if np.random.random() < 0.9 else 0
        inst[i] = k
        i += 1
        if action[i - 1] == 67:
            if q >= live_sz[k, j]:
                m -= 1
                live_id[k, j] = live_id[k, m]
                live_side[k, j] = live_side[k, m]
                live_px[k, j] = live_px[k, m]
                live_sz[k, j] = live_sz[k, m]
                nlive[k] = m
            else:
                live_sz[k, j] -= q
    return i


def synthetic_stream(n: int, n_instruments: int = 2, target_live: int = 40_000, seed: int = 7) -> np.ndarray:
    """A valid MBO stream of about n records (MBO_DTYPE), ts_recv increasing."""
    action = np.zeros(n, np.uint8)
    side = np.zeros(n, np.uint8)
    price = np.zeros(n, np.int64)
    size = np.zeros(n, np.uint32)
    oid = np.zeros(n, np.uint64)
    flags = np.zeros(n, np.uint8)
    inst = np.zeros(n, np.uint32)
    got = _generate(n, n_instruments, target_live, seed, action, side, price, size, oid.view(np.int64), flags, inst)
    rec = np.zeros(got, MBO_DTYPE)
    rec["length"] = 14
    rec["rtype"] = RTYPE_MBO
    rec["publisher_id"] = 1
    rec["instrument_id"] = inst[:got] + 1000
    ts = 1_700_000_000_000_000_000 + np.arange(got, dtype=np.uint64) * 2_000
    rec["ts_recv"] = ts
    rec["ts_event"] = ts - 500
    rec["action"] = action[:got].view("S1")
    rec["side"] = side[:got].view("S1")
    rec["price"] = price[:got]
    rec["size"] = size[:got]
    rec["order_id"] = oid[:got]
    rec["flags"] = flags[:got]
    rec["sequence"] = np.arange(1, got + 1, dtype=np.uint32)
    return rec


def _stream(n: int, instruments: int, live: int) -> tuple[np.ndarray, str]:
    try:
        from mbolake.synth import SynthParams, generate_session_records  # written by another engineer

        records, _ = generate_session_records(dt.date(2024, 3, 12), SynthParams(intensity=1.0))
        if len(records) >= 1_000_000:
            return records, "mbolake.synth.generate_session_records(2024-03-12, intensity=1.0)"
    except Exception:  # not there (yet) or a different signature: use our own stream
        pass
    return synthetic_stream(n, instruments, live), f"bench_book.synthetic_stream(n={n}, instruments={instruments}, live~{live})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=8_000_000)
    ap.add_argument("--instruments", type=int, default=2)
    ap.add_argument("--live", type=int, default=40_000, help="target live orders per instrument")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    records, source = _stream(args.records, args.instruments, args.live)
    gen_s = time.perf_counter() - t0
    OrderBook().apply(records[:10_000])  # compile / load the cached kernel
    OrderBook().apply(records[:10_000], every_record=True)

    def timed(**kw):
        best, rows, book = None, None, None
        for _ in range(args.repeat):
            book = OrderBook()
            t0 = time.perf_counter()
            rows = book.apply(records, **kw)
            s = time.perf_counter() - t0
            best = s if best is None else min(best, s)
        return best, rows, book

    t_book, _, _ = timed(emit_rows=False)
    t_rows, rows, book = timed()
    q = book.quality()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"date            {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine         {platform.machine()} {platform.processor() or ''} {platform.python_implementation()} {platform.python_version()}, 1 core")
    print(f"input           {source}: {len(records):,} records (built in {gen_s:.1f} s, not timed)")
    print(f"book at end     live orders {int(q.live_orders.sum()):,}, levels bid {int(q.bid_levels.sum())} / ask {int(q.ask_levels.sum())}, "
          f"crossed groups {int(q.crossed_groups.sum()):,}, unknown refs {int(q.unknown_order_refs.sum())}")
    print(f"output          {len(rows['ts_recv']):,} MBP-10 rows (top-10 changed at F_LAST)")
    print(f"apply-only      {len(records) / t_book / 1e6:.1f} M records/s  (best of {args.repeat}: {t_book:.3f} s; "
          "L3 book, quality counters, top-10 change tracking; no rows built)")
    print(f"apply + MBP-10  {len(records) / t_rows / 1e6:.1f} M records/s  (best of {args.repeat}: {t_rows:.3f} s; "
          "the above plus the MBP-10 row columns)")
    print(f"peak RSS        {peak_mb:,.0f} MB (whole process, input included)")


if __name__ == "__main__":
    main()
