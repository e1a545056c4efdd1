"""The reference book checks the kernel only if it shares no code with it.

``mbolake.book.reference`` decodes the DBN record bytes itself, builds its own MBP-10 rows and
defines its own constants (flags, the undefined price, record types). Here: it imports
nothing of mbolake; its decoding gives, field for field, what Databento's own decoder
(``databento_dbn``, written in Rust) gives on Databento's real files; its rows have the names
and dtypes of Databento's own mbp-10 file.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import zstandard

from mbolake.book.reference import MBP10_COLUMNS, MboRecord, ReferenceBook, decode_mbo

# all the reference may import: the standard library's basics and numpy (for its output arrays)
ALLOWED_IMPORTS = {"__future__", "collections", "struct", "typing", "numpy"}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def dbn_bytes(path: Path) -> bytes:
    """A DBN file's uncompressed bytes (metadata header, then records)."""
    data = path.read_bytes()
    if data[:4] == ZSTD_MAGIC:
        data = zstandard.ZstdDecompressor().stream_reader(data).read()
    assert data[:3] == b"DBN", path
    return data


def record_part(data: bytes) -> bytes:
    """The records after a DBN metadata header: 'DBN', version byte, u32 length, metadata."""
    return data[8 + int.from_bytes(data[4:8], "little"):]


def databento_records(data: bytes, has_metadata: bool = True) -> list[MboRecord]:
    """The MBO records as Databento's decoder reads them, in the reference's field order."""
    import databento_dbn

    decoder = databento_dbn.DBNDecoder(has_metadata=has_metadata)
    decoder.write(data)
    msgs = decoder.decode()
    if has_metadata:
        assert isinstance(msgs[0], databento_dbn.Metadata)
        msgs = msgs[1:]
    return [MboRecord(length=bytes(m)[0], rtype=m.rtype.value, publisher_id=m.publisher_id,
                      instrument_id=m.instrument_id, ts_event=m.ts_event, order_id=m.order_id,
                      price=m.price, size=m.size, flags=m.flags, channel_id=m.channel_id,
                      action=m.action.value.encode(), side=m.side.value.encode(), ts_recv=m.ts_recv,
                      ts_in_delta=m.ts_in_delta, sequence=m.sequence)
            for m in msgs]


def imported_modules(path: str) -> set[str]:
    """Every module a source file imports (relative imports keep their leading dots)."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_reference_imports_nothing_of_mbolake():
    """No kernel, row or record helper and no shared constant: a bug there cannot pass both."""
    imported = imported_modules(importlib.util.find_spec("mbolake.book.reference").origin)
    assert not [m for m in imported if m.startswith(".") or m.split(".")[0] == "mbolake"], imported
    assert {m.split(".")[0] for m in imported} <= ALLOWED_IMPORTS, imported


@pytest.mark.parametrize("name", ["test_data.mbo.v1.dbn.zst", "test_data.mbo.v2.dbn.zst",
                                  "test_data.mbo.v3.dbn.zst", "test_data.mbo.v3.dbn"])
def test_reference_decodes_real_files_as_databento_does(dbn_fixtures, name):
    data = dbn_bytes(dbn_fixtures / name)
    ours = decode_mbo(record_part(data))
    assert len(ours) == 2
    assert ours == databento_records(data)


def test_reference_refuses_bytes_that_are_not_mbo_records(dbn_fixtures):
    mbp10 = record_part(dbn_bytes(dbn_fixtures / "test_data.mbp-10.v3.dbn.zst"))
    with pytest.raises(ValueError, match="not an MBO record|not MBO"):
        decode_mbo(mbp10)
    with pytest.raises(ValueError, match="not an MBO record"):
        decode_mbo(bytes(56))  # a zero length byte


def test_reference_rows_have_databento_mbp10_names_and_dtypes(dbn_fixtures):
    """The reference's columns are Databento's mbp-10 record fields (but the header's length
    and ts_in_delta), with Databento's dtypes, in Databento's level order."""
    databento = pytest.importorskip("databento")
    theirs = databento.DBNStore.from_file(str(dbn_fixtures / "test_data.mbp-10.v3.dbn.zst")).to_ndarray().dtype
    rows = ReferenceBook().apply(record_part(dbn_bytes(dbn_fixtures / "test_data.mbo.v3.dbn")), every_record=True)
    assert {name: rows[name].dtype for name in rows} == {
        name: theirs[name] for name in theirs.names if name not in ("length", "ts_in_delta")}
    levels = list(theirs.names[theirs.names.index("bid_px_00"):])
    assert [name for name, _ in MBP10_COLUMNS[12:]] == levels


def test_reference_rows_carry_the_real_records(dbn_fixtures):
    """Every-record rows of the real file: header fields straight from Databento's decoding,
    the empty book's levels as undefined price, size 0 and count 0."""
    data = dbn_bytes(dbn_fixtures / "test_data.mbo.v3.dbn")
    theirs = databento_records(data)
    rows = ReferenceBook().apply(record_part(data), every_record=True)
    for name in ("ts_recv", "ts_event", "publisher_id", "instrument_id", "action", "side", "price",
                 "size", "flags", "sequence"):
        assert rows[name].tolist() == [getattr(r, name) for r in theirs], name
    assert rows["rtype"].tolist() == [0x0A, 0x0A] and rows["depth"].tolist() == [0, 0]
    assert rows["bid_px_00"].tolist() == rows["ask_px_09"].tolist() == [2**63 - 1] * 2
    assert rows["bid_sz_00"].tolist() == rows["ask_ct_09"].tolist() == [0, 0]
