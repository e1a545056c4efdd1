"""SilverNormalizeMBO: ``bronze.mbo`` -> ``silver.mbo_normalized`` (session tagging, front month).

Per session, the front month is chosen by the roll calendar
(``core.products.front_month_symbol``: for ES the nearest quarterly contract until 8 days
before its expiry), a rule that needs nothing from the session's future, so rt silver can
apply it at a session's first record and batch and stream agree. Its dominance is its
traded volume (T sizes) inside regular trading hours over all outrights' RTH volume,
computed after the fact as metadata: a session whose dominance is below ``roll_threshold``
is ``roll_contaminated`` (the roll week). A session whose calendar contract has no record
keeps no rows. (Before, the front month was the session's RTH volume leader: only known
once the session is over.) Spreads are dropped unless asked for. Session
phase comes from ``ts_recv`` in exchange time (snapshot records carry old ``ts_event``s).
Groups are whole sessions (``underlier``, ``session_date``): every session read is
replaced, so one left without an outright (spreads only) keeps no stale rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.calendar import local_ns
from ..core.products import Product, front_month_contract
from ..engines import Condition, Engine, Source, in_dates, where
from ..engines.local import category_codes, keys_filter, read_rows
from ..schemas import BRONZE_MBO, MBO_NORMALIZED
from .base import Stage, StageSummary

RTH = ((9, 30), (16, 0))
POST_END = {"FUT": (17, 0), "STK": (20, 0)}


def _phase_minutes(product) -> tuple[int, int, int, int]:
    """(premarket start, RTH open, RTH close, post end) as local minutes of the day."""
    pm = product.premarket_start[0] * 60 + product.premarket_start[1]
    open_, close = RTH[0][0] * 60 + RTH[0][1], RTH[1][0] * 60 + RTH[1][1]
    post_end = POST_END.get(product.instrument_type, (20, 0))
    return pm, open_, close, post_end[0] * 60 + post_end[1]


PHASES = ("overnight", "premarket", "rth", "post")


def session_phase_codes(ts_recv: np.ndarray, product) -> np.ndarray:
    """Index into ``PHASES`` of every timestamp (numpy twin of ``session_phase_column``)."""
    minute = (local_ns(ts_recv, product.timezone) // 60_000_000_000) % (24 * 60)
    pm, open_, close, post_end = _phase_minutes(product)
    codes = np.zeros(len(ts_recv), dtype=np.int8)
    codes[(minute >= pm) & (minute < open_)] = 1
    codes[(minute >= open_) & (minute < close)] = 2
    codes[(minute >= close) & (minute < post_end)] = 3
    return codes


FRONT_COLUMNS = ["session_date", "ts_recv", "contract_id", "instrument_type", "action", "size"]


def choose_front_month(rows: pa.Table, product) -> dict:
    """The front month of one session (Arrow rows with ``FRONT_COLUMNS``): the roll calendar's
    contract, when the session has records of it. Returns the selection row (only
    ``session_date`` when it has none)."""
    session = rows.column("session_date")[0].as_py() if rows.num_rows else None
    if session is None:
        return {"session_date": None}
    phase = session_phase_codes(rows.column("ts_recv").to_numpy(), product)
    contract, contracts = category_codes(rows.column("contract_id"))
    kind, kinds = category_codes(rows.column("instrument_type"))
    action, actions = category_codes(rows.column("action"))
    outright = np.array([k != "SPREAD" for k in kinds], dtype=bool)[kind]
    rth_trade = (np.array([a == "T" for a in actions], dtype=bool)[action] & (phase == 2))[outright]
    size = rows.column("size").to_numpy()[outright]
    volume = np.bincount(contract[outright], weights=np.where(rth_trade, size, 0), minlength=len(contracts))
    count = np.bincount(contract[outright], minlength=len(contracts))
    front = front_month_contract(product, session)
    if front not in contracts or not count[contracts.index(front)]:
        return {"session_date": session}
    best = contracts.index(front)
    total = int(volume.sum())
    return {"session_date": session, "contract_id": front, "rth_volume": int(volume[best]),
            "outright_rth_volume": total, "front_month_dominance": float(volume[best] / total) if total else None,
            "session_rows": int(count.sum())}


SESSION = ("underlier", "session_date")
SELECTION_SCHEMA = pa.schema([("session_date", pa.date32()), ("contract_id", pa.string()),
                              ("rth_volume", pa.int64()), ("outright_rth_volume", pa.int64()),
                              ("front_month_dominance", pa.float64()), ("session_rows", pa.int64())])


def front_month_rows(rows: pa.Table, product: Product) -> list[pa.Table]:
    """The selection row of one session (none when it has no outright)."""
    choice = choose_front_month(rows, product)
    return [pa.Table.from_pylist([choice], SELECTION_SCHEMA)] if "contract_id" in choice else []


def tag_session(rows: pa.Table, choice: dict | None, product: Product, include_spreads: bool,
                roll_threshold: float) -> list[pa.Table]:
    """One session's Bronze rows -> its normalized rows: the front month (and spreads if asked)."""
    if choice is None or not rows.num_rows:
        return []
    contract, contracts = category_codes(rows.column("contract_id"))
    keep = np.array([c == choice["contract_id"] for c in contracts], dtype=bool)[contract]
    if include_spreads:
        kind, kinds = category_codes(rows.column("instrument_type"))
        keep |= np.array([k == "SPREAD" for k in kinds], dtype=bool)[kind]
    return [tag_rows(rows.filter(pa.array(keep)), choice, product, roll_threshold)]


def tag_rows(kept: pa.Table, choice: dict, product: Product, roll_threshold: float) -> pa.Table:
    """The session's kept Bronze rows with the normalized columns added."""
    n = kept.num_rows
    dominance = choice["front_month_dominance"]
    ts_event = kept.column("ts_event").to_numpy()
    local_us = local_ns(ts_event // 1000 * 1000, product.timezone) // 1000
    phase = session_phase_codes(kept.column("ts_recv").to_numpy(), product)
    contract, contracts = category_codes(kept.column("contract_id"))
    extra = {
        "ts_event_local": pa.array(local_us, type=pa.timestamp("us")),
        "session_phase": pa.DictionaryArray.from_arrays(pa.array(phase), pa.array(PHASES)),
        "is_front_month": pa.array(np.array([c == choice["contract_id"] for c in contracts], dtype=bool)[contract]),
        "front_month_dominance": pa.array(np.full(n, np.nan if dominance is None else dominance),
                                          mask=np.full(n, dominance is None)),
        "roll_contaminated": pa.array(np.full(n, dominance is None or dominance < roll_threshold)),
    }
    for name, column in extra.items():
        kept = kept.append_column(name, column)
    return kept.select(MBO_NORMALIZED.schema.names)


class SilverNormalizeMBO(Stage):
    name = "SilverNormalizeMBO"
    inputs = (BRONZE_MBO,)
    outputs = (MBO_NORMALIZED,)

    def __init__(self, roll_threshold: float = 0.6):
        if not 0.0 < roll_threshold <= 1.0:
            raise ValueError(f"roll_threshold must be in (0, 1], got {roll_threshold}")
        self.roll_threshold = roll_threshold

    def execute(self, engine: Engine, product: Product, start_date, end_date,
                include_spreads: bool = False) -> StageSummary:
        conditions = where(underlier=product.underlier) + in_dates(start_date, end_date)
        engine.pin(BRONZE_MBO)
        lineage = engine.lineage()
        keys = engine.group_keys(Source(BRONZE_MBO, where=conditions), by=SESSION)
        if keys.empty:
            return self.summary(0, 0, lineage, pd.DataFrame(), ["no Bronze records in the range"])
        selection = engine.collect_groups([Source(BRONZE_MBO, FRONT_COLUMNS, conditions)],
                                          lambda rows: front_month_rows(rows, product), SELECTION_SCHEMA, keys)
        selection = selection.to_pandas().sort_values("session_date").reset_index(drop=True)
        chosen = {row["session_date"]: row for row in selection.to_dict("records")}
        if not include_spreads:  # read only the chosen contracts
            conditions += (Condition("contract_id", "in", tuple(sorted(set(selection["contract_id"])))),)
        threshold = self.roll_threshold
        engine.map_groups(
            [Source(BRONZE_MBO, None, conditions)],
            lambda rows: tag_session(rows, chosen.get(_session_of(rows)), product, include_spreads, threshold),
            self.outputs, keys, lineage)
        if selection.empty:
            return self.summary(0, 0, lineage, selection,
                                ["no session of the range has records of its calendar front month"])
        written = read_rows(engine.ctx, MBO_NORMALIZED, keys_filter(keys, MBO_NORMALIZED.schema), ["session_date"])
        return self.summary(int(selection["session_rows"].sum()), written.num_rows, lineage, selection)


def _session_of(rows: pa.Table):
    return rows.column("session_date")[0].as_py() if rows.num_rows else None
