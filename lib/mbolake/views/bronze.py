"""What the Bronze notebook shows: counts by action and instrument, message rate, quarantine."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from ..schemas import BRONZE_MBO, QUARANTINE, INGEST_MANIFEST


def bronze_frame(ctx, underlier: str, start_date: dt.date | None = None, end_date: dt.date | None = None):
    """``bronze.mbo`` for an underlier and session-date range, as a Spark DataFrame."""
    from pyspark.sql import functions as F

    df = ctx.spark.read.format("delta").load(ctx.profile.table_path(BRONZE_MBO.name))
    df = df.where(F.col("underlier") == underlier)
    if start_date:
        df = df.where(F.col("session_date") >= F.lit(start_date))
    if end_date:
        df = df.where(F.col("session_date") <= F.lit(end_date))
    return df


def counts_by_action(df) -> pd.DataFrame:
    """Records per session date and symbol, one column per action."""
    counts = df.groupBy("session_date", "symbol", "instrument_type").pivot("action").count().toPandas()
    counts = counts.fillna(0).sort_values(["session_date", "symbol"]).reset_index(drop=True)
    actions = [c for c in counts.columns if len(c) == 1]
    counts[actions] = counts[actions].astype("int64")
    counts["total"] = counts[actions].sum(axis=1)
    return counts


def message_rate(df, timezone: str = "America/New_York", bucket_seconds: int = 60) -> pd.DataFrame:
    """Records per bucket of exchange-local time, per session date and instrument type."""
    from pyspark.sql import functions as F

    bucket_ns = bucket_seconds * 1_000_000_000
    rate = (
        df.withColumn("bucket", (F.col("ts_recv") / F.lit(bucket_ns)).cast("long") * F.lit(bucket_ns))
        .groupBy("session_date", "instrument_type", "bucket").count().toPandas()
    )
    rate["time_local"] = pd.to_datetime(rate["bucket"], unit="ns", utc=True).dt.tz_convert(timezone)
    rate["per_second"] = rate["count"] / bucket_seconds
    return rate.sort_values(["session_date", "instrument_type", "bucket"]).reset_index(drop=True)


def plot_message_rate(rate: pd.DataFrame, title: str = "Message rate"):
    import plotly.express as px

    rate = rate.assign(time_of_day=rate["time_local"].dt.strftime("%H:%M"), session=rate["session_date"].astype(str))
    fig = px.line(rate, x="time_of_day", y="per_second", color="session", line_dash="instrument_type",
                  title=title, labels={"per_second": "records / s", "time_of_day": "New York time"})
    fig.update_layout(height=420, legend_title_text="session / type")
    return fig


def quarantine_table(ctx) -> pd.DataFrame:
    from ..io import delta_tables

    return delta_tables.read(ctx.profile, QUARANTINE).to_pandas().sort_values("time", ascending=False)


def manifest_table(ctx) -> pd.DataFrame:
    from ..io import delta_tables

    m = delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas()
    return m.sort_values("started_at", ascending=False).reset_index(drop=True)
