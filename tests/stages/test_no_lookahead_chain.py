"""No look-ahead through the whole chain: MBO records -> book -> bars -> candles -> episodes -> vectors.

Deleting every record after an episode's ``vector_time`` must leave that episode's setup
vector and ``feature_hash`` unchanged. Runs the same per-session functions the Spark stages
call, without Spark.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mbolake.book import OrderBook
from mbolake.core.products import get_product
from mbolake.features.levels import session_levels
from mbolake.sample import synth
from mbolake.stages.base import SilverFilterFirst4Hours
from mbolake.stages.gold_setup import episode_outputs
from mbolake.stages.mbo_input import kernel_input
from mbolake.stages.silver_approach import session_primitives
from mbolake.stages.silver_bars import session_bars

SESSION = dt.date(2025, 11, 12)
PRODUCT = get_product("ES")


def front_month_frame(records: np.ndarray, header_ids: dict) -> pd.DataFrame:
    front, _ = synth.front_and_back_month(SESSION)
    records = records[records["instrument_id"] == header_ids[front]]
    frame = pd.DataFrame({name: records[name] for name in records.dtype.names if name not in ("length", "rtype")})
    frame["ts_recv"] = frame["ts_recv"].astype(np.int64)
    frame["ts_event"] = frame["ts_event"].astype(np.int64)
    frame["order_id"] = records["order_id"].view(np.int64)
    frame["action"] = records["action"].astype("U1")
    frame["side"] = records["side"].astype("U1")
    frame["record_index"] = np.arange(len(frame))
    frame["contract_id"] = f"GLBX.MDP3:{front}"
    frame["session_date"] = SESSION
    return frame


def vectors_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The whole per-session chain, as the stages run it."""
    window = SilverFilterFirst4Hours()
    lineage = json.dumps({"window": window.label()})  # what the stages' rows carry
    table = pa.Table.from_pandas(frame, preserve_index=False)
    bars = session_bars(table, PRODUCT, window, lineage).to_pandas()
    states = OrderBook().apply(kernel_input(table))
    bid = np.where(states["bid_px_00"] == np.iinfo(np.int64).max, np.nan, states["bid_px_00"] * 1e-9)
    ask = np.where(states["ask_px_00"] == np.iinfo(np.int64).max, np.nan, states["ask_px_00"] * 1e-9)
    levels = session_levels(states["ts_recv"].astype(np.int64), bid, ask, SESSION, PRODUCT.timezone)
    for name in ("pm_high", "pm_low", "or_high", "or_low", "pm_available_from", "or_available_from"):
        bars[name] = levels[name]
    trades = frame[frame["action"] == "T"]
    prims = session_primitives(bars, trades, PRODUCT, window, lineage)
    vectors, _ = episode_outputs(prims, PRODUCT, lineage)
    return vectors.set_index("episode_id")

pytestmark = pytest.mark.slow  # a whole generated session through book, bars, candles, episodes: ~20 s

pytestmark = pytest.mark.slow  # a whole generated session through book, bars, candles, episodes: ~20 s


@pytest.fixture(scope="module")
def session_frame():
    records, intervals = synth.generate_session_records(SESSION, synth.SynthParams(intensity=120_000, seed=3))
    ids = {symbol: ivs[0][2] for symbol, ivs in intervals.items()}
    return front_month_frame(records, ids)


def test_deleting_everything_after_vector_time_changes_no_earlier_vector(session_frame):
    full = vectors_of(session_frame)
    assert len(full) >= 3, "the generated session should hold several episodes"
    # Cut right after the vector time of an episode in the middle of the session.
    cut_time = int(full["vector_time"].sort_values().iloc[len(full) // 2])
    truncated = vectors_of(session_frame[session_frame["ts_recv"] <= cut_time])

    asked_by_then = full[full["vector_time"] <= cut_time]
    assert len(asked_by_then) >= 2
    for episode_id, row in asked_by_then.iterrows():
        assert episode_id in truncated.index
        assert truncated.loc[episode_id, "feature_hash"] == row.feature_hash
        assert np.array_equal(np.asarray(truncated.loc[episode_id, "feature_vector"]), np.asarray(row.feature_vector))
