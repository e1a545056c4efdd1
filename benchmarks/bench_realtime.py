"""Real time, part 1: feed -> broker -> streaming Bronze on this machine.

1. feed -> broker: ``mbolake.realtime.feed.replay`` at max speed (DBN decode, Bronze row conversion,
   JSON envelope, idempotent confluent-kafka producer, acknowledged per 50 k-record chunk) into a
   local Kafka 4.1.1 broker (KRaft, 127.0.0.1), ``mbo_raw`` with 4 partitions.
2. streaming Bronze: rt bronze (Spark 4.0.1 Kafka source, foreachBatch parse + MERGE on event_key
   into ``bronze.mbo_stream``) draining the topic with trigger availableNow, in this process.

Peak RSS of the broker (VmHWM of its JVM) and of the Spark driver JVM are read from /proc.
Usage: ``python benchmarks/bench_realtime.py [--records 1000000] [--stream-records 200000]``.
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

HERE = Path(__file__).resolve().parent


def session(records: int) -> Path:
    from mbolake.sample import synth

    out = HERE / "data" / f"es_{records}"
    params = synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 4), intensity=records, seed=11)
    path = synth.session_path(out, params.first_date)
    if not path.exists():
        print(f"generating a {records:,}-record session (once) ...", flush=True)
        synth.generate_sample(out, params, progress=False)
    return path


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spark_jvm_pid(broker_pid: int) -> int | None:
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().split()
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[3]) == me and b"java" in cmd and int(proc.name) != broker_pid:
                return int(proc.name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000, help="session size for feed -> broker")
    parser.add_argument("--stream-records", type=int, default=200_000, help="messages streaming Bronze drains")
    parser.add_argument("--max-offsets", type=int, default=100_000, help="Kafka offsets per micro-batch")
    args = parser.parse_args()

    from mbolake.realtime import bus, feed, rt_bronze
    from mbolake.realtime.bus import BusSettings

    work = Path(tempfile.mkdtemp(prefix="bench_realtime_"))
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    try:
        path = session(args.records)
        t0 = time.perf_counter()
        info = bus.start(work / "bus", port=bus.free_port())
        results["broker_start_s"] = round(time.perf_counter() - t0, 1)
        settings = BusSettings(info["bootstrap"])
        replay = feed.replay(path, settings, speed="max", report=None)
        results["feed_events"] = replay.sent
        results["feed_seconds"] = round(replay.seconds, 1)
        results["feed_events_per_s"] = round(replay.rate)
        bus.ensure_topics(settings, {"mbo_stream_bench": 4})
        small = session(args.stream_records)
        sent = feed.replay(small, settings, topic="mbo_stream_bench", speed="max", report=None).sent

        os.environ["MBOLAKE_HOME"] = str(work / "project")
        (work / "project" / "conf").mkdir(parents=True)
        for conf in (HERE.parent / "conf").glob("*.yaml"):
            shutil.copy(conf, work / "project" / "conf" / conf.name)
        from mbolake.runtime.config import load_profile
        from mbolake.runtime.spark import get_spark

        profile = load_profile("local")
        t0 = time.perf_counter()
        spark = get_spark(profile, app_name="bench_realtime")
        results["spark_start_s"] = round(time.perf_counter() - t0, 1)
        config = rt_bronze.RtBronzeConfig(profile.lake_root, f"{profile.lake_root}/checkpoints/rt_bronze",
                                          topic="mbo_stream_bench", max_offsets_per_trigger=args.max_offsets)
        batches = []
        t0 = time.perf_counter()
        query = rt_bronze.start(spark, settings, config, available_now=True, on_batch=batches.append)
        query.awaitTermination()
        took = time.perf_counter() - t0
        landed = sum(b["valid"] for b in batches)
        results.update(
            stream_messages=sent, stream_landed=landed, stream_seconds=round(took, 1),
            stream_events_per_s=round(landed / took), stream_batches=len(batches),
            stream_parse_count_s=round(sum(b["parse_seconds"] for b in batches), 1),
            stream_merge_s=round(sum(b["merge_seconds"] for b in batches), 1),
            stream_batch_total_s=round(sum(b["seconds"] for b in batches), 1),
            broker_peak_rss_mb=round(vm_hwm_mb(info["pid"])),
        )
        jvm = spark_jvm_pid(info["pid"])
        results["spark_driver_peak_rss_mb"] = round(vm_hwm_mb(jvm)) if jvm else None
        spark.stop()
    finally:
        bus.stop(work / "bus")
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "bench_realtime.jsonl", "a") as f:
        f.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
