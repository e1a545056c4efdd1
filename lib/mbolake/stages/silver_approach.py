"""SilverExtractLevelApproach2m: bars + session levels + trade prints -> 2-minute candles -> approach
episodes (both directions, every level type) -> ``silver.feature_primitives`` (FEATURES.md §4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.constants import PRICE_SCALE
from ..core.products import Product
from ..engines import Engine, Source, in_dates, where
from ..engines.local import arrow_rows, keys_filter, plain_table, read_rows
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, MBO_NORMALIZED, SESSION_LEVELS
from .base import SilverFilterFirst4Hours, Stage, StageSummary

KEYS = ["contract_id", "session_date"]


class SilverExtractLevelApproach2m(Stage):
    name = "SilverExtractLevelApproach2m"
    inputs = (BAR_5S, SESSION_LEVELS, MBO_NORMALIZED)
    outputs = (FEATURE_PRIMITIVES,)

    def __init__(self, window: SilverFilterFirst4Hours = SilverFilterFirst4Hours()):
        self.window = window

    def execute(self, engine: Engine, product: Product, start_date, end_date) -> StageSummary:
        front = where(underlier=product.underlier, is_front_month=True) + in_dates(start_date, end_date)
        engine.pin(BAR_5S, SESSION_LEVELS, MBO_NORMALIZED)
        lineage = engine.lineage(window=self.window.label())
        front_keys = engine.group_keys(Source(MBO_NORMALIZED, where=front))
        levels = engine.read(Source(SESSION_LEVELS, keys=front_keys)).to_pandas().drop(columns="data_version")
        keys = front_keys.merge(levels[KEYS], on=KEYS)
        if keys.empty:
            return self.summary(0, 0, lineage, notes=["no bars with session levels in the range: run the bar and "
                                                      "level stages first"])
        trades = Source(MBO_NORMALIZED, TRADE_COLUMNS, front + where(action="T"))
        window = self.window
        engine.map_groups([Source(BAR_5S), trades],
                          lambda bars, prints: primitives_of(bars, prints, levels, product, window, lineage),
                          self.outputs, keys, lineage)
        return self._summary(engine, keys, levels, lineage)

    def _summary(self, engine: Engine, keys: pd.DataFrame, levels: pd.DataFrame, lineage: str) -> StageSummary:
        written = read_rows(engine.ctx, FEATURE_PRIMITIVES, keys_filter(keys, FEATURE_PRIMITIVES.schema),
                            ["session_date", "level_type", "direction", "position"]).to_pandas()
        episodes = (written[written["position"] == 0].groupby(["session_date", "level_type", "direction"])
                    .size().rename("count").reset_index())
        levels = levels.merge(keys[KEYS], on=KEYS)
        notes = [f"{r.contract_id} {r.session_date}: levels of the {r.empty_windows} window skipped (no data)"
                 for r in levels[~levels["levels_complete"]].itertuples()]
        bars_in = read_rows(engine.ctx, BAR_5S, keys_filter(keys, BAR_5S.schema), ["session_date"]).num_rows
        return self.summary(bars_in, len(written), lineage, episodes, notes)


def primitives_of(bars: pa.Table, trades: pa.Table, levels: pd.DataFrame, product: Product,
                  window: SilverFilterFirst4Hours, lineage: str) -> list[pa.Table]:
    """One contract-session's bars and trade prints (Arrow) -> its ``silver.feature_primitives`` rows."""
    if not bars.num_rows:
        return []
    bar_pdf = plain_table(bars).to_pandas().drop(columns="data_version").merge(levels, on=KEYS)
    trade_pdf = plain_table(trades).to_pandas()
    return [arrow_rows(session_primitives(bar_pdf, trade_pdf, product, window, lineage), FEATURE_PRIMITIVES)]


TRADE_COLUMNS = ["contract_id", "session_date", "ts_recv", "price", "size", "record_index"]


def session_primitives(bar_pdf: pd.DataFrame, trade_pdf: pd.DataFrame, product, window: SilverFilterFirst4Hours,
                       lineage: str) -> pd.DataFrame:
    """One contract-session: candles from trades, episodes for every level and both directions,
    and the per-candle signatures of their lookback and look-forward windows."""
    from ..features.approach import ApproachParams, detect_episodes
    from ..features.candles import build_candles
    from ..features.levels import available_levels
    bar_pdf = bar_pdf.sort_values("bar_ts", kind="stable").reset_index(drop=True)
    contract_id, session = bar_pdf["contract_id"].iloc[0], bar_pdf["session_date"].iloc[0]
    start, end = window.bounds(session, product.timezone)
    trade_pdf = trade_pdf.sort_values(["ts_recv", "record_index"], kind="stable")
    # The mid standing at a bar's end is the mid at the next bar's start.
    bar_end = bar_pdf["bar_ts"].to_numpy(np.int64) + 5_000_000_000
    candles = build_candles(trade_pdf["ts_recv"].to_numpy(np.int64), trade_pdf["price"].to_numpy(float) * PRICE_SCALE,
                            bar_end, bar_pdf["bar5s_midprice_eob"].to_numpy(float), start, end)
    level_row = bar_pdf.iloc[0]
    levels = available_levels({name: level_row[name] for name in
                               ("pm_high", "pm_low", "or_high", "or_low", "pm_available_from", "or_available_from")
                               if name in level_row.index} | {"session_date": session})
    episodes = detect_episodes(candles, contract_id, str(session), levels, timezone=product.timezone,
                               params=ApproachParams.for_tick(product.tick_size),
                               window_start=window.window_start, window_end=window.window_end)
    return primitive_rows(episodes[episodes["confirm_in_window"]], candles, bar_pdf, contract_id, session,
                          product.tick_size, lineage)


def primitive_rows(episodes: pd.DataFrame, candles: pd.DataFrame, bars: pd.DataFrame, contract_id: str, session,
                   tick: float, lineage: str, positions=tuple(range(-5, 7))) -> pd.DataFrame:
    """``silver.feature_primitives`` rows of ``episodes``: one per episode candle (of ``positions``)
    present in ``candles``, with its signature over ``bars`` (shared with rt silver)."""
    from ..features.setup_vector import episode_signature_rows

    if episodes.empty:
        return pd.DataFrame(columns=FEATURE_PRIMITIVES.schema.names)
    rows = episode_signature_rows(episodes, candles, bars, tick=tick, positions=positions)
    rows = rows.merge(episodes, on="episode_id").merge(candles[["candle_ts", "open", "high", "low", "close",
                                                                "has_trades"]], on="candle_ts", how="left")
    rows["contract_id"], rows["session_date"], rows["data_version"] = contract_id, session, lineage
    rows = rows[FEATURE_PRIMITIVES.schema.names]
    return rows.astype({"direction": np.int32, "position": np.int32, "has_trades": bool})
