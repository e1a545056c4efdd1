"""The landing zone: ``raw-dbn/{underlier}/{instrument_type}/{yyyymmdd}/{file}.dbn[.zst]``."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zstandard

DBN_SUFFIXES = (".dbn", ".dbn.zst")
NAMING_RULE = "a landing file's name must end in .dbn or .dbn.zst"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def is_dbn_name(path: Path) -> bool:
    return path.name.endswith(DBN_SUFFIXES)


def day_folder(raw_root: str | Path, underlier: str, instrument_type: str, day: dt.date) -> Path:
    return Path(raw_root) / underlier / instrument_type / day.strftime("%Y%m%d")


def looks_like_dbn(path: Path) -> bool:
    """A near miss of the naming rule (``.dbn.zstd``, ``.mbo.zst``, ``.DBN``...): reported, not landed."""
    name = path.name.lower()
    return not is_dbn_name(path) and any(part in name for part in (".dbn", ".mbo", ".zst"))


def _day_folders(raw_root, underlier, instrument_type, start_date, end_date) -> list[Path]:
    base = Path(raw_root) / underlier
    if not base.is_dir():
        return []
    types = [instrument_type] if instrument_type else sorted(p.name for p in base.iterdir() if p.is_dir())
    found = []
    for itype in types:
        for folder in sorted((base / itype).glob("[0-9]" * 8)):
            try:
                day = dt.datetime.strptime(folder.name, "%Y%m%d").date()
            except ValueError:
                continue
            if not ((start_date and day < start_date) or (end_date and day > end_date)):
                found.append(folder)
    return found


def _entries(raw_root, underlier, instrument_type, start_date, end_date, keep: Callable[[Path], bool]) -> list[Path]:
    """The entries of the day folders in [start, end] that ``keep`` accepts, sorted per folder."""
    found = []
    for folder in _day_folders(raw_root, underlier, instrument_type, start_date, end_date):
        found += sorted(p for p in folder.iterdir() if keep(p))
    return found


def discover(
    raw_root: str | Path,
    underlier: str,
    instrument_type: str | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> list[Path]:
    """Entries with a DBN name of an underlier (and instrument type) whose day folder lies in
    [start, end]. Entries that are not readable files (a dangling link, a folder) are
    listed too: the stage quarantines them rather than pass over them in silence."""
    return _entries(raw_root, underlier, instrument_type, start_date, end_date, is_dbn_name)


def near_misses(
    raw_root: str | Path,
    underlier: str,
    instrument_type: str | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> list[Path]:
    """Entries of the same folders whose names miss the naming rule narrowly (see ``looks_like_dbn``)."""
    return _entries(raw_root, underlier, instrument_type, start_date, end_date, looks_like_dbn)


@dataclass(frozen=True)
class FileKeys:
    """``content``: SHA-256 of the uncompressed DBN stream, the same for a ``.dbn`` and any
    zstd encoding of it (the idempotency key); ``file``: SHA-256 of the file's bytes."""

    content: str
    file: str


def file_keys(path: str | Path, block: int = 1 << 22) -> FileKeys:
    """Both hashes in one read of the file.

    A zstd stream that does not decompress (corrupt or truncated) has no content hash of
    its own: its byte hash stands in, so the file is still recognised on a rerun.
    """
    file_digest, content_digest = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as f:
        first = f.read(block)
        file_digest.update(first)
        if first[:4] != ZSTD_MAGIC:
            while chunk := f.read(block):
                file_digest.update(chunk)
            return FileKeys(file_digest.hexdigest(), file_digest.hexdigest())
        dctx = zstandard.ZstdDecompressor()
        dobj, chunk = dctx.decompressobj(), first
        while chunk:
            if dobj is not None:
                dobj = _feed_zstd(dctx, dobj, chunk, content_digest)
            chunk = f.read(block)
            file_digest.update(chunk)
        complete = dobj is not None and dobj.eof
    file_hex = file_digest.hexdigest()
    return FileKeys(content_digest.hexdigest() if complete else file_hex, file_hex)


def _feed_zstd(dctx, dobj, data: bytes, digest):
    """Decompress ``data`` into ``digest`` across frame boundaries; the decompressor to go
    on with, or None when the stream is corrupt."""
    try:
        while data:
            if dobj.eof:  # concatenated frames are valid zstd
                dobj = dctx.decompressobj()
            digest.update(dobj.decompress(data))
            data = dobj.unused_data if dobj.eof else b""
    except zstandard.ZstdError:
        return None
    return dobj


def sha256_of(path: str | Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def lake_relative(path: str | Path, project_root: str | Path) -> str:
    """The path as stored in ``source_file``: relative to the project root when inside it."""
    path, root = Path(path), Path(project_root).resolve()
    # a dangling link keeps its own name (its target says nothing about the landing file)
    path = path.resolve() if path.exists() else Path(os.path.abspath(path))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fspath(path)
