"""What the Bronze notebook shows: counts by action and instrument, message rate, quarantine."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.products import get_product
from ..engines.local import all_of, date_filter, plain_table
from ..schemas import BRONZE_MBO, INGEST_MANIFEST, QUARANTINE
from .tables import pinned, time_label

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class BronzeSelection:
    """``bronze.mbo`` rows of one underlier and session-date range, pinned at the table's
    current version; the views below scan it batch by batch (a session is millions of rows)."""

    table: object  # PinnedTable
    underlier: str
    where: object  # pyarrow filter

    @property
    def timezone(self) -> str:
        return get_product(self.underlier).timezone

    def batches(self, columns: list[str]):
        for batch in self.table.dataset().to_batches(columns=columns, filter=self.where):
            if batch.num_rows:
                yield plain_table(pa.Table.from_batches([batch]))


def bronze_frame(ctx, underlier: str, start_date: dt.date | None = None,
                 end_date: dt.date | None = None) -> BronzeSelection:
    """``bronze.mbo`` for an underlier and session-date range (inclusive; either bound optional)."""
    get_product(underlier)  # an unknown underlier fails here, naming the configured ones
    where = all_of([pc.field("underlier") == underlier, date_filter(start_date, end_date)])
    return BronzeSelection(pinned(ctx, BRONZE_MBO, "the Bronze view"), underlier, where)


def _counted(selection: BronzeSelection, keys: list[str], derive=None) -> pd.DataFrame:
    """Rows per distinct ``keys``, counted batch by batch (``derive`` adds key columns to a batch)."""
    parts = []
    for rows in selection.batches([k for k in keys if k != "bucket"] + (["ts_recv"] if derive else [])):
        rows = derive(rows) if derive else rows
        parts.append(rows.group_by(keys).aggregate([([], "count_all")]).to_pandas())
    if not parts:
        return pd.DataFrame(columns=[*keys, "count"])
    counts = pd.concat(parts, ignore_index=True).rename(columns={"count_all": "count"})
    return counts.groupby(keys, as_index=False, sort=False, dropna=False)["count"].sum()


def counts_by_action(selection: BronzeSelection) -> pd.DataFrame:
    """Records per session date and symbol, one column per action."""
    keys = ["session_date", "symbol", "instrument_type"]
    long = _counted(selection, [*keys, "action"])
    counts = long.pivot_table(index=keys, columns="action", values="count", aggfunc="sum", fill_value=0)
    counts = counts.reset_index().rename_axis(columns=None)
    counts = counts.sort_values(["session_date", "symbol"]).reset_index(drop=True)
    actions = [c for c in counts.columns if len(c) == 1]
    counts[actions] = counts[actions].astype("int64")
    counts["total"] = counts[actions].sum(axis=1)
    return counts


def message_rate(selection: BronzeSelection, timezone: str | None = None, bucket_seconds: int = 60) -> pd.DataFrame:
    """Records per bucket of exchange-local time (the product's zone unless given), per session
    date and instrument type."""
    bucket_ns = bucket_seconds * NS_PER_SECOND

    def with_bucket(rows: pa.Table) -> pa.Table:
        bucket = pc.multiply(pc.divide(rows.column("ts_recv"), bucket_ns), bucket_ns)  # integer division
        return rows.append_column("bucket", bucket)

    rate = _counted(selection, ["session_date", "instrument_type", "bucket"], with_bucket)
    rate["bucket"] = rate["bucket"].astype("int64")
    rate["count"] = rate["count"].astype("int64")
    rate["time_local"] = pd.to_datetime(rate["bucket"], unit="ns", utc=True).dt.tz_convert(
        timezone or selection.timezone)
    rate["per_second"] = rate["count"] / bucket_seconds
    return rate.sort_values(["session_date", "instrument_type", "bucket"]).reset_index(drop=True)


def plot_message_rate(rate: pd.DataFrame, title: str = "Message rate"):
    import plotly.express as px

    rate = rate.assign(time_of_day=rate["time_local"].dt.strftime("%H:%M"), session=rate["session_date"].astype(str))
    fig = px.line(rate, x="time_of_day", y="per_second", color="session", line_dash="instrument_type",
                  title=title,
                  labels={"per_second": "records / s", "time_of_day": time_label(str(rate["time_local"].dt.tz))})
    fig.update_layout(height=420, legend_title_text="session / type")
    return fig


def quarantine_table(ctx) -> pd.DataFrame:
    from ..io import delta_tables

    return delta_tables.read(ctx.profile, QUARANTINE).to_pandas().sort_values("time", ascending=False)


def manifest_table(ctx) -> pd.DataFrame:
    from ..io import delta_tables

    m = delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas()
    return m.sort_values("started_at", ascending=False).reset_index(drop=True)
