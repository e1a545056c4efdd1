"""The historical pipeline on one generated ~10 M-record ES session, Bronze to Gold.

Prints the wall time of every stage and the total, and for the local stage engine how much
of it the producer (Delta reads + kernels, on its own thread) took and how long the delta-rs
write calls ran (the two overlap). Appends a JSON line to benchmarks/results/pipeline.jsonl. Runs in a throwaway project (its own lake).
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


class StageClock:
    """Splits a local-engine stage's time: the producer (Delta reads + kernels, on its own
    thread) and the delta-rs write calls it overlaps with."""

    def __init__(self):
        from mbolake.engines import local as local_engine

        self.producing = self.writing = 0.0
        produce, replace = local_engine.produced_in_thread, local_engine.replace

        def timed_parts(parts):
            items = iter(parts)
            while True:
                t = time.perf_counter()
                item = next(items, None)
                self.producing += time.perf_counter() - t
                if item is None:
                    return
                yield item

        def timed_replace(*args, **kwargs):
            t = time.perf_counter()
            try:
                return replace(*args, **kwargs)
            finally:
                self.writing += time.perf_counter() - t

        local_engine.produced_in_thread = lambda parts, depth=2: produce(timed_parts(parts), depth)
        local_engine.replace = timed_replace

    def take(self) -> tuple[float, float]:
        out = (self.producing, self.writing)
        self.producing = self.writing = 0.0
        return out


def main() -> None:
    from bench_bronze import bench_input

    path = bench_input(10_000_000)
    root = Path(tempfile.mkdtemp(prefix="mbolake-pipeline-"))
    shutil.copytree(REPO / "conf", root / "conf")
    os.environ["MBOLAKE_HOME"] = str(root)
    from mbolake.runtime.context import context
    from mbolake.stages import (
        BronzeProcessDBN,
        GoldExtractSetupVectors,
        SilverAddSessionLevels,
        SilverComputeBar5sFeatures,
        SilverExtractLevelApproach2m,
        SilverNormalizeMBO,
        SilverRebuildOrderBook,
    )

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
        rows, split = {}, {}
        clock = StageClock()
        print(f"stage engine: {ctx.profile.settings.get('compute', {}).get('stage_engine', 'spark')}")
        print(f"{'stage':30s} {'seconds':>8s}   {'reads+kernels':>13s} {'in Delta write':>14s}   rows out")
        for name, run in steps:
            t = time.perf_counter()
            summary = run()
            timings[name] = time.perf_counter() - t
            split[name] = [round(v, 1) for v in clock.take()]
            rows[name] = summary.rows_out
            print(f"{name:30s} {timings[name]:8.1f}   {split[name][0]:13.1f} {split[name][1]:14.1f}   {rows[name]}",
                  flush=True)
        total = sum(v for k, v in timings.items() if k != "spark_start")
        print(f"{'total (stages)':30s} {total:8.1f} s   (+ {timings['spark_start']:.1f} s Spark start)")
        record = {"benchmark": "pipeline", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "machine": f"{platform.machine()} {os.cpu_count()} cpu", "input": f"{path.name} (10 M records)",
                  "seconds": {k: round(v, 1) for k, v in timings.items()}, "total_seconds": round(total, 1),
                  "producer_and_write_seconds": split,
                  "rows_out": rows}
        (HERE / "results").mkdir(exist_ok=True)
        with open(HERE / "results" / "pipeline.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
