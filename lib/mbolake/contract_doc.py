"""``docs/data-contract.md``, generated from the code that declares the contract.

The tables come from :mod:`mbolake.schemas`, the bus frame from :mod:`mbolake.realtime.envelope`
(with the Spark parse of :mod:`mbolake.realtime.rt_bronze` and the topics of
:mod:`mbolake.realtime.bus`), the product rules from :mod:`mbolake.core.products` and the record
codes from :mod:`mbolake.core.constants`. Only the sentences between them are written here.

Regenerate with ``make contract`` (``python -m mbolake.contract_doc docs/data-contract.md``);
``tests/test_data_contract_doc.py`` fails when the committed file differs from :func:`render`.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pyarrow as pa

from .core import constants
from .core.products import (
    PRODUCTS,
    QUARTERLY_MONTH_CODES,
    ROLL_DAYS_BEFORE_EXPIRY,
    front_month_contract,
    front_month_symbol,
    instrument_type_of,
    third_friday,
)
from .io.landing import NAMING_RULE, day_folder
from .realtime import envelope
from .realtime.bus import TOPICS
from .realtime.rt_bronze import ENVELOPE_COLUMNS, ENVELOPE_DDL, OPTIONAL
from .schemas import BRONZE_MBO, STREAM_BOOKKEEPING, STREAM_TABLES, TABLES, Table, render_markdown
from .stages.base import SilverFilterFirst4Hours
from .stages.silver_normalize import PHASES, SilverNormalizeMBO, _phase_minutes
from .stages.training_snapshot import DATA_FILE, MANIFEST_FILE

DOC_PATH = "docs/data-contract.md"
REGENERATE = "make contract"

# What each topic's messages carry. A topic added to bus.TOPICS without a line here fails the
# render (and so the doc's test) until it is described.
TOPIC_MESSAGES = {
    "mbo_raw": ("`contract_id`", "one raw event envelope per MBO record (below)"),
    "features_gold": ("`episode_id` (vectors), `contract_id` (series)",
                      "a row of `gold.setup_vectors_stream` with `\"kind\": \"setup_vector\"`, or of "
                      "`gold.feature_series_stream` with `\"kind\": \"feature_series\"`; at least once"),
    "inference_scores": ("`episode_id`", "a row of `gold.inference_scores_stream`; at least once"),
}
# The years of the roll calendar shown (a fixed range, so the file does not change with the date).
ROLL_YEARS = (2025, 2026)


def _heading(table: Table, level: str = "###") -> str:
    part = f" — partitioned by {', '.join(table.partition_by)}" if table.partition_by else ""
    return f"{level} `{table.name}`{part}"


def _columns(fields) -> list[str]:
    return ["| column | type |", "|---|---|", *(f"| {name} | {dtype} |" for name, dtype in fields)]


def _hm(hour_minute: tuple[int, int] | int) -> str:
    if isinstance(hour_minute, int):
        hour_minute = divmod(hour_minute, 60)
    return f"{hour_minute[0]:02d}:{hour_minute[1]:02d}"


def header() -> str:
    return f"""# Data contract

> Generated from the code by `{REGENERATE}` (`python -m mbolake.contract_doc {DOC_PATH}`). Do not
> edit it by hand: `tests/test_data_contract_doc.py` fails when it differs from what the code
> declares. The specification it implements is `../shared/spec/DATA_CONTRACT.md`.

Contents: [tables](#tables), [streaming tables](#streaming-tables),
[the bus and its frame layout](#the-bus-topics-and-frame-layout), [products](#products),
[record codes](#record-codes), [files](#files-landing-zone-and-training-snapshots).
"""


def tables_section() -> str:
    return f"""## Tables

Every table is Delta under the profile's lake root, registered as `<layer>.<name>`;
writes are checked against these schemas (`lib/mbolake/schemas.py`) and fail naming the column
at fault. Timestamps are int64 nanoseconds UTC; Bronze prices are fixed-point int64
({constants.FIXED_SCALE:,} units per point), Silver converts them to float points once.

{render_markdown().strip()}
"""


def stream_section() -> str:
    bookkeeping = ", ".join(f"`{name}`" for name, _ in STREAM_BOOKKEEPING)
    lines = ["## Streaming tables", "",
             "Written by the streaming jobs (`mbolake stream start <job>`), checkpoints under "
             "`lake/checkpoints/<query>/`. A twin has its batch table's columns, equal value for value "
             f"(`data_version` aside), then the stream bookkeeping columns {bookkeeping}: the micro-batch "
             "that wrote the row and when it was committed (ns; latency = `stream_time` - event time).", ""]
    for table in STREAM_TABLES.values():
        lines += [_heading(table), "", table.description, ""]
        batch = TABLES.get(table.name.removesuffix("_stream"))
        if batch is not None and list(table.schema)[:len(batch.schema)] == list(batch.schema):
            extra = list(table.schema)[len(batch.schema):]
            lines += [f"The {len(batch.schema)} columns of `{batch.name}`, then:", ""]
            lines += _columns((f.name, f.type) for f in extra)
        else:
            lines += _columns((f.name, f.type) for f in table.schema)
        lines.append("")
    return "\n".join(lines)


def _example_row() -> pa.Table:
    """One ``bronze.mbo`` row as a replayed file gives it (an ES add on the bid)."""
    values = {
        "ts_recv": 1762180200000123456, "ts_event": 1762180200000001234, "ts_in_delta": 17_422, "rtype": 160,
        "publisher_id": 1, "instrument_id": 42_140_864, "channel_id": 0, "action": "A", "side": "B",
        "price": 6_850_250_000_000, "size": 3, "order_id": 6_407_981_345_612, "flags": 128,
        "sequence": 97_113_202, "record_index": 1_204, "venue": "GLBX.MDP3", "symbol": "ESZ5",
        "instrument_type": "FUT", "underlier": "ES", "contract_id": "GLBX.MDP3:ESZ5",
        "session_date": dt.date(2025, 11, 3), "ingest_time": 1762181000000000000,
        "source_file": "raw-dbn/ES/FUT/20251103/glbx-mdp3-20251103.mbo.dbn.zst", "ingest_batch_id": "replay",
    }
    return pa.Table.from_pylist([values], schema=BRONZE_MBO.schema)


def frame_section() -> str:
    topics = ["| topic | partitions | message key | message value |", "|---|---|---|---|"]
    for topic, partitions in TOPICS.items():
        key, value = TOPIC_MESSAGES[topic]
        topics.append(f"| `{topic}` | {partitions} | {key} | {value} |")
    column_of = {field.removeprefix("m."): column for column, field in ENVELOPE_COLUMNS.items()}
    types = {f.name: f.type for f in BRONZE_MBO.schema} | {"event_key": pa.string()}
    fields = ["| field | `bronze.mbo` column | type | may be null |", "|---|---|---|---|"]
    for name in envelope.TOP_FIELDS:
        if name == "payload":
            continue
        column = column_of[name]
        fields.append(f"| `{name}` | {column} | {types[column]} | {'yes' if column in OPTIONAL else 'no'} |")
    for name in envelope.PAYLOAD_FIELDS:
        column = column_of[f"payload.{name}"]
        fields.append(f"| `payload.{name}` | {column} | {types[column]} | {'yes' if column in OPTIONAL else 'no'} |")
    prefix = "3f5c0e2a9b1d4e67"
    [(key, value)] = envelope.encode(_example_row(), prefix)
    example = json.dumps(json.loads(value), indent=2)
    return f"""## The bus: topics and frame layout

Topics (`lib/mbolake/realtime/bus.py`; Event Hubs in production). The key keeps one contract's
events in order in one partition.

{chr(10).join(topics)}

### `mbo_raw`: the raw event envelope

One UTF-8 JSON object per MBO record (`lib/mbolake/realtime/envelope.py`), fields in this
order. The message carries no version field: this is the only layout so far. Together the
fields are one `bronze.mbo` row less `ingest_batch_id`, so Bronze from the stream equals Bronze
from the file (`ingest_time`, `source_file` and `ingest_batch_id` aside).

{chr(10).join(fields)}

- `event_key` is deterministic, so streaming Bronze MERGEs each event once: for a file replay
  `<first 16 hex digits of the file's SHA-256>:<record_index>` (the same file replayed from any
  path gives the same keys); for Databento Live `live:` and a BLAKE2b hash of the record's
  {constants.MBO_RECORD_BYTES} bytes.
- `price` is fixed-point ({constants.FIXED_SCALE:,} units per point), `null` for the undefined
  price; `session_date` is ISO text.
- A message that is not an envelope, lacks a field that may not be null, has a field of the
  wrong type, or an action or side outside the codes below goes to `bronze.quarantine_stream`
  with its reason.

The message of the example row (key `{key.decode()}`; on the wire without spaces):

```json
{example}
```

Spark parses it with this schema (`rt_bronze.ENVELOPE_DDL`):

```sql
{ENVELOPE_DDL}
```
"""


def _roll_calendar(underlier: str) -> list[str]:
    product = PRODUCTS[underlier]
    day, end = dt.date(ROLL_YEARS[0], 1, 1), dt.date(ROLL_YEARS[-1], 12, 31)
    spans: list[list] = []
    while day <= end:
        symbol = front_month_symbol(product, day)
        if spans and spans[-1][0] == symbol:
            spans[-1][2] = day
        else:
            spans.append([symbol, day, day])
        day += dt.timedelta(days=1)
    lines = ["| contract | front month from | through | expiry (third Friday) |", "|---|---|---|---|"]
    codes = {code: month for month, code in QUARTERLY_MONTH_CODES.items()}
    for symbol, first, last in spans:
        month = codes[symbol[len(underlier)]]
        year = last.year if last.month <= month else last.year + 1
        lines.append(f"| {symbol} | {first if first.isoformat()[5:] != '01-01' else '…'} "
                     f"| {last if last != end else '…'} | {third_friday(year, month)} |")
    return lines


def products_section() -> str:
    rows = ["| underlier | venue (Databento dataset) | type | tick (points) | tick (fixed) | time zone "
            "| session date | premarket | RTH | post until | model family |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in PRODUCTS.values():
        pm, open_, close, post_end = _phase_minutes(p)
        session = ("the calendar date" if p.session_start_hour == 0
                   else f"from {p.session_start_hour:02d}:00 the day before")
        rows.append(f"| {p.underlier} | {p.venue} | {p.instrument_type} | {p.tick_size} | {p.tick_fixed:,} "
                    f"| {p.timezone} | {session} | {_hm(pm)} | {_hm(open_)}–{_hm(close)} | {_hm(post_end)} "
                    f"| {p.model_id} |")
    window = SilverFilterFirst4Hours()
    futures = [p for p in PRODUCTS.values() if p.instrument_type == "FUT"]
    examples = [(p, dt.date(2025, 11, 3)) for p in PRODUCTS.values()]
    contracts = ", ".join(f"{p.underlier} on {day}: `{front_month_contract(p, day)}`" for p, day in examples)
    symbols = ["ESZ5", "ESZ5-ESH6", "ESZ5 C5000", "TSLA"]
    kinds = ", ".join(f"`{s}` → {instrument_type_of(s, 'FUT' if s.startswith('ES') else 'STK')}" for s in symbols)
    months = ", ".join(f"{code} = {dt.date(2000, m, 1):%B}" for m, code in QUARTERLY_MONTH_CODES.items())
    roll = "\n\n".join(f"The {p.underlier} roll calendar, {ROLL_YEARS[0]}–{ROLL_YEARS[-1]}:\n\n"
                       + "\n".join(_roll_calendar(p.underlier)) for p in futures)
    return f"""## Products

Products are configuration (`lib/mbolake/core/products.py`); a new one is a line there.
Times are local to the product's time zone, DST-safe.

{chr(10).join(rows)}

- **Contract id**: `{{venue}}:{{symbol}}` ({contracts}). The symbol comes from the file's
  symbology. **Instrument type** from the symbol: {kinds}.
- **Session date**: the exchange trading date of each record's `ts_recv` (never `ts_event`:
  snapshot records carry old ones).
- **Session phase** (`silver.mbo_normalized.session_phase`, from `ts_recv`): {' | '.join(PHASES)};
  premarket from the premarket time to the RTH open, post from the RTH close to the post end,
  overnight the rest.
- **Feature window** (`SilverFilterFirst4Hours`): {_hm(window.window_start)} to {_hm(window.window_end)}
  exchange time by default; the bar and approach stages record it in their lineage.
- **Front month** (`front_month_symbol`), a rule that needs no future, so batch and stream agree
  from a session's first record: for futures the nearest quarterly contract ({months}; symbol =
  underlier, month code, last digit of the year) until its roll date, {ROLL_DAYS_BEFORE_EXPIRY}
  days before its third-Friday expiry; from the roll date on, the next one. An equity's only
  symbol is its underlier. The RTH volume dominance is kept as metadata
  (`front_month_dominance`; `roll_contaminated` when below {SilverNormalizeMBO().roll_threshold}).

{roll}
"""


def codes_section() -> str:
    flags = sorted(((name, value) for name, value in vars(constants).items() if name.startswith("F_")),
                   key=lambda item: -item[1])
    actions = ", ".join(f"`{code}` {name}" for code, name in constants.ACTIONS.items())
    sides = ", ".join(f"`{code}` {name}" for code, name in constants.SIDES.items())
    flag_text = ", ".join(f"`{name}` 0x{value:02X}" for name, value in flags)
    return f"""## Record codes

From `lib/mbolake/core/constants.py` (Databento's MBO record, {constants.MBO_RECORD_BYTES} bytes in DBN
versions 1, 2 and 3; record type 0x{constants.RTYPE_MBO:02X}).

- `action`: {actions}.
- `side`: {sides}.
- `flags` (raw bit field): {flag_text}.
- `price`: fixed-point int64, {constants.FIXED_SCALE:,} units per point; Databento's undefined
  price ({constants.UNDEF_PRICE}) is stored as null.
- `order_id`: Databento's u64 kept in a signed int64 with the same 64 bits
  (`mbolake.stages.bronze_records.order_id_unsigned` gives the u64 back).
"""


def files_section() -> str:
    example = day_folder("raw-dbn", "ES", "FUT", dt.date(2025, 11, 3))
    return f"""## Files: landing zone and training snapshots

- **Landing zone**: `raw-dbn/{{underlier}}/{{instrument_type}}/{{yyyymmdd}}/{{file}}`, e.g.
  `{example.as_posix()}/glbx-mdp3-20251103.mbo.dbn.zst`; {NAMING_RULE} (zstd is detected
  by its magic bytes).
- **Training snapshot**: `ml/artifacts/datasets/{{model_id}}/{{run_date}}/` with `{DATA_FILE}`
  (the training view) and `{MANIFEST_FILE}` (row counts, the Delta versions read, a SHA-256 per
  file). A snapshot is immutable: writing to an existing one fails.
"""


def render() -> str:
    """The whole of ``docs/data-contract.md``."""
    parts = [header(), tables_section(), stream_section(), frame_section(), products_section(), codes_section(),
             files_section()]
    return "\n".join(part.strip("\n") + "\n" for part in parts)


def write(path: str | Path = DOC_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m mbolake.contract_doc [PATH]``: write the doc to PATH, or print it."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(f"wrote {write(args[0])}")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
