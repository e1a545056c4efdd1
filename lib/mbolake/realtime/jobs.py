"""Streaming jobs in the background: ``mbolake stream start|stop|status``.

A job is ``python -m mbolake.realtime.jobs run <name>`` in its own process group, its output in
``runs/streams/<name>.log``, its pid in ``<name>.pid.json`` and its last micro-batch in
``<name>.status.json``. ``stop`` sends SIGTERM (the query stops between micro-batches); the
checkpoint makes any stop, SIGKILL included, safe to restart from.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..runtime.atomic_files import write_json_atomic
from ..runtime.config import Profile, load_profile
from ..runtime.processes import alive, stop_process
from .bus import BusSettings, settings_from

JOBS = ("rt_bronze", "rt_silver", "rt_inference")


def stream_dir(profile: Profile) -> Path:
    return Path(profile.runs_root) / "streams"


def _check_name(name: str) -> None:
    if name not in JOBS:
        raise ValueError(f"unknown stream job {name!r}; known: {', '.join(JOBS)}")


def status(profile: Profile, name: str | None = None) -> list[dict]:
    rows = []
    for job in [name] if name else JOBS:
        _check_name(job)
        folder = stream_dir(profile)
        pid_file, status_file = folder / f"{job}.pid.json", folder / f"{job}.status.json"
        info = json.loads(pid_file.read_text()) if pid_file.exists() else {}
        last = json.loads(status_file.read_text()) if status_file.exists() else {}
        rows.append({"job": job, "running": bool(info) and alive(info["pid"]), "pid": info.get("pid"),
                     "log": str(folder / f"{job}.log"), "last_batch": last})
    return rows


def start(profile: Profile, name: str, *, bootstrap: str | None = None, topic: str | None = None,
          max_offsets: int | None = None, env: dict | None = None) -> dict:
    """Start job ``name`` in the background (refused when it already runs); returns its pid and log."""
    _check_name(name)
    if name == "rt_inference":  # its bad parameter, broker, topic or checkpoint fails here, not in the log
        preflight_rt_inference(profile, settings_from(profile.settings.get("bus", {}), bootstrap), topic)
    if name == "rt_silver":
        preflight_rt_silver(profile, settings_from(profile.settings.get("bus", {}), bootstrap), topic, max_offsets)
    [current] = status(profile, name)
    if current["running"]:
        raise RuntimeError(f"stream job {name} is already running (pid {current['pid']}); `mbolake stream stop {name}` first")
    folder = stream_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mbolake.realtime.jobs", "run", name, "--profile", profile.name]
    for flag, value in (("--bootstrap", bootstrap), ("--topic", topic), ("--max-offsets", max_offsets)):
        if value is not None:
            cmd += [flag, str(value)]
    log = open(folder / f"{name}.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "MBOLAKE_HOME": str(profile.root), **(env or {})})
    info = {"pid": proc.pid, "started": time.time(), "cmd": cmd}
    write_json_atomic(folder / f"{name}.pid.json", info)
    return info | {"log": str(folder / f"{name}.log")}


def stop(profile: Profile, name: str, timeout: float = 90.0) -> bool:
    """SIGTERM the job (it stops its query between micro-batches), SIGKILL its process group after
    ``timeout``; False when it was not running."""
    [current] = status(profile, name)
    if not current["running"]:
        return False
    # the SIGTERM reaches the Python driver only: it stops the query, then its JVM exits with it
    stop_process(current["pid"], timeout)
    return True


# -- the job process ----------------------------------------------------------------------


def rt_bronze_config(profile: Profile, topic: str | None = None, max_offsets: int | None = None):
    from .rt_bronze import READ_TASKS, RtBronzeConfig

    streams = profile.settings.get("streams", {})
    return RtBronzeConfig(
        lake_root=profile.lake_root, checkpoint=f"{profile.lake_root}/checkpoints/rt_bronze",
        topic=topic or streams.get("mbo_topic", "mbo_raw"),
        max_offsets_per_trigger=int(max_offsets or streams.get("max_offsets_per_trigger", 200_000)),
        trigger_seconds=float(streams.get("trigger_seconds", 1.0)),
        min_read_tasks=int(streams.get("min_read_tasks", READ_TASKS)),
    )


def rt_silver_config(profile: Profile, topic: str | None = None, max_offsets: int | None = None,
                     underlier: str | None = None):
    from .rt_bronze import READ_TASKS
    from .rt_silver import RtSilverConfig

    streams = profile.settings.get("streams", {})
    return RtSilverConfig(
        lake_root=profile.lake_root, checkpoint=f"{profile.lake_root}/checkpoints/rt_silver",
        underlier=underlier or streams.get("underlier", "ES"),
        topic=topic or streams.get("mbo_topic", "mbo_raw"),
        publish_topic=streams.get("features_topic", "features_gold"),
        max_offsets_per_trigger=int(max_offsets or streams.get("max_offsets_per_trigger", 200_000)),
        trigger_seconds=float(streams.get("trigger_seconds", 1.0)),
        min_read_tasks=int(streams.get("min_read_tasks", READ_TASKS)),
    )


def preflight_rt_silver(profile: Profile, settings: BusSettings, topic: str | None = None,
                        max_offsets: int | None = None) -> None:
    """rt silver's bad parameter, broker, topics or checkpoint, named before its process starts."""
    from .bus import check_bus
    from .rt_bronze import check_checkpoint

    config = rt_silver_config(profile, topic, max_offsets)
    check_bus(settings, tuple(t for t in (config.topic, config.publish_topic) if t))
    check_checkpoint(config.checkpoint)


def run_rt_bronze(profile: Profile, settings: BusSettings, *, topic: str | None = None, max_offsets: int | None = None,
                  available_now: bool = False) -> None:
    """Run rt bronze in this process until SIGTERM (or, with ``available_now``, until the topic is drained)."""
    from . import rt_bronze

    config = rt_bronze_config(profile, topic, max_offsets)
    _run_query(profile, "rt_bronze", lambda spark, status_path, on_batch: rt_bronze.start(
        spark, settings, config, available_now=available_now, status_path=status_path, on_batch=on_batch),
        f"reading {config.topic} on {settings.bootstrap}, checkpoint {config.checkpoint}")


def run_rt_silver(profile: Profile, settings: BusSettings, *, topic: str | None = None, max_offsets: int | None = None,
                  available_now: bool = False) -> None:
    """Run rt silver in this process until SIGTERM (or, with ``available_now``, until the topic is drained)."""
    from . import rt_silver

    config = rt_silver_config(profile, topic, max_offsets)
    _run_query(profile, "rt_silver", lambda spark, status_path, on_batch: rt_silver.start(
        spark, settings, config, available_now=available_now, status_path=status_path, on_batch=on_batch),
        f"reading {config.topic} on {settings.bootstrap}, checkpoint {config.checkpoint}")


def rt_inference_config(profile: Profile, topic: str | None = None):
    from .rt_inference import RtInferenceConfig

    streams = profile.settings.get("streams", {})
    return RtInferenceConfig(
        lake_root=profile.lake_root, checkpoint=f"{profile.lake_root}/checkpoints/rt_inference",
        topic=topic or streams.get("scores_topic", "inference_scores"),
        trigger_seconds=_seconds(streams, "score_trigger_seconds", 5.0),
        max_wait_seconds=_seconds(streams, "score_max_wait_seconds", 600.0),
        max_backoff_seconds=_seconds(streams, "score_max_backoff_seconds", 30.0),
    )


def _seconds(settings: dict, key: str, default: float) -> float:
    value = settings.get(key, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"streams.{key} must be a number of seconds > 0, got {value!r}")
    return seconds


def score_models(profile: Profile) -> list[tuple[str, str]]:
    """(model_id, feature_set) whose endpoint is reported at start (``streams.score_models``)."""
    from ..features.setup_vector import FEATURE_SET

    return [(m, FEATURE_SET) for m in profile.settings.get("streams", {}).get("score_models", ["ES_MODEL"])]


def preflight_rt_inference(profile: Profile, settings: BusSettings, topic: str | None = None) -> list[str]:
    """The checks that fail rt inference early (parameters, broker and topic, checkpoint), then one line per
    model saying where it is served: an endpoint that is not there yet is reported, not fatal."""
    from .bus import check_bus
    from .rt_bronze import check_checkpoint
    from .rt_inference import check_endpoints, profile_resolver

    config = rt_inference_config(profile, topic)
    config.check()
    check_bus(settings, (config.topic,))
    check_checkpoint(config.checkpoint)
    lines = check_endpoints(profile_resolver(profile), score_models(profile))
    for line in lines:
        print(line, flush=True)
    return lines


def run_rt_inference(profile: Profile, settings: BusSettings, *, topic: str | None = None,
                     max_offsets: int | None = None, available_now: bool = False) -> None:
    """Run rt inference in this process until SIGTERM (or, with ``available_now``, until the vectors are scored);
    ``topic`` is where scores go. Endpoint waits and retries are logged."""
    import logging

    from . import rt_inference

    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    config = rt_inference_config(profile, topic)
    preflight_rt_inference(profile, settings, topic)

    def start_query(spark, status_path, on_batch):
        # the stop on SIGTERM also cuts short a micro-batch waiting for its endpoint (it would hold stop() for minutes)
        return rt_inference.StopCutsWaits(rt_inference.start(
            spark, settings, config, rt_inference.profile_resolver(profile), available_now=available_now,
            status_path=status_path, on_batch=on_batch))

    _run_query(profile, "rt_inference", start_query,
        f"scoring {config.table_path(rt_inference.SETUP_VECTORS_STREAM)} every {config.trigger_seconds:g} s -> "
        f"{config.topic} on {settings.bootstrap}, checkpoint {config.checkpoint}")


def _run_query(profile: Profile, name: str, start_query, description: str) -> None:
    """Start a query in this process and wait for it: until SIGTERM, its end (availableNow) or its failure."""
    from ..runtime.spark import get_spark

    # three jobs run at once beside the broker and the model server: each gets a smaller heap
    spark = get_spark(profile, app_name=name, driver_memory=profile.spark.get("stream_driver_memory", "2g"))
    folder = stream_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    stop_requested = []
    # SIGTERM only sets a flag: the query is stopped from this thread, between two waits (a py4j
    # call from inside the signal handler would re-enter the one running in awaitTermination).
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    query = start_query(spark, str(folder / f"{name}.status.json"), lambda status: print(json.dumps(status), flush=True))
    print(f"{name}: {description}", flush=True)
    while query.isActive and not stop_requested:
        query.awaitTermination(1.0)
    if stop_requested:
        query.stop()
        print(f"{name}: stopped on SIGTERM", flush=True)
    elif query.exception():
        raise RuntimeError(f"{name} failed: {query.exception()}")


RUNNERS = {"rt_bronze": run_rt_bronze, "rt_silver": run_rt_silver, "rt_inference": run_rt_inference}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mbolake.realtime.jobs")
    parser.add_argument("action", choices=["run"])
    parser.add_argument("name", choices=JOBS)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--topic", default=None)
    parser.add_argument("--max-offsets", type=int, default=None)
    parser.add_argument("--available-now", action="store_true")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    settings = settings_from(profile.settings.get("bus", {}), args.bootstrap)
    RUNNERS[args.name](profile, settings, topic=args.topic, max_offsets=args.max_offsets,
                       available_now=args.available_now)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- for the notebook: one drain of the topic, and what landed ------------------------------


def drain_rt_bronze(profile: Profile, settings: BusSettings, *, topic: str | None = None, max_offsets: int | None = None):
    """Run rt bronze in this process until the topic is drained (trigger availableNow); one row per micro-batch."""
    import pandas as pd

    from ..runtime.spark import get_spark
    from . import rt_bronze

    batches: list[dict] = []
    query = rt_bronze.start(get_spark(profile), settings, rt_bronze_config(profile, topic, max_offsets),
                            available_now=True, on_batch=batches.append)
    query.awaitTermination()
    frame = pd.DataFrame(batches, columns=["batch_id", "messages", "valid", "quarantined", "parse_seconds",
                                           "merge_seconds", "seconds"])
    frame["events_per_s"] = (frame["valid"] / frame["seconds"].where(frame["seconds"] > 0)).round(0)
    return frame


def rt_bronze_tables(profile: Profile):
    """(events per session date and contract in ``bronze.mbo_stream``, ``bronze.quarantine_stream`` rows)."""
    import pandas as pd
    from deltalake import DeltaTable

    from ..schemas import BRONZE_MBO_STREAM, QUARANTINE_STREAM

    def read(table, columns):
        path = profile.table_path(table.name)
        if not DeltaTable.is_deltatable(path):
            return pd.DataFrame(columns=columns)
        return DeltaTable(path).to_pyarrow_table(columns=columns).to_pandas()

    events = read(BRONZE_MBO_STREAM, ["session_date", "contract_id", "event_key", "kafka_partition"])
    counts = (events.groupby(["session_date", "contract_id", "kafka_partition"]).agg(events=("event_key", "size"),
              distinct_keys=("event_key", "nunique")).reset_index())
    quarantine = read(QUARANTINE_STREAM, ["reason", "value", "kafka_partition", "kafka_offset", "stream_batch_id"])
    return counts, quarantine


def plot_batches(batches):
    """Events per second and seconds per micro-batch (parse + count, MERGE)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(x=batches["batch_id"], y=batches["parse_seconds"], name="parse + count (s)")
    fig.add_bar(x=batches["batch_id"], y=batches["merge_seconds"], name="MERGE (s)")
    fig.update_layout(barmode="stack", title="rt bronze: seconds per micro-batch", xaxis_title="micro-batch",
                      yaxis_title="seconds")
    return fig
