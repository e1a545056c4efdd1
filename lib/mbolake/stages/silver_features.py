"""Silver feature stages (FEATURES.md §1-§4), each a thin wrapper around the kernels, on either
stage engine (``local_engine``: delta-rs on the driver; ``spark``: ``applyInArrow`` / ``applyInPandas``).

- ``SilverAddSessionLevels``: ``silver.orderbook_state`` of the front month -> ``silver.session_levels``.
- ``SilverFilterFirst4Hours``: the 08:30-12:30 window, used by the two stages below.
- ``SilverComputeBar5sFeatures``: ``silver.mbo_normalized`` -> book kernel -> bar kernel -> ``silver.bar_5s``.
  The book is replayed beside the bar kernel (the kernel is fast) instead of reading back the
  MBP-10 rows; the rows are identical to ``silver.orderbook_state``'s.
- ``SilverExtractLevelApproach2m``: bars + levels + trade prints -> candles -> episodes (both
  directions, every level type) -> ``silver.feature_primitives``.
Every stage groups by ``(contract_id, session_date)`` and replaces exactly those rows.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..core.calendar import local_time_to_ns
from ..core.constants import PRICE_SCALE
from ..runtime.context import Context
from ..core.products import get_product
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, MBO_NORMALIZED, ORDERBOOK_STATE, SESSION_LEVELS, spark_schema
from ..engines import local as local_engine
from ..engines.spark import data_version, in_dates, pairs_predicate, read_pinned, replace_rows
from ..engines.local import stage_engine
from .silver_book import GROUP_INPUT_COLUMNS, kernel_chunks, kernel_input



@dataclass
class StageSummary:
    stage: str
    rows_in: int
    rows_out: int
    seconds: float
    data_version: dict
    details: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (f"<b>{self.stage}</b>: {self.rows_in:,} rows in → {self.rows_out:,} rows out in {self.seconds:.1f} s; "
                f"lineage {self.data_version}<ul>{notes}</ul>" + self.details.to_html(index=False))


@dataclass(frozen=True)
class SilverFilterFirst4Hours:
    """One hour of pre-RTH context plus three hours of RTH: ``window_start <= t < window_end`` local."""

    window_start: tuple[int, int] = (8, 30)
    window_end: tuple[int, int] = (12, 30)

    def __post_init__(self):
        if self.window_start >= self.window_end:
            raise ValueError(f"window_start {self.window_start} must be before window_end {self.window_end}")

    def bounds(self, session_date, timezone: str) -> tuple[int, int]:
        return (local_time_to_ns(session_date, *self.window_start, timezone),
                local_time_to_ns(session_date, *self.window_end, timezone))


def _front_month(ctx: Context, underlier: str, start_date, end_date):
    from pyspark.sql import functions as F

    mbo, version = read_pinned(ctx, MBO_NORMALIZED, "the Silver feature stages")
    mbo = in_dates(mbo.where((F.col("underlier") == underlier) & F.col("is_front_month")), start_date, end_date)
    return mbo, version


# -- session levels -------------------------------------------------------------------

class SilverAddSessionLevels:
    name = "SilverAddSessionLevels"
    inputs = (ORDERBOOK_STATE.name, MBO_NORMALIZED.name)
    outputs = (SESSION_LEVELS.name,)

    def run(self, ctx: Context, *, underlier: str, start_date=None, end_date=None,
            engine: str | None = None) -> StageSummary:
        t0 = time.perf_counter()
        product = get_product(underlier)
        run = self._run_local if stage_engine(ctx, engine) == "local" else self._run_spark
        levels_pdf, lineage = run(ctx, product, underlier, start_date, end_date)
        if levels_pdf.empty:
            return StageSummary(self.name, 0, 0, time.perf_counter() - t0, json.loads(lineage),
                                notes=["no front-month book states: run the order-book and normalize stages first"])
        notes = [f"{r.contract_id} {r.session_date}: levels incomplete (empty window: {r.empty_windows}); "
                 f"downstream skips the missing levels" for r in levels_pdf.itertuples() if not r.levels_complete]
        return StageSummary(self.name, int(levels_pdf[["pm_n_states", "or_n_states"]].sum().sum()), len(levels_pdf),
                            time.perf_counter() - t0, json.loads(lineage), levels_pdf.drop(columns="data_version"), notes)

    def _run_local(self, ctx: Context, product, underlier, start_date, end_date):
        mbo, keys = _front_month_keys(ctx, underlier, start_date, end_date)
        states = local_engine.PinnedTable(ctx, ORDERBOOK_STATE, self.name)
        lineage = data_version(ctx, {ORDERBOOK_STATE.name: states.version, MBO_NORMALIZED.name: mbo.version})
        rows = [session_levels_row(states.read(LEVEL_INPUT_COLUMNS, local_engine.pairs_filter(key)).to_pandas(),
                                   product, lineage) for key in _one_row_frames(keys)]
        levels_pdf = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        if not levels_pdf.empty:
            local_engine.replace(ctx, SESSION_LEVELS, [local_engine.arrow_rows(levels_pdf, SESSION_LEVELS)],
                                 pairs_predicate(levels_pdf), lineage)
        return levels_pdf, lineage

    def _run_spark(self, ctx: Context, product, underlier, start_date, end_date):
        from pyspark.sql import functions as F

        front, mbo_version = _front_month(ctx, underlier, start_date, end_date)
        keys = front.select("contract_id", "session_date").distinct()
        states, state_version = read_pinned(ctx, ORDERBOOK_STATE, self.name)
        states = (in_dates(states, start_date, end_date).join(F.broadcast(keys), ["contract_id", "session_date"])
                  .select(*LEVEL_INPUT_COLUMNS))
        lineage = data_version(ctx, {ORDERBOOK_STATE.name: state_version, MBO_NORMALIZED.name: mbo_version})
        levels = states.groupBy("contract_id", "session_date").applyInPandas(
            lambda pdf: session_levels_row(pdf, product, lineage), spark_schema(SESSION_LEVELS))
        levels_pdf = levels.toPandas()
        if not levels_pdf.empty:
            replace_rows(ctx, SESSION_LEVELS, ctx.spark.createDataFrame(levels_pdf, spark_schema(SESSION_LEVELS)),
                         pairs_predicate(levels_pdf), lineage)
        return levels_pdf, lineage


LEVEL_INPUT_COLUMNS = ["contract_id", "session_date", "ts_recv", "bid_px_00", "ask_px_00"]


def session_levels_row(pdf: pd.DataFrame, product, lineage: str) -> pd.DataFrame:
    """One contract-session's book states -> its ``silver.session_levels`` row."""
    from ..features.levels import session_levels

    pdf = pdf.sort_values("ts_recv", kind="stable")
    session = pdf["session_date"].iloc[0]
    found = session_levels(pdf["ts_recv"].to_numpy(np.int64), pdf["bid_px_00"].to_numpy(float) * PRICE_SCALE,
                           pdf["ask_px_00"].to_numpy(float) * PRICE_SCALE, session, product.timezone,
                           premarket_start=product.premarket_start)
    row = {name: found.get(name) for name in SESSION_LEVELS.schema.names if name in found}
    row.update(contract_id=pdf["contract_id"].iloc[0], session_date=session, data_version=lineage,
               empty_windows=",".join(found["empty_windows"]))
    return pd.DataFrame([row], columns=SESSION_LEVELS.schema.names)


def _front_month_keys(ctx: Context, underlier: str, start_date, end_date):
    """(pinned silver.mbo_normalized, its front-month (contract_id, session_date) keys with row counts)."""
    mbo = local_engine.PinnedTable(ctx, MBO_NORMALIZED, "the Silver feature stages")
    keys = local_engine.group_keys(mbo.read(["contract_id", "session_date"], _front_filter(underlier, start_date, end_date)))
    return mbo, keys


def _front_filter(underlier: str, start_date, end_date):
    return local_engine.all_of([pc.field("underlier") == underlier, pc.field("is_front_month"),
                                local_engine.date_filter(start_date, end_date)])


def _one_row_frames(keys: pd.DataFrame):
    return [keys.iloc[[i]] for i in range(len(keys))]


# -- 5-second bars --------------------------------------------------------------------

class SilverComputeBar5sFeatures:
    name = "SilverComputeBar5sFeatures"
    inputs = (MBO_NORMALIZED.name,)
    outputs = (BAR_5S.name,)

    def __init__(self, window: SilverFilterFirst4Hours = SilverFilterFirst4Hours()):
        self.window = window

    def run(self, ctx: Context, *, underlier: str, start_date=None, end_date=None,
            engine: str | None = None) -> StageSummary:
        t0 = time.perf_counter()
        product = get_product(underlier)
        run = self._run_local if stage_engine(ctx, engine) == "local" else self._run_spark
        keys, lineage = run(ctx, product, underlier, start_date, end_date)
        if keys.empty:
            return StageSummary(self.name, 0, 0, time.perf_counter() - t0, json.loads(lineage),
                                notes=["no front-month records in the range"])
        written = local_engine.read_rows(ctx, BAR_5S, local_engine.pairs_filter(keys)).to_pandas()
        return StageSummary(self.name, int(keys["rows"].sum()), len(written), time.perf_counter() - t0,
                            json.loads(lineage), nonfinite_counts(written))

    def _run_local(self, ctx: Context, product, underlier, start_date, end_date):
        mbo, keys = _front_month_keys(ctx, underlier, start_date, end_date)
        lineage = data_version(ctx, {MBO_NORMALIZED.name: mbo.version})

        def bars():
            for key in _one_row_frames(keys):
                yield session_bars(mbo.read(GROUP_INPUT_COLUMNS, local_engine.pairs_filter(key)), product,
                                   self.window, lineage)

        if not keys.empty:
            local_engine.replace(ctx, BAR_5S, bars(), pairs_predicate(keys), lineage)
        return keys, lineage

    def _run_spark(self, ctx: Context, product, underlier, start_date, end_date):
        front, version = _front_month(ctx, underlier, start_date, end_date)
        lineage = data_version(ctx, {MBO_NORMALIZED.name: version})
        window = self.window
        front = front.select(*GROUP_INPUT_COLUMNS)
        bars = front.groupBy("contract_id", "session_date").applyInArrow(
            lambda table: session_bars(table, product, window, lineage), spark_schema(BAR_5S))
        keys = front.groupBy("contract_id", "session_date").count().toPandas().rename(columns={"count": "rows"})
        if not keys.empty:
            replace_rows(ctx, BAR_5S, bars, pairs_predicate(keys), lineage)
        return keys, lineage


def session_bars(table, product, window: SilverFilterFirst4Hours, lineage: str):
    """One contract-session of normalized MBO (Arrow) -> its bar_5s rows (Arrow): the book and
    the bar builder fed together, chunk by chunk (both are resumable, so chunks change nothing)."""
    import pyarrow as pa

    from ..book import OrderBook
    from ..features.bars import BarBuilder, BarParams

    cols = kernel_input(table)
    contract_id, session = table.column("contract_id")[0].as_py(), table.column("session_date")[0].as_py()
    start, end = window.bounds(session, product.timezone)
    builder = BarBuilder(BarParams(window_start_ns=start, window_end_ns=end, tick_size=product.tick_size))
    book = OrderBook()
    parts = [builder.apply(chunk, book.apply(chunk)) for chunk in kernel_chunks(cols)]
    bars = pd.concat([*parts, builder.finish()], ignore_index=True)
    keys = pd.DataFrame({"contract_id": contract_id, "session_date": [session] * len(bars),
                         "bar_ts": bars["bar_ts"].to_numpy(np.int64)})
    features = bars.drop(columns="bar_ts").astype(np.float64)
    out = pd.concat([keys, features, pd.DataFrame({"data_version": [lineage] * len(bars)})], axis=1)
    return pa.Table.from_pandas(out[BAR_5S.schema.names], schema=BAR_5S.schema, preserve_index=False)


def nonfinite_counts(bars: pd.DataFrame) -> pd.DataFrame:
    """Per contract-session: bars, NaN/null feature values, and bars without trades."""
    features = [c for c in bars.columns if c.startswith("bar5s_")]
    summary = bars.assign(null_or_nan_values=bars[features].isna().sum(axis=1),
                          bars_without_trades=(bars["bar5s_trade_cnt_sum"] == 0).astype(int))
    return (summary.groupby(["contract_id", "session_date"], as_index=False)
            .agg(bars=("bar_ts", "size"), null_or_nan_values=("null_or_nan_values", "sum"),
                 bars_without_trades=("bars_without_trades", "sum"))
            .sort_values("session_date").reset_index(drop=True))


# -- approach episodes ----------------------------------------------------------------

class SilverExtractLevelApproach2m:
    name = "SilverExtractLevelApproach2m"
    inputs = (BAR_5S.name, SESSION_LEVELS.name, MBO_NORMALIZED.name)
    outputs = (FEATURE_PRIMITIVES.name,)

    def __init__(self, window: SilverFilterFirst4Hours = SilverFilterFirst4Hours()):
        self.window = window

    def run(self, ctx: Context, *, underlier: str, start_date=None, end_date=None,
            engine: str | None = None) -> StageSummary:
        t0 = time.perf_counter()
        product = get_product(underlier)
        run = self._run_local if stage_engine(ctx, engine) == "local" else self._run_spark
        keys, lineage = run(ctx, product, underlier, start_date, end_date)
        if keys.empty:
            return StageSummary(self.name, 0, 0, time.perf_counter() - t0, json.loads(lineage),
                                notes=["no bars with session levels in the range: run the bar and level stages first"])
        written = local_engine.read_rows(ctx, FEATURE_PRIMITIVES, local_engine.pairs_filter(keys),
                                         ["session_date", "level_type", "direction", "position"]).to_pandas()
        episodes = (written[written["position"] == 0].groupby(["session_date", "level_type", "direction"])
                    .size().rename("count").reset_index())
        levels = local_engine.read_rows(ctx, SESSION_LEVELS, local_engine.pairs_filter(keys),
                                        ["contract_id", "session_date", "levels_complete", "empty_windows"]).to_pandas()
        notes = [f"{r.contract_id} {r.session_date}: levels of the {r.empty_windows} window skipped (no data)"
                 for r in levels[~levels["levels_complete"]].itertuples()]
        bars_in = local_engine.read_rows(ctx, BAR_5S, local_engine.pairs_filter(keys), ["session_date"]).num_rows
        return StageSummary(self.name, bars_in, len(written), time.perf_counter() - t0, json.loads(lineage),
                            episodes, notes)

    def _run_local(self, ctx: Context, product, underlier, start_date, end_date):
        bars = local_engine.PinnedTable(ctx, BAR_5S, self.name)
        levels = local_engine.PinnedTable(ctx, SESSION_LEVELS, self.name)
        mbo, front_keys = _front_month_keys(ctx, underlier, start_date, end_date)
        lineage = data_version(ctx, {BAR_5S.name: bars.version, SESSION_LEVELS.name: levels.version,
                                     MBO_NORMALIZED.name: mbo.version})
        level_rows = levels.read(None, local_engine.pairs_filter(front_keys)).to_pandas().drop(columns="data_version")
        keys = front_keys.merge(level_rows[["contract_id", "session_date"]], on=["contract_id", "session_date"])

        def primitives():
            for key in _one_row_frames(keys):
                where = local_engine.pairs_filter(key)
                bar_pdf = bars.read(None, where).to_pandas().drop(columns="data_version").merge(
                    level_rows, on=["contract_id", "session_date"])
                trades = mbo.read(TRADE_COLUMNS, where & (pc.field("action") == "T")).to_pandas()
                if not bar_pdf.empty:
                    yield local_engine.arrow_rows(session_primitives(bar_pdf, trades, product, self.window, lineage),
                                    FEATURE_PRIMITIVES)

        if not keys.empty:
            local_engine.replace(ctx, FEATURE_PRIMITIVES, primitives(), pairs_predicate(keys), lineage)
        return keys, lineage

    def _run_spark(self, ctx: Context, product, underlier, start_date, end_date):
        from pyspark.sql import functions as F

        bars, bar_version = read_pinned(ctx, BAR_5S, self.name)
        levels, level_version = read_pinned(ctx, SESSION_LEVELS, self.name)
        front, mbo_version = _front_month(ctx, underlier, start_date, end_date)
        lineage = data_version(ctx, {BAR_5S.name: bar_version, SESSION_LEVELS.name: level_version,
                                     MBO_NORMALIZED.name: mbo_version})
        keys = ["contract_id", "session_date"]
        bars = in_dates(bars, start_date, end_date).drop("data_version").join(
            F.broadcast(levels.drop("data_version")), keys)
        trades = front.where(F.col("action") == "T").select(*TRADE_COLUMNS)
        window = self.window

        def primitives_of(bar_pdf: pd.DataFrame, trade_pdf: pd.DataFrame) -> pd.DataFrame:
            if bar_pdf.empty:
                return pd.DataFrame(columns=FEATURE_PRIMITIVES.schema.names)
            return session_primitives(bar_pdf, trade_pdf, product, window, lineage)

        out = bars.groupBy(*keys).cogroup(trades.groupBy(*keys)).applyInPandas(
            primitives_of, spark_schema(FEATURE_PRIMITIVES))
        session_keys = bars.select(*keys).distinct().toPandas()
        if not session_keys.empty:
            replace_rows(ctx, FEATURE_PRIMITIVES, out, pairs_predicate(session_keys), lineage)
        return session_keys, lineage


TRADE_COLUMNS = ["contract_id", "session_date", "ts_recv", "price", "size", "record_index"]


def session_primitives(bar_pdf: pd.DataFrame, trade_pdf: pd.DataFrame, product, window: SilverFilterFirst4Hours,
                       lineage: str) -> pd.DataFrame:
    """One contract-session: candles from trades, episodes for every level and both directions,
    and the per-candle signatures of their lookback and look-forward windows."""
    from ..features.approach import ApproachParams, detect_episodes
    from ..features.candles import build_candles
    from ..features.levels import available_levels
    from ..features.setup_vector import episode_signature_rows

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
    episodes = episodes[episodes["confirm_in_window"]]
    if episodes.empty:
        return pd.DataFrame(columns=FEATURE_PRIMITIVES.schema.names)
    rows = episode_signature_rows(episodes, candles, bar_pdf, tick=product.tick_size)
    rows = rows.merge(episodes, on="episode_id").merge(candles[["candle_ts", "open", "high", "low", "close",
                                                                "has_trades"]], on="candle_ts", how="left")
    rows["contract_id"], rows["session_date"], rows["data_version"] = contract_id, session, lineage
    rows = rows[FEATURE_PRIMITIVES.schema.names]
    return rows.astype({"direction": np.int32, "position": np.int32, "has_trades": bool})
