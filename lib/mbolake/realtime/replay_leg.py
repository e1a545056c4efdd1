"""The demo's real-time leg: one landed session replayed through the broker and every streaming
job, then the parity check against the batch tables and the lag figures.

``run_replay_leg`` starts the broker when it is not running, starts ``rt_bronze``,
``rt_silver`` and ``rt_inference`` as background jobs (the champion served locally for the
last one), replays the session's DBN file at max speed up to ``until`` (exchange time: past
the first episodes' look-forward, so vectors and scores come out of the stream), waits until
every job has caught up with the feed, stops the jobs (and the server and broker it started),
and records the batch/stream parity in the run (``summaries/stream_parity.json``): every batch
row due by the feed's cut-off (its last ``ts_recv`` sent per contract-session), so a tail the
stream lost is a difference, not "not produced yet".
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..io import delta_tables
from ..runtime.config import Profile
from ..schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM
from . import bus, feed, jobs, overview, parity
from .bus import BusSettings, settings_from

LEG_JOBS = ("rt_bronze", "rt_silver", "rt_inference")


@dataclass
class ReplayLeg:
    session_date: dt.date
    file: Path
    sent: int = 0
    replay_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    parity: pd.DataFrame = field(default_factory=pd.DataFrame)
    lag: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    batches: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"session": str(self.session_date), "file": self.file.name, "events sent": self.sent,
                              "replay s": round(self.replay_seconds, 1),
                              "catch-up s": round(self.catch_up_seconds, 1),
                              "setup vectors": _rows(self.parity, "gold.setup_vectors"), "scores": len(self.scores),
                              "parity": _parity_status(self.parity)}])


def _parity_status(frame: pd.DataFrame) -> str:
    if not len(frame):
        return "not checked"
    if frame["equal"].all():
        return "equal"
    return ", ".join(f"{r['stage']} {r['status']}" for r in frame.to_dict("records") if not r["equal"])


def _rows(frame: pd.DataFrame, stage: str) -> int:
    match = frame[frame["stage"] == stage] if len(frame) else frame
    return int(match["stream_rows"].iloc[0]) if len(match) else 0


def landed_session_file(profile: Profile, session_date=None) -> tuple[dt.date, Path]:
    """The DBN file Bronze landed for ``session_date`` (default: the last session landed)."""
    from ..schemas import INGEST_MANIFEST

    manifest = delta_tables.read(profile, INGEST_MANIFEST).to_pandas()
    manifest = manifest[manifest["status"] == "ingested"]
    if manifest.empty:
        raise FileNotFoundError(f"no file landed in {profile.lake_root}: run 10_bronze_ingest first")
    rows = manifest.explode("session_dates") if "session_dates" in manifest else manifest
    rows = rows.dropna(subset=["session_dates"])
    wanted = dt.date.fromisoformat(str(session_date)) if session_date else max(pd.to_datetime(rows["session_dates"]).dt.date)
    match = rows[pd.to_datetime(rows["session_dates"]).dt.date == wanted]
    if match.empty:
        raise FileNotFoundError(f"no landed file holds session {wanted}")
    path = Path(match["path"].iloc[-1])
    path = path if path.is_absolute() else Path(profile.root) / path  # the manifest keeps project-relative paths
    if not path.exists():
        raise FileNotFoundError(f"the landed file of session {wanted} is gone: {path}")
    return wanted, path


@contextlib.contextmanager
def broker_running(profile: Profile, settings: BusSettings):
    """The broker at ``settings.bootstrap``: used when it answers, else the profile's local broker
    is started on that port here (and stopped after)."""
    state = Path(profile.settings.get("bus", {}).get("state", "./lake/bus"))
    state = state if state.is_absolute() else Path(profile.root) / state
    started = False
    try:
        bus.check_bus(settings, timeout=3.0)
    except bus.BusError:
        bus.start(state, port=int(settings.bootstrap.rsplit(":", 1)[1]))
        started = True
    try:
        bus.ensure_topics(settings)
        yield
    finally:
        if started:
            bus.stop(state)


@contextlib.contextmanager
def champion_served(profile: Profile, model_id: str = "ES_MODEL"):
    from ..features.setup_vector import FEATURE_SET
    from ..ml.registry import registered_model_name
    from ..ml.serve import serve_info_path, serving

    name = registered_model_name(model_id, FEATURE_SET)
    with serving(f"models:/{name}@champion", profile.mlflow_tracking_uri, info_path=serve_info_path(profile, name),
                 log_dir=Path(profile.runs_root) / "serve"):
        yield name


def _count(profile: Profile, table, column: str = "session_date") -> int:
    if not delta_tables.exists(profile, table):
        return 0
    return delta_tables.read(profile, table, [column]).num_rows


def end_offsets(settings: BusSettings, topic: str) -> dict[str, int]:
    """The next offset of every partition of ``topic`` (what a reader that is done has reached)."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(settings.producer_config() | {"group.id": f"mbolake-leg-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {str(p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def committed_offsets(checkpoint: str | Path, topic: str) -> dict[str, int]:
    """The Kafka offsets up to which a query's last committed micro-batch has read (its checkpoint)."""
    folder = Path(checkpoint)
    commits = sorted(int(f.name) for f in (folder / "commits").glob("[0-9]*")) if (folder / "commits").is_dir() else []
    if not commits:
        return {}
    last_line = (folder / "offsets" / str(commits[-1])).read_text().strip().splitlines()[-1]
    return {k: int(v) for k, v in json.loads(last_line).get(topic, {}).items()}


def wait_caught_up(profile: Profile, settings: BusSettings, topic: str, timeout: float, poll: float = 2.0) -> None:
    """Until rt bronze and rt silver have committed every offset of the topic and every setup
    vector of the stream has its score."""
    deadline = time.time() + timeout
    ends = end_offsets(settings, topic)
    behind: list[str] = []
    while time.time() < deadline:
        for job in LEG_JOBS:
            [info] = jobs.status(profile, job)
            if not info["running"]:
                raise RuntimeError(f"stream job {job} stopped; its log: {info['log']}")
        behind = [job for job in ("rt_bronze", "rt_silver")
                  if any(committed_offsets(f"{profile.lake_root}/checkpoints/{job}", topic).get(p, 0) < end
                         for p, end in ends.items())]
        if not behind and _count(profile, INFERENCE_SCORES_STREAM) >= _count(profile, SETUP_VECTORS_STREAM):
            return
        time.sleep(poll)
    raise TimeoutError(f"the stream jobs did not catch up with the feed in {timeout:.0f} s "
                       f"({', '.join(behind) or 'rt_inference'} behind); logs under {jobs.stream_dir(profile)}")


def run_replay_leg(profile: Profile, *, session_date=None, until: str = "10:45", bootstrap: str | None = None,
                   max_offsets: int = 100_000, timeout: float = 600.0) -> ReplayLeg:
    """See the module docstring."""
    session, path = landed_session_file(profile, session_date)
    feed.parse_clock(until, "until")  # a bad clock fails before anything starts
    settings = settings_from(profile.settings.get("bus", {}), bootstrap)
    leg = ReplayLeg(session, path)
    with broker_running(profile, settings), champion_served(profile):
        for job in LEG_JOBS:
            jobs.start(profile, job, bootstrap=settings.bootstrap,
                       max_offsets=max_offsets if job != "rt_inference" else None)
        try:
            started = time.time()
            leg_start_ns = time.time_ns()
            result = feed.replay(path, settings, speed="max", end=until, report=None)
            leg.sent, leg.replay_seconds = result.sent, result.seconds
            wait_caught_up(profile, settings, jobs.rt_silver_config(profile).topic, timeout)
            leg.catch_up_seconds = time.time() - started - result.seconds
        finally:
            for job in LEG_JOBS:
                jobs.stop(profile, job)
    leg.parity = parity.stream_parity(profile, [session], sent=result.last_ts_recv)
    parity.record(leg.parity)
    leg.lag = overview.feed_lag(profile, since_ns=leg_start_ns)
    leg.batches = {job: overview.job_batches(profile, job) for job in LEG_JOBS}
    if delta_tables.exists(profile, INFERENCE_SCORES_STREAM):
        leg.scores = delta_tables.read(profile, INFERENCE_SCORES_STREAM).to_pandas()
    return leg
