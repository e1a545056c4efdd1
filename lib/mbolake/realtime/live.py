"""``mbolake feed live``: Databento Live MBO onto ``mbo_raw`` with the replay's envelope and producer.

Records arrive as Databento objects; their raw bytes are the DBN record, so they become the same
numpy records the file decoder yields and go through the same Bronze row conversion. The
symbol of an instrument comes from the session's symbol mapping messages. A live record has no
file position: its ``event_key`` is a hash of its 56 bytes (the same record sent again, e.g. after
a reconnect with replay, gets the same key).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.constants import MBO_DTYPE
from ..core.products import get_product
from ..io.dbn import DbnHeader, SymbolInterval
from ..stages.bronze_records import FileContext, to_bronze_table
from . import envelope
from .bus import BusSettings
from .producer import BusProducer

DEFAULT_SYMBOLS = {"ES": ("ES.FUT", "parent"), "TSLA": ("TSLA", "raw_symbol")}
BATCH_RECORDS = 5_000
BATCH_SECONDS = 0.2


@dataclass
class LiveResult:
    sent: int
    seconds: float


def _header(venue: str, symbols: dict[int, str]) -> DbnHeader:
    always = [dt.date.min, dt.date.max]
    instruments = {iid: [SymbolInterval(always[0], always[1], name)] for iid, name in symbols.items()}
    return DbnHeader(Path(f"live:{venue}"), 3, False, venue, "mbo", 0, None, None, "instrument_id", False, [], 0, instruments)


def live_keys(raw: np.ndarray) -> list[str]:
    rows = raw.view(np.uint8).reshape(len(raw), raw.dtype.itemsize)
    return ["live:" + hashlib.blake2b(row.tobytes(), digest_size=12).hexdigest() for row in rows]


def live(settings: BusSettings, key: str, *, underlier: str = "ES", symbols: str | None = None, topic: str = "mbo_raw",
         seconds: float | None = None, client_factory=None, report=print) -> LiveResult:
    """Subscribe to MBO for the product's symbols and publish until ``seconds`` pass (or forever)."""
    if not key:
        raise ValueError("feed live needs a Databento API key (DATABENTO_API_KEY)")
    product = get_product(underlier)
    default, stype = DEFAULT_SYMBOLS.get(underlier, (underlier, "raw_symbol"))
    wanted = [s.strip() for s in (symbols or default).split(",") if s.strip()]
    producer = BusProducer(settings, topic)  # the bus is checked before Databento is contacted
    if client_factory is None:
        import databento

        client_factory = databento.Live
    client = client_factory(key=key)
    client.subscribe(dataset=product.venue, schema="mbo", symbols=wanted, stype_in=stype)
    names: dict[int, str] = {}
    pending: list[bytes] = []
    sent, index, started = 0, 0, time.perf_counter()
    last_flush = started

    def publish() -> None:
        nonlocal sent, index, last_flush
        raw = np.frombuffer(b"".join(pending), dtype=MBO_DTYPE)
        pending.clear()
        ctx = FileContext(_header(product.venue, names), product, f"live:{product.venue}", "feed", time.time_ns())
        table = to_bronze_table(raw, ctx, index)
        pairs = envelope.encode(table, "", keys=live_keys(raw))
        producer.send(pairs)
        producer.flush()
        index += len(raw)
        sent += len(pairs)
        last_flush = time.perf_counter()
        if report:
            report(f"live: {sent:,} events sent")

    for record in client:
        if hasattr(record, "stype_out_symbol"):
            names[int(record.instrument_id)] = str(record.stype_out_symbol)
        elif getattr(record, "rtype", None) is not None and type(record).__name__ == "MBOMsg":
            pending.append(bytes(record)[:MBO_DTYPE.itemsize])
        now = time.perf_counter()
        if pending and (len(pending) >= BATCH_RECORDS or now - last_flush >= BATCH_SECONDS):
            publish()
        if seconds is not None and now - started >= seconds:
            break
    if pending:
        publish()
    stop = getattr(client, "stop", None)
    if stop:
        stop()
    return LiveResult(sent, time.perf_counter() - started)


__all__ = ["live", "LiveResult", "live_keys"]
