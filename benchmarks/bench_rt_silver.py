"""rt silver alone: what one micro-batch costs, from the Kafka read to the last Delta append.

A generated ES session is published to a local broker (``mbo_raw``, 4 partitions) at max speed,
then rt silver (``mbolake.realtime.rt_silver``, the repository's settings) drains it with
trigger availableNow in this process, twice on a fresh checkpoint and lake:

1. throughput: the whole session in micro-batches of ``--max-offsets`` (200 k) offsets;
2. the micro-batch floor: the session up to ``--floor-until`` (exchange time) in micro-batches of
   ``--floor-offsets`` (700, about 10 s of the RTH feed at 1x).

For each: events/s (all, and after the cold first micro-batch) and, per micro-batch, the
medians of Spark's progress (``triggerExecution``: the whole micro-batch; ``addBatch``: the
``foreachBatch`` sink, which runs the Kafka read, the parse and the stateful step; the state
operator's update and commit time) and of rt silver's own status (``state_seconds``: the
stateful step brought to the driver, ``write_seconds``: the five delta-rs appends).
Usage: ``python benchmarks/bench_rt_silver.py [--records 1000000]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def drain(spark, settings, profile, topic: str, work: Path, max_offsets: int) -> dict:
    from mbolake.realtime import jobs, rt_silver

    shutil.rmtree(work / "lake", ignore_errors=True)
    config = dataclasses.replace(jobs.rt_silver_config(profile, topic, max_offsets=max_offsets),
                                 lake_root=str(work / "lake"), checkpoint=str(work / "lake" / "checkpoint"),
                                 publish_topic="features_gold")
    batches = []
    started = time.perf_counter()
    query = rt_silver.start(spark, settings, config, available_now=True, on_batch=batches.append)
    query.awaitTermination()
    seconds = time.perf_counter() - started
    progress = [json.loads(p.json) for p in query.recentProgress][1:]  # after the cold first batch
    records = sum(b["records"] for b in batches)
    warm = batches[1:]

    def median(values):
        return round(statistics.median(values), 3) if values else None

    return {"max_offsets": max_offsets, "micro_batches": len(batches), "records": records,
            "seconds": round(seconds, 1), "events_per_s": round(records / seconds),
            "first_batch_s": batches[0]["seconds"] if batches else None,
            "events_per_s_after_first": round(sum(b["records"] for b in warm) / sum(b["seconds"] for b in warm))
            if warm else None,
            "median_after_first": {
                "trigger_s": median([p["durationMs"]["triggerExecution"] / 1e3 for p in progress]),
                "add_batch_s": median([p["durationMs"].get("addBatch", 0) / 1e3 for p in progress]),
                "state_update_s": median([p["stateOperators"][0]["allUpdatesTimeMs"] / 1e3 for p in progress]),
                "state_commit_s": median([p["stateOperators"][0]["commitTimeMs"] / 1e3 for p in progress]),
                "rt_silver_state_s": median([b["state_seconds"] for b in warm]),
                "rt_silver_write_s": median([b["write_seconds"] for b in warm])},
            "rows": {name: sum(b["rows"].get(name, 0) for b in batches) for name in set().union(*(b["rows"] for b in batches))}}


def publish(path: Path, work: Path, until: str | None):
    """A broker of its own with the session (up to ``until``) in ``mbo_raw``; returns its settings and the topic."""
    from mbolake.realtime import bus, feed
    from mbolake.realtime.bus import BusSettings

    state = work / f"bus_{until or 'all'}"
    info = bus.start(state, port=bus.free_port())
    settings = BusSettings(info["bootstrap"])
    bus.ensure_topics(settings, {"mbo_raw": 4, "features_gold": 1})
    sent = feed.replay(path, settings, topic="mbo_raw", speed="max", end=until, report=None)
    print(f"published {sent.sent:,} events in {sent.seconds:.1f} s", flush=True)
    return state, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="size of the generated session")
    parser.add_argument("--max-offsets", type=int, default=200_000)
    parser.add_argument("--floor-offsets", type=int, default=700)
    parser.add_argument("--floor-until", default="04:40", help="the floor run: the session up to HH:MM")
    args = parser.parse_args()

    from bench_realtime import session

    from mbolake.realtime import bus
    from mbolake.runtime.config import load_profile
    from mbolake.runtime.spark import get_spark

    path = session(args.records)
    work = Path(tempfile.mkdtemp(prefix="bench_rt_silver_"))
    (work / "conf").mkdir()
    for conf in (HERE.parent / "conf").glob("*.yaml"):
        shutil.copy(conf, work / "conf" / conf.name)
    os.environ["MBOLAKE_HOME"] = str(work)
    profile = load_profile("local")
    spark = get_spark(profile, driver_memory="2g")
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()} {os.cpu_count()} cpu", "input": path.name,
               "load1_before": round(os.getloadavg()[0], 2)}
    try:
        for name, until, offsets in (("throughput", None, args.max_offsets),
                                     ("floor", args.floor_until, args.floor_offsets)):
            state, settings = publish(path, work, until)
            try:
                results[name] = drain(spark, settings, profile, "mbo_raw", work, offsets)
            finally:
                bus.stop(state)
            print(json.dumps({name: results[name]}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "bench_rt_silver.jsonl", "a") as f:
        f.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
