"""rt silver's per-contract state (``ContractSessionStream``) against the batch stages' own
per-session functions, on a generated session cut into micro-batches at arbitrary points, with
the state saved and restored between every two of them and messages delivered twice."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mbolake.core.products import front_month_contract, get_product
from mbolake.sample import synth
from mbolake.schemas import BAR_5S, FEATURE_PRIMITIVES, ORDERBOOK_STATE, SETUP_VECTORS
from mbolake.stages.base import SilverFilterFirst4Hours
from mbolake.stages.contract_stream import ContractSessionStream, kernel_records, pack, unpack
from mbolake.stages.gold_setup import episode_outputs
from mbolake.stages.silver_approach import session_primitives
from mbolake.stages.silver_bars import session_bars
from mbolake.stages.silver_book import rebuild_contract_session
from mbolake.stages.silver_levels import session_levels_row

pytestmark = pytest.mark.slow  # a generated session through batch and stream twice: ~1 min

SESSION = dt.date(2025, 11, 12)
PRODUCT = get_product("ES")
WINDOW = SilverFilterFirst4Hours()
LINEAGE = json.dumps({"window": WINDOW.label()})


def contract_frame(records: np.ndarray, instrument_id: int, symbol: str) -> pd.DataFrame:
    records = records[records["instrument_id"] == instrument_id]
    frame = pd.DataFrame({name: records[name] for name in records.dtype.names if name not in ("length", "rtype")})
    for name in ("ts_recv", "ts_event"):
        frame[name] = frame[name].astype(np.int64)
    frame["order_id"] = records["order_id"].view(np.int64)
    frame["action"] = records["action"].astype("U1")
    frame["side"] = records["side"].astype("U1")
    frame["record_index"] = np.arange(len(frame)) * 3 + 1
    frame["contract_id"] = f"GLBX.MDP3:{symbol}"
    frame["session_date"] = SESSION
    return frame


@pytest.fixture(scope="module")
def contracts():
    records, intervals = synth.generate_session_records(SESSION, synth.SynthParams(intensity=60_000, seed=11))
    front, back = synth.front_and_back_month(SESSION)
    return {symbol: contract_frame(records, intervals[symbol][0][2], symbol) for symbol in (front, back)}


def batch_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The batch stages' per-session functions on one contract-session."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    parts = [rows for out, rows in rebuild_contract_session(table, LINEAGE) if out is ORDERBOOK_STATE]
    out = {ORDERBOOK_STATE.name: pa.concat_tables(parts).to_pandas()}
    if frame["contract_id"].iloc[0] != front_month_contract(PRODUCT, SESSION):
        return out
    states = out[ORDERBOOK_STATE.name]
    levels = session_levels_row(states, PRODUCT, LINEAGE).drop(columns="data_version")
    bars = session_bars(table, PRODUCT, WINDOW, LINEAGE).to_pandas()
    primitives = session_primitives(bars.drop(columns="data_version").merge(levels, on=["contract_id", "session_date"]),
                                    frame[frame["action"] == "T"], PRODUCT, WINDOW, LINEAGE)
    vectors, _ = episode_outputs(primitives, PRODUCT, LINEAGE)
    return out | {BAR_5S.name: bars, FEATURE_PRIMITIVES.name: primitives, SETUP_VECTORS.name: vectors}


def stream_tables(frame: pd.DataFrame, cuts: np.ndarray, replay_every: int = 0) -> dict[str, pd.DataFrame]:
    """The frame in micro-batches ending at ``cuts``, the state through bytes between batches;
    with ``replay_every`` k, every k-th batch is delivered again (in reverse order) too."""
    contract_id = frame["contract_id"].iloc[0]
    state, out = None, {}
    bounds = [0, *cuts.tolist(), len(frame)]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        stream = (ContractSessionStream(contract_id, SESSION, PRODUCT, WINDOW, LINEAGE) if state is None
                  else ContractSessionStream.from_state_bytes(state, PRODUCT, WINDOW))
        batch = frame.iloc[lo:hi]
        if replay_every and i % replay_every == 0 and lo:
            batch = pd.concat([frame.iloc[max(0, lo - 500):lo], batch]).iloc[::-1]  # re-delivered and shuffled
        for table, rows in stream.apply(kernel_records(batch)).items():
            out.setdefault(table.name, []).append(rows)
        state = stream.state_bytes()
    assert not stream.features_active, "after the window the front month keeps only its book"
    return {name: pa.concat_tables(parts).to_pandas() for name, parts in out.items()}


def assert_same_rows(name: str, batch: pd.DataFrame, stream: pd.DataFrame, keys: list[str]) -> None:
    columns = [c for c in batch.columns if c != "data_version"]
    b = batch[columns].sort_values(keys, kind="stable").reset_index(drop=True)
    s = stream[columns].sort_values(keys, kind="stable").reset_index(drop=True)
    assert len(s) == len(b), f"{name}: {len(s)} stream rows, {len(b)} batch rows"
    for column in columns:
        left, right = b[column], s[column]
        if column == "feature_vector":
            assert all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(left, right)), name
        else:
            pd.testing.assert_series_equal(left, right, check_dtype=False, check_names=False, check_exact=True,
                                           obj=f"{name}.{column}")


def test_same_rows_means_exactly_the_same_values():
    """Equal is exact: pandas' default tolerance (relative 1e-5) would pass 5000.0 against 5000.04."""
    batch = pd.DataFrame({"bar_ts": [1, 2], "mid": [5000.0, np.nan], "data_version": ["b", "b"]})
    assert_same_rows("bars", batch, batch.assign(data_version="s"), ["bar_ts"])  # NaN equals NaN
    with pytest.raises(AssertionError, match="bars.mid"):
        assert_same_rows("bars", batch, batch.assign(mid=[5000.04, np.nan]), ["bar_ts"])


KEYS = {ORDERBOOK_STATE.name: ["ts_recv", "sequence"], BAR_5S.name: ["bar_ts"],
        FEATURE_PRIMITIVES.name: ["episode_id", "position"], SETUP_VECTORS.name: ["episode_id"]}


def test_front_month_stream_equals_batch_at_any_cut(contracts):
    front = contracts[synth.front_and_back_month(SESSION)[0]]
    batch = batch_tables(front)
    assert len(batch[SETUP_VECTORS.name]) >= 3, "the generated session should hold several episodes"
    assert len(batch[BAR_5S.name]) == 2880
    rng = np.random.default_rng(5)
    cuts = np.sort(rng.choice(np.arange(1, len(front)), size=60, replace=False))
    stream = stream_tables(front, cuts, replay_every=7)
    assert set(stream) == set(batch)
    for name, rows in batch.items():
        assert_same_rows(name, rows, stream[name], KEYS[name])
    assert (stream[SETUP_VECTORS.name]["feature_hash"].sort_values().to_numpy()
            == batch[SETUP_VECTORS.name]["feature_hash"].sort_values().to_numpy()).all()


def test_back_month_stream_has_only_book_states(contracts):
    back = contracts[synth.front_and_back_month(SESSION)[1]]
    batch = batch_tables(back)
    stream = stream_tables(back, np.array([len(back) // 3, len(back) // 2]))
    assert set(stream) == {ORDERBOOK_STATE.name}
    assert_same_rows(ORDERBOOK_STATE.name, batch[ORDERBOOK_STATE.name], stream[ORDERBOOK_STATE.name],
                     KEYS[ORDERBOOK_STATE.name])


def test_a_state_of_another_window_or_format_is_refused(contracts):
    back = contracts[synth.front_and_back_month(SESSION)[1]]
    stream = ContractSessionStream(back["contract_id"].iloc[0], SESSION, PRODUCT, WINDOW, LINEAGE)
    stream.apply(kernel_records(back.iloc[:1000]))
    blob = stream.state_bytes()
    with pytest.raises(ValueError, match="window"):
        ContractSessionStream.from_state_bytes(blob, PRODUCT, SilverFilterFirst4Hours(window_end=(11, 30)))
    parts = unpack(blob)
    parts["meta"] = parts["meta"].replace(b"contract_stream/1", b"contract_stream/0")
    with pytest.raises(ValueError, match="not an rt silver contract state"):
        ContractSessionStream.from_state_bytes(pack(parts), PRODUCT, WINDOW)
