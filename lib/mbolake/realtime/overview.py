"""What the real-time notebook shows: the stream jobs, their micro-batches, how far behind the feed
the stream tables are, and the latest features.

- ``job_batches``: every micro-batch a job logged (one JSON line per batch in
  ``runs/streams/<job>.log``): its duration and rows;
- ``feed_lag``: per stream table, the seconds from the feed reading an event (its
  ``ingest_time`` in ``bronze.mbo_stream``) to the commit of the row it completed
  (``stream_time``), p50 / p99 / max;
- ``latest_series`` / ``plot_feature_series``: the last minutes of ``gold.feature_series_stream``
  (the latest scores: ``rt_inference.latest_scores`` / ``plot_scores``).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..io import delta_tables
from ..runtime.config import Profile
from ..schemas import (
    BAR_5S_STREAM,
    BRONZE_MBO_STREAM,
    FEATURE_SERIES_STREAM,
    ORDERBOOK_STATE_STREAM,
    SETUP_VECTORS_STREAM,
    Table,
)
from . import jobs

BAR_NS = 5_000_000_000
# stream table -> the event time of a row (ns): when the event that completed it was received
EVENT_TIME = {ORDERBOOK_STATE_STREAM.name: "ts_recv", BAR_5S_STREAM.name: "bar_end",
              SETUP_VECTORS_STREAM.name: "vector_time"}


def job_batches(profile: Profile, name: str) -> pd.DataFrame:
    """The micro-batches job ``name`` logged, in order (empty when it never ran)."""
    path = jobs.stream_dir(profile) / f"{name}.log"
    rows = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"batch_id"' in line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


def _read(profile: Profile, table: Table, columns: list[str]) -> pd.DataFrame:
    if not delta_tables.exists(profile, table):
        return pd.DataFrame(columns=columns)
    return delta_tables.read(profile, table, columns).to_pandas()


def ingest_times(profile: Profile) -> pd.DataFrame:
    """``(contract_id, ts_recv, ingest_time)`` of the events rt bronze landed, in ``ts_recv`` order."""
    events = _read(profile, BRONZE_MBO_STREAM, ["contract_id", "ts_recv", "ingest_time"])
    return events.sort_values("ts_recv", kind="stable").reset_index(drop=True)


def feed_lag(profile: Profile, since_ns: int | None = None) -> pd.DataFrame:
    """Per stream table: rows, and seconds from the feed reading the completing event to the row's
    commit (p50, p99, max). Needs rt bronze's table for the feed's read times; with ``since_ns``
    only rows whose event the feed read since then (rt bronze keeps the first read of an event
    replayed twice, so an earlier replay's read time would count the time between replays)."""
    events = ingest_times(profile)
    out = []
    for name, column in EVENT_TIME.items():
        table = next(t for t in (ORDERBOOK_STATE_STREAM, BAR_5S_STREAM, SETUP_VECTORS_STREAM) if t.name == name)
        columns = ["contract_id", "ts_recv" if column == "ts_recv" else ("bar_ts" if column == "bar_end" else column),
                   "stream_time"]
        rows = _read(profile, table, columns)
        if rows.empty or events.empty:
            out.append({"table": name, "rows": len(rows)})
            continue
        event = rows[columns[1]].to_numpy(np.int64) + (BAR_NS if column == "bar_end" else 0)
        # the first event read at or after the row's time: the one that completed it
        at = np.searchsorted(events["ts_recv"].to_numpy(np.int64), event, side="left")
        found = at < len(events)
        read = events["ingest_time"].to_numpy(np.int64)[np.minimum(at, len(events) - 1)]
        if since_ns is not None:
            found &= read >= since_ns
        if not found.any():
            out.append({"table": name, "rows": len(rows)})
            continue
        lag = (rows["stream_time"].to_numpy(np.int64)[found] - read[found]) / 1e9
        out.append({"table": name, "rows": len(rows), "lag_p50_s": float(np.percentile(lag, 50)),
                    "lag_p99_s": float(np.percentile(lag, 99)), "lag_max_s": float(lag.max())})
    return pd.DataFrame(out)


def latest_series(profile: Profile, minutes: float = 60.0) -> pd.DataFrame:
    """The last ``minutes`` of ``gold.feature_series_stream`` (every contract), oldest first."""
    names = [f.name for f in FEATURE_SERIES_STREAM.schema]
    series = _read(profile, FEATURE_SERIES_STREAM, names)
    if series.empty:
        return series
    series = series.drop_duplicates(["contract_id", "session_date", "bar_ts"], keep="last")
    series = series[series["bar_ts"] >= series["bar_ts"].max() - int(minutes * 60e9)]
    series = series.sort_values(["contract_id", "bar_ts"]).reset_index(drop=True)
    series["time"] = pd.to_datetime(series["bar_ts"], unit="ns", utc=True)
    return series


def plot_feature_series(series: pd.DataFrame):
    """Mid, order-flow imbalance, depth imbalance and signed trade volume per 5-second bar."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = (("mid", "mid (points)"), ("ofi_l0", "OFI, best level"), ("obi_l10", "depth imbalance, 10 levels"),
              ("trade_signed_volume", "signed trade volume"))
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[title for _, title in panels])
    for contract, rows in series.groupby("contract_id"):
        for i, (column, _) in enumerate(panels, start=1):
            trace = go.Bar if column in ("ofi_l0", "trade_signed_volume") else go.Scatter
            fig.add_trace(trace(x=rows["time"], y=rows[column], name=f"{contract} {column}", showlegend=i == 1),
                          row=i, col=1)
    fig.update_layout(height=720, title="Latest 5-second features from the stream", bargap=0)
    return fig


def plot_batches(batches: dict[str, pd.DataFrame]):
    """Seconds per micro-batch of each job, over time."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, frame in batches.items():
        if len(frame) and "seconds" in frame:
            fig.add_scatter(x=frame["time"], y=frame["seconds"], mode="lines+markers", name=name)
    fig.update_layout(title="Micro-batch durations", xaxis_title="committed at (UTC)", yaxis_title="seconds")
    return fig


def jobs_table(profile: Profile) -> pd.DataFrame:
    """One row per stream job: running or not, pid, its last micro-batch (when, rows, seconds)."""
    rows = []
    for info in jobs.status(profile):
        last = info["last_batch"] or {}
        rows.append({"job": info["job"], "running": info["running"], "pid": info["pid"],
                     "last batch": last.get("batch_id"),
                     "last batch at (UTC)": pd.to_datetime(last["time"], unit="s", utc=True) if "time" in last else None,
                     "seconds": last.get("seconds"), "log": info["log"]})
    return pd.DataFrame(rows)


def input_rates(batches: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per job: micro-batches, rows in per second of batch time, median and p95 batch seconds."""
    out = []
    for name, frame in batches.items():
        if frame.empty or "seconds" not in frame:
            out.append({"job": name, "micro-batches": 0})
            continue
        rows_in = next((frame[c] for c in ("messages", "records", "vectors") if c in frame), None)
        seconds = frame["seconds"].astype(float)
        out.append({"job": name, "micro-batches": len(frame),
                    "rows in": int(rows_in.sum()) if rows_in is not None else None,
                    "rows/s while running": round(float(rows_in.sum() / seconds.sum()), 1)
                    if rows_in is not None and seconds.sum() else None,
                    "batch s p50": round(float(seconds.median()), 2),
                    "batch s p95": round(float(seconds.quantile(0.95)), 2)})
    return pd.DataFrame(out)

