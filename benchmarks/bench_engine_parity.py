"""What the demo's engine-parity step costs: one generated session of the demo's size
(intensity 300 k, as ``02_generate_sample``) through Bronze and the six stages on ``local``,
then ``check_engine_parity`` (copy of the session's Bronze rows, the six stages on Spark in
a scratch lake, nine tables compared). Prints the Spark start, each scratch stage and the
comparison separately, and the load average (the machine is shared). Appends a JSON line to
benchmarks/results/engine_parity.jsonl. Runs in a throwaway project (its own lake).

    .venv/bin/python benchmarks/bench_engine_parity.py [--intensity 300000]
"""
from __future__ import annotations

import argparse
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


def main(intensity: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="mbolake-parity-"))
    shutil.copytree(REPO / "conf", root / "conf")
    os.environ["MBOLAKE_HOME"] = str(root)
    from mbolake.runtime.context import context
    from mbolake.sample import synth
    from mbolake.stages import (
        BronzeProcessDBN,
        GoldExtractSetupVectors,
        SilverAddSessionLevels,
        SilverComputeBar5sFeatures,
        SilverExtractLevelApproach2m,
        SilverNormalizeMBO,
        SilverRebuildOrderBook,
        engine_parity,
    )
    from mbolake.stages.base import Stage

    try:
        ctx = context("local")
        synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 12),
                                                                          intensity=intensity), progress=False)
        BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
        for cls in (SilverRebuildOrderBook, SilverNormalizeMBO, SilverAddSessionLevels, SilverComputeBar5sFeatures,
                    SilverExtractLevelApproach2m, GoldExtractSetupVectors):
            cls().run(ctx, underlier="ES", engine="local")
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        ctx.spark.range(1).count()
        timings = {"spark_start": time.perf_counter() - t0}
        run = Stage.run

        def timed_run(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return run(self, *args, **kwargs)
            finally:
                timings[f"spark {type(self).__name__}"] = time.perf_counter() - t

        Stage.run = timed_run
        parity = engine_parity.check_engine_parity(ctx, underlier="ES")
        Stage.run = run
        stages = sum(v for k, v in timings.items() if k.startswith("spark "))
        timings["copy_and_compare"] = parity.seconds - stages
        timings["check_engine_parity"] = parity.seconds
        load = (load_before, os.getloadavg()[0])
        for name, seconds in timings.items():
            print(f"{name:45s} {seconds:7.1f} s")
        print(f"session {parity.session_date}: {parity.bronze_rows:,} Bronze rows, equal={parity.equal}; "
              f"load average {load[0]:.1f} before, {load[1]:.1f} after")
        record = {"benchmark": "engine_parity", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "machine": f"{platform.machine()} {os.cpu_count()} cpu", "bronze_rows": parity.bronze_rows,
                  "intensity": intensity, "equal": parity.equal, "load_average": [round(v, 1) for v in load],
                  "seconds": {k: round(v, 1) for k, v in timings.items()}}
        (HERE / "results").mkdir(exist_ok=True)
        with open(HERE / "results" / "engine_parity.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intensity", type=int, default=300_000)
    main(parser.parse_args().intensity)
