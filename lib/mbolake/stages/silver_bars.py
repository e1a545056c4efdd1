"""SilverComputeBar5sFeatures: ``silver.mbo_normalized`` (front month) -> book kernel -> bar kernel
-> ``silver.bar_5s`` over the session window (FEATURES.md §3).

The book is replayed beside the bar kernel (the kernel is fast) instead of reading back the
MBP-10 rows; the rows are identical to ``silver.orderbook_state``'s.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.products import Product
from ..engines import Engine, Source, in_dates, where
from ..engines.local import keys_filter, read_rows
from ..schemas import BAR_5S, MBO_NORMALIZED
from .base import SilverFilterFirst4Hours, Stage, StageSummary
from .mbo_input import GROUP_INPUT_COLUMNS, kernel_chunks, kernel_input


class SilverComputeBar5sFeatures(Stage):
    name = "SilverComputeBar5sFeatures"
    inputs = (MBO_NORMALIZED,)
    outputs = (BAR_5S,)

    def __init__(self, window: SilverFilterFirst4Hours = SilverFilterFirst4Hours()):
        self.window = window

    def execute(self, engine: Engine, product: Product, start_date, end_date) -> StageSummary:
        front = Source(MBO_NORMALIZED, GROUP_INPUT_COLUMNS,
                       where(underlier=product.underlier, is_front_month=True) + in_dates(start_date, end_date))
        engine.pin(MBO_NORMALIZED)
        lineage = engine.lineage(window=self.window.label())
        keys = engine.group_keys(front)
        if keys.empty:
            return self.summary(0, 0, lineage, notes=["no front-month records in the range"])
        window = self.window
        engine.map_groups([front], lambda rows: [session_bars(rows, product, window, lineage)], self.outputs, keys,
                          lineage)
        written = read_rows(engine.ctx, BAR_5S, keys_filter(keys, BAR_5S.schema)).to_pandas()
        return self.summary(int(keys["rows"].sum()), len(written), lineage, nonfinite_counts(written))


def session_bars(table, product, window: SilverFilterFirst4Hours, lineage: str):
    """One contract-session of normalized MBO (Arrow) -> its bar_5s rows (Arrow): the book and
    the bar builder fed together, chunk by chunk (both are resumable, so chunks change nothing)."""

    from ..book import OrderBook
    from ..features.bars import BarBuilder, BarParams

    cols = kernel_input(table)
    contract_id, session = table.column("contract_id")[0].as_py(), table.column("session_date")[0].as_py()
    start, end = window.bounds(session, product.timezone)
    builder = BarBuilder(BarParams(window_start_ns=start, window_end_ns=end, tick_size=product.tick_size))
    book = OrderBook()
    parts = [builder.apply(chunk, book.apply(chunk)) for chunk in kernel_chunks(cols)]
    return bar_rows(pd.concat([*parts, builder.finish()], ignore_index=True), contract_id, session, lineage)


def bar_rows(bars: pd.DataFrame, contract_id: str, session, lineage: str) -> pa.Table:
    """The bar builder's frame -> ``silver.bar_5s`` rows (shared with rt silver)."""
    keys = pd.DataFrame({"contract_id": contract_id, "session_date": [session] * len(bars),
                         "bar_ts": bars["bar_ts"].to_numpy(np.int64)})
    features = bars.drop(columns="bar_ts").astype(np.float64).reset_index(drop=True)
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
