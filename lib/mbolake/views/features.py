"""What the Silver feature and Gold notebooks show: the session chart with levels and
episodes, feature distributions per level type, episode counts and label balance."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..io import delta_tables
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, LABELS, SESSION_LEVELS
from .tables import contract_timezone, local_times, one_session, read_frame, time_label

LEVEL_COLORS = {"pm_high": "#1f77b4", "pm_low": "#17becf", "or_high": "#d62728", "or_low": "#ff7f0e"}
OUTCOME_SYMBOLS = {"BREAK": "triangle-up", "REJECT": "x", "CHOP": "circle", None: "diamond"}
CONFIRM = pc.field("position") == 0  # the confirm candle's row of an episode


def session_frames(ctx, contract_id: str, session_date: dt.date) -> dict[str, pd.DataFrame]:
    """Bars (microprice), the levels row, and episodes (confirm candles, with labels if any).
    The bars frame carries the contract's exchange time zone in ``attrs["timezone"]``."""
    session = one_session(contract_id, session_date)
    bars = read_frame(ctx, BAR_5S, ["bar_ts", "bar5s_microprice_eob", "bar5s_trade_last_px"], session,
                      "the session chart").sort_values("bar_ts", kind="stable").reset_index(drop=True)
    bars.attrs["timezone"] = contract_timezone(contract_id)
    levels = read_frame(ctx, SESSION_LEVELS, None, session, "the session chart")
    columns = ["episode_id", "level_type", "level_price", "direction", "candle_ts", "vector_time", "close"]
    if delta_tables.exists(ctx.profile, FEATURE_PRIMITIVES):
        episodes = read_frame(ctx, FEATURE_PRIMITIVES, columns, one_session(contract_id, session_date, CONFIRM))
    else:  # the approach stage has not run yet
        episodes = pd.DataFrame(columns=columns)
    if delta_tables.exists(ctx.profile, LABELS):
        episodes = episodes.merge(read_frame(ctx, LABELS, ["episode_id", "outcome"]), on="episode_id", how="left")
    else:  # gold not built yet: episodes without outcomes
        episodes["outcome"] = None
    return {"bars": bars, "levels": levels, "episodes": episodes}


def plot_session(frames: dict[str, pd.DataFrame], title: str, timezone: str | None = None):
    """Price with the four levels from their availability time, episodes marked by direction and
    outcome; times in ``timezone``, else the zone ``session_frames`` put on the bars."""
    import plotly.graph_objects as go

    bars, levels, episodes = frames["bars"], frames["levels"], frames["episodes"]
    timezone = timezone or bars.attrs.get("timezone")
    if not timezone:
        raise ValueError("plot_session needs the frames of session_frames (they carry the time zone) or timezone=")

    def _local(ns):
        return local_times(ns, timezone)

    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=_local(bars["bar_ts"]), y=bars["bar5s_microprice_eob"], name="microprice (5 s)",
                               line=dict(color="#555", width=1)))
    if not levels.empty:
        row = levels.iloc[0]
        end = _local(bars["bar_ts"].max())
        for name, color in LEVEL_COLORS.items():
            if pd.notna(row[name]):
                start = _local(row[f"{name[:2]}_available_from"])
                fig.add_trace(go.Scatter(x=[start, end], y=[row[name]] * 2, mode="lines", name=f"{name} (from {start:%H:%M})",
                                         line=dict(color=color, dash="dash")))
    for (direction, outcome), group in episodes.groupby(["direction", episodes["outcome"].fillna("unlabelled")]):
        fig.add_trace(go.Scatter(
            x=_local(group["vector_time"]), y=group["close"], mode="markers",
            name=f"{'from below' if direction > 0 else 'from above'} · {outcome}",
            marker=dict(symbol=("triangle-up" if direction > 0 else "triangle-down"), size=11,
                        color={"BREAK": "#2ca02c", "REJECT": "#d62728", "CHOP": "#7f7f7f"}.get(outcome, "#9467bd"),
                        line=dict(width=1, color="black")),
            text=group["level_type"], hovertemplate="%{text} %{y:.2f} at %{x|%H:%M}"))
    fig.update_layout(title=title, height=520, xaxis_title=time_label(timezone), yaxis_title="points")
    return fig


def episode_counts(ctx) -> pd.DataFrame:
    """Episodes per session, level type and direction."""
    prims = read_frame(ctx, FEATURE_PRIMITIVES, ["session_date", "level_type", "direction"], CONFIRM, "episode counts")
    counts = prims.groupby(["session_date", "level_type", "direction"], dropna=False).size().reset_index(name="count")
    table = counts.pivot_table(index=["session_date", "level_type"], columns="direction", values="count",
                               fill_value=0, aggfunc="sum").astype(int)
    table = table.rename(columns={1: "from_below", -1: "from_above"}).reset_index()
    table.columns.name = None
    return table


def plot_feature_distributions(ctx, features=("u_mean", "pressure_mean", "obi0_lin_mean", "flow_norm_mean")):
    """Distributions of confirm-candle signature features per level type."""
    import plotly.express as px

    pdf = read_frame(ctx, FEATURE_PRIMITIVES, ["level_type", *features], CONFIRM, "the feature distributions")
    long = pdf.melt(id_vars="level_type", var_name="feature")
    fig = px.box(long, x="feature", y="value", color="level_type", points=False,
                 title="Confirm-candle signature features per level type")
    fig.update_layout(height=420)
    return fig


def plot_label_balance(ctx):
    import plotly.express as px

    labels = read_frame(ctx, LABELS, ["session_date", "outcome"], pc.field("label_complete"), "the label balance")
    labels = labels.groupby(["session_date", "outcome"], dropna=False).size().reset_index(name="count")
    fig = px.bar(labels.sort_values("session_date").astype({"session_date": str}), x="session_date", y="count",
                 color="outcome", title="Label balance per session (complete look-forward only)",
                 color_discrete_map={"BREAK": "#2ca02c", "REJECT": "#d62728", "CHOP": "#7f7f7f"})
    fig.update_layout(height=380)
    return fig


def plot_bar_features(ctx, contract_id: str, session_date: dt.date,
                      features=("bar5s_state_obi0_twa", "bar5s_state_spread_pts_twa", "bar5s_trade_vol_sum")):
    """A few 5-second features over the session window."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pdf = read_frame(ctx, BAR_5S, ["bar_ts", *features], one_session(contract_id, session_date),
                     "the bar features").sort_values("bar_ts", kind="stable").reset_index(drop=True)
    times = local_times(pdf["bar_ts"], contract_timezone(contract_id))
    fig = make_subplots(rows=len(features), cols=1, shared_xaxes=True, subplot_titles=features)
    for i, name in enumerate(features, start=1):
        fig.add_trace(go.Scattergl(x=times, y=pdf[name], name=name, line=dict(width=1)), i, 1)
    fig.update_layout(height=200 * len(features), showlegend=False, title=f"5-second features, {session_date}")
    return fig


BAND_NAMES = ("p0_1", "p1_2", "p2_3", "p3_5", "p5_10")
BAND_SIDES = (("bid", "below"), ("ask", "above"))


def band_quantities(bars: pd.DataFrame) -> pd.DataFrame:
    """Band quantities (contracts within 0-1, 1-2, 2-3, 3-5, 5-10 points of the microprice, the
    whole book) of each bar's end, long form: bar_ts, side, band, qty_eob, frac_eob, frac_twa.

    ``silver.bar_5s`` stores the p0_1 quantity and every band's fraction of the side's
    five-band total, so band b's quantity is qty_p0_1 * frac_b / frac_p0_1 (exact, rounded
    to whole contracts, while p0_1 holds depth, i.e. whenever the spread is at most a point;
    NaN otherwise); a band whose fraction is 0 holds 0."""
    parts = []
    for side, where in BAND_SIDES:
        q0 = bars[f"bar5s_depth_{where}_p0_1_qty_eob"].to_numpy(float)
        f0 = bars[f"bar5s_depth_{where}_p0_1_frac_eob"].to_numpy(float)
        for band in BAND_NAMES:
            frac = bars[f"bar5s_depth_{where}_{band}_frac_eob"].to_numpy(float)
            derived = np.round(q0 * frac / np.where(f0 > 0, f0, 1.0))
            qty = np.where(frac == 0, 0.0, np.where(f0 > 0, derived, np.nan))  # frac 0: no depth in the band
            parts.append(pd.DataFrame({"bar_ts": bars["bar_ts"].to_numpy(), "side": side, "band": band,
                                       "qty_eob": qty, "frac_eob": frac,
                                       "frac_twa": bars[f"bar5s_depth_{where}_{band}_frac_twa"].to_numpy(float)}))
    out = pd.concat(parts, ignore_index=True)
    out["band"] = pd.Categorical(out["band"], categories=list(BAND_NAMES), ordered=True)
    return out.sort_values(["bar_ts", "side", "band"], kind="stable").reset_index(drop=True)


def band_quantity_frame(ctx, contract_id: str, session_date: dt.date) -> pd.DataFrame:
    """:func:`band_quantities` of one contract-session's bars; ``time`` in the exchange zone
    (carried in ``attrs["timezone"]``)."""
    where = [f"bar5s_depth_{w}_{b}_frac_{s}" for _, w in BAND_SIDES for b in BAND_NAMES for s in ("eob", "twa")]
    columns = ["bar_ts", "bar5s_depth_below_p0_1_qty_eob", "bar5s_depth_above_p0_1_qty_eob", *where]
    bars = read_frame(ctx, BAR_5S, columns, one_session(contract_id, session_date), "the band quantities")
    if bars.empty:
        raise ValueError(f"silver.bar_5s has no bars for {contract_id} on {session_date}")
    frame = band_quantities(bars.sort_values("bar_ts", kind="stable"))
    timezone = contract_timezone(contract_id)
    frame.insert(1, "time", local_times(frame["bar_ts"], timezone))
    frame.attrs["timezone"] = timezone
    return frame


def band_quantity_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per side and band: bars, the share of bars whose band held depth at the bar's end and at
    any time in it (frac > 0), and the mean / median / max quantity at the bar's end."""
    g = frame.groupby(["side", "band"], observed=True, sort=True)
    summary = g.agg(bars=("bar_ts", "size"), mean_qty=("qty_eob", "mean"), median_qty=("qty_eob", "median"),
                    max_qty=("qty_eob", "max"))
    summary.insert(1, "share_with_depth_eob", g["frac_eob"].apply(lambda s: float((s > 0).mean())))
    summary.insert(2, "share_with_depth_twa", g["frac_twa"].apply(lambda s: float((s > 0).mean())))
    return summary.reset_index().round({"mean_qty": 1, "share_with_depth_eob": 4, "share_with_depth_twa": 4})


def plot_band_quantities(frame: pd.DataFrame, title: str, timezone: str | None = None):
    """Band quantity at each bar's end over the session, one line per band; bid side (below the
    microprice) on top, ask side (above) below."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    timezone = timezone or frame.attrs.get("timezone")
    if not timezone:
        raise ValueError("plot_band_quantities needs the frame of band_quantity_frame or timezone=")
    colors = dict(zip(BAND_NAMES, ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd")))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("bid side: contracts below the microprice",
                                        "ask side: contracts above the microprice"))
    for row, (side, _) in enumerate(BAND_SIDES, start=1):
        part = frame[frame["side"] == side]
        for band in BAND_NAMES:
            one = part[part["band"] == band]
            fig.add_trace(go.Scattergl(x=local_times(one["bar_ts"], timezone), y=one["qty_eob"], mode="lines",
                                       name=band, legendgroup=band, showlegend=row == 1,
                                       line=dict(width=1, color=colors[band])), row, 1)
        fig.update_yaxes(title_text="contracts", row=row, col=1)
    fig.update_layout(title=title, height=620, legend_title_text="band (points)",
                      xaxis2_title=time_label(timezone))
    return fig
