"""rt inference alone: setup vector committed -> its score visible in ``gold.inference_scores_stream``.

A scratch project: a tiny champion (synthetic snapshot, one sweep trial, registered), served by
``mlflow models serve`` (one worker), a local Kafka broker for ``inference_scores``, rt inference
in this process with a 1 s trigger. Then ``--rate`` setup vectors are appended (delta-rs, one
commit) every second for ``--seconds``. Latency per vector: from the return of its append to the
first poll (every 0.1 s) that sees its score. Per micro-batch: the HTTP scoring call, the Delta
append of the scores and the publish, as rt inference reports them.
Usage: ``python benchmarks/bench_rt_inference.py [--seconds 60] [--rate 2] [--trigger 1]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def champion(profile) -> None:
    from mbolake.ml.registry import register_best
    from mbolake.ml.snapshot import load_snapshot
    from mbolake.ml.split import split_snapshot
    from mbolake.ml.sweep import run_sweep
    from mbolake.ml.tracking import setup_mlflow
    from mbolake.sample.ml_snapshot import write_synthetic_snapshot

    setup_mlflow(profile, experiment="bench-rt-inference")
    run_date = dt.date(2024, 6, 1)
    write_synthetic_snapshot(profile.ml_artifacts_root, run_date=run_date, n_sessions=4, episodes_per_session=20)
    split = split_snapshot(load_snapshot(profile.ml_artifacts_root, "ES_MODEL", run_date), name="main",
                           fractions=(0.5, 0.25, 0.25))
    register_best(run_sweep(split, max_evals=1, seed=3, plots=False, log_split=False))


def vectors(n: int) -> pd.DataFrame:
    from mbolake.features.setup_vector import FEATURE_SET, feature_hash
    from mbolake.sample.ml_snapshot import synthetic_training_frame
    from mbolake.schemas import SETUP_VECTORS

    frame = synthetic_training_frame(n_sessions=max(1, n // 30 + 1), episodes_per_session=30, seed=99).head(n)
    frame = frame[[f.name for f in SETUP_VECTORS.schema]].copy()
    frame["feature_hash"] = [feature_hash(FEATURE_SET, v) for v in frame["feature_vector"]]
    return frame


def append(path: str, rows: pd.DataFrame, batch: int) -> int:
    import pyarrow as pa
    from deltalake import write_deltalake

    from mbolake.schemas import SETUP_VECTORS_STREAM

    rows = rows.assign(stream_batch_id=batch, stream_time=time.time_ns())
    write_deltalake(path, pa.Table.from_pandas(rows, schema=SETUP_VECTORS_STREAM.schema, preserve_index=False),
                    mode="append", partition_by=["session_date"])
    return time.time_ns()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60, help="how long vectors keep arriving")
    parser.add_argument("--rate", type=int, default=2, help="vectors appended (one commit) per second")
    parser.add_argument("--trigger", type=float, default=1.0, help="rt inference trigger, seconds")
    args = parser.parse_args()

    from deltalake import DeltaTable

    from mbolake.ml.serve import serve_info_path, serving
    from mbolake.realtime import bus, rt_inference
    from mbolake.realtime.bus import BusSettings
    from mbolake.runtime.config import load_profile
    from mbolake.runtime.spark import get_spark
    from mbolake.schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM

    work = Path(tempfile.mkdtemp(prefix="bench_rt_inference_"))
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "load_avg_1m_start": os.getloadavg()[0], "seconds": args.seconds, "rate": args.rate,
               "trigger_s": args.trigger}
    (work / "project" / "conf").mkdir(parents=True)
    for conf in (HERE.parent / "conf").glob("*.yaml"):
        shutil.copy(conf, work / "project" / "conf" / conf.name)
    os.environ["MBOLAKE_HOME"] = str(work / "project")
    profile = load_profile("local")
    info = bus.start(work / "bus", port=bus.free_port())
    try:
        champion(profile)
        name = "ES_MODEL_setup_v3"
        with serving(f"models:/{name}@champion", profile.mlflow_tracking_uri, info_path=serve_info_path(profile, name),
                     log_dir=work / "serve"):
            spark = get_spark(profile, app_name="bench_rt_inference")
            config = rt_inference.RtInferenceConfig(profile.lake_root, f"{profile.lake_root}/checkpoints/rt_inference",
                                                    trigger_seconds=args.trigger)
            rt_inference.ensure_tables(spark, config)
            source, target = config.table_path(SETUP_VECTORS_STREAM), config.table_path(INFERENCE_SCORES_STREAM)
            batches: list[dict] = []
            query = rt_inference.start(spark, BusSettings(info["bootstrap"]), config,
                                       rt_inference.profile_resolver(profile), on_batch=batches.append)
            rows = vectors(1 + args.seconds * args.rate)
            appended: dict[str, int] = {}
            seen: dict[str, int] = {}

            def poll() -> None:
                scored = DeltaTable(target).to_pyarrow_table(columns=["episode_id"]).column(0).to_pylist()
                now = time.time_ns()
                for episode in scored:
                    seen.setdefault(episode, now)

            appended[rows["episode_id"].iloc[0]] = append(source, rows.iloc[:1], 0)  # warm-up: the first batch
            while len(seen) < 1:
                poll()
                time.sleep(0.1)
            warm = len(batches)
            started = time.monotonic()
            for second in range(args.seconds):
                part = rows.iloc[1 + second * args.rate: 1 + (second + 1) * args.rate]
                done = append(source, part, second + 1)
                appended.update(dict.fromkeys(part["episode_id"], done))
                while time.monotonic() < started + second + 1:
                    poll()
                    time.sleep(0.1)
            deadline = time.monotonic() + 120
            while len(seen) < len(rows) and time.monotonic() < deadline:
                poll()
                time.sleep(0.1)
            query.stop()
            spark.stop()
        latency = np.array([(seen[e] - appended[e]) / 1e9 for e in list(appended)[1:] if e in seen])
        timed = pd.DataFrame(batches[warm:])
        scored = DeltaTable(target).to_pandas(columns=["episode_id"])
        results.update(
            vectors=len(rows) - 1, scored=len(latency), score_rows=len(scored), distinct=scored["episode_id"].nunique(),
            latency_p50_s=round(float(np.percentile(latency, 50)), 2),
            latency_p99_s=round(float(np.percentile(latency, 99)), 2), latency_max_s=round(float(latency.max()), 2),
            micro_batches=len(timed), vectors_per_batch_median=float(timed["vectors"].median()),
            batch_seconds_median=round(float(timed["seconds"].median()), 3),
            batch_seconds_p99=round(float(timed["seconds"].quantile(0.99)), 3),
            read_seconds_median=round(float(timed["read_seconds"].median()), 3),
            http_score_seconds_median=round(float(timed["score_seconds"].median()), 3),
            delta_write_seconds_median=round(float(timed["write_seconds"].median()), 3),
            publish_seconds_median=round(float(timed["publish_seconds"].median()), 3),
            first_batch_seconds=batches[0]["seconds"], load_avg_1m_end=os.getloadavg()[0],
        )
    finally:
        bus.stop(work / "bus")
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "bench_rt_inference.jsonl", "a") as f:
        f.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
