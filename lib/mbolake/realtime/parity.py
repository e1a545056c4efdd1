"""Batch / stream parity: the stream twins against the batch tables, value for value.

For each pair (``silver.orderbook_state`` / ``_stream``, ``silver.bar_5s``,
``silver.feature_primitives``, ``gold.setup_vectors``): the batch rows due against every stream
row of the sessions compared, over the batch table's columns except ``data_version`` (lineage
differs by design). The sessions compared are ``session_dates``, else those the feed sent, else
(``complete=True``) every session in the tables. Which batch rows are due takes one of:

- ``complete=True``: the stream consumed whole sessions; every batch row is due.
- ``sent={(contract_id, session_date): ts_recv}``: the feed's last ``ts_recv`` per
  contract-session (``feed.ReplayResult.last_ts_recv``). A stream that has consumed everything
  the feed sent has every row whose time the contract's feed time (its last ``ts_recv``) has
  reached (``stages/contract_stream.py``): a book state's ``ts_recv`` (its packet's last
  record), a bar's end, a vector's ``vector_time`` (its confirm candle's close), an episode's
  last candle's close (the primitives). The feed's ``end=`` cut is by time, so it never splits
  the records of one ``ts_recv``. A contract-session the feed never sent has nothing due.

One of the two is required: the stream's own last book state would move back with a lost tail
and call it "not produced yet".

The result is one row per table: rows on each side, the number of differing rows, and
``status``: "equal", "different" (row counts or values), "missing" (a contract-session with
batch rows due and no stream row; named in ``notes``) or "empty" (no row due and none in the
stream: nothing was checked). ``equal`` is ``status == "equal"``. ``record`` writes it into the
run's summaries (``stream_parity``) for the validation report.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..features.candles import CANDLE_NS
from ..io import delta_tables
from ..runtime.config import Profile
from ..runtime.run_record import write_stage_summary
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, ORDERBOOK_STATE, SETUP_VECTORS, STREAM_TABLES, Table

PAIRS = (ORDERBOOK_STATE, BAR_5S, FEATURE_PRIMITIVES, SETUP_VECTORS)
IGNORED = ("data_version", "stream_batch_id", "stream_time")
KEYS = ["contract_id", "session_date"]
BAR_NS = 5_000_000_000


def twin(table: Table) -> Table:
    return STREAM_TABLES[f"{table.name}_stream"]


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _read(profile: Profile, table: Table, sessions: list[dt.date] | None) -> pd.DataFrame:
    """The table's rows of ``sessions`` (None: all), without the lineage columns."""
    columns = [c for c in table.schema.names if c not in IGNORED]
    if not delta_tables.exists(profile, table) or sessions == []:
        return pd.DataFrame(columns=columns)
    from deltalake import DeltaTable

    filters = [("session_date", "in", sessions)] if sessions is not None else None
    return DeltaTable(delta_tables.table_uri(profile, table), storage_options=delta_tables.storage_options()) \
        .to_pyarrow_table(columns=columns, filters=filters).to_pandas()


def _cutoff_per_row(rows: pd.DataFrame, sent: dict) -> np.ndarray:
    """Each row's contract-session cut-off; -1 where the feed sent nothing of it."""
    cutoff = np.full(len(rows), -1, dtype=np.int64)
    for (contract, session), ts in sent.items():
        cutoff[((rows["contract_id"] == contract) & (rows["session_date"] == session)).to_numpy()] = ts
    return cutoff


def _due(table: Table, rows: pd.DataFrame, sent: dict | None) -> np.ndarray:
    """Which batch rows a stream that consumed everything sent must have produced."""
    if sent is None or not len(rows):
        return np.full(len(rows), sent is None, dtype=bool)
    cutoff = _cutoff_per_row(rows, sent)
    if table is ORDERBOOK_STATE:
        return rows["ts_recv"].to_numpy(np.int64) <= cutoff
    if table is BAR_5S:
        return rows["bar_ts"].to_numpy(np.int64) + BAR_NS <= cutoff
    if table is SETUP_VECTORS:
        return rows["vector_time"].to_numpy(np.int64) <= cutoff
    # an episode's rows all come out once its last candle (look-forward or the window's) has closed
    last_candle = rows.groupby("episode_id")["candle_ts"].transform("max").to_numpy(np.int64)
    return last_candle + CANDLE_NS <= cutoff


def _sorted(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    keys = {BAR_5S: ["contract_id", "session_date", "bar_ts"], FEATURE_PRIMITIVES: ["episode_id", "position"],
            SETUP_VECTORS: ["episode_id"]}.get(table)
    if keys is None:  # book states: no unique key (a packet's records share ts_recv and sequence)
        keys = [c for c in frame.columns if frame[c].dtype != object or c in ("contract_id", "action", "side")]
    return frame.sort_values(keys, kind="stable", na_position="first").reset_index(drop=True)


def _different_rows(batch: pd.DataFrame, stream: pd.DataFrame) -> tuple[int, str]:
    """Rows that differ (aligned after sorting) and the first differing column."""
    differs = np.zeros(len(batch), dtype=bool)
    first = ""
    for column in batch.columns:
        left, right = batch[column], stream[column]
        if column == "feature_vector":
            bad = np.array([not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True) for a, b in zip(left, right)],
                           dtype=bool)
        else:
            same = np.asarray(left.to_numpy() == right.to_numpy(), dtype=bool)
            bad = ~(same | (left.isna().to_numpy() & right.isna().to_numpy()))
        if bad.any() and not first:
            first = f"{column} (first at row {int(np.flatnonzero(bad)[0])})"
        differs |= bad
    return int(differs.sum()), first


def _missing(due: pd.DataFrame, stream: pd.DataFrame) -> list[str]:
    """The contract-sessions with batch rows due and no stream row, as ``contract session``."""
    wanted = due[KEYS].drop_duplicates().merge(stream[KEYS].drop_duplicates(), on=KEYS, how="left", indicator=True)
    absent = wanted[wanted["_merge"] == "left_only"].sort_values(KEYS)
    return [f"{c} {d}" for c, d in zip(absent["contract_id"], absent["session_date"])]


def compare_table(profile: Profile, table: Table, sessions: list[dt.date] | None, sent: dict | None) -> dict:
    batch, stream = _read(profile, table, sessions), _read(profile, twin(table), sessions)
    due = batch[_due(table, batch, sent)]
    row = {"stage": table.name, "batch_rows": len(batch), "batch_rows_due": len(due), "stream_rows": len(stream),
           "different_rows": None}
    counts = f"{len(stream)} stream rows against {len(due)} batch rows due"
    if not len(due) and not len(stream):
        return row | {"status": "empty", "notes": "no row due and none in the stream: nothing checked"}
    missing = _missing(due, stream)
    if missing:
        return row | {"status": "missing", "notes": f"no stream row for {', '.join(missing)} ({counts})"}
    if len(due) != len(stream):
        return row | {"status": "different", "notes": counts}
    different, first = _different_rows(_sorted(due, table), _sorted(stream, table))
    return row | {"status": "different" if different else "equal", "different_rows": different,
                  "notes": f"first difference in {first}" if different else ""}


def _sessions(session_dates, sent: dict | None) -> list[dt.date] | None:
    if session_dates is not None:
        return sorted({_date(d) for d in session_dates})
    if sent is not None:
        return sorted({session for _, session in sent})
    return None


def stream_parity(profile: Profile, session_dates=None, complete: bool = False, sent: dict | None = None) -> pd.DataFrame:
    """One row per table pair (see the module docstring). ``sent``: the feed's last ``ts_recv`` per
    ``(contract_id, session_date)``, e.g. ``feed.ReplayResult.last_ts_recv``."""
    if complete and sent is not None:
        raise ValueError("stream_parity: give complete=True or sent=, not both")
    if not complete and sent is None:
        raise ValueError("stream_parity needs sent= (the feed's last ts_recv per (contract_id, session_date), "
                         "feed.ReplayResult.last_ts_recv) or complete=True (the stream consumed whole sessions)")
    if sent is not None:
        sent = {(contract, _date(session)): int(ts) for (contract, session), ts in sent.items()}
    sessions = _sessions(session_dates, sent)
    rows = [compare_table(profile, table, sessions, sent) for table in PAIRS]
    return pd.DataFrame([row | {"equal": row["status"] == "equal"} for row in rows],
                        columns=["stage", "batch_rows", "batch_rows_due", "stream_rows", "equal", "status",
                                 "different_rows", "notes"])


def record(result: pd.DataFrame) -> None:
    """Into the current run's summaries (a no-op outside ``mbolake run``): the validation report
    shows one row per table beside the engine parity."""
    details = [{"table": r["stage"], "equal": bool(r["equal"]), "status": r["status"], "rows": r.get("stream_rows"),
                "notes": r.get("notes") or f"{r.get('batch_rows_due')} batch rows due"} for r in result.to_dict("records")]
    write_stage_summary("stream_parity", {"equal": bool(result["equal"].all()), "details": details,
                                          "notes": [f"{d['table']}: {d['status']}" for d in details]})
