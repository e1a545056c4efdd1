"""SilverNormalizeMBO: ``bronze.mbo`` -> ``silver.mbo_normalized`` (session tagging, front month).

Per session, the front month is the outright with the largest traded volume (T sizes)
inside regular trading hours; its dominance is that volume over all outrights' RTH
volume, and a session whose dominance is below ``roll_threshold`` is
``roll_contaminated`` (the roll week). Spreads are dropped unless asked for. Session
phase comes from ``ts_recv`` in exchange time (snapshot records carry old ``ts_event``s).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.calendar import local_ns
from ..runtime.context import Context
from ..core.products import get_product
from ..schemas import BRONZE_MBO, MBO_NORMALIZED, spark_schema
from ..engines import local as local_engine
from ..engines.spark import data_version, in_dates, read_pinned, replace_rows
from ..engines.local import category_codes, stage_engine

RTH = ((9, 30), (16, 0))
POST_END = {"FUT": (17, 0), "STK": (20, 0)}


def _micros(col: str):
    """ns -> µs by integer division (a double division would round ns-epoch values by a µs)."""
    from pyspark.sql import functions as F

    return F.expr(f"{col} div 1000")


def _minute_of_day(col, timezone: str):
    from pyspark.sql import functions as F

    local = F.from_utc_timestamp(F.timestamp_micros(_micros(col)), timezone)  # UTC fields = wall clock
    return F.hour(local) * 60 + F.minute(local)


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
    """The front month of one session (Arrow rows with ``FRONT_COLUMNS``): the outright with the
    most traded size (T) inside RTH, then the most records, then the smallest id. Returns the
    selection row (only ``session_date`` when the session has no outright)."""
    session = rows.column("session_date")[0].as_py() if rows.num_rows else None
    phase = session_phase_codes(rows.column("ts_recv").to_numpy(), product)
    contract, contracts = category_codes(rows.column("contract_id"))
    kind, kinds = category_codes(rows.column("instrument_type"))
    action, actions = category_codes(rows.column("action"))
    outright = np.array([k != "SPREAD" for k in kinds], dtype=bool)[kind]
    rth_trade = (np.array([a == "T" for a in actions], dtype=bool)[action] & (phase == 2))[outright]
    size = rows.column("size").to_numpy()[outright]
    volume = np.bincount(contract[outright], weights=np.where(rth_trade, size, 0), minlength=len(contracts))
    count = np.bincount(contract[outright], minlength=len(contracts))
    candidates = [i for i in range(len(contracts)) if count[i]]
    if not candidates:
        return {"session_date": session}
    best = min(candidates, key=lambda i: (-volume[i], -count[i], contracts[i]))
    total = int(volume.sum())
    return {"session_date": session, "contract_id": contracts[best], "rth_volume": int(volume[best]),
            "outright_rth_volume": total, "front_month_dominance": float(volume[best] / total) if total else None,
            "session_rows": int(count.sum())}


def session_phase_column(product):
    """overnight | premarket | rth | post, from ts_recv's wall-clock minute."""
    from pyspark.sql import functions as F

    minute = _minute_of_day("ts_recv", product.timezone)
    pm, open_, close, post_end = _phase_minutes(product)
    return (F.when((minute >= open_) & (minute < close), "rth")
            .when((minute >= pm) & (minute < open_), "premarket")
            .when((minute >= close) & (minute < post_end), "post")
            .otherwise("overnight"))


def _sessions_predicate(underlier: str, sessions) -> str:
    dates = ", ".join(f"DATE'{d}'" for d in sorted(sessions))
    return f"underlier = '{underlier}' AND session_date IN ({dates})"


def _sessions_filter(underlier: str, selection: pd.DataFrame):
    dates = [pa.scalar(d, pa.date32()) for d in selection["session_date"]]
    return (pc.field("underlier") == underlier) & pc.field("session_date").isin(pa.array(dates, pa.date32()))


@dataclass
class NormalizeSummary:
    selection: pd.DataFrame  # one row per session: front contract, its RTH volume, dominance
    rows_in: int
    rows_out: int
    data_version: dict
    seconds: float

    def _repr_html_(self) -> str:
        return (f"<b>SilverNormalizeMBO</b>: {self.rows_in:,} Bronze rows → {self.rows_out:,} normalized rows in "
                f"{self.seconds:.1f} s; lineage {self.data_version}" + self.selection.to_html(index=False))


class SilverNormalizeMBO:
    name = "SilverNormalizeMBO"
    inputs = (BRONZE_MBO.name,)
    outputs = (MBO_NORMALIZED.name,)

    def __init__(self, roll_threshold: float = 0.6):
        if not 0.0 < roll_threshold <= 1.0:
            raise ValueError(f"roll_threshold must be in (0, 1], got {roll_threshold}")
        self.roll_threshold = roll_threshold

    def run(self, ctx: Context, *, underlier: str, start_date: dt.date | None = None,
            end_date: dt.date | None = None, include_spreads: bool = False,
            engine: str | None = None) -> NormalizeSummary:
        t0 = time.perf_counter()
        product = get_product(underlier)
        run = self._run_local if stage_engine(ctx, engine) == "local" else self._run_spark
        selection, lineage_json = run(ctx, product, underlier, start_date, end_date, include_spreads)
        if selection.empty:
            return NormalizeSummary(selection, 0, 0, {}, time.perf_counter() - t0)
        written = local_engine.read_rows(ctx, MBO_NORMALIZED, _sessions_filter(underlier, selection), ["session_date"])
        return NormalizeSummary(selection, int(selection["session_rows"].sum()), written.num_rows,
                                json.loads(lineage_json), time.perf_counter() - t0)

    def _run_local(self, ctx: Context, product, underlier, start_date, end_date, include_spreads):
        bronze = local_engine.PinnedTable(ctx, BRONZE_MBO, self.name)
        lineage_json = data_version(ctx, {BRONZE_MBO.name: bronze.version})
        chosen = local_engine.all_of([pc.field("underlier") == underlier,
                                      local_engine.date_filter(start_date, end_date)])
        sessions = sorted(pc.unique(bronze.read(["session_date"], chosen).column("session_date")).to_pylist())
        if not sessions:
            return pd.DataFrame(), lineage_json
        selection: list[dict] = []

        def normalized():
            for session in sessions:
                in_session = chosen & (pc.field("session_date") == pa.scalar(session, pa.date32()))
                choice = choose_front_month(bronze.read(FRONT_COLUMNS, in_session), product)
                if "contract_id" not in choice:
                    continue
                selection.append(choice)
                keep = pc.field("contract_id") == choice["contract_id"]
                if include_spreads:
                    keep = keep | (pc.field("instrument_type") == "SPREAD")
                yield self.tag_rows(bronze.read(None, in_session & keep), choice, product)

        local_engine.replace(ctx, MBO_NORMALIZED, normalized(), _sessions_predicate(underlier, sessions), lineage_json)
        return pd.DataFrame(selection), lineage_json

    def tag_rows(self, kept: pa.Table, choice: dict, product) -> pa.Table:
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
            "roll_contaminated": pa.array(np.full(n, dominance is None or dominance < self.roll_threshold)),
        }
        for name, column in extra.items():
            kept = kept.append_column(name, column)
        return kept.select(MBO_NORMALIZED.schema.names)

    def _run_spark(self, ctx: Context, product, underlier, start_date, end_date, include_spreads):
        from pyspark.sql import functions as F

        bronze, version = read_pinned(ctx, BRONZE_MBO, self.name)
        bronze = in_dates(bronze.where(F.col("underlier") == underlier), start_date, end_date)
        bronze = bronze.withColumn("session_phase", session_phase_column(product))
        lineage_json = data_version(ctx, {BRONZE_MBO.name: version})
        # every session read is replaced, as on the local engine: one without an outright
        # contract (spreads only) keeps no rows, not the rows of an earlier run
        sessions = [row.session_date for row in bronze.select("session_date").distinct().collect()]
        if not sessions:
            return pd.DataFrame(), lineage_json
        selection = self._select_front(bronze)
        if selection.empty:
            out = ctx.spark.createDataFrame([], spark_schema(MBO_NORMALIZED))
        else:
            out = self._tagged_rows(ctx, bronze, selection, product, include_spreads)
        replace_rows(ctx, MBO_NORMALIZED, out, _sessions_predicate(underlier, sessions), lineage_json)
        return selection, lineage_json

    def _tagged_rows(self, ctx: Context, bronze, selection: pd.DataFrame, product, include_spreads: bool):
        from pyspark.sql import functions as F

        chosen = ctx.spark.createDataFrame(selection[["session_date", "contract_id", "front_month_dominance"]])
        outright = bronze.join(F.broadcast(chosen.drop("front_month_dominance")), ["session_date", "contract_id"], "left_semi")
        keep = outright.withColumn("is_front_month", F.lit(True))
        if include_spreads:  # of the sessions that have a front month, as on the local engine
            spreads = (bronze.where(F.col("instrument_type") == "SPREAD")
                       .join(F.broadcast(chosen.select("session_date")), "session_date", "left_semi")
                       .withColumn("is_front_month", F.lit(False)))
            keep = keep.unionByName(spreads)
        dominance = chosen.select("session_date", "front_month_dominance")
        return (keep.join(F.broadcast(dominance), "session_date", "left")
                .withColumn("roll_contaminated", F.coalesce(F.col("front_month_dominance") < self.roll_threshold, F.lit(True)))
                .withColumn("ts_event_local", F.from_utc_timestamp(F.timestamp_micros(_micros("ts_event")),
                                                                    product.timezone).cast("timestamp_ntz"))
                .select(*MBO_NORMALIZED.schema.names))

    def _select_front(self, bronze) -> pd.DataFrame:
        from pyspark.sql import functions as F

        outright = bronze.where(F.col("instrument_type") != "SPREAD")
        per_contract = (outright.groupBy("session_date", "contract_id")
                        .agg(F.sum(F.when((F.col("action") == "T") & (F.col("session_phase") == "rth"), F.col("size"))
                                   .otherwise(0)).alias("rth_volume"),
                             F.count(F.lit(1)).alias("rows"))).toPandas()
        if per_contract.empty:
            return per_contract.assign(front_month_dominance=[], session_rows=[])
        rows = []
        for session, group in per_contract.groupby("session_date"):
            group = group.sort_values(["rth_volume", "rows", "contract_id"], ascending=[False, False, True])
            total = group["rth_volume"].sum()
            front = group.iloc[0]
            rows.append({"session_date": session, "contract_id": front.contract_id,
                         "rth_volume": int(front.rth_volume), "outright_rth_volume": int(total),
                         "front_month_dominance": float(front.rth_volume / total) if total else None,
                         "session_rows": int(group["rows"].sum())})
        return pd.DataFrame(rows)
