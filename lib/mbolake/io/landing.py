"""The landing zone: ``raw-dbn/{underlier}/{instrument_type}/{yyyymmdd}/{file}.dbn[.zst]``."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

DBN_SUFFIXES = (".dbn", ".dbn.zst")


def is_dbn_name(path: Path) -> bool:
    return path.name.endswith(DBN_SUFFIXES)


def day_folder(raw_root: str | Path, underlier: str, instrument_type: str, day: dt.date) -> Path:
    return Path(raw_root) / underlier / instrument_type / day.strftime("%Y%m%d")


def discover(
    raw_root: str | Path,
    underlier: str,
    instrument_type: str | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
) -> list[Path]:
    """DBN files of an underlier (and instrument type) whose day folder lies in [start, end]."""
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
            if (start_date and day < start_date) or (end_date and day > end_date):
                continue
            found += sorted(p for p in folder.iterdir() if p.is_file() and is_dbn_name(p))
    return found


def sha256_of(path: str | Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def lake_relative(path: str | Path, project_root: str | Path) -> str:
    """The path as stored in ``source_file``: relative to the project root when inside it."""
    path, root = Path(path).resolve(), Path(project_root).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fspath(path)
