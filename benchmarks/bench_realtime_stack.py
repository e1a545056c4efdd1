"""Real time, part 2: the whole stack on one generated session (broker, rt bronze, rt silver,
rt inference, the served champion), in a scratch project.

1. Throughput, max speed: the session from its first record up to ``--warm-until`` (exchange
   time) published at max speed; per stage, events read from ``mbo_raw`` per second, from the
   jobs' checkpoints (Kafka offsets of each micro-batch, ``commits/<n>`` written when its
   outputs are committed): the feed's publish rate, rt bronze, rt silver (which writes Silver
   and Gold in the same micro-batch) and feed -> last rt silver commit end to end.
2. Latency, paced: ``--pace-from``..``--pace-to`` replayed at ``--speed`` (1 = real time) right
   after, on the warm state. An event's send time is its Kafka message timestamp (the producer's
   CreateTime, i.e. ts_recv mapped to wall time by the pacing); the event that completed a row
   is the first event of its contract with ``ts_recv`` at or after the row's time (a setup
   vector's ``vector_time``, a 5-second bar's end). Commit time: the Delta commit of the row's
   micro-batch in its own table (the log entry carrying its txnVersion). event -> score: the score's commit minus the send time of the event that
   completed its vector; the same from the feed's ``ingest_time`` (when the feed read the
   record's chunk: earlier by up to one chunk's pacing) is reported too.
3. Memory: every ``--sample-seconds``, RSS and PSS (``/proc/<pid>/status``, ``smaps_rollup``)
   of every process of the broker, each job (JVM + Python workers: a job's process group), the
   model server and this process (the feed); peak of the sum and of each part.

The champion comes from a batch lake: ``--home`` (a project root where the batch notebooks up to
43_serve ran) or, without it, the batch notebooks 02..43 are run once in a scratch home. The
stream tables, checkpoints and stream logs of ``--home`` are removed first.
Usage: ``python benchmarks/bench_realtime_stack.py [--home DIR] [--records 10000000]
[--warm-until 09:45] [--pace-from 09:45] [--pace-to 10:05]`` (``--records 200000 --warm-until
09:40 --pace-from 09:40 --pace-to 09:45`` for a small run).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BATCH_NOTEBOOKS = ["00_setup/02_generate_sample.ipynb", "10_bronze/10_bronze_ingest.ipynb",
                   "20_silver/20_silver_orderbook.ipynb", "20_silver/21_silver_normalize.ipynb",
                   "20_silver/22_silver_levels_bars.ipynb", "20_silver/23_silver_approach.ipynb",
                   "30_gold/30_gold_setup_vectors.ipynb", "40_ml/41_split.ipynb", "40_ml/42_sweep.ipynb",
                   "40_ml/43_serve.ipynb"]
JOBS = ("rt_bronze", "rt_silver", "rt_inference")
BAR_NS = 5_000_000_000


# -- the project -----------------------------------------------------------------------------


def batch_home(root: Path) -> Path:
    """A scratch project where the batch notebooks ran (the champion is registered there)."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    for conf in (REPO / "conf").glob("*.yaml"):
        shutil.copy(conf, root / "conf" / conf.name)
    if not (root / "notebooks").exists():
        (root / "notebooks").symlink_to(REPO / "notebooks")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mbolake.cli", "run", *BATCH_NOTEBOOKS, "--run-id", "batch", "--no-reports"],
                   cwd=root, env={**os.environ, "MBOLAKE_HOME": str(root)}, check=True)
    print(f"batch notebooks 02..43 in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def prepare_home(home: Path, trigger: float, score_trigger: float) -> None:
    """Remove what an earlier stream run left; set the triggers in the home's conf/local.yaml."""
    import yaml

    from mbolake.runtime.config import load_profile
    from mbolake.schemas import STREAM_TABLES

    conf_path = home / "conf" / "local.yaml"
    conf = yaml.safe_load(conf_path.read_text())
    conf.setdefault("streams", {}).update(trigger_seconds=trigger, score_trigger_seconds=score_trigger)
    conf_path.write_text(yaml.safe_dump(conf, sort_keys=False))
    profile = load_profile("local")
    for name in STREAM_TABLES:
        shutil.rmtree(profile.table_path(name), ignore_errors=True)
    for job in JOBS:
        shutil.rmtree(Path(profile.lake_root) / "checkpoints" / job, ignore_errors=True)
    shutil.rmtree(Path(profile.runs_root) / "streams", ignore_errors=True)


def session(records: int) -> Path:
    from bench_realtime import session as generated

    return generated(records)


# -- sampling: memory and load ---------------------------------------------------------------


def _proc_rows() -> list[tuple[int, int, int]]:
    """(pid, process group, parent) of every process."""
    rows = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            rows.append((int(proc.name), int(fields[2]), int(fields[1])))
    return rows


def _kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "?"


def _jvm_spawn(pid: int, parent: int) -> bool:
    """A JVM's child not yet exec'd (Hadoop runs ``chmod`` and Spark its Python workers through
    ``posix_spawn``): it shares the JVM's memory, which would be counted twice."""
    exe = _exe(pid)
    return exe.endswith("/java") and exe == _exe(parent)


class Sampler(threading.Thread):
    """RSS / PSS of each part of the stack (``groups``: process group id -> part) and the load average."""

    def __init__(self, every: float):
        super().__init__(daemon=True)
        self.every, self.groups, self.samples, self.done = every, {}, [], threading.Event()
        self.me = os.getpid()
        self.process_peaks: dict[tuple[str, str], int] = {}  # (part, command) -> largest RSS of one such process

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.every)

    def sample(self) -> None:
        row = {"t": time.time(), "load1": os.getloadavg()[0]}
        for pid, pgid, parent in _proc_rows():
            part = "feed + benchmark" if pid == self.me else self.groups.get(pgid)
            if part and not _jvm_spawn(pid, parent):
                rss = _kib(pid, "status", "VmRSS:")
                key = (part, _comm(pid))
                self.process_peaks[key] = max(self.process_peaks.get(key, 0), rss)
                row[f"rss:{part}"] = row.get(f"rss:{part}", 0) + rss
                row[f"pss:{part}"] = row.get(f"pss:{part}", 0) + _kib(pid, "smaps_rollup", "Pss:")
                row[f"procs:{part}"] = row.get(f"procs:{part}", 0) + 1
        self.samples.append(row)

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict:
        frame = pd.DataFrame([s for s in self.samples if since <= s["t"] <= until]).fillna(0)
        if frame.empty:
            return {}
        out = {"samples": len(frame), "load1_mean": round(frame["load1"].mean(), 2),
               "load1_max": round(frame["load1"].max(), 2)}
        for kind in ("rss", "pss"):
            cols = [c for c in frame if c.startswith(kind + ":")]
            out[f"peak_{kind}_total_mb"] = round(frame[cols].sum(axis=1).max() / 1024)
            out[f"peak_{kind}_mb"] = {c.split(":", 1)[1]: round(frame[c].max() / 1024) for c in cols}
        out["peak_rss_one_process_mb"] = {f"{part} / {comm}": round(kib / 1024)
                                          for (part, comm), kib in sorted(dict(self.process_peaks).items())}
        out["max_processes"] = {c.split(":", 1)[1]: int(frame[c].max()) for c in frame if c.startswith("procs:")}
        return out


# -- reading the checkpoints and the topic ---------------------------------------------------


def checkpoint_batches(checkpoint: Path) -> pd.DataFrame:
    """Per committed micro-batch: Kafka offsets read (sum over partitions), trigger time, commit time."""
    rows, previous = [], 0
    commits = checkpoint / "commits"
    for path in sorted((checkpoint / "offsets").glob("[0-9]*"), key=lambda p: int(p.name)):
        lines = path.read_text().splitlines()
        meta, offsets = json.loads(lines[1]), json.loads(lines[2])
        # a Kafka source: {topic: {partition: offset}}; another source (rt inference's Delta table): no count
        kafka = all(isinstance(parts, dict) for parts in offsets.values())
        end = sum(sum(int(v) for v in parts.values()) for parts in offsets.values()) if kafka else 0
        commit = commits / path.name
        if commit.exists():
            rows.append({"batch_id": int(path.name), "events": end - previous, "end_offset": end,
                         "trigger_time": meta["batchTimestampMs"] / 1e3, "commit_time": commit.stat().st_mtime})
        previous = end
    return pd.DataFrame(rows)


def consumed(profile, job: str) -> int:
    batches = checkpoint_batches(Path(profile.lake_root) / "checkpoints" / job)
    return int(batches["end_offset"].max()) if len(batches) else 0


def topic_events(settings, topic: str, since: dict[int, int]) -> pd.DataFrame:
    """Every message of ``topic`` after offsets ``since``: partition, offset, Kafka timestamp (ns),
    contract, ts_recv and the feed's ingest_time from the envelope."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"bench-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in since}
    todo = {p for p in since if ends[p] > since[p]}
    consumer.assign([TopicPartition(topic, p, since[p]) for p in todo])
    rows = []
    while todo:
        for msg in consumer.consume(10_000, timeout=5.0):
            if msg.error():
                continue
            p, off = msg.partition(), msg.offset()
            if p in todo:
                value = json.loads(msg.value())
                rows.append((p, off, msg.timestamp()[1] * 1_000_000, value["contract_id"], value["payload"]["ts_recv"],
                             value["ingest_time"]))
                if off + 1 >= ends[p]:
                    todo.discard(p)
    consumer.close()
    return pd.DataFrame(rows, columns=["partition", "offset", "sent_time", "contract_id", "ts_recv", "ingest_time"])


def end_offsets(settings, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"bench-{time.time_ns()}"})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    out = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    consumer.close()
    return out


def delta_commits(table_path: str) -> pd.Series:
    """Micro-batch id (the append's txnVersion) -> its Delta commit's time (ns; commitInfo.timestamp, ms)."""
    out = {}
    for entry in sorted(Path(table_path, "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in entry.read_text().splitlines() if line.strip()]
        txn = next((a["txn"]["version"] for a in actions if "txn" in a), None)
        stamp = next((a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a), None)
        if txn is not None and stamp is not None:
            out[int(txn)] = stamp * 1e6
    return pd.Series(out, dtype=float)


def completing_events(events: pd.DataFrame, contract: np.ndarray, at: np.ndarray) -> pd.DataFrame:
    """For each (contract, time): the first event of that contract with ts_recv >= time (NaN when none)."""
    out = pd.DataFrame({"sent_time": np.nan, "ingest_time": np.nan}, index=range(len(at)))
    for cid, rows in events.sort_values("ts_recv", kind="stable").groupby("contract_id"):
        mask = contract == cid
        pos = np.searchsorted(rows["ts_recv"].to_numpy(np.int64), at[mask], side="left")
        ok = pos < len(rows)
        idx = np.flatnonzero(mask)[ok]
        out.loc[idx, "sent_time"] = rows["sent_time"].to_numpy()[pos[ok]]
        out.loc[idx, "ingest_time"] = rows["ingest_time"].to_numpy()[pos[ok]]
    return out


def _pcts(seconds) -> dict:
    seconds = np.asarray(seconds, dtype=float)
    seconds = seconds[~np.isnan(seconds)]
    if not len(seconds):
        return {"n": 0}
    return {"n": int(len(seconds)), "p50_s": round(float(np.percentile(seconds, 50)), 2),
            "p99_s": round(float(np.percentile(seconds, 99)), 2), "max_s": round(float(seconds.max()), 2),
            "min_s": round(float(seconds.min()), 2)}


# -- the run ---------------------------------------------------------------------------------


def wait_for(profile, sent: int, timeout: float, jobs_needed=("rt_bronze", "rt_silver")) -> dict:
    """Until each job's checkpoint has committed every offset of ``mbo_raw``; seconds each took."""
    from mbolake.realtime import jobs

    started, done = time.time(), {}
    while time.time() - started < timeout and len(done) < len(jobs_needed):
        for job in jobs_needed:
            [info] = jobs.status(profile, job)
            if not info["running"]:
                raise RuntimeError(f"stream job {job} stopped; its log: {info['log']}")
            if job not in done and consumed(profile, job) >= sent:
                done[job] = round(time.time() - started, 1)
        time.sleep(1.0)
    return done


def wait_scored(profile, timeout: float) -> bool:
    from mbolake.io import delta_tables
    from mbolake.schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM

    deadline = time.time() + timeout
    while time.time() < deadline:
        vectors = (delta_tables.read(profile, SETUP_VECTORS_STREAM, ["episode_id"]).num_rows
                   if delta_tables.exists(profile, SETUP_VECTORS_STREAM) else 0)
        scores = (delta_tables.read(profile, INFERENCE_SCORES_STREAM, ["episode_id"]).num_rows
                  if delta_tables.exists(profile, INFERENCE_SCORES_STREAM) else 0)
        if scores >= vectors:
            return True
        time.sleep(2.0)
    return False


def stage_rates(profile, since: float, sent: int) -> dict:
    """Per job: events read from mbo_raw, micro-batches, seconds from ``since`` to the last commit, events/s."""
    out = {}
    for job in ("rt_bronze", "rt_silver"):
        batches = checkpoint_batches(Path(profile.lake_root) / "checkpoints" / job)
        batches = batches[batches["end_offset"] <= sent]
        if batches.empty:
            out[job] = {"events": 0}
            continue
        took = batches["commit_time"].max() - since
        busy = batches[batches["events"] > 0]
        per_batch = busy["events"] / (busy["commit_time"] - busy["trigger_time"]).clip(lower=1e-3)
        out[job] = {"events": int(batches["end_offset"].max()), "batches": int(len(busy)),
                    "seconds_to_last_commit": round(took, 1),
                    "events_per_s": round(batches["end_offset"].max() / took),
                    "batch_events_median": int(busy["events"].median()) if len(busy) else 0,
                    "batch_seconds_median": round(float((busy["commit_time"] - busy["trigger_time"]).median()), 1),
                    "batch_events_per_s_median": round(float(per_batch.median())) if len(busy) else 0}
        if len(busy) > 1:  # the first micro-batch of a fresh JVM runs cold code
            first = busy.iloc[0]
            out[job]["after_first_batch"] = {
                "events": int(batches["end_offset"].max() - first["end_offset"]),
                "seconds": round(batches["commit_time"].max() - first["commit_time"], 1),
                "events_per_s": round((batches["end_offset"].max() - first["end_offset"])
                                      / (batches["commit_time"].max() - first["commit_time"]))}
    return out


@contextlib.contextmanager
def champion_served(profile, model_id: str = "ES_MODEL"):
    """The registered champion served locally, announced where rt inference looks for it."""
    from mbolake.features.setup_vector import FEATURE_SET
    from mbolake.ml.registry import registered_model_name
    from mbolake.ml.serve import serve_info_path, serving

    name = registered_model_name(model_id, FEATURE_SET)
    with serving(f"models:/{name}@champion", profile.mlflow_tracking_uri, info_path=serve_info_path(profile, name),
                 log_dir=Path(profile.runs_root) / "serve"):
        yield name


def job_batches(profile, job: str) -> pd.DataFrame:
    """The JSON line a job logs per micro-batch (``runs/streams/<job>.log``)."""
    from mbolake.realtime import jobs

    path = jobs.stream_dir(profile) / f"{job}.log"
    rows = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if line.startswith("{") and '"batch_id"' in line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return pd.DataFrame(rows)


def log_breakdown(profile, since: float, until: float) -> dict:
    """Sums of the jobs' own per-batch timings (their log lines) in [since, until]."""
    out = {}
    for job in JOBS:
        frame = job_batches(profile, job)
        if frame.empty:
            continue
        frame = frame[(frame["time"] >= since) & (frame["time"] <= until)]
        sums = {c: round(float(frame[c].sum()), 1) for c in ("seconds", "parse_seconds", "merge_seconds",
                                                             "state_seconds", "score_seconds", "write_seconds",
                                                             "publish_seconds") if c in frame}
        out[job] = {"batches": int(len(frame)), **sums}
    return out


def latency(profile, settings, since_offsets: dict, paced_from_ns: int) -> dict:
    """event -> row commit for the rows completed by paced events; see the module doc."""
    from mbolake.io import delta_tables
    from mbolake.schemas import FEATURE_SERIES_STREAM, INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM

    events = topic_events(settings, "mbo_raw", since_offsets)
    out = {"paced_events": int(len(events))}
    if events.empty:
        return out

    series_commit = delta_commits(profile.table_path(FEATURE_SERIES_STREAM.name))
    vector_commit = delta_commits(profile.table_path(SETUP_VECTORS_STREAM.name))
    score_commit = delta_commits(profile.table_path(INFERENCE_SCORES_STREAM.name))

    def lags(rows: pd.DataFrame, at: np.ndarray, commit: pd.Series, name: str) -> pd.DataFrame:
        ev = completing_events(events, rows["contract_id"].to_numpy(), at)
        rows = rows.reset_index(drop=True).assign(sent_time=ev["sent_time"], ingest_time=ev["ingest_time"],
                                                  commit_time=rows["stream_batch_id"].map(commit).to_numpy())
        rows = rows[(at >= paced_from_ns) & rows["sent_time"].notna()]
        out[name] = {"from_send": _pcts((rows["commit_time"] - rows["sent_time"]) / 1e9),
                     "from_ingest_time": _pcts((rows["commit_time"] - rows["ingest_time"]) / 1e9),
                     "stream_time_to_commit": _pcts((rows["commit_time"] - rows["stream_time"]) / 1e9)}
        return rows

    series = delta_tables.read(profile, FEATURE_SERIES_STREAM, ["contract_id", "bar_ts", "stream_batch_id",
                                                                "stream_time"]).to_pandas()
    lags(series, series["bar_ts"].to_numpy(np.int64) + BAR_NS, series_commit, "event_to_feature_series_commit")
    if delta_tables.exists(profile, SETUP_VECTORS_STREAM):
        vectors = delta_tables.read(profile, SETUP_VECTORS_STREAM, ["episode_id", "contract_id", "vector_time",
                                                                    "stream_batch_id", "stream_time"]).to_pandas()
        vectors = lags(vectors, vectors["vector_time"].to_numpy(np.int64), vector_commit, "event_to_vector_commit")
        out["vectors_in_paced_window"] = int(len(vectors))
        if delta_tables.exists(profile, INFERENCE_SCORES_STREAM) and len(vectors):
            scores = delta_tables.read(profile, INFERENCE_SCORES_STREAM, ["episode_id", "stream_batch_id",
                                                                          "stream_time"]).to_pandas()
            scores["score_commit"] = scores["stream_batch_id"].map(score_commit)
            scored = vectors.merge(scores.drop_duplicates("episode_id")[["episode_id", "score_commit"]], on="episode_id")
            out["event_to_score_commit"] = {
                "from_send": _pcts((scored["score_commit"] - scored["sent_time"]) / 1e9),
                "from_ingest_time": _pcts((scored["score_commit"] - scored["ingest_time"]) / 1e9),
                "vector_commit_to_score_commit": _pcts((scored["score_commit"] - scored["commit_time"]) / 1e9)}
            out["scores"] = [{"episode_id": r.episode_id, "vector_time": pd.Timestamp(r.vector_time, unit="ns", tz="UTC")
                              .tz_convert("America/New_York").strftime("%H:%M:%S"),
                              "event_to_score_s": round((r.score_commit - r.sent_time) / 1e9, 2)}
                             for r in scored.itertuples()]
    return out


def paced_leg(args, profile, settings, path: Path, results: dict, marks: dict, sampler: Sampler, warm_sent: int) -> None:
    from mbolake.core.calendar import local_time_to_ns
    from mbolake.realtime import feed

    since = end_offsets(settings, "mbo_raw")
    stamp = path.name.split("-")[2][:8]
    date = dt.date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
    h, m = (int(x) for x in args.pace_from.split(":"))
    paced_from_ns = local_time_to_ns(date, h, m, "America/New_York")
    print(f"pacing {args.pace_from}-{args.pace_to} at {args.speed}x", flush=True)
    marks["paced_start"] = time.time()
    paced = feed.replay(path, settings, speed=args.speed, start=args.pace_from, end=args.pace_to,
                        chunk_records=args.paced_chunk, report=None)
    marks["paced_feed_done"] = time.time()
    results["paced"] = {"events": paced.sent, "seconds": round(paced.seconds, 1)}
    caught = wait_for(profile, warm_sent + paced.sent, args.timeout)
    results["paced"]["catch_up_after_feed_s"] = caught
    results["paced"]["all_scored"] = wait_scored(profile, 120.0)
    marks["paced_end"] = time.time()
    results["paced"]["job_log_sums"] = log_breakdown(profile, marks["paced_start"], marks["paced_end"])
    results["paced"]["memory_and_load"] = sampler.summary(marks["paced_start"], marks["paced_end"])
    try:
        results["paced"].update(latency(profile, settings, since, paced_from_ns))
    except Exception as exc:  # keep the figures measured so far
        import traceback

        traceback.print_exc()
        results["paced"]["latency_error"] = repr(exc)


def run(args, home: Path, work: Path) -> dict:
    from mbolake.realtime import bus, feed, jobs
    from mbolake.realtime.bus import BusSettings
    from mbolake.runtime.config import load_profile

    path = session(args.records)
    profile = load_profile("local")
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()} {os.cpu_count()} cpu", "input": path.name, "args": vars(args)}
    sampler = Sampler(args.sample_seconds)
    sampler.start()
    info = bus.start(work / "bus", port=bus.free_port())
    sampler.groups[info["pid"]] = "broker"
    settings = BusSettings(info["bootstrap"])
    bus.ensure_topics(settings)
    marks = {}
    try:
        with champion_served(profile) as model_name:
            me = os.getpid()
            for pid, pgid, parent in _proc_rows():  # the server: our other child leading its own group
                if parent == me and pgid == pid and pid not in sampler.groups:
                    sampler.groups[pid] = "model server"
            results["model"] = model_name
            t0 = time.time()
            for job in JOBS:
                started = jobs.start(profile, job, bootstrap=settings.bootstrap,
                                     max_offsets=args.max_offsets if job != "rt_inference" else None)
                sampler.groups[started["pid"]] = job
            # the jobs are up once each has committed its first (empty) micro-batch or logged its start line
            while time.time() - t0 < 600 and not all(
                    f"{job}: " in (jobs.stream_dir(profile) / f"{job}.log").read_text(errors="replace") for job in JOBS):
                time.sleep(1.0)
            results["jobs_start_s"] = round(time.time() - t0, 1)
            print(f"jobs up in {results['jobs_start_s']} s; replaying to {args.warm_until} at max speed", flush=True)

            marks["throughput_start"] = time.time()
            warm = feed.replay(path, settings, speed="max", end=args.warm_until, report=None)
            marks["feed_done"] = time.time()
            results["feed"] = {"events": warm.sent, "seconds": round(warm.seconds, 1),
                               "events_per_s": round(warm.rate)}
            print(f"feed: {warm.sent:,} events in {warm.seconds:.1f} s; waiting for the jobs", flush=True)
            caught = wait_for(profile, warm.sent, args.timeout)
            marks["throughput_end"] = time.time()
            results["throughput"] = stage_rates(profile, marks["throughput_start"], warm.sent)
            results["throughput"]["catch_up_after_feed_s"] = caught
            if "rt_silver" in caught:
                last = results["throughput"]["rt_silver"]["seconds_to_last_commit"]
                results["throughput"]["feed_to_silver_gold_events_per_s"] = round(warm.sent / last)
            results["throughput"]["job_log_sums"] = log_breakdown(profile, marks["throughput_start"],
                                                                  marks["throughput_end"])
            results["throughput"]["memory_and_load"] = sampler.summary(marks["throughput_start"], marks["throughput_end"])
            print(json.dumps(results["throughput"], indent=1), flush=True)
            if len(caught) < 2:
                raise TimeoutError(f"the jobs did not catch up within {args.timeout:.0f} s: {caught}")

            if args.pace_to:
                paced_leg(args, profile, settings, path, results, marks, sampler, warm.sent)
    finally:
        for job in JOBS:
            jobs.stop(profile, job)
        bus.stop(work / "bus")
        sampler.done.set()
        sampler.join()
    results["memory_and_load_whole_run"] = sampler.summary()
    results["marks"] = {k: round(v - marks.get("throughput_start", v), 1) for k, v in marks.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="a project root with a registered champion")
    parser.add_argument("--records", type=int, default=10_000_000, help="size of the generated session")
    parser.add_argument("--warm-until", default="09:45", help="max-speed leg: session start up to HH:MM")
    parser.add_argument("--pace-from", default="09:45")
    parser.add_argument("--pace-to", default="10:05", help="empty: no paced leg")
    parser.add_argument("--speed", default="1")
    parser.add_argument("--max-offsets", type=int, default=200_000, help="Kafka offsets per micro-batch")
    parser.add_argument("--trigger", type=float, default=1.0, help="rt bronze / rt silver trigger, seconds")
    parser.add_argument("--score-trigger", type=float, default=1.0, help="rt inference trigger, seconds")
    parser.add_argument("--paced-chunk", type=int, default=2_000, help="records per feed chunk when paced")
    parser.add_argument("--sample-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the jobs may take to catch up")
    args = parser.parse_args()
    from mbolake.realtime.feed import parse_clock, parse_speed

    for name in ("warm_until", "pace_from", "pace_to"):
        parse_clock(getattr(args, name) or None, name)
    parse_speed(args.speed)

    work = Path(tempfile.mkdtemp(prefix="bench_realtime_stack_"))
    home = args.home.resolve() if args.home else batch_home(work / "home")
    os.environ["MBOLAKE_HOME"] = str(home)
    prepare_home(home, args.trigger, args.score_trigger)
    try:
        results = run(args, home, work)
    finally:
        shutil.rmtree(work / "bus", ignore_errors=True)
    results["args"] = {k: str(v) for k, v in results["args"].items()}
    print(json.dumps(results, indent=1))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "bench_realtime_stack.jsonl", "a") as f:
        f.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
