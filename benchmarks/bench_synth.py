"""Print generation throughput of the synthetic ES MBO generator (records/s).

Usage: python benchmarks/bench_synth.py [intensity]   (default 1_000_000 records)
Measures generate_session_records (numba book simulation + assembly into MBO_DTYPE)
and, separately, the full file write (zstd DBN) for one session. The first call
(numba compile / cache load) is excluded.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from mbolake.sample import synth


def main() -> None:
    intensity = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    params = synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 3), intensity=intensity, seed=7)
    synth.generate_session_records(params.first_date, replace(params, intensity=20_000))  # warm-up / compile
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        rec, _ = synth.generate_session_records(params.first_date, params)
        times.append(time.perf_counter() - t0)
    best, median = min(times), sorted(times)[1]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {dt.date.today()}")
    print(f"generate_session_records: {len(rec):,} records; best {best:.3f} s = {len(rec) / best:,.0f} records/s, "
          f"median of 3 {median:.3f} s = {len(rec) / median:,.0f} records/s")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        (path,) = synth.generate_sample(Path(tmp), params, progress=False)
        t1 = time.perf_counter()
        size = path.stat().st_size
    print(f"generate_sample (incl. zstd DBN write): {len(rec):,} records in {t1 - t0:.3f} s = "
          f"{len(rec) / (t1 - t0):,.0f} records/s, file {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
