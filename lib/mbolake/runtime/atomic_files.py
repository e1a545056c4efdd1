"""Files another process reads while this one rewrites them (a job's status, a feed's progress, a
run's record, a broker's pid): written whole or not at all.

The text goes to a temporary file in the same folder (a rename is atomic only within one file
system), named for this process and thread so two writers never share one, and ``os.replace``
swaps it in: a reader sees the old file or the new one, never an empty or half-written one.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) in one step; its folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload, *, indent: int | None = None, default=None) -> Path:
    """``payload`` as JSON (``indent`` and ``default`` as in ``json.dumps``), replaced in one step."""
    return write_text_atomic(path, json.dumps(payload, indent=indent, default=default))
