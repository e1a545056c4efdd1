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

import pandas as pd

from ..context import Context
from ..products import get_product
from ..schemas import BRONZE_MBO, MBO_NORMALIZED
from .common import count_rows, data_version, in_dates, read_pinned, replace_rows

RTH = ((9, 30), (16, 0))
POST_END = {"FUT": (17, 0), "STK": (20, 0)}


def _minute_of_day(col, timezone: str):
    from pyspark.sql import functions as F

    local = F.from_utc_timestamp(F.timestamp_micros(F.floor(F.col(col) / 1000).cast("long")), timezone)  # UTC fields = wall clock
    return F.hour(local) * 60 + F.minute(local)


def session_phase_column(product):
    """overnight | premarket | rth | post, from ts_recv's wall-clock minute."""
    from pyspark.sql import functions as F

    minute = _minute_of_day("ts_recv", product.timezone)
    pm = product.premarket_start[0] * 60 + product.premarket_start[1]
    open_, close = RTH[0][0] * 60 + RTH[0][1], RTH[1][0] * 60 + RTH[1][1]
    post_end = POST_END.get(product.instrument_type, (20, 0))
    post_end = post_end[0] * 60 + post_end[1]
    return (F.when((minute >= open_) & (minute < close), "rth")
            .when((minute >= pm) & (minute < open_), "premarket")
            .when((minute >= close) & (minute < post_end), "post")
            .otherwise("overnight"))


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
            end_date: dt.date | None = None, include_spreads: bool = False) -> NormalizeSummary:
        from pyspark.sql import functions as F

        t0 = time.perf_counter()
        product = get_product(underlier)
        bronze, version = read_pinned(ctx, BRONZE_MBO, self.name)
        bronze = in_dates(bronze.where(F.col("underlier") == underlier), start_date, end_date)
        bronze = bronze.withColumn("session_phase", session_phase_column(product))

        selection = self._select_front(bronze)
        if selection.empty:
            return NormalizeSummary(selection, 0, 0, {}, time.perf_counter() - t0)
        chosen = ctx.spark.createDataFrame(selection[["session_date", "contract_id", "front_month_dominance"]])
        outright = bronze.join(F.broadcast(chosen.drop("front_month_dominance")), ["session_date", "contract_id"], "left_semi")
        keep = outright.withColumn("is_front_month", F.lit(True))
        if include_spreads:
            spreads = bronze.where(F.col("instrument_type") == "SPREAD").withColumn("is_front_month", F.lit(False))
            keep = keep.unionByName(spreads)
        dominance = chosen.select("session_date", "front_month_dominance")
        out = (keep.join(F.broadcast(dominance), "session_date", "left")
               .withColumn("roll_contaminated", F.coalesce(F.col("front_month_dominance") < self.roll_threshold, F.lit(True)))
               .withColumn("ts_event_local", F.from_utc_timestamp(F.timestamp_micros(F.floor(F.col("ts_event") / 1000).cast("long")),
                                                                   product.timezone).cast("timestamp_ntz"))
               .select(*MBO_NORMALIZED.schema.names))
        lineage_json = data_version(ctx, {BRONZE_MBO.name: version})
        dates = ", ".join(f"DATE'{d}'" for d in sorted(selection["session_date"]))
        where = f"underlier = '{underlier}' AND session_date IN ({dates})"
        replace_rows(ctx, MBO_NORMALIZED, out, where, lineage_json)
        rows_out = count_rows(ctx, MBO_NORMALIZED, where)
        lineage = json.loads(lineage_json)
        return NormalizeSummary(selection, int(selection["session_rows"].sum()), rows_out, lineage,
                                time.perf_counter() - t0)

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
            group = group.sort_values(["rth_volume", "rows"], ascending=False)
            total = group["rth_volume"].sum()
            front = group.iloc[0]
            rows.append({"session_date": session, "contract_id": front.contract_id,
                         "rth_volume": int(front.rth_volume), "outright_rth_volume": int(total),
                         "front_month_dominance": float(front.rth_volume / total) if total else None,
                         "session_rows": int(group["rows"].sum())})
        return pd.DataFrame(rows)
