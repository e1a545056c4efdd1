"""rt silver's state per contract-session: the batch stages' kernels, resumable, fed micro-batch
by micro-batch, producing the same rows as batch.

One ``ContractSessionStream`` per ``(contract_id, session_date)``; ``apply(records)`` takes the
next records of that contract in feed order and returns the rows they complete:

- ``silver.orderbook_state``: the MBP-10 rows of the order-book kernel (every outright);
- for the session's front month (the roll calendar, ``core.products.front_month_contract``,
  known at the first record as in batch), also
  - ``silver.bar_5s``: each bar when the feed passes its end (the resumable bar builder);
  - the 2-minute candles, each once the feed passes its close; the pre-market and
    opening-range levels (resumable accumulator over the book states), each level final
    once the feed passes the end of its window; an approach detector per level type from
    then on (level types are independent in the trigger rule, so one detector per type
    finds the same episodes as batch's single detector over all of them);
  - ``gold.setup_vectors``: an episode's vector when its confirm candle closes;
  - ``silver.feature_primitives``: an episode's rows once its last look-forward candle (or
    the window's last candle) has closed.

``state_bytes()`` / ``from_state_bytes()`` carry everything between micro-batches (one blob
per contract, zlib-compressed): the book and bar-builder states, the levels, the detectors,
the trades of the candles not yet closed, the session's bars so far (the signatures of
pending episodes read them) and the episodes not yet complete. Once the window's last bar and
candle are out and no episode is open, only the book is kept. Records at or before the last
applied ``(ts_recv, record_index)`` are skipped: a message delivered twice is applied once.
"""
from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.constants import PRICE_SCALE, UNDEF_PRICE
from ..core.products import Product, front_month_contract
from ..schemas import BAR_5S, FEATURE_PRIMITIVES, ORDERBOOK_STATE, SETUP_VECTORS, Table
from .base import SilverFilterFirst4Hours
from .gold_setup import vector_row
from .silver_approach import primitive_rows
from .silver_bars import bar_rows
from .silver_book import mbp10_table

STATE_FORMAT = "mbolake.contract_stream/1"
LEVEL_WINDOW = {"pm_high": "pm", "pm_low": "pm", "or_high": "or", "or_low": "or"}
TRADE = ord("T")


def _fixed_to_points(px: np.ndarray) -> np.ndarray:
    values = px.astype(np.float64)
    values[px == UNDEF_PRICE] = np.nan
    return values * PRICE_SCALE


def _ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(data).read_all().to_pandas()


def pack(parts: dict[str, bytes]) -> bytes:
    """Named byte strings as one zlib blob: a JSON index of names and lengths, then the bytes."""
    index = json.dumps([[name, len(data)] for name, data in parts.items()]).encode()
    return zlib.compress(struct.pack("<I", len(index)) + index + b"".join(parts.values()), 1)


def unpack(blob: bytes) -> dict[str, bytes]:
    raw = zlib.decompress(blob)
    (n,) = struct.unpack_from("<I", raw)
    offset, parts = 4 + n, {}
    for name, length in json.loads(raw[4:4 + n]):
        parts[name] = raw[offset:offset + length]
        offset += length
    return parts


def kernel_records(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Bronze-shaped rows (pandas, e.g. a micro-batch's rows of one contract) -> the
    order-book kernel's columns (one-character codes as ASCII, null price = undefined)."""
    from .mbo_input import KERNEL_COLUMNS

    cols = {}
    for name in KERNEL_COLUMNS:
        column = frame[name]
        if name in ("action", "side"):
            cols[name] = np.frombuffer("".join(column.astype(str)).encode("ascii"), dtype=np.uint8).copy()
        elif name == "price" and not pd.api.types.is_integer_dtype(column.dtype):
            # nullable: float64 with NaN from Spark (exact: prices are far below 2**53)
            values = column.astype("float64").to_numpy()
            undefined = np.isnan(values)
            cols[name] = np.where(undefined, 0, values).astype(np.int64)
            cols[name][undefined] = UNDEF_PRICE
        else:
            cols[name] = column.to_numpy()
    return cols


class ContractSessionStream:
    """The streaming twin of the Silver and Gold stages for one contract-session."""

    def __init__(self, contract_id: str, session_date, product: Product,
                 window: SilverFilterFirst4Hours = SilverFilterFirst4Hours(), lineage: str = "{}"):
        from ..book import OrderBook

        self.contract_id, self.session_date, self.product = contract_id, session_date, product
        self.window, self.lineage = window, lineage
        self.book = OrderBook()
        self.last_key = (-1, -1)  # (ts_recv, record_index) of the last record applied
        # the front month's feature kernels run until its window is over, then only the book stays
        self.features_active = contract_id == front_month_contract(product, session_date)
        if self.features_active:
            self._start_features()

    # ---- set-up of the front month's feature kernels ----
    def _start_features(self) -> None:
        from ..features.bars import BarBuilder, BarParams
        from ..features.levels import LevelsAccumulator

        start, end = self.window.bounds(self.session_date, self.product.timezone)
        self.builder = BarBuilder(BarParams(window_start_ns=start, window_end_ns=end,
                                            tick_size=self.product.tick_size))
        self.levels = LevelsAccumulator(self.session_date, self.product.timezone,
                                        premarket_start=self.product.premarket_start)
        self._init_feature_state()

    def _init_feature_state(self) -> None:
        from ..features.candles import CANDLE_NS

        start, end = self.window.bounds(self.session_date, self.product.timezone)
        self.candle_start = start // CANDLE_NS * CANDLE_NS
        self.n_candles = max(0, -(-(end - self.candle_start) // CANDLE_NS))
        self.window_end = end
        self.next_candle = 0  # index of the first candle not yet closed
        self.trade_ts = np.zeros(0, np.int64)  # the trades of the window's candles not yet closed
        self.trade_px = np.zeros(0)  # their prices in points
        self.bars = pd.DataFrame()
        self.candles = pd.DataFrame()
        self.detectors: dict = {}  # level type -> ApproachDetector, or None when the level is empty
        self.pending = pd.DataFrame()  # episodes whose primitives are not all out yet
        self.vectors_done: set[str] = set()

    # ---- the micro-batch ----
    def apply(self, records: dict[str, np.ndarray]) -> dict[Table, pa.Table]:
        """Kernel columns of this contract's next records (any order; sorted here into feed
        order) -> the rows they complete, per output table."""
        records = self._new_records(records)
        out: dict[Table, list] = {}
        if not len(records["ts_recv"]):
            return {}
        states = self.book.apply(records)
        if len(states["ts_recv"]):
            out[ORDERBOOK_STATE] = [mbp10_table(states, self.contract_id, self.session_date)]
        if self.features_active:
            self._features(records, states, out)
            self.features_active = not self._window_done()
        return {table: pa.concat_tables(parts) for table, parts in out.items() if parts}

    def _new_records(self, records: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ts, index = records["ts_recv"], records["record_index"]
        order = np.lexsort((index, ts))
        last_ts, last_index = self.last_key
        keep = order[(ts[order] > last_ts) | ((ts[order] == last_ts) & (index[order] > last_index))]
        if len(keep):
            self.last_key = (int(ts[keep[-1]]), int(index[keep[-1]]))
        return {name: np.ascontiguousarray(col[keep]) for name, col in records.items()}

    def _features(self, records, states, out) -> None:
        self.levels.apply(states["ts_recv"], _fixed_to_points(states["bid_px_00"]),
                          _fixed_to_points(states["ask_px_00"]))
        bars = self.builder.apply(records, states)
        if len(bars):
            self.bars = pd.concat([self.bars, bars], ignore_index=True) if len(self.bars) else bars
            out[BAR_5S] = [bar_rows(bars, self.contract_id, self.session_date, self.lineage)]
        ts = records["ts_recv"]
        trades = (records["action"] == TRADE) & (ts >= self.candle_start) & (ts < self.window_end)
        if trades.any():
            self.trade_ts = np.concatenate([self.trade_ts, ts[trades]])
            self.trade_px = np.concatenate([self.trade_px, _fixed_to_points(records["price"][trades])])
        now = int(records["ts_recv"][-1])
        candles = self._close_candles(now)
        episodes = self._detect(candles, now)
        if len(episodes):
            self.pending = pd.concat([self.pending, episodes], ignore_index=True) if len(self.pending) else episodes
        vectors, primitives = self._episode_rows()
        if vectors:
            out[SETUP_VECTORS] = [pa.Table.from_pandas(pd.DataFrame(vectors, columns=SETUP_VECTORS.schema.names),
                                                       schema=SETUP_VECTORS.schema, preserve_index=False)]
        if len(primitives):
            out[FEATURE_PRIMITIVES] = [pa.Table.from_pandas(primitives, schema=FEATURE_PRIMITIVES.schema,
                                                            preserve_index=False)]

    def _window_done(self) -> bool:
        """Every bar and candle of the window out and no episode open: the feature state can go."""
        return (self.builder.bars_emitted == self.builder.params.n_bars and self.next_candle == self.n_candles
                and not len(self.pending))

    def _close_candles(self, now: int) -> pd.DataFrame:
        """The candles whose close the feed has passed (``now >= close_ts``), built exactly as
        batch builds them (trades inside, else the mid standing at the start)."""
        from ..features.candles import CANDLE_NS, build_candles

        closable = min(self.n_candles, max(0, (now - self.candle_start) // CANDLE_NS))
        if closable <= self.next_candle:
            return pd.DataFrame()
        first = self.candle_start + self.next_candle * CANDLE_NS
        last_close = min(self.candle_start + closable * CANDLE_NS, self.window_end)
        mids = (np.zeros(0, np.int64), np.zeros(0))
        if len(self.bars):  # the mid standing at a bar's end is the mid at the next bar's start
            mids = (self.bars["bar_ts"].to_numpy(np.int64) + 5_000_000_000, self.bars["bar5s_midprice_eob"].to_numpy(float))
        taken = self.trade_ts < self.candle_start + closable * CANDLE_NS
        candles = build_candles(self.trade_ts[taken], self.trade_px[taken], *mids, first, last_close)
        candles = candles.iloc[:closable - self.next_candle].reset_index(drop=True)
        self.trade_ts, self.trade_px = self.trade_ts[~taken], self.trade_px[~taken]
        self.next_candle = closable
        self.candles = pd.concat([self.candles, candles], ignore_index=True) if len(self.candles) else candles
        return candles

    def _detect(self, candles: pd.DataFrame, now: int) -> pd.DataFrame:
        """New episodes: each level type's detector, created once its level is final, sees
        every closed candle once."""
        from ..features.approach import ApproachDetector, ApproachParams
        from ..features.levels import available_levels

        found = []
        result = None
        for level_type, window in LEVEL_WINDOW.items():
            if level_type in self.detectors:
                if self.detectors[level_type] is not None and len(candles):
                    found.append(self.detectors[level_type].apply(candles))
                continue
            result = result or self.levels.result()
            if now < result[f"{window}_end"]:
                continue  # the level's window is still open
            level = available_levels(result | {"session_date": self.session_date}).get(level_type)
            if level is None:
                self.detectors[level_type] = None
                continue
            detector = ApproachDetector(self.contract_id, str(self.session_date), {level_type: level},
                                        timezone=self.product.timezone,
                                        params=ApproachParams.for_tick(self.product.tick_size),
                                        window_start=self.window.window_start, window_end=self.window.window_end)
            self.detectors[level_type] = detector
            if len(self.candles):
                found.append(detector.apply(self.candles))
        found = [f for f in found if len(f)]
        if not found:
            return pd.DataFrame()
        episodes = pd.concat(found, ignore_index=True)
        return episodes[episodes["confirm_in_window"]].reset_index(drop=True)

    def _episode_rows(self) -> tuple[list[dict], pd.DataFrame]:
        """Setup vectors of the pending episodes whose confirm candle has closed; primitives of
        those whose every candle has closed (which then leave the pending list)."""
        if not len(self.pending):
            return [], pd.DataFrame()
        closed_through = self.next_candle - 1  # index of the last closed candle
        vectors = []
        confirmed = self.pending[(self.pending["confirm_idx"] <= closed_through)
                                 & ~self.pending["episode_id"].isin(self.vectors_done)]
        if len(confirmed):
            rows = self._primitives(confirmed, positions=range(-5, 1))
            for episode_id, episode_rows in rows.groupby("episode_id", sort=True):
                vectors.append(vector_row(episode_id, episode_rows, self.product, self.lineage))
            self.vectors_done |= set(confirmed["episode_id"])
        last_needed = np.minimum(self.pending["lookforward_end_idx"].to_numpy(), self.n_candles - 1)
        complete = self.pending[last_needed <= closed_through]
        primitives = self._primitives(complete) if len(complete) else pd.DataFrame()
        if len(complete):
            self.pending = self.pending[last_needed > closed_through].reset_index(drop=True)
            self.vectors_done -= set(complete["episode_id"])
        return vectors, primitives

    def _primitives(self, episodes: pd.DataFrame, positions=range(-5, 7)) -> pd.DataFrame:
        return primitive_rows(episodes, self.candles, self.bars, self.contract_id, self.session_date,
                              self.product.tick_size, self.lineage, positions=tuple(positions))

    # ---- checkpoint ----
    def state_bytes(self) -> bytes:
        meta = {"format": STATE_FORMAT, "contract_id": self.contract_id, "session_date": str(self.session_date),
                "underlier": self.product.underlier, "window": self.window.label(), "lineage": self.lineage,
                "last_key": list(self.last_key), "features_active": self.features_active}
        parts = {"book": self.book.state_bytes()}
        if self.features_active:
            meta |= {"next_candle": self.next_candle, "vectors_done": sorted(self.vectors_done),
                     "empty_levels": [lt for lt, d in self.detectors.items() if d is None]}
            parts |= {"bars": self.builder.state_bytes(), "levels": self.levels.state_bytes(),
                      "trade_ts": self.trade_ts.astype("<i8").tobytes(),
                      "trade_px": self.trade_px.astype("<f8").tobytes(), "bar_rows": _ipc(self.bars),
                      "candles": _ipc(self.candles), "pending": _ipc(self.pending)}
            parts |= {f"detector:{lt}": d.state_bytes() for lt, d in self.detectors.items() if d is not None}
        return pack({"meta": json.dumps(meta).encode(), **parts})

    @classmethod
    def from_state_bytes(cls, blob: bytes, product: Product,
                         window: SilverFilterFirst4Hours = SilverFilterFirst4Hours()) -> "ContractSessionStream":
        import datetime as dt

        from ..book import OrderBook

        parts = unpack(blob)
        meta = json.loads(parts["meta"])
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"not an rt silver contract state (format {meta.get('format')!r}, "
                             f"expected {STATE_FORMAT!r})")
        if meta["window"] != window.label():
            raise ValueError(f"the checkpointed state was built for the window {meta['window']}, not "
                             f"{window.label()}: start the query with a new checkpoint")
        self = cls.__new__(cls)
        self.contract_id, self.product, self.window = meta["contract_id"], product, window
        self.session_date = dt.date.fromisoformat(meta["session_date"])
        self.lineage, self.last_key = meta["lineage"], tuple(meta["last_key"])
        self.features_active = meta["features_active"]
        self.book = OrderBook.from_state_bytes(parts["book"])
        if self.features_active:
            self._restore_features(parts, meta)
        return self

    def _restore_features(self, parts: dict[str, bytes], meta: dict) -> None:
        from ..features.approach import ApproachDetector
        from ..features.bars import BarBuilder
        from ..features.levels import LevelsAccumulator

        self._init_feature_state()
        self.builder = BarBuilder.from_state_bytes(parts["bars"])
        self.levels = LevelsAccumulator.from_state_bytes(parts["levels"])
        self.next_candle = meta["next_candle"]
        self.vectors_done = set(meta["vectors_done"])
        self.trade_ts = np.frombuffer(parts["trade_ts"], dtype="<i8").copy()
        self.trade_px = np.frombuffer(parts["trade_px"], dtype="<f8").copy()
        self.bars, self.candles = _from_ipc(parts["bar_rows"]), _from_ipc(parts["candles"])
        self.pending = _from_ipc(parts["pending"])
        self.detectors = {lt: None for lt in meta["empty_levels"]}
        for name, data in parts.items():
            if name.startswith("detector:"):
                self.detectors[name.split(":", 1)[1]] = ApproachDetector.from_state_bytes(data)
