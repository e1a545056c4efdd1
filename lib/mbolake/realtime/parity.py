"""Batch / stream parity: the stream twins against the batch tables, value for value.

For each pair (``silver.orderbook_state`` / ``_stream``, ``silver.bar_5s``,
``silver.feature_primitives``, ``gold.setup_vectors``) and each contract-session the stream
has: the batch rows the stream should have produced by then, against the stream's rows, over
the batch table's columns except ``data_version`` (lineage differs by design). With
``complete=True`` (the stream consumed the whole session) every batch row is due; otherwise a
row is due once the stream's feed time (its last book state) has passed the row's time:
a book state's ``ts_recv``, a bar's end, a vector's ``vector_time``, an episode's last
look-forward candle (or the window's end).

The result is one row per table: rows on each side, missing / extra / different rows, and
``equal``; ``record`` writes it into the run's summaries (``stream_parity``) for the
validation report.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..io import delta_tables
from ..runtime.config import Profile
from ..runtime.run_record import write_stage_summary
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, ORDERBOOK_STATE, SETUP_VECTORS, STREAM_TABLES, Table

PAIRS = (ORDERBOOK_STATE, BAR_5S, FEATURE_PRIMITIVES, SETUP_VECTORS)
IGNORED = ("data_version", "stream_batch_id", "stream_time")
BAR_NS = 5_000_000_000


def twin(table: Table) -> Table:
    return STREAM_TABLES[f"{table.name}_stream"]


def _read(profile: Profile, table: Table, keys: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in table.schema.names if c not in IGNORED]
    if not delta_tables.exists(profile, table) or keys.empty:
        return pd.DataFrame(columns=columns)
    from deltalake import DeltaTable

    dates = sorted(set(keys["session_date"]))
    data = DeltaTable(delta_tables.table_uri(profile, table), storage_options=delta_tables.storage_options()) \
        .to_pyarrow_table(columns=columns, filters=[("session_date", "in", dates)])
    contracts = pa.array(sorted(set(keys["contract_id"])))
    data = data.filter(pc.is_in(data.column("contract_id"), contracts))
    return data.to_pandas().merge(keys[["contract_id", "session_date"]], on=["contract_id", "session_date"])


def frontiers(profile: Profile, session_dates=None) -> pd.DataFrame:
    """Per contract-session of the stream: its last book state's ``ts_recv`` (how far it has read)."""
    stream = twin(ORDERBOOK_STATE)
    if not delta_tables.exists(profile, stream):
        return pd.DataFrame(columns=["contract_id", "session_date", "frontier"])
    table = delta_tables.read(profile, stream, ["contract_id", "session_date", "ts_recv"]).to_pandas()
    if session_dates is not None:
        table = table[table["session_date"].isin([_date(d) for d in session_dates])]
    return (table.groupby(["contract_id", "session_date"], as_index=False)["ts_recv"].max()
            .rename(columns={"ts_recv": "frontier"}))


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _due(table: Table, rows: pd.DataFrame, frontier: pd.Series, window_end: pd.Series | None) -> np.ndarray:
    if table is ORDERBOOK_STATE:
        return rows["ts_recv"].to_numpy() < frontier
    if table is BAR_5S:
        return rows["bar_ts"].to_numpy() + BAR_NS <= frontier
    if table is SETUP_VECTORS:
        return rows["vector_time"].to_numpy() <= frontier
    # an episode's rows are all out once its last look-forward candle (or the window) has closed
    last_close = rows.groupby("episode_id")["candle_ts"].transform("max").to_numpy() + (
        rows["confirm_ts"].to_numpy() - rows["trigger_ts"].to_numpy())
    return last_close <= frontier


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


def compare_table(profile: Profile, table: Table, keys: pd.DataFrame, complete: bool) -> dict:
    batch, stream = _read(profile, table, keys), _read(profile, twin(table), keys)
    total_batch = len(batch)
    if not complete and len(batch):
        frontier = batch.merge(keys, on=["contract_id", "session_date"], how="left")["frontier"].to_numpy()
        batch = batch[_due(table, batch, frontier, None)]
        if table is ORDERBOOK_STATE:  # the rows at the frontier itself may be split by a micro-batch cut
            stream_frontier = stream.merge(keys, on=["contract_id", "session_date"], how="left")["frontier"].to_numpy()
            stream = stream[stream["ts_recv"].to_numpy() < stream_frontier]
    batch, stream = _sorted(batch, table), _sorted(stream, table)
    row = {"stage": table.name, "batch_rows": total_batch, "batch_rows_due": len(batch), "stream_rows": len(stream)}
    if len(batch) != len(stream):
        return row | {"equal": False, "different_rows": None,
                      "notes": f"{len(stream)} stream rows against {len(batch)} batch rows due"}
    different, first = _different_rows(batch, stream)
    return row | {"equal": different == 0, "different_rows": different,
                  "notes": f"first difference in {first}" if different else ""}


def stream_parity(profile: Profile, session_dates=None, complete: bool = False) -> pd.DataFrame:
    """One row per table pair (see the module docstring)."""
    keys = frontiers(profile, session_dates)
    if keys.empty:
        return pd.DataFrame([{"stage": t.name, "batch_rows": None, "batch_rows_due": None, "stream_rows": 0,
                              "equal": False, "different_rows": None, "notes": "the stream has no book state yet"}
                             for t in PAIRS])
    return pd.DataFrame([compare_table(profile, table, keys, complete) for table in PAIRS])


def record(result: pd.DataFrame) -> None:
    """Into the current run's summaries (a no-op outside ``mbolake run``): the validation report
    shows one row per table beside the engine parity."""
    details = [{"table": r["stage"], "equal": bool(r["equal"]), "rows": r.get("stream_rows"),
                "notes": r.get("notes") or f"{r.get('batch_rows_due')} batch rows due"} for r in result.to_dict("records")]
    write_stage_summary("stream_parity", {"equal": bool(result["equal"].all()), "details": details,
                                          "notes": [f"{d['table']}: {'equal' if d['equal'] else 'DIFFERENT'}"
                                                    for d in details]})
