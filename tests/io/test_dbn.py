"""mbolake.io.dbn against Databento's own test files (DBN v1, v2, v3; zstd and plain)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from mbolake.core.products import PRODUCTS
from mbolake.io import dbn
from mbolake.stages.bronze_records import FileContext, order_id_unsigned, to_bronze_table

MBO_FILES = {
    1: "test_data.mbo.v1.dbn.zst",
    2: "test_data.mbo.v2.dbn.zst",
    3: "test_data.mbo.v3.dbn.zst",
    "3-plain": "test_data.mbo.v3.dbn",
}


@pytest.fixture(scope="module")
def fixtures(dbn_fixtures) -> Path:
    return dbn_fixtures


@pytest.fixture(scope="module")
def v3(fixtures):
    return dbn.read_mbo(fixtures / MBO_FILES[3])


def es_metadata(header: dbn.DbnHeader) -> bytes:
    return dbn.encode_metadata(
        dataset=header.dataset,
        start=header.start,
        end=header.end,
        symbol_intervals={"ESH1": [(dt.date(2020, 12, 28), dt.date(2020, 12, 29), 5482)]},
    )


def tiled(records: np.ndarray, n: int) -> np.ndarray:
    """``n`` records from the fixture's, with increasing ids and times so they do not compress to nothing."""
    out = np.tile(records, -(-n // len(records)))[:n].copy()
    step = np.arange(n, dtype=np.uint64)
    out["order_id"] += step * np.uint64(7919)
    out["ts_recv"] += step * np.uint64(1_013)
    out["ts_event"] += step * np.uint64(997)
    out["sequence"] += step.astype(np.uint32)
    out["size"] = (step % 50 + 1).astype(np.uint32)
    return out


@pytest.mark.parametrize("key", list(MBO_FILES))
def test_read_mbo_exact_values(fixtures, key):
    header, records = dbn.read_mbo(fixtures / MBO_FILES[key])
    assert header.version == (3 if key == "3-plain" else key)
    assert header.compressed == (key != "3-plain")
    assert header.dataset == "GLBX.MDP3"
    assert header.schema == "mbo"
    assert header.start == 1609160400000000000
    assert header.end == 1609200000000000000
    assert header.symbols == ["ESH1"]
    assert header.ts_out is False
    assert header.instruments == {
        5482: [dbn.SymbolInterval(dt.date(2020, 12, 28), dt.date(2020, 12, 29), "ESH1")]
    }
    assert header.symbol_for(5482, dt.date(2020, 12, 28)) == "ESH1"
    assert header.symbol_for(1, dt.date(2020, 12, 28)) is None

    assert records.dtype == dbn.MBO_DTYPE
    assert len(records) == 2
    first = records[0]
    assert int(first["order_id"]) == 647784973705
    assert int(first["price"]) == 3722750000000
    assert int(first["ts_recv"]) == 1609160400000704060
    assert int(first["ts_event"]) == 1609160400000429831
    assert int(first["instrument_id"]) == 5482
    assert int(first["publisher_id"]) == 1
    assert int(first["rtype"]) == dbn.RTYPE_MBO
    assert int(first["length"]) * 4 == 56
    assert int(first["size"]) == 1
    assert int(first["flags"]) == dbn.F_LAST
    assert first["action"] == b"C" and first["side"] == b"A"
    assert int(first["ts_in_delta"]) == 22993
    assert int(first["sequence"]) == 1170352
    assert records["order_id"].tolist() == [647784973705, 647784973631]
    assert records["price"].tolist() == [3722750000000, 3723000000000]
    assert records["ts_recv"].tolist() == [1609160400000704060, 1609160400000711344]
    assert records["sequence"].tolist() == [1170352, 1170353]


def test_all_versions_give_identical_records(fixtures, v3):
    _, reference = v3
    for key, name in MBO_FILES.items():
        _, records = dbn.read_mbo(fixtures / name)
        assert records.tobytes() == reference.tobytes(), key


def test_metadata_bytes_point_at_the_records(fixtures):
    header = dbn.read_header(fixtures / MBO_FILES["3-plain"])
    size = (fixtures / MBO_FILES["3-plain"]).stat().st_size
    assert size - header.metadata_bytes == 2 * dbn.MBO_RECORD_BYTES


def test_mbp10_is_not_mbo(fixtures):
    with pytest.raises(dbn.DbnFormatError) as info:
        dbn.read_mbo(fixtures / "test_data.mbp-10.v3.dbn.zst")
    assert info.value.reason == "not_mbo"
    assert "test_data.mbp-10.v3.dbn.zst" in str(info.value) and "mbp-10" in str(info.value)


def test_definition_is_not_mbo(fixtures):
    with pytest.raises(dbn.DbnFormatError) as info:
        list(dbn.iter_mbo_chunks(fixtures / "test_data.definition.v3.dbn.zst"))
    assert info.value.reason == "not_mbo"


def _reason(path) -> str:
    with pytest.raises(dbn.DbnFormatError) as info:
        dbn.read_mbo(path)
    assert str(path) in str(info.value)
    return info.value.reason


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dbn.zst"
    path.write_bytes(b"")
    assert _reason(path) == "empty"


def test_random_bytes_are_not_dbn(tmp_path):
    path = tmp_path / "noise.dbn"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert _reason(path) == "not_dbn"


def test_short_file_is_not_dbn(tmp_path):
    path = tmp_path / "short.dbn"
    path.write_bytes(b"DBN")
    assert _reason(path) == "not_dbn"


def test_unsupported_version(fixtures, tmp_path):
    data = bytearray((fixtures / MBO_FILES["3-plain"]).read_bytes())
    data[3] = 9
    path = tmp_path / "v9.dbn"
    path.write_bytes(bytes(data))
    assert _reason(path) == "unsupported_version"


def test_zst_truncated_in_the_middle(v3, tmp_path):
    header, records = v3
    big = tiled(records, 200_000)
    path = tmp_path / "big.mbo.dbn.zst"
    assert dbn.write_mbo_file(path, es_metadata(header), [big[:100_000], big[100_000:]]) == 200_000
    # the whole file reads back exactly, in chunks
    _, back = dbn.read_mbo(path)
    assert back.tobytes() == big.tobytes()
    data = path.read_bytes()
    assert len(data) > 10_000
    cut = tmp_path / "cut.mbo.dbn.zst"
    cut.write_bytes(data[: len(data) // 2])
    assert _reason(cut) == "truncated"
    with pytest.raises(dbn.DbnFormatError) as info:
        for _ in dbn.iter_mbo_chunks(cut, chunk_records=1_000):
            pass
    assert info.value.reason == "truncated"


def test_plain_file_cut_mid_record(fixtures, tmp_path):
    data = (fixtures / MBO_FILES["3-plain"]).read_bytes()
    path = tmp_path / "cut.dbn"
    path.write_bytes(data[:-20])  # the second record loses 20 of its 56 bytes
    with pytest.raises(dbn.DbnFormatError) as info:
        dbn.read_mbo(path)
    assert info.value.reason == "truncated"
    assert "36 stray bytes" in str(info.value)


def test_plain_file_cut_in_the_metadata(fixtures, tmp_path):
    data = (fixtures / MBO_FILES["3-plain"]).read_bytes()
    path = tmp_path / "cut.dbn"
    path.write_bytes(data[:100])
    assert _reason(path) == "truncated"


def test_foreign_rtype_is_not_mbo(v3, tmp_path):
    header, records = v3
    bad = tiled(records, 10)
    bad["rtype"][6] = 0x01
    path = tmp_path / "foreign.mbo.dbn"
    dbn.write_mbo_file(path, es_metadata(header), [bad])
    with pytest.raises(dbn.DbnFormatError) as info:
        dbn.read_mbo(path)
    assert info.value.reason == "not_mbo"
    assert "record 6 has rtype 0x01" in str(info.value)


def test_foreign_rtype_position_counts_across_chunks(v3, tmp_path):
    header, records = v3
    bad = tiled(records, 30)
    bad["rtype"][23] = 0x0A
    path = tmp_path / "foreign.mbo.dbn.zst"
    dbn.write_mbo_file(path, es_metadata(header), [bad])
    with pytest.raises(dbn.DbnFormatError, match="record 23 has rtype 0x0a"):
        list(dbn.iter_mbo_chunks(path, chunk_records=7))


def test_chunking_gives_the_same_records(v3, tmp_path):
    header, records = v3
    big = tiled(records, 1_000)
    path = tmp_path / "tiled.mbo.dbn.zst"
    dbn.write_mbo_file(path, es_metadata(header), [big])
    chunks = list(dbn.iter_mbo_chunks(path, chunk_records=7))
    assert [len(c) for _, c in chunks] == [7] * 142 + [6]
    assert np.concatenate([c for _, c in chunks]).tobytes() == big.tobytes()
    assert all(h.version == 3 and h.compressed for h, _ in chunks)
    with pytest.raises(ValueError, match="chunk_records must be positive"):
        next(dbn.iter_mbo_chunks(path, chunk_records=0))


def test_written_file_has_no_partial_left_and_plain_name_is_uncompressed(v3, tmp_path):
    header, records = v3
    path = tmp_path / "sub" / "plain.mbo.dbn"
    dbn.write_mbo_file(path, es_metadata(header), [records])
    assert path.read_bytes()[:4] == b"DBN\x03"
    assert not list(tmp_path.rglob("*.partial"))
    with pytest.raises(TypeError, match="MBO_DTYPE"):
        dbn.write_mbo_file(tmp_path / "x.dbn", es_metadata(header), [np.zeros(3, dtype=np.int64)])


def test_written_file_is_readable_by_databento(v3, tmp_path):
    import databento

    header, records = v3
    big = tiled(records, 5_001)
    meta = dbn.encode_metadata(
        dataset="GLBX.MDP3",
        start=header.start,
        end=header.end,
        symbol_intervals={
            "ESH1": [(dt.date(2020, 12, 28), dt.date(2020, 12, 29), 5482)],
            "ESH1-ESM1": [(dt.date(2020, 12, 28), dt.date(2020, 12, 29), 9001)],
        },
    )
    path = tmp_path / "rt.mbo.dbn.zst"
    dbn.write_mbo_file(path, meta, [big])
    store = databento.DBNStore.from_file(str(path))
    assert store.dataset == "GLBX.MDP3"
    assert str(store.schema) == "mbo"
    assert sorted(store.symbols) == ["ESH1", "ESH1-ESM1"]
    assert store.mappings["ESH1"][0]["symbol"] == "5482"
    assert store.mappings["ESH1-ESM1"][0]["symbol"] == "9001"
    assert store.mappings["ESH1"][0]["start_date"] == dt.date(2020, 12, 28)
    array = store.to_ndarray()
    assert len(array) == 5_001
    assert array["order_id"].tolist() == big["order_id"].tolist()
    assert array["price"].tolist() == big["price"].tolist()
    assert dbn.decode_with_databento(path) == 5_001
    # and our reader sees the same mapping
    ours = dbn.read_header(path)
    assert ours.version == 3
    assert ours.symbol_for(9001, dt.date(2020, 12, 28)) == "ESH1-ESM1"


def test_symbol_for_outside_every_interval_uses_the_nearest():
    header = dbn.DbnHeader(
        path=Path("x"), version=3, compressed=False, dataset="GLBX.MDP3", schema="mbo", start=0, end=None,
        stype_in="raw_symbol", stype_out="instrument_id", ts_out=False, symbols=[], metadata_bytes=0,
        instruments={
            7: [
                dbn.SymbolInterval(dt.date(2025, 11, 3), dt.date(2025, 11, 4), "ESZ5"),
                dbn.SymbolInterval(dt.date(2025, 11, 4), dt.date(2025, 11, 5), "ESZ5-ESH6"),
            ]
        },
    )
    assert header.symbol_for(7, dt.date(2025, 11, 3)) == "ESZ5"
    assert header.symbol_for(7, dt.date(2025, 11, 4)) == "ESZ5-ESH6"
    assert header.symbol_for(7, dt.date(2025, 11, 5)) == "ESZ5-ESH6"  # just past the end
    assert header.symbol_for(7, dt.date(2025, 11, 2)) == "ESZ5"  # just before the start
    assert header.symbol_for(8, dt.date(2025, 11, 3)) is None


def test_order_id_above_2_63_survives_exactly(v3, tmp_path):
    header, records = v3
    big_ids = [2**63, 2**64 - 1, 2**63 + 12345678901, 647784973705]
    recs = np.tile(records, 2).copy()
    recs["order_id"] = np.array(big_ids, dtype=np.uint64)
    path = tmp_path / "big_ids.mbo.dbn.zst"
    dbn.write_mbo_file(path, es_metadata(header), [recs])
    back_header, back = dbn.read_mbo(path)
    assert [int(x) for x in back["order_id"]] == big_ids
    ctx = FileContext(back_header, PRODUCTS["ES"], "raw-dbn/ES/FUT/20201228/big_ids.mbo.dbn.zst", "batch-1", 0)
    table = to_bronze_table(back, ctx, 0)
    stored = table.column("order_id").to_numpy()
    assert stored.dtype == np.int64
    assert stored[0] < 0 and stored[1] == -1  # the same 64 bits in a signed long
    assert [int(x) for x in order_id_unsigned(stored)] == big_ids


def _zstd_frames(data: bytes, cuts: list[int]) -> bytes:
    """``data`` as concatenated zstd frames, one per piece between ``cuts``."""
    import zstandard

    bounds = [0, *cuts, len(data)]
    return b"".join(zstandard.ZstdCompressor(level=3).compress(data[a:b]) for a, b in zip(bounds, bounds[1:]))


def _plain_file_bytes(v3, tmp_path, tiles: int):
    """(records, bytes of an uncompressed DBN file holding them): the fixture tiled ``tiles`` times."""
    header, records = v3
    big = tiled(records, tiles)
    plain = tmp_path / "plain.mbo.dbn"
    dbn.write_mbo_file(plain, es_metadata(header), [big])
    return big, plain.read_bytes()


def test_concatenated_frames_all_read_even_when_small(v3, tmp_path):
    big, data = _plain_file_bytes(v3, tmp_path, 3_000)
    # tiny frames (several inside one read block) and big ones, cut mid-record too
    for cuts in ([10, 200, 201, 5_000], list(range(1_000, len(data), 3_001)), [len(data) // 2]):
        path = tmp_path / "frames.mbo.dbn.zst"
        path.write_bytes(_zstd_frames(data, cuts))
        for chunk_records in (1, 7, 1_000, 1_000_000):
            chunks = [c.copy() for _, c in dbn.iter_mbo_chunks(path, chunk_records=chunk_records)]
            assert np.concatenate(chunks).tobytes() == big.tobytes()


def test_zst_cut_anywhere_inside_a_frame_is_truncated(v3, tmp_path):
    big, data = _plain_file_bytes(v3, tmp_path, 20_000)
    whole = _zstd_frames(data, [len(data) // 3])
    first = len(_zstd_frames(data[: len(data) // 3], []))
    cut = tmp_path / "cut.mbo.dbn.zst"
    for at in (first - 1, first + 10, len(whole) - 1, len(whole) - 300, len(whole) * 3 // 4):
        cut.write_bytes(whole[:at])
        with pytest.raises(dbn.DbnFormatError) as info:
            for _ in dbn.iter_mbo_chunks(cut, chunk_records=4_096):
                pass
        assert info.value.reason == "truncated", at
    # cut exactly between the two frames: a valid zstd stream, but the records stop mid-record
    cut.write_bytes(whole[:first])
    if (len(data) // 3 - len(es_metadata(v3[0]))) % dbn.MBO_RECORD_BYTES:
        assert _reason(cut) == "truncated"


def test_chunks_kept_by_the_caller_are_not_overwritten(v3, tmp_path):
    import queue
    import threading

    header, records = v3
    big = tiled(records, 5_000)
    path = tmp_path / "tiled.mbo.dbn.zst"
    dbn.write_mbo_file(path, es_metadata(header), [big])
    # a prefetching producer (as Bronze does): chunks wait in a queue while later ones decode
    q: queue.Queue = queue.Queue(maxsize=2)

    def produce():
        for _, c in dbn.iter_mbo_chunks(path, chunk_records=300):
            q.put(c)
        q.put(None)

    threading.Thread(target=produce, daemon=True).start()
    kept, views = [], []
    while (c := q.get()) is not None:
        kept.append(c[["order_id", "price"]])  # a multi-field view: still refers to the chunk's buffer
        views.append(c["ts_recv"])  # a field view of the chunk
        del c
    assert np.concatenate([k["order_id"] for k in kept]).tolist() == big["order_id"].tolist()
    assert np.concatenate(views).tolist() == big["ts_recv"].tolist()


def test_chunk_buffers_are_reused_when_dropped(v3, tmp_path):
    header, records = v3
    big = tiled(records, 5_000)
    path = tmp_path / "tiled.mbo.dbn.zst"
    dbn.write_mbo_file(path, es_metadata(header), [big])
    bases, total = set(), []
    for _, c in dbn.iter_mbo_chunks(path, chunk_records=300):
        assert not c.flags.writeable
        bases.add(c.__array_interface__["data"][0])
        total.append(c["order_id"].copy())
    assert np.concatenate(total).tolist() == big["order_id"].tolist()
    assert len(bases) <= 2  # the chunk the loop holds and the one being decoded
