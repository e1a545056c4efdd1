"""Databento DBN files: metadata, MBO records as numpy arrays, and writing.

The MBO record layout (56 bytes) is identical in DBN versions 1, 2 and 3, so the
record body is decoded here with one numpy dtype, chunk by chunk, without per-record
Python objects. The metadata header (which differs between versions) is decoded by
Databento's own ``databento_dbn`` decoder.
"""
from __future__ import annotations

import datetime as dt
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import databento_dbn
import numpy as np
import zstandard

from ..core.constants import (  # noqa: F401 (re-exported)
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_MBP,
    F_SNAPSHOT,
    F_TOB,
    MBO_DTYPE,
    MBO_RECORD_BYTES,
    RTYPE_MBO,
    UNDEF_PRICE,
)

PUBLISHER_DATASETS = {1: "GLBX.MDP3", 2: "XNAS.ITCH"}

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class DbnFormatError(ValueError):
    """A DBN file that cannot be read as MBO; the message names the file and the fault.

    ``reason`` is a short category for the quarantine: empty, not_dbn, truncated,
    corrupt, not_mbo or unsupported_version.
    """

    def __init__(self, message: str, reason: str = "corrupt"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SymbolInterval:
    start_date: dt.date
    end_date: dt.date  # exclusive
    raw_symbol: str


@dataclass
class DbnHeader:
    path: Path
    version: int
    compressed: bool
    dataset: str
    schema: str | None
    start: int
    end: int | None
    stype_in: str | None
    stype_out: str
    ts_out: bool
    symbols: list[str]
    metadata_bytes: int  # prefix + metadata, i.e. where the records start
    # instrument_id -> intervals of the raw symbol it stood for
    instruments: dict[int, list[SymbolInterval]] = field(default_factory=dict)

    def symbol_for(self, instrument_id: int, on_date: dt.date) -> str | None:
        for interval in self.instruments.get(instrument_id, ()):
            if interval.start_date <= on_date < interval.end_date:
                return interval.raw_symbol
        intervals = self.instruments.get(instrument_id)
        # Outside every interval (e.g. a record stamped just past the file's end date):
        # the nearest interval's symbol is the one the venue used (intervals are sorted).
        if not intervals:
            return None
        earlier = [iv for iv in intervals if iv.start_date <= on_date]
        return (earlier[-1] if earlier else intervals[0]).raw_symbol


class _ZstdReader:
    """Decompresses a zstd file on ``read(n)`` / ``readinto(buffer)``; a stream that ends
    inside a frame is an error.

    (zstandard's own stream readers return a short read silently on a truncated file, so
    the frames are decoded with ``decompressobj``, whose ``eof`` tells a finished frame.)
    ``readinto`` copies each decompressed piece once, straight into the caller's buffer.
    """

    BLOCK = 1 << 17  # compressed bytes per step: bounds the memory held beyond a read

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = memoryview(b"")  # decompressed, not yet handed out
        self._input_done = False

    def _feed(self) -> None:
        if self._dobj.eof and self._dobj.unused_data:
            # a further frame follows in bytes already read (concatenated frames are valid zstd)
            block = self._dobj.unused_data
            self._dobj = self._dctx.decompressobj()
        else:
            block = self._raw.read(self.BLOCK)
            if not block:
                self._input_done = True
                if not self._dobj.eof:
                    raise zstandard.ZstdError("the compressed stream ends inside a frame (truncated file)")
                return
            if self._dobj.eof:  # a further frame starts with this block
                self._dobj = self._dctx.decompressobj()
        self._pending = memoryview(self._dobj.decompress(block))

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` (writable, bytes-like); fewer bytes only at the end of the stream."""
        with memoryview(buffer) as view, view.cast("B") as out:
            n, got = len(out), 0
            while got < n:
                if not self._pending:
                    if self._input_done:
                        break
                    self._feed()
                    continue
                k = min(n - got, len(self._pending))
                out[got : got + k] = self._pending[:k]
                self._pending = self._pending[k:]
                got += k
            return got

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        got = self.readinto(buf)
        del buf[got:]
        return bytes(buf)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_decompressed(path: Path) -> BinaryIO:
    """A binary stream of the uncompressed bytes; zstd is detected by magic, not name."""
    raw = open(path, "rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic == ZSTD_MAGIC:
        return _ZstdReader(raw)  # type: ignore[return-value]
    return raw


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _parse_header(path: Path, stream: BinaryIO) -> DbnHeader:
    try:
        prefix = _read_exact(stream, 8)
    except zstandard.ZstdError as exc:
        raise DbnFormatError(f"{path}: corrupt zstd stream in the header ({exc})", "corrupt") from exc
    if len(prefix) == 0:
        raise DbnFormatError(f"{path}: empty file", "empty")
    if len(prefix) < 8 or prefix[:3] != b"DBN":
        raise DbnFormatError(f"{path}: not a DBN file (bad magic {prefix[:3]!r})", "not_dbn")
    version = prefix[3]
    if version not in (1, 2, 3):
        raise DbnFormatError(f"{path}: unsupported DBN version {version}", "unsupported_version")
    (meta_len,) = struct.unpack("<I", prefix[4:8])
    try:
        meta = _read_exact(stream, meta_len)
    except zstandard.ZstdError as exc:
        raise DbnFormatError(f"{path}: corrupt zstd stream in the metadata ({exc})") from exc
    if len(meta) < meta_len:
        raise DbnFormatError(f"{path}: truncated metadata ({len(meta)} of {meta_len} bytes)", "truncated")
    decoder = databento_dbn.DBNDecoder(upgrade_policy=databento_dbn.VersionUpgradePolicy.AS_IS)
    decoder.write(prefix + meta)
    try:
        metadata = decoder.decode()[0]
    except Exception as exc:  # the decoder raises its own error types
        raise DbnFormatError(f"{path}: metadata does not decode ({exc})", "corrupt") from exc
    instruments: dict[int, list[SymbolInterval]] = {}
    for raw_symbol, intervals in metadata.mappings.items():
        for iv in intervals:
            if not str(iv["symbol"]).isdigit():
                continue
            instruments.setdefault(int(iv["symbol"]), []).append(
                SymbolInterval(iv["start_date"], iv["end_date"], raw_symbol)
            )
    for ivs in instruments.values():
        ivs.sort(key=lambda iv: iv.start_date)
    schema = str(metadata.schema) if metadata.schema is not None else None
    return DbnHeader(
        path=path,
        version=version,
        compressed=False,
        dataset=str(metadata.dataset),
        schema=schema.lower().replace("schema.", "") if schema else None,
        start=int(metadata.start),
        end=int(metadata.end) if metadata.end is not None else None,
        stype_in=str(metadata.stype_in) if metadata.stype_in is not None else None,
        stype_out=str(metadata.stype_out),
        ts_out=bool(metadata.ts_out),
        symbols=list(metadata.symbols),
        metadata_bytes=8 + meta_len,
        instruments=instruments,
    )


def read_header(path: str | Path) -> DbnHeader:
    path = Path(path)
    with open_decompressed(path) as stream:
        header = _parse_header(path, stream)
    with open(path, "rb") as raw:
        header.compressed = raw.read(4) == ZSTD_MAGIC
    return header


def iter_mbo_chunks(path: str | Path, chunk_records: int = 1_000_000) -> Iterator[tuple[DbnHeader, np.ndarray]]:
    """Yield ``(header, records)`` with at most ``chunk_records`` MBO records per chunk.

    Memory stays bounded by the chunk size. Raises ``DbnFormatError`` naming the file for
    a non-MBO schema, a foreign record type, a truncated record or a corrupt stream.
    """
    path = Path(path)
    if chunk_records <= 0:
        raise ValueError(f"chunk_records must be positive, got {chunk_records}")
    header = read_header(path)
    if header.schema != "mbo":
        raise DbnFormatError(f"{path}: schema is {header.schema!r}, expected 'mbo'", "not_mbo")
    record_bytes = MBO_RECORD_BYTES + (8 if header.ts_out else 0)
    dtype = MBO_DTYPE if not header.ts_out else np.dtype(MBO_DTYPE.descr + [("ts_out", "<u8")])
    pool = _BufferPool(chunk_records * record_bytes)
    with open_decompressed(path) as stream:
        _read_exact(stream, header.metadata_bytes)
        offset = 0
        while True:
            buf = pool.take()
            try:
                got = _readinto_exact(stream, buf)
            except zstandard.ZstdError as exc:
                reason = "truncated" if "truncated" in str(exc) else "corrupt"
                raise DbnFormatError(f"{path}: corrupt zstd stream after record {offset} ({exc})", reason) from exc
            if not got:
                return
            if got % record_bytes:
                raise DbnFormatError(
                    f"{path}: truncated record at record {offset + got // record_bytes} "
                    f"({got % record_bytes} stray bytes)",
                    "truncated",
                )
            _check_records(path, buf[:got], offset, record_bytes)
            records = buf[:got].view(dtype)
            records.flags.writeable = False
            del buf
            yield header, records
            offset += len(records)
            del records  # so that the buffer can be reused once the caller drops the chunk


class _BufferPool:
    """Chunk buffers of ``nbytes``, reused once nothing refers to them any more.

    A chunk handed out is a view of its buffer (numpy views, and arrays made from them,
    keep a reference to the owning array), so a buffer whose reference count is back to
    the pool's own is unused by anyone and can be filled again; while a caller holds a
    chunk (a prefetch queue, a list of chunks) a new buffer is taken instead. Reuse spares
    the page faults of fresh memory on every chunk; at most ``keep`` buffers are pooled.
    """

    def __init__(self, nbytes: int, keep: int = 4):
        self.nbytes = nbytes
        self.keep = keep
        self._buffers: list[np.ndarray] = []

    def take(self) -> np.ndarray:
        for i in range(len(self._buffers)):
            if _refcount_at(self._buffers, i) == _UNREFERENCED:
                return self._buffers[i]
        buf = np.empty(self.nbytes, np.uint8)
        if len(self._buffers) < self.keep:
            self._buffers.append(buf)
        return buf


def _refcount_at(items: list, i: int) -> int:
    return sys.getrefcount(items[i])


# the count of an object referred to only by its list (the list's reference plus whatever
# this interpreter counts for the call), measured rather than assumed
_UNREFERENCED = _refcount_at([np.empty(1, np.uint8)], 0)


def _readinto_exact(stream: BinaryIO, buf: np.ndarray) -> int:
    """Fill ``buf`` from ``stream``; fewer bytes only at the end of the stream."""
    got = 0
    with memoryview(buf) as view:
        while got < len(view):
            part = stream.readinto(view[got:])
            if not part:
                break
            got += part
    return got


def _check_records(path: Path, raw: np.ndarray, offset: int, record_bytes: int) -> None:
    """``raw``: the chunk's bytes (uint8); every record must start with MBO length + rtype."""
    # bytes 0-1 of each record: length in 32-bit words, then rtype (one strided pass)
    head = raw.reshape(-1, record_bytes)[:, :2].view("<u2")[:, 0]
    bad = np.flatnonzero(head != ((record_bytes // 4) | (RTYPE_MBO << 8)))
    if bad.size:
        i = int(bad[0])
        length, rtype = int(head[i] & 0xFF), int(head[i] >> 8)
        raise DbnFormatError(
            f"{path}: record {offset + i} has rtype 0x{rtype:02x} and length "
            f"{length * 4} bytes; expected MBO (rtype 0xa0, {record_bytes} bytes)",
            "not_mbo",
        )


def read_mbo(path: str | Path) -> tuple[DbnHeader, np.ndarray]:
    """The whole file at once (small files and tests)."""
    header = read_header(path)
    chunks = [records for _, records in iter_mbo_chunks(path)]
    records = np.concatenate(chunks) if chunks else np.empty(0, dtype=MBO_DTYPE)
    return header, records


def encode_metadata(
    *,
    dataset: str,
    start: int,
    end: int,
    symbol_intervals: dict[str, list[tuple[dt.date, dt.date, int]]],
) -> bytes:
    """DBN v3 metadata for an MBO file with raw_symbol -> instrument_id mappings."""

    @dataclass
    class _Interval:
        start_date: dt.date
        end_date: dt.date
        symbol: str

    @dataclass
    class _Mapping:
        raw_symbol: str
        intervals: list

    mappings = [
        _Mapping(raw, [_Interval(s, e, str(iid)) for s, e, iid in ivs]) for raw, ivs in symbol_intervals.items()
    ]
    metadata = databento_dbn.Metadata(
        dataset=dataset,
        start=int(start),
        end=int(end),
        stype_in=databento_dbn.SType.RAW_SYMBOL,
        stype_out=databento_dbn.SType.INSTRUMENT_ID,
        schema=databento_dbn.Schema.MBO,
        symbols=sorted(symbol_intervals),
        partial=[],
        not_found=[],
        mappings=mappings,
        version=3,
    )
    return bytes(metadata)


def write_mbo_file(path: str | Path, metadata: bytes, chunks: Iterator[np.ndarray] | list[np.ndarray], level: int = 3) -> int:
    """Write metadata + MBO record chunks; zstd-compressed when the name ends in .zst.

    Written to a temporary name and renamed, so a reader never sees a partial file.
    Returns the number of records written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    with open(tmp, "wb") as raw:
        sink: BinaryIO = raw
        writer = None
        if path.name.endswith(".zst"):
            writer = zstandard.ZstdCompressor(level=level, threads=-1).stream_writer(raw, closefd=False)
            sink = writer
        sink.write(metadata)
        for chunk in chunks:
            if chunk.dtype != MBO_DTYPE:
                raise TypeError(f"records must have dtype MBO_DTYPE, got {chunk.dtype}")
            sink.write(np.ascontiguousarray(chunk).tobytes())
            count += len(chunk)
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return count


def decode_with_databento(path: str | Path) -> int:
    """Count records with Databento's own decoder (the reference for tests and benchmarks)."""
    import databento

    store = databento.DBNStore.from_file(str(path))
    n = 0
    for chunk in store.to_ndarray(count=1_000_000):
        n += len(chunk)
    return n


__all__ = [
    "MBO_DTYPE",
    "UNDEF_PRICE",
    "DbnFormatError",
    "DbnHeader",
    "SymbolInterval",
    "iter_mbo_chunks",
    "read_header",
    "read_mbo",
    "encode_metadata",
    "write_mbo_file",
    "decode_with_databento",

]
