"""One setup seen through the lake's layers (the tutorial notebook, ``90_tutorial``): the
session's setups in the order they became valid, the order book at the moment one of them was
scored, the 5-second bar that closed then, the episode's candles and label, and the served
model's answer as tables. Numbers are rounded for reading; times are in the exchange's zone."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.calendar import as_date
from ..features.units import to_points
from ..schemas import BAR_5S, BRONZE_MBO, FEATURE_PRIMITIVES, LABELS, ORDERBOOK_STATE, SETUP_VECTORS, Table
from .tables import contract_timezone, local_times, one_session, pinned, read_frame

LEVELS = 10
BAR_NS = 5_000_000_000
LAKE_TABLES = (BRONZE_MBO, ORDERBOOK_STATE, BAR_5S, FEATURE_PRIMITIVES, SETUP_VECTORS, LABELS)
BAR_FEATURES = (
    "bar5s_microprice_eob", "bar5s_state_spread_pts_twa", "bar5s_state_obi0_twa", "bar5s_state_obi10_twa",
    "bar5s_depth_bid10_qty_eob", "bar5s_depth_ask10_qty_eob", "bar5s_ofi_l0_sum", "bar5s_trade_cnt_sum",
    "bar5s_trade_vol_sum", "bar5s_trade_signed_vol_sum", "bar5s_trade_vwap",
)
CANDLE_SIGNATURE = ("u_mean", "pressure_mean", "obi0_lin_mean", "flow_norm_mean")
LABEL_COLUMNS = ("outcome", "outcome_score", "first_hit_side", "first_hit_offset_bars", "mfe_pts", "mae_pts",
                 "label_complete")
# what a table of the session's setups shows (session_setups also carries vector_time and feature_vector)
SETUP_COLUMNS = ["setup", "time", "level_type", "approach_direction", "outcome", "context_truncated", "contract_id",
                 "episode_id"]


def _on_date(session_date) -> pc.Expression:
    return pc.field("session_date") == pa.scalar(as_date(session_date), pa.date32())


def lake_rows(ctx, session_date, tables: Sequence[Table] = LAKE_TABLES) -> pd.DataFrame:
    """Per table: its rows on ``session_date`` (every contract) and what one row is."""
    rows = [{"table": t.name, "rows": pinned(ctx, t, "the lake overview").dataset().count_rows(filter=_on_date(session_date)),
             "one row is": t.description} for t in tables]
    return pd.DataFrame(rows)


def session_setups(ctx, session_date) -> pd.DataFrame:
    """The setups (``gold.setup_vectors``) of one session in the order they became valid, with
    their labels: ``setup`` (1, 2, ... in that order), the episode, its level and direction,
    ``time`` (the exchange time the vector was valid: the confirm candle's close), the
    ``outcome`` (``gold.labels``), and ``feature_vector`` (345 numbers) for scoring."""
    where = _on_date(session_date)
    columns = ["vector_time", "contract_id", "episode_id", "level_type", "approach_direction", "feature_set",
               "feature_vector", "context_truncated"]
    vectors = read_frame(ctx, SETUP_VECTORS, columns, where, "the session's setups")
    labels = read_frame(ctx, LABELS, ["episode_id", "outcome"], where, "the session's setups")
    out = vectors.merge(labels, on="episode_id", how="left")
    out = out.sort_values(["vector_time", "episode_id"], kind="stable").reset_index(drop=True)
    out["setup"] = np.arange(1, len(out) + 1)
    out["time"] = [local_times(int(t), contract_timezone(c)).strftime("%H:%M:%S")
                   for t, c in zip(out["vector_time"], out["contract_id"])]
    return out[SETUP_COLUMNS + [c for c in out.columns if c not in SETUP_COLUMNS]]


def book_ladder_from_row(row: Mapping, levels: int = LEVELS) -> pd.DataFrame:
    """One ``silver.orderbook_state`` row as a ladder: a line per level, bids on the left, asks on
    the right, prices in points (an empty level: no price, size 0)."""
    def price(value):
        return None if value is None or pd.isna(value) else round(float(to_points(int(value))), 2)

    return pd.DataFrame([{
        "level": i,
        "bid_orders": int(row[f"bid_ct_{i:02d}"]), "bid_size": int(row[f"bid_sz_{i:02d}"]),
        "bid_px": price(row[f"bid_px_{i:02d}"]), "ask_px": price(row[f"ask_px_{i:02d}"]),
        "ask_size": int(row[f"ask_sz_{i:02d}"]), "ask_orders": int(row[f"ask_ct_{i:02d}"]),
    } for i in range(levels)]).set_index("level")


def book_ladder(ctx, contract_id: str, session_date, before_ns: int) -> pd.DataFrame:
    """The ten-level book of ``contract_id`` as it stood just before ``before_ns`` (its last
    ``silver.orderbook_state`` row stamped earlier); ``attrs["time"]``: when that state began
    (exchange time), ``attrs["sequence"]``: its record's sequence number."""
    columns = ["ts_recv", "sequence", *(f"{s}_{k}_{i:02d}" for s in ("bid", "ask") for k in ("px", "sz", "ct")
                                        for i in range(LEVELS))]
    states = read_frame(ctx, ORDERBOOK_STATE, columns,
                        one_session(contract_id, session_date, pc.field("ts_recv") < int(before_ns)), "the book view")
    if states.empty:
        raise ValueError(f"silver.orderbook_state has no state of {contract_id} on {session_date} before {before_ns}")
    last = states.sort_values("ts_recv", kind="stable").iloc[-1]
    ladder = book_ladder_from_row(last)
    ladder.attrs["time"] = local_times(int(last["ts_recv"]), contract_timezone(contract_id)).strftime("%H:%M:%S.%f")
    ladder.attrs["sequence"] = int(last["sequence"])
    return ladder


def bar_card(ctx, contract_id: str, session_date, end_ns: int, features: Sequence[str] = BAR_FEATURES,
             digits: int = 4) -> pd.DataFrame:
    """The ``silver.bar_5s`` bar of ``contract_id`` that closed at ``end_ns`` (``bar_ts`` is a bar's
    start): one line per feature of ``features``, rounded to ``digits``; ``attrs["time"]``: the bar's
    start and end (exchange time)."""
    start = int(end_ns) - BAR_NS
    bar = read_frame(ctx, BAR_5S, ["bar_ts", *features],
                     one_session(contract_id, session_date, pc.field("bar_ts") == start), "the bar view")
    if bar.empty:
        raise ValueError(f"silver.bar_5s has no bar of {contract_id} on {session_date} starting at {start}")
    zone = contract_timezone(contract_id)
    card = pd.DataFrame({"feature": list(features), "value": [round(float(bar.iloc[0][f]), digits) for f in features]})
    card.attrs["time"] = f"{local_times(start, zone):%H:%M:%S}-{local_times(int(end_ns), zone):%H:%M:%S}"
    return card.set_index("feature")


def episode_candles(ctx, contract_id: str, session_date, episode_id: str,
                    signature: Sequence[str] = CANDLE_SIGNATURE) -> pd.DataFrame:
    """The episode's two-minute candles (``silver.feature_primitives``, positions -5..6, 0 = the
    confirm candle): start time, OHLC in points, a few signature numbers, and whether the candle
    was known when the setup was scored (positions up to 0; 1..6 are the look-forward its label
    is made of)."""
    rows = read_frame(ctx, FEATURE_PRIMITIVES, ["position", "candle_ts", "level_type", "level_price", "direction",
                                                 "open", "high", "low", "close", *signature],
                      one_session(contract_id, session_date, pc.field("episode_id") == episode_id), "the episode view")
    if rows.empty:
        raise ValueError(f"silver.feature_primitives has no candles of episode {episode_id}")
    rows = rows.sort_values("position", kind="stable").reset_index(drop=True)
    level = rows.iloc[0]
    rows.insert(1, "start", [local_times(int(t), contract_timezone(contract_id)).strftime("%H:%M")
                             for t in rows.pop("candle_ts")])
    rows.insert(2, "known_at_scoring", rows["position"] <= 0)
    rows = rows.drop(columns=["level_type", "level_price", "direction"])
    rows = rows.round({c: 2 for c in ("open", "high", "low", "close")} | {c: 4 for c in signature}).set_index("position")
    rows.attrs.update(level_type=str(level["level_type"]), level_price=round(float(level["level_price"]), 2),
                      direction=int(level["direction"]))
    return rows


def plot_episode(candles: pd.DataFrame, title: str):
    """The episode's candles (:func:`episode_candles`): those known when the setup was scored, then
    the look-forward its label was made of, and the level it approached."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for known, name, color in ((True, "known at scoring (-5..0)", "#1f77b4"), (False, "look-forward (1..6)", "#aaaaaa")):
        part = candles[candles["known_at_scoring"] == known]
        fig.add_trace(go.Candlestick(x=part["start"], open=part["open"], high=part["high"], low=part["low"],
                                     close=part["close"], name=name, increasing_line_color=color,
                                     decreasing_line_color=color))
    level = candles.attrs.get("level_price")
    if level is not None:
        fig.add_hline(y=level, line_dash="dash", line_color="#d62728",
                      annotation_text=f"{candles.attrs.get('level_type', 'level')} {level:.2f}")
    fig.update_layout(title=title, height=420, xaxis=dict(type="category", rangeslider_visible=False),
                      xaxis_title="candle start (exchange time)", yaxis_title="points")
    return fig


def episode_label(ctx, contract_id: str, session_date, episode_id: str) -> pd.DataFrame:
    """The episode's ``gold.labels`` row (outcome, its score, which side was hit first and after how
    many candles, excursions in points), rounded, as one line per field."""
    label = read_frame(ctx, LABELS, list(LABEL_COLUMNS),
                       one_session(contract_id, session_date, pc.field("episode_id") == episode_id), "the label view")
    if label.empty:
        raise ValueError(f"gold.labels has no label for episode {episode_id}")
    row = label.round({"outcome_score": 4, "mfe_pts": 2, "mae_pts": 2}).iloc[0]
    return pd.DataFrame({"value": [row[c] for c in LABEL_COLUMNS]}, index=pd.Index(LABEL_COLUMNS, name="field"),
                        dtype=object)


def scores_table(answer: pd.DataFrame, setups: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The served model's answer next to the setups it scored: the class probabilities rounded,
    the predicted class, and the outcome the lake labelled (known only afterwards)."""
    probs = [c for c in answer.columns if c.startswith("p_")]
    out = pd.DataFrame({"setup": setups["setup"].to_numpy()})
    for c in sorted(probs):
        out[c] = answer[c].astype(float).round(digits).to_numpy()
    out["predicted"] = answer["predicted"].to_numpy()
    out["labelled"] = setups["outcome"].to_numpy()
    return out.set_index("setup")


def similar_setups_table(similar: Sequence[Mapping] | None, digits: int = 3) -> pd.DataFrame:
    """The served model's ``similar_setups`` of one scored row (the nearest setups of its training
    data, nearest first) as a table with the distance rounded."""
    columns = ["episode_id", "session_date", "level_type", "approach_direction", "outcome", "distance"]
    frame = pd.DataFrame(list(similar or []), columns=columns)
    frame["session_date"] = [str(dt.date.fromisoformat(str(d)[:10])) for d in frame["session_date"]]
    frame["distance"] = frame["distance"].astype(float).round(digits)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
    return frame
