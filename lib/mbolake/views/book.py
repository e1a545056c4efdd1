"""What the order-book notebook shows: best bid/ask and depth over a session, quality counters."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..core.constants import UNDEF_PRICE
from ..features.units import to_points
from ..schemas import ORDERBOOK_STATE
from .tables import contract_timezone, local_times, one_session, pinned, time_label

DEPTH_LEVELS = 10


def session_book(ctx, contract_id: str, session_date: dt.date, every: int = 1,
                 version: int | None = None) -> pd.DataFrame:
    """Top of book and ten-level depth of one contract-session, in points and exchange time
    (column ``time_ny``: the product's time zone, New York for every configured product).

    ``version``: the ``silver.orderbook_state`` version to read (the one a stage run recorded
    next to its quality rows, ``summary.data_version["outputs"]``); default the current one."""
    bid_sz = [f"bid_sz_{i:02d}" for i in range(DEPTH_LEVELS)]
    ask_sz = [f"ask_sz_{i:02d}" for i in range(DEPTH_LEVELS)]
    batches = pinned(ctx, ORDERBOOK_STATE, "the order-book view", version).dataset().to_batches(
        columns=["ts_recv", "bid_px_00", "ask_px_00", *bid_sz, *ask_sz], filter=one_session(contract_id, session_date))
    parts = [pd.DataFrame({  # per batch: the ten size columns are summed before the next batch is read
        "ts_recv": batch.column("ts_recv").to_numpy(),
        "best_bid": to_points(batch.column("bid_px_00").fill_null(UNDEF_PRICE).to_numpy()),
        "best_ask": to_points(batch.column("ask_px_00").fill_null(UNDEF_PRICE).to_numpy()),
        "bid_depth_10": sum(batch.column(c).to_numpy().astype(np.int64) for c in bid_sz),
        "ask_depth_10": sum(batch.column(c).to_numpy().astype(np.int64) for c in ask_sz),
    }) for batch in batches if batch.num_rows]
    columns = ["ts_recv", "best_bid", "best_ask", "bid_depth_10", "ask_depth_10"]
    pdf = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    pdf = pdf.sort_values("ts_recv", kind="stable").iloc[::every].reset_index(drop=True)
    pdf["time_ny"] = local_times(pdf["ts_recv"], contract_timezone(contract_id))
    return pdf


def plot_session_book(book: pd.DataFrame, title: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05,
                        subplot_titles=("best bid / ask (points)", "ten-level depth (contracts)"))
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["best_bid"], name="best bid", line=dict(width=1)), 1, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["best_ask"], name="best ask", line=dict(width=1)), 1, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=book["bid_depth_10"], name="bid depth", line=dict(width=1)), 2, 1)
    fig.add_trace(go.Scattergl(x=book["time_ny"], y=-book["ask_depth_10"], name="ask depth (negative)",
                               line=dict(width=1)), 2, 1)
    fig.update_layout(title=title, height=600, xaxis2_title=time_label(str(book["time_ny"].dt.tz)))
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
