"""What the order-book notebook shows: best bid/ask and depth over a session, quality counters."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from ..core.constants import PRICE_SCALE
from ..schemas import ORDERBOOK_STATE



def session_book(ctx, contract_id: str, session_date: dt.date, every: int = 1) -> pd.DataFrame:
    """Top of book and ten-level depth of one contract-session, in points and New York time."""
    from pyspark.sql import functions as F

    df = (ctx.spark.read.format("delta").load(ctx.profile.table_path(ORDERBOOK_STATE.name))
          .where((F.col("contract_id") == contract_id) & (F.col("session_date") == F.lit(session_date))))
    bid_sz = sum(F.col(f"bid_sz_{i:02d}") for i in range(10))
    ask_sz = sum(F.col(f"ask_sz_{i:02d}") for i in range(10))
    pdf = (df.select("ts_recv", (F.col("bid_px_00") * PRICE_SCALE).alias("best_bid"),
                     (F.col("ask_px_00") * PRICE_SCALE).alias("best_ask"),
                     bid_sz.alias("bid_depth_10"), ask_sz.alias("ask_depth_10"))
           .orderBy("ts_recv").toPandas())
    pdf = pdf.iloc[::every].reset_index(drop=True)
    pdf["time_ny"] = pd.to_datetime(pdf["ts_recv"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    return pdf


def plot_session_book(book: pd.DataFrame, title: str):
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05,
                        subplot_titles=("best bid / ask (points)", "ten-level depth (contracts)"))
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["best_bid"], name="best bid", line=dict(width=1)), 1, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["best_ask"], name="best ask", line=dict(width=1)), 1, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["bid_depth_10"], name="bid depth", line=dict(width=1)), 2, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=-book["ask_depth_10"], name="ask depth (negative)",
                               line=dict(width=1)), 2, 1)
    fig.update_layout(title=title, height=600, xaxis2_title="New York time")
    return fig


def plot_quality(quality: pd.DataFrame):
    """Problem counters per contract-session: zero bars mean a clean rebuild."""
    import plotly.express as px

    counters = ["crossed_groups", "locked_groups", "unknown_order_refs", "negative_size_attempts",
                "seq_decreases", "ts_recv_non_monotonic", "maybe_bad_book_flags"]
    long = quality.melt(id_vars=["contract_id", "session_date"], value_vars=counters, var_name="counter")
    long["contract_session"] = long["contract_id"] + " " + long["session_date"].astype(str)
    fig = px.bar(long, x="counter", y="value", color="contract_session", barmode="group",
                 title="Order-book quality counters (zero is clean)")
    fig.update_layout(height=380)
    return fig
