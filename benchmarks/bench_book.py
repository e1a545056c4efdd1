"""Benchmark of the order-book kernel on a realistic ES session.

    .venv/bin/python benchmarks/bench_book.py [--records 10000000] [--repeat 3] [--no-harsh]
                                              [--chunk-records 131072]

Input: one generated CME-style ES session (``mbolake.sample.synth``, 2025-11-04, seed 11, three
instruments, ~54k live orders, adds near the touch, cancels, modifies, T/F/C trade groups),
the same .dbn.zst file bench_bronze.py uses (made once under benchmarks/data/ when missing).
Figures, each the best of ``--repeat`` runs on one core:

1. apply-only: ``OrderBook().apply(records, emit_rows=False)`` on the decoded session in
   memory (L3 book, quality counters, top-10 change tracking; no decode, no rows).
2. apply + MBP-10 rows from memory: the same in 1 M-record chunks with rows (no decode).
3. full replay: ``iter_mbo_chunks(path, chunk_records)`` (zstd + DBN decode,
   ``--chunk-records`` records a chunk, 131,072 by default) and ``OrderBook.apply(chunk)``
   building the MBP-10 row columns, from a fresh book, one thread. Also the same with
   1 M-record chunks (``full_replay_1m_chunks``, the default of ``iter_mbo_chunks``) and
   with the decode in a second thread (``full_replay_2_threads``, two cores).
   And ``mbolake book replay --out`` (``book_replay.replay``): the same replay writing the
   rows to a zstd Parquet file, the writer on a second thread (once, wall clock).
4. Databento decode-only on the same file: ``DBNStore.from_file(path).to_ndarray(count=1_000_000)``
   (the reference of the goal ratio) and with ``count=chunk_records`` (the replay's chunking).
   The replays and Databento's decodes alternate within each repeat, so all see the same load.
5. peak RSS of the process (``ru_maxrss``; input in memory included).
6. memory of a big day: a generated ~30 M-record session (``--memory-records``, made once
   with bench_bronze.bench_input under benchmarks/data/) replayed streaming in a child
   process: ``iter_mbo_chunks`` 1 M records at a time, ``OrderBook.apply`` with MBP-10 rows,
   rows dropped after each chunk; the child's peak RSS (``VmHWM``) and its records/s.

Secondary: apply-only on bench_book's harsh random stream (uniform instrument choice,
deep books, random cancels) unless ``--no-harsh``. A JSON line goes to results/book.jsonl.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

from mbolake.book import OrderBook
from mbolake.io import book_replay
from mbolake.io.dbn import F_LAST, MBO_DTYPE, RTYPE_MBO, iter_mbo_chunks, read_mbo

HERE = Path(__file__).resolve().parent
SESSION = dt.date(2025, 11, 4)
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
    """The harsh random stream: a valid MBO stream of about n records (MBO_DTYPE)."""
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


def session_file(records: int) -> Path:
    """The realistic input: one generated ES session as .dbn.zst (generated once)."""
    from mbolake.sample import synth

    out = HERE / "data" / f"es_{records}"
    params = synth.SynthParams(sessions=1, first_date=SESSION, intensity=records, seed=11)
    path = synth.session_path(out, SESSION)
    if not path.exists():
        print(f"generating a {records:,}-record ES session (once) -> {path} ...")
        synth.generate_sample(out, params, progress=False)
    return path


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def apply_only(records: np.ndarray) -> OrderBook:
    book = OrderBook()
    book.apply(records, emit_rows=False)
    return book


def apply_rows_chunked(records: np.ndarray, chunk: int = 1_000_000) -> int:
    book, rows = OrderBook(), 0
    for lo in range(0, len(records), chunk):
        out = book.apply(records[lo : lo + chunk])
        rows += len(out["ts_recv"])
    return rows


def full_replay(path: Path, chunk_records: int = 1_000_000) -> tuple[int, int]:
    book, n, rows = OrderBook(), 0, 0
    for _, chunk in iter_mbo_chunks(path, chunk_records):
        out = book.apply(chunk)
        n += len(chunk)
        rows += len(out["ts_recv"])
    return n, rows


def full_replay_pipelined(path: Path, chunk_records: int = 1_000_000) -> tuple[int, int]:
    """Same work, decode in a second thread (zstd and the kernel release the GIL).

    Up to 4 chunks are alive at once (one applied, two queued, one being put): the
    decoder's buffer pool takes a new buffer while a chunk is still referenced."""
    import queue
    import threading

    chunks: queue.Queue = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for _, chunk in iter_mbo_chunks(path, chunk_records):
                chunks.put(chunk)
                del chunk
        finally:
            chunks.put(None)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    book, n, rows = OrderBook(), 0, 0
    while (chunk := chunks.get()) is not None:
        out = book.apply(chunk)
        n += len(chunk)
        rows += len(out["ts_recv"])
    worker.join()
    return n, rows


def streaming_replay_child(path: str) -> None:
    """Child process of figure 6: replay streaming, print records, rows, seconds, peak RSS."""
    OrderBook().apply(np.zeros(0, MBO_DTYPE))
    t0 = time.perf_counter()
    n, rows = full_replay(Path(path))
    s = time.perf_counter() - t0
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork + exec)
    status = Path("/proc/self/status")
    hwm = [ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")] if status.exists() else []
    peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"records": n, "rows": rows, "seconds": round(s, 3), "peak_rss_mb": round(peak)}))


def streaming_replay_memory(records: int) -> dict:
    import subprocess
    import sys

    sys.path.insert(0, str(HERE))
    from bench_bronze import bench_input

    path = bench_input(records)
    out = subprocess.run([sys.executable, __file__, "--replay-child", str(path)], check=True,
                         capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["input"] = f"{path.name} ({path.stat().st_size:,} bytes), bench_bronze.bench_input({records:,})"
    return res


def databento_decode_only(path: Path, count: int = 1_000_000) -> int:
    import databento

    store = databento.DBNStore.from_file(str(path))
    return sum(len(chunk) for chunk in store.to_ndarray(count=count))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000_000, help="size of the generated ES session")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-harsh", action="store_true", help="skip the secondary harsh random stream")
    ap.add_argument("--harsh-records", type=int, default=4_000_000)
    ap.add_argument("--chunk-records", type=int, default=131_072,
                    help="records per decoded chunk in the full replay (figure 3)")
    ap.add_argument("--memory-records", type=int, default=30_000_000,
                    help="size of the session for the streaming peak-RSS figure (0 skips it)")
    ap.add_argument("--replay-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.replay_child:
        streaming_replay_child(args.replay_child)
        return

    path = session_file(args.records)
    t0 = time.perf_counter()
    _, records = read_mbo(path)
    load_s = time.perf_counter() - t0
    n = len(records)
    OrderBook().apply(records[:20_000], emit_rows=False)  # compile / load the cached kernel
    OrderBook().apply(records[:20_000])
    warm = records[:20_000]
    warm.flags.writeable = False  # decoded chunks are read-only: their own kernel signature
    OrderBook().apply(warm)

    res: dict[str, dict] = {}

    def put(name: str, seconds: float, count: int, **extra) -> None:
        res[name] = {"records": count, "seconds": round(seconds, 3), "records_per_s": round(count / seconds), **extra}

    s, book = best_of(args.repeat, lambda: apply_only(records))
    put("apply_only", s, n)
    s, rows = best_of(args.repeat, lambda: apply_rows_chunked(records))
    put("apply_rows_from_memory", s, n, rows=rows)
    # replays and Databento's decodes alternate, so all see the same machine load
    cr = args.chunk_records
    timed = {
        "full_replay": lambda: full_replay(path, cr),
        "databento_decode_only": lambda: (databento_decode_only(path), None),
        "full_replay_2_threads": lambda: full_replay_pipelined(path, cr),
        "databento_decode_same_chunks": lambda: (databento_decode_only(path, cr), None),
        "full_replay_1m_chunks": lambda: full_replay(path, 1_000_000),
    }
    runs: dict[str, list[float]] = {name: [] for name in timed}
    counts: dict[str, tuple] = {}
    for _ in range(args.repeat):
        for name, fn in timed.items():
            s, counts[name] = best_of(1, fn)
            runs[name].append(s)
    for name, (count, nrows) in counts.items():
        extra = {"rows": nrows} if nrows is not None else {}
        put(name, min(runs[name]), count, seconds_range=[round(min(runs[name]), 3), round(max(runs[name]), 3)], **extra)
    with tempfile.TemporaryDirectory() as tmp:  # the CLI's path: replay + Parquet on 2 threads
        out_file = Path(tmp) / "mbp10.parquet"
        s, result = best_of(1, lambda: book_replay.replay(path, out_file))
        put("replay_to_parquet", s, result.records, rows=result.rows, parquet_bytes=out_file.stat().st_size)
    harsh_src = None
    if not args.no_harsh:
        harsh = synthetic_stream(args.harsh_records, 2, 40_000)
        OrderBook().apply(harsh[:20_000], emit_rows=False)
        s, _ = best_of(args.repeat, lambda: apply_only(harsh))
        put("harsh_apply_only", s, len(harsh))
        harsh_src = f"bench_book.synthetic_stream(n={args.harsh_records:,}, instruments=2, live~40k/instrument)"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    big = streaming_replay_memory(args.memory_records) if args.memory_records else None
    ratio = res["full_replay"]["records_per_s"] / res["databento_decode_only"]["records_per_s"]
    ratio_2t = res["full_replay_2_threads"]["records_per_s"] / res["databento_decode_only"]["records_per_s"]
    ratio_same = res["full_replay"]["records_per_s"] / res["databento_decode_same_chunks"]["records_per_s"]

    q = book.quality()
    now = dt.datetime.now(dt.timezone.utc)
    machine = f"{platform.machine()} {os.cpu_count()} cpu {platform.platform()}, {platform.python_implementation()} {platform.python_version()}"
    source = (f"{path.name} ({path.stat().st_size:,} bytes): generated ES session {SESSION} "
              f"(mbolake.sample.synth, intensity={args.records:,}, seed=11), {n:,} records")
    print(f"date      {now:%Y-%m-%d %H:%M} UTC")
    print(f"machine   {machine}; one core used")
    print(f"input     {source} (decoded in {load_s:.1f} s for figure 1-2, not timed)")
    print(f"book      {len(q)} instruments, live orders at end {int(q.live_orders.sum()):,}, "
          f"event groups {int(q.event_groups.sum()):,}, MBP-10 rows {res['full_replay']['rows']:,}")
    print(f"{'figure':34s} {'M records/s':>12s} {'seconds':>8s}  includes")
    lines = (
        ("apply_only", "L3 book + quality counters + top-10 tracking, no rows, no decode"),
        ("apply_rows_from_memory", "the above + MBP-10 row columns, 1 M-record chunks, no decode"),
        ("full_replay", f"zstd + DBN decode (iter_mbo_chunks, {cr:,}-record chunks) + apply + MBP-10 rows"),
        ("full_replay_1m_chunks", "the same with 1 M-record chunks"),
        ("full_replay_2_threads", f"full replay ({cr:,}-record chunks) with decode in a 2nd thread (2 cores)"),
        ("replay_to_parquet", "`mbolake book replay --out`: the full replay + Parquet (zstd) on a 2nd thread"),
        ("databento_decode_only", "DBNStore.from_file + to_ndarray(count=1M), no book"),
        ("databento_decode_same_chunks", f"DBNStore.from_file + to_ndarray(count={cr:,}), no book"),
        ("harsh_apply_only", f"apply-only on {harsh_src}"),
    )
    for name, what in lines:
        if name in res:
            r = res[name]
            spread = f" [runs {r['seconds_range'][0]:.2f}-{r['seconds_range'][1]:.2f} s]" if "seconds_range" in r else ""
            print(f"{name:34s} {r['records_per_s'] / 1e6:12.2f} {r['seconds']:8.3f}  {what}{spread}")
    print(f"full replay / Databento decode-only (count=1M) = {ratio:.2f}   (best of {args.repeat} each, one core)")
    print(f"  2-thread replay / Databento decode-only (count=1M) = {ratio_2t:.2f};"
          f" full replay / Databento decode-only (count={cr:,}) = {ratio_same:.2f}")
    print(f"peak RSS  {peak_mb:,.0f} MB (whole process, decoded session in memory included)")
    if big:
        print(f"big day   {big['records']:,} records replayed streaming (decode + apply + {big['rows']:,} rows, "
              f"1 M-record chunks) in {big['seconds']:.1f} s = {big['records'] / big['seconds'] / 1e6:.2f} M/s, "
              f"peak RSS {big['peak_rss_mb']:,} MB (child process; {big['input']})")
    record = {
        "benchmark": "book", "date": now.isoformat(timespec="seconds"), "machine": machine,
        "input": source, "harsh_input": harsh_src, "repeat": args.repeat, "results": res,
        "ratio_full_replay_vs_databento_decode": round(ratio, 3),
        "ratio_2_threads_vs_databento_decode": round(ratio_2t, 3),
        "ratio_full_replay_vs_databento_same_chunks": round(ratio_same, 3),
        "chunk_records": cr, "peak_rss_mb": round(peak_mb),
        "streaming_big_day": big,
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "book.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
