"""The 5-second bar kernel before and after the full-depth bands (FEATURES.md §3 fix).

``old`` is the bar kernel as it stood at commit ``TOP10_COMMIT`` (band quantities over the
ten best levels), loaded from git history into a throwaway module; ``new`` is the current
``mbolake.features.bars``. Two parts:

1. Feature values on the generated sample's first session (what ``make demo`` generates:
   2025-11-03, intensity 300,000, seed 7; front month ESZ5): share of bars whose p3_5 /
   p5_10 band held depth (``depth_*_frac`` > 0, at the bar's end and on average over the
   bar), and the p3_5 flow (max |value|, bars with |value| > 1, bars with any flow).
2. CPU time (``time.process_time``, this process only, so other load on the machine counts
   less than in wall time) of the order book + bar builder over the front month of the
   generated ~10 M-record session (``bench_bronze.bench_input``), 1 M-record chunks,
   old and new alternated ``--repeat`` times; the book alone is timed too.

Appends a JSON line to benchmarks/results/bars.jsonl.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOP10_COMMIT = "938fb74"  # the last commit whose bar kernel summed the ten levels only
P = "bar5s_"


def load_top10_kernel():
    source = subprocess.run(["git", "show", f"{TOP10_COMMIT}:lib/mbolake/features/bars.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="bars_top10_"))
    path = folder / "bars_top10.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mbolake.features._bars_top10", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # relative imports resolve in mbolake.features
    return module


def sample_session():
    from mbolake.book import OrderBook
    from mbolake.sample import synth

    date = dt.date(2025, 11, 3)
    rec, intervals = synth.generate_session_records(date, synth.SynthParams(intensity=300_000, seed=7))
    front = rec[rec["instrument_id"] == intervals["ESZ5"][0][2]]
    return date, front, OrderBook().apply(front)


def feature_figures(kernel, date, front, rows) -> dict:
    from mbolake.core.products import get_product

    es = get_product("ES")
    prm = kernel.BarParams.for_session(date, tick_size=es.tick_size, timezone=es.timezone)
    df = kernel.build_bars(front, rows, prm)
    out = {}
    for band in ("p3_5", "p5_10"):
        for side in ("below", "above"):
            for stat in ("eob", "twa"):
                out[f"{band}_{side}_{stat}_share"] = round(float((df[P + f"depth_{side}_{band}_frac_{stat}"] > 0)
                                                                 .mean()), 4)
    for side in ("bid", "ask"):
        flow = df[P + f"flow_net_volnorm_{side}_p3_5_sum"].abs()
        out[f"p3_5_{side}_flow_max"] = round(float(flow.max()), 3)
        out[f"p3_5_{side}_flow_bars_over_1"] = int((flow > 1).sum())
        out[f"p3_5_{side}_flow_bars"] = int((flow > 0).sum())
    return out


def front_month_chunks(path: Path):
    from mbolake.io.dbn import iter_mbo_chunks

    front = None
    for _, records in iter_mbo_chunks(path):
        if front is None:
            ids, counts = np.unique(records["instrument_id"], return_counts=True)
            front = ids[np.argmax(counts)]
        yield records[records["instrument_id"] == front]


def cpu_book_and_bars(kernel, chunks, date) -> tuple[float, float, int]:
    """(CPU s book + bars, CPU s book alone measured inside the same run, records)."""
    from mbolake.book import OrderBook
    from mbolake.core.products import get_product

    es = get_product("ES")
    prm = kernel.BarParams.for_session(date, tick_size=es.tick_size, timezone=es.timezone)
    book, bars = OrderBook(), kernel.BarBuilder(prm)
    book_cpu = total_cpu = 0.0
    n = 0
    for chunk in chunks:
        t0 = time.process_time()
        rows = book.apply(chunk)
        t1 = time.process_time()
        bars.apply(chunk, rows)
        t2 = time.process_time()
        book_cpu += t1 - t0
        total_cpu += t2 - t0
        n += len(chunk)
        del rows
    t0 = time.process_time()
    bars.finish()
    total_cpu += time.process_time() - t0
    return total_cpu, book_cpu, n


def main() -> None:
    from mbolake.features import bars as new

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000_000, help="size of the generated session for the CPU part")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    old = load_top10_kernel()

    date, front, rows = sample_session()
    figures = {name: feature_figures(k, date, front, rows) for name, k in (("old", old), ("new", new))}
    print(f"sample session {date} ESZ5: {len(front):,} records")
    for key in figures["new"]:
        print(f"  {key:28s} old {figures['old'][key]!s:>8}  new {figures['new'][key]!s:>8}")
    del front, rows

    from bench_bronze import bench_input

    path = bench_input(args.records)
    chunks = list(front_month_chunks(path))
    big_date = dt.date(2025, 11, 4)
    for k in (old, new):  # compile outside the timing
        cpu_book_and_bars(k, [chunks[0][:10_000]], big_date)
    cpu = {"old": [], "new": []}
    for _ in range(args.repeat):
        for name, k in (("old", old), ("new", new)):
            total, book, n = cpu_book_and_bars(k, chunks, big_date)
            cpu[name].append((total, book))
            print(f"  {name}: book + bars {total:.2f} s CPU (book {book:.2f} s, bars {total - book:.2f} s), "
                  f"{n:,} front-month records")
    best = {name: min(v) for name, v in cpu.items()}
    change = best["new"][0] / best["old"][0] - 1
    bars_change = (best["new"][0] - best["new"][1]) / (best["old"][0] - best["old"][1]) - 1
    print(f"book + bars CPU, best of {args.repeat}: old {best['old'][0]:.2f} s, new {best['new'][0]:.2f} s "
          f"({change:+.1%}); bar builder alone {bars_change:+.1%}")
    (HERE / "results").mkdir(exist_ok=True)
    with open(HERE / "results" / "bars.jsonl", "a") as f:
        f.write(json.dumps({"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                            "machine": platform.machine(), "cpus": os.cpu_count(), "load": os.getloadavg()[0],
                            "records": args.records, "features": figures, "cpu": cpu}) + "\n")


if __name__ == "__main__":
    main()
