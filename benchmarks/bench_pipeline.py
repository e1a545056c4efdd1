"""The historical pipeline on one generated ~10 M-record ES session, Bronze to Gold.

Prints the wall time of every stage and the total, and appends a JSON line to
benchmarks/results/pipeline.jsonl. Runs in a throwaway project (its own lake).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def main() -> None:
    from bench_bronze import bench_input

    path = bench_input(10_000_000)
    root = Path(tempfile.mkdtemp(prefix="mbolake-pipeline-"))
    shutil.copytree(REPO / "conf", root / "conf")
    os.environ["MBOLAKE_HOME"] = str(root)
    from mbolake.context import context
    from mbolake.stages.bronze import BronzeProcessDBN
    from mbolake.stages.gold_setup import GoldExtractSetupVectors
    from mbolake.stages.silver_book import SilverRebuildOrderBook
    from mbolake.stages.silver_features import (SilverAddSessionLevels, SilverComputeBar5sFeatures,
                                                SilverExtractLevelApproach2m)
    from mbolake.stages.silver_normalize import SilverNormalizeMBO

    try:
        ctx = context("local")
        folder = Path(ctx.profile.raw_dbn_root) / "ES" / "FUT" / "20251104"
        folder.mkdir(parents=True)
        shutil.copy(path, folder)
        t0 = time.perf_counter()
        ctx.spark.range(1).count()
        timings = {"spark_start": time.perf_counter() - t0}
        steps = [("BronzeProcessDBN", lambda: BronzeProcessDBN().run(ctx, underlier="ES", progress=False))]
        steps += [(cls.__name__, lambda cls=cls: cls().run(ctx, underlier="ES")) for cls in (
            SilverRebuildOrderBook, SilverNormalizeMBO, SilverAddSessionLevels, SilverComputeBar5sFeatures,
            SilverExtractLevelApproach2m, GoldExtractSetupVectors)]
        rows = {}
        for name, run in steps:
            t = time.perf_counter()
            summary = run()
            timings[name] = time.perf_counter() - t
            rows[name] = getattr(summary, "rows_out", None) or getattr(summary, "state_rows", None) or getattr(
                summary, "records_ingested", None)
            print(f"{name:30s} {timings[name]:8.1f} s   rows out {rows[name]}", flush=True)
        total = sum(v for k, v in timings.items() if k != "spark_start")
        print(f"{'total (stages)':30s} {total:8.1f} s   (+ {timings['spark_start']:.1f} s Spark start)")
        record = {"benchmark": "pipeline", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "machine": f"{platform.machine()} {os.cpu_count()} cpu", "input": f"{path.name} (10 M records)",
                  "seconds": {k: round(v, 1) for k, v in timings.items()}, "total_seconds": round(total, 1),
                  "rows_out": rows}
        (HERE / "results").mkdir(exist_ok=True)
        with open(HERE / "results" / "pipeline.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
