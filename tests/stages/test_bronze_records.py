"""Decoded MBO records -> bronze.mbo rows (pure numpy + pyarrow, no Spark)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from mbolake import schemas
from mbolake.core.products import PRODUCTS, instrument_type_of
from mbolake.io import dbn
from mbolake.stages.bronze_records import FileContext, order_id_unsigned, to_bronze_table

INGEST_TIME = 1_762_000_000_123_456_789
SOURCE = "raw-dbn/ES/FUT/20201228/test_data.mbo.v3.dbn.zst"


@pytest.fixture(scope="module")
def fixture(dbn_fixtures):
    return dbn.read_mbo(dbn_fixtures / "test_data.mbo.v3.dbn.zst")


def ctx_for(header, product="ES") -> FileContext:
    return FileContext(header, PRODUCTS[product], SOURCE, "batch-42", INGEST_TIME)


def with_mappings(header: dbn.DbnHeader, extra: dict[int, str]) -> dbn.DbnHeader:
    instruments = dict(header.instruments)
    for iid, symbol in extra.items():
        instruments[iid] = [dbn.SymbolInterval(dt.date(2020, 12, 28), dt.date(2020, 12, 29), symbol)]
    return dataclasses.replace(header, instruments=instruments)


def test_every_contract_column_with_its_type(fixture):
    header, records = fixture
    table = to_bronze_table(records, ctx_for(header), 0)
    schemas.check_schema(schemas.BRONZE_MBO, table.schema)
    assert table.column_names == schemas.BRONZE_MBO.schema.names
    for field in schemas.BRONZE_MBO.schema:
        got = table.schema.field(field.name).type
        logical = got.value_type if pa.types.is_dictionary(got) else got
        assert logical == field.type, field.name
    assert table.num_rows == 2


def test_values_of_the_fixture(fixture):
    header, records = fixture
    rows = to_bronze_table(records, ctx_for(header), 0).to_pylist()
    first = rows[0]
    assert first["ts_recv"] == 1609160400000704060
    assert first["ts_event"] == 1609160400000429831
    assert first["ts_in_delta"] == 22993
    assert first["rtype"] == 0xA0
    assert first["publisher_id"] == 1
    assert first["instrument_id"] == 5482
    assert first["channel_id"] == 0
    assert first["action"] == "C" and first["side"] == "A"
    assert first["price"] == 3722750000000
    assert first["size"] == 1
    assert first["order_id"] == 647784973705
    assert first["flags"] == 128
    assert first["sequence"] == 1170352
    assert first["venue"] == "GLBX.MDP3"
    assert first["symbol"] == "ESH1"
    assert first["instrument_type"] == "FUT"
    assert first["underlier"] == "ES"
    assert first["contract_id"] == "GLBX.MDP3:ESH1"
    assert first["session_date"] == dt.date(2020, 12, 28)
    assert first["ingest_time"] == INGEST_TIME
    assert first["source_file"] == SOURCE
    assert first["ingest_batch_id"] == "batch-42"
    assert [r["price"] for r in rows] == [3722750000000, 3723000000000]
    assert [r["sequence"] for r in rows] == [1170352, 1170353]


def test_undefined_price_is_null_and_others_are_kept(fixture):
    header, records = fixture
    recs = records.copy()
    recs["price"][1] = dbn.UNDEF_PRICE
    price = to_bronze_table(recs, ctx_for(header), 0).column("price")
    assert price.to_pylist() == [3722750000000, None]
    assert price.null_count == 1


def test_record_index_is_offset_plus_position(fixture):
    header, records = fixture
    recs = np.tile(records, 5)
    table = to_bronze_table(recs, ctx_for(header), 1_000_000)
    assert table.column("record_index").to_pylist() == list(range(1_000_000, 1_000_010))


def test_session_date_follows_the_cme_calendar_but_symbol_the_utc_day(fixture):
    header, records = fixture
    recs = records.copy()
    # 2020-12-28 23:30 UTC is 18:30 New York: the session of 2020-12-29, but the
    # symbology interval (UTC dates) is still the 28th's.
    recs["ts_recv"][1] = int(dt.datetime(2020, 12, 28, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    table = to_bronze_table(recs, ctx_for(header), 0)
    assert table.column("session_date").to_pylist() == [dt.date(2020, 12, 28), dt.date(2020, 12, 29)]
    assert table.column("symbol").to_pylist() == ["ESH1", "ESH1"]


def test_equity_product_uses_the_calendar_date(fixture):
    header, records = fixture
    recs = records.copy()
    recs["ts_recv"][1] = int(dt.datetime(2020, 12, 28, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    table = to_bronze_table(recs, ctx_for(header, "TSLA"), 0)
    assert table.column("session_date").to_pylist() == [dt.date(2020, 12, 28), dt.date(2020, 12, 28)]
    assert table.column("instrument_type").to_pylist() == ["STK", "STK"]
    assert table.column("underlier").to_pylist() == ["TSLA", "TSLA"]


def test_spread_and_outright_instrument_types(fixture):
    header, records = fixture
    hdr = with_mappings(header, {9001: "ESH1-ESM1", 9002: "ESH1 C3700"})
    recs = np.tile(records, 2).copy()
    recs["instrument_id"] = [5482, 9001, 9002, 5482]
    table = to_bronze_table(recs, ctx_for(hdr), 0)
    assert table.column("symbol").to_pylist() == ["ESH1", "ESH1-ESM1", "ESH1 C3700", "ESH1"]
    assert table.column("instrument_type").to_pylist() == ["FUT", "SPREAD", "OPT", "FUT"]
    assert table.column("contract_id").to_pylist() == [
        "GLBX.MDP3:ESH1",
        "GLBX.MDP3:ESH1-ESM1",
        "GLBX.MDP3:ESH1 C3700",
        "GLBX.MDP3:ESH1",
    ]
    assert table.column("instrument_id").to_pylist() == [5482, 9001, 9002, 5482]


def test_instrument_type_of():
    assert instrument_type_of("ESZ5", "FUT") == "FUT"
    assert instrument_type_of("ESZ5-ESH6", "FUT") == "SPREAD"
    assert instrument_type_of("ESZ5 C5000", "FUT") == "OPT"
    assert instrument_type_of("TSLA", "STK") == "STK"
    assert instrument_type_of(None, "STK") == "STK"


def test_missing_symbology_names_the_instrument(fixture):
    header, records = fixture
    recs = records.copy()
    recs["instrument_id"][1] = 4242
    with pytest.raises(ValueError, match="no symbology mapping for instrument_id 4242"):
        to_bronze_table(recs, ctx_for(header), 0)


def test_order_id_unsigned():
    signed = np.array([-1, -(2**63), 5], dtype=np.int64)
    assert [int(x) for x in order_id_unsigned(signed)] == [2**64 - 1, 2**63, 5]


# --- check_schema -------------------------------------------------------------------------


@pytest.fixture
def good_table(fixture):
    header, records = fixture
    return to_bronze_table(records, ctx_for(header), 0)


def test_check_schema_missing_column(good_table):
    with pytest.raises(schemas.SchemaMismatch) as info:
        schemas.check_schema(schemas.BRONZE_MBO, good_table.drop_columns(["venue", "sequence"]).schema)
    assert str(info.value) == "bronze.mbo: missing column(s) sequence, venue"


def test_check_schema_extra_column(good_table):
    table = good_table.append_column("spare", pa.array([1, 2], type=pa.int64()))
    with pytest.raises(schemas.SchemaMismatch) as info:
        schemas.check_schema(schemas.BRONZE_MBO, table.schema)
    assert str(info.value) == "bronze.mbo: extra column(s) spare"


def test_check_schema_wrong_type(good_table):
    i = good_table.schema.get_field_index("size")
    table = good_table.set_column(i, "size", good_table.column("size").cast(pa.int32()))
    with pytest.raises(schemas.SchemaMismatch) as info:
        schemas.check_schema(schemas.BRONZE_MBO, table.schema)
    assert str(info.value) == "bronze.mbo: size is int32, expected int64"


def test_check_schema_all_problems_at_once():
    schema = pa.schema([("path", pa.string()), ("bytes", pa.int32()), ("oops", pa.bool_())])
    with pytest.raises(schemas.SchemaMismatch) as info:
        schemas.check_schema(schemas.INGEST_MANIFEST, schema)
    message = str(info.value)
    assert message.startswith("bronze.ingest_manifest: missing column(s) sha256, dbn_version")
    assert "extra column(s) oops" in message
    assert "bytes is int32, expected int64" in message


def test_check_schema_accepts_plain_and_dictionary_strings():
    plain = pa.schema([(f.name, f.type) for f in schemas.QUARANTINE.schema])
    schemas.check_schema(schemas.QUARANTINE, plain)
    encoded = pa.schema(
        [(f.name, pa.dictionary(pa.int32(), f.type) if f.type == pa.string() else f.type) for f in schemas.QUARANTINE.schema]
    )
    schemas.check_schema(schemas.QUARANTINE, encoded)


def test_render_markdown_lists_the_contract():
    md = schemas.render_markdown()
    assert "### `bronze.mbo` — partitioned by session_date, underlier, instrument_type" in md
    assert "| order_id | int64 |" in md
    assert "| session_dates | list<item: date32[day]> |" in md


def test_prefetch_keeps_order_raises_the_producers_error_and_stops_early():
    from mbolake.core.prefetch import prefetch

    assert list(prefetch(range(100), depth=2)) == list(range(100))

    def failing():
        yield 1
        raise RuntimeError("decode failed in chunk 2")

    got = []
    with pytest.raises(RuntimeError, match="chunk 2"):
        for item in prefetch(failing(), depth=2):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        for i in range(10**9):
            produced.append(i)
            yield i

    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()  # the consumer stops: the producer stops within its put timeout
    assert len(produced) <= 3 + 2 + 1
