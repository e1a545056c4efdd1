"""SilverAddSessionLevels: ``silver.orderbook_state`` of the front month -> ``silver.session_levels``
(pre-market and opening-range highs and lows of the book mid, FEATURES.md §1)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.constants import PRICE_SCALE
from ..core.products import Product
from ..engines import Engine, Source, in_dates, where
from ..engines.local import arrow_rows, keys_filter, read_rows
from ..schemas import MBO_NORMALIZED, ORDERBOOK_STATE, SESSION_LEVELS
from .base import Stage, StageSummary


class SilverAddSessionLevels(Stage):
    name = "SilverAddSessionLevels"
    inputs = (ORDERBOOK_STATE, MBO_NORMALIZED)
    outputs = (SESSION_LEVELS,)

    def execute(self, engine: Engine, product: Product, start_date, end_date) -> StageSummary:
        engine.pin(ORDERBOOK_STATE, MBO_NORMALIZED)
        lineage = engine.lineage()
        keys = engine.group_keys(front_month(product, start_date, end_date))
        states = Source(ORDERBOOK_STATE, LEVEL_INPUT_COLUMNS, in_dates(start_date, end_date))
        engine.map_groups([states], lambda rows: levels_of(rows, product, lineage), self.outputs, keys, lineage)
        levels = (read_rows(engine.ctx, SESSION_LEVELS, keys_filter(keys, SESSION_LEVELS.schema)).to_pandas()
                  if not keys.empty else pd.DataFrame())
        if levels.empty:
            return self.summary(0, 0, lineage, notes=["no front-month book states: run the order-book and "
                                                      "normalize stages first"])
        levels = levels.sort_values(["session_date", "contract_id"]).reset_index(drop=True)
        notes = [f"{r.contract_id} {r.session_date}: levels incomplete (empty window: {r.empty_windows}); "
                 f"downstream skips the missing levels" for r in levels.itertuples() if not r.levels_complete]
        return self.summary(int(levels[["pm_n_states", "or_n_states"]].sum().sum()), len(levels), lineage,
                            levels.drop(columns="data_version"), notes)


def front_month(product: Product, start_date, end_date, columns=None) -> Source:
    """The front-month rows of ``silver.mbo_normalized`` in the range."""
    return Source(MBO_NORMALIZED, columns,
                  where(underlier=product.underlier, is_front_month=True) + in_dates(start_date, end_date))


def levels_of(rows: pa.Table, product: Product, lineage: str) -> list[pa.Table]:
    """One contract-session's book states (Arrow) -> its ``silver.session_levels`` row."""
    if not rows.num_rows:
        return []
    from ..engines.local import plain_table

    return [arrow_rows(session_levels_row(plain_table(rows).to_pandas(), product, lineage), SESSION_LEVELS)]


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
