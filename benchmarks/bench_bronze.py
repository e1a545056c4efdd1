"""Bronze ingest throughput: .dbn.zst -> committed Delta table, beside Databento's decode-only.

Prints records/s and writes a JSON line to benchmarks/results/. The input is one generated
ES session (default ~10 M records), made once and kept under benchmarks/data/ (ignored by git).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def bench_input(records: int) -> Path:
    from mbolake.sample import synth

    out = HERE / "data" / f"es_{records}"
    params = synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 4), intensity=records, seed=11)
    path = synth.session_path(out, params.first_date)
    if not path.exists():
        print(f"generating a {records:,}-record session (once) ...")
        synth.generate_sample(out, params, progress=False)
    return path


def databento_decode_only(path: Path) -> tuple[int, float]:
    import databento

    t0 = time.perf_counter()
    store = databento.DBNStore.from_file(str(path))
    n = sum(len(chunk) for chunk in store.to_ndarray(count=1_000_000))
    return n, time.perf_counter() - t0


def mbolake_decode_only(path: Path) -> tuple[int, float]:
    from mbolake.io.dbn import iter_mbo_chunks

    t0 = time.perf_counter()
    n = sum(len(records) for _, records in iter_mbo_chunks(path))
    return n, time.perf_counter() - t0


def bronze_end_to_end(path: Path) -> tuple[int, float]:
    """A fresh lake; the time covers hashing, decoding, conversion, Parquet and the Delta commit."""
    root = Path(tempfile.mkdtemp(prefix="mbolake-bench-"))
    try:
        shutil.copytree(REPO / "conf", root / "conf")
        os.environ["MBOLAKE_HOME"] = str(root)
        from mbolake.runtime.context import context
        from mbolake.stages.bronze import BronzeProcessDBN

        ctx = context("local")
        folder = Path(ctx.profile.raw_dbn_root) / "ES" / "FUT" / "20251104"
        folder.mkdir(parents=True)
        os.link(path, folder / path.name) if path.stat().st_dev == folder.stat().st_dev else shutil.copy(path, folder)
        t0 = time.perf_counter()
        summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
        seconds = time.perf_counter() - t0
        [outcome] = summary.details.itertuples()
        assert outcome.status == "ingested", outcome
        return outcome.record_count, seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    args = parser.parse_args()
    path = bench_input(args.records)
    results = {}
    for name, fn in (("databento_decode_only", databento_decode_only), ("mbolake_decode_only", mbolake_decode_only),
                     ("bronze_end_to_end", bronze_end_to_end)):
        n, seconds = fn(path)
        results[name] = {"records": n, "seconds": round(seconds, 3), "records_per_s": round(n / seconds)}
        print(f"{name:24s} {n:>12,} records {seconds:8.2f} s {n / seconds:>14,.0f} records/s")
    ratio = results["bronze_end_to_end"]["records_per_s"] / results["databento_decode_only"]["records_per_s"]
    print(f"bronze end-to-end / databento decode-only = {ratio:.2f}")
    record = {
        "benchmark": "bronze", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu {platform.platform()}",
        "input": f"{path.name} ({path.stat().st_size:,} bytes, generated ES session)", "results": results,
        "ratio_end_to_end_vs_databento_decode": round(ratio, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "bronze.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
