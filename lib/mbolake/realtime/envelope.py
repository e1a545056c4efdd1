"""The raw MBO event envelope published on ``mbo_raw`` (the blueprint's message), as JSON.

Top level: ``event_key`` (deterministic: the same record replayed gets the same key, so streaming
Bronze lands it once), ``event_time`` (ts_event, ns), ``ingest_time`` (ns, when the feed read it),
``venue``, ``symbol``, ``instrument_type``, ``underlier``, ``contract_id``, ``action``,
``order_id``, ``side``, ``price`` (fixed 1e-9, null when undefined), ``size``, ``sequence``;
``payload`` keeps every other field of ``bronze.mbo`` (ts_recv, ts_in_delta, rtype,
publisher_id, instrument_id, channel_id, flags, record_index, session_date, source_file), so
Bronze from the stream equals Bronze from the file.

The rows come from :func:`mbolake.stages.bronze_records.to_bronze_table` (file replay) or the same
columns built from live records: one conversion, shared with batch Bronze.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

TOP_FIELDS = ("event_key", "event_time", "ingest_time", "venue", "symbol", "instrument_type", "underlier",
              "contract_id", "action", "order_id", "side", "price", "size", "sequence", "payload")
PAYLOAD_FIELDS = ("ts_recv", "ts_in_delta", "rtype", "publisher_id", "instrument_id", "channel_id", "flags",
                  "record_index", "session_date", "source_file")
_STRINGS = ("venue", "symbol", "instrument_type", "underlier", "contract_id", "action", "side", "source_file")
# One %-format per message: (name, JSON-encoded value) in this order.
_ORDER = ("event_key", "ts_event", "ingest_time", "venue", "symbol", "instrument_type", "underlier", "contract_id",
          "action", "order_id", "side", "price", "size", "sequence", "ts_recv", "ts_in_delta", "rtype",
          "publisher_id", "instrument_id", "channel_id", "flags", "record_index", "session_date", "source_file")
_TEMPLATE = (
    '{"event_key":%s,"event_time":%s,"ingest_time":%s,"venue":%s,"symbol":%s,"instrument_type":%s,"underlier":%s,'
    '"contract_id":%s,"action":%s,"order_id":%s,"side":%s,"price":%s,"size":%s,"sequence":%s,'
    '"payload":{"ts_recv":%s,"ts_in_delta":%s,"rtype":%s,"publisher_id":%s,"instrument_id":%s,"channel_id":%s,'
    '"flags":%s,"record_index":%s,"session_date":%s,"source_file":%s}}'
)


def event_key(key_prefix: str, record_index: int) -> str:
    """``<source id>:<record index>``: the source id is the file's SHA-256 (first 16 hex) for a
    replay, so a file replayed again, from any path, produces the same keys."""
    return f"{key_prefix}:{record_index}"


def _json_strings(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """A string column as JSON literals, encoding each distinct value once."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    values = [json.dumps(v) for v in array.dictionary.to_pylist()]
    return [values[i] for i in array.indices.to_numpy(zero_copy_only=False)]


def _ints(table: pa.Table, name: str) -> list[int]:
    return table.column(name).to_numpy().tolist()


def encode(table: pa.Table, key_prefix: str, keys: list[str] | None = None) -> list[tuple[bytes, bytes]]:
    """``bronze.mbo`` rows -> ``(message key, JSON value)`` pairs; the key is the contract id.

    ``keys`` (live records) replaces the ``<key_prefix>:<record_index>`` event keys."""
    n = table.num_rows
    if n == 0:
        return []
    cols = {name: _json_strings(table.column(name)) for name in _STRINGS}
    ints = {name: _ints(table, name) for name in ("ts_event", "ingest_time", "order_id", "size", "sequence", "ts_recv",
                                                  "ts_in_delta", "rtype", "publisher_id", "instrument_id",
                                                  "channel_id", "flags", "record_index")}
    price = table.column("price").combine_chunks()
    prices = np.where(price.is_null().to_numpy(zero_copy_only=False), "null",
                      price.fill_null(0).to_numpy().astype(str)).tolist()
    dates = table.column("session_date").cast(pa.string()).to_pylist()
    contracts = [c.encode() for c in table.column("contract_id").to_pylist()]
    if keys is None:
        keys = [event_key(key_prefix, i) for i in ints["record_index"]]
    cols["event_key"] = ['"%s"' % k for k in keys]
    cols["price"] = prices
    cols["session_date"] = ['"%s"' % d for d in dates]
    columns = [cols[name] if name in cols else ints[name] for name in _ORDER]
    values = [(_TEMPLATE % row).encode() for row in zip(*columns)]
    return list(zip(contracts, values))
