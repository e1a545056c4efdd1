"""The record a run leaves in ``runs/<run_id>/``: ``run.json`` (every notebook, its status and
time, the reports), ``summaries/<stage>.json`` (what each stage did) and ``logs/``.

``mbolake run`` sets ``MBOLAKE_RUN_DIR`` for the notebooks' kernels, so a stage run inside a
notebook writes its summary into the run's folder; outside a run nothing is written.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path

from .atomic_files import write_json_atomic

RUN_DIR_ENV = "MBOLAKE_RUN_DIR"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, payload: dict) -> Path:
    """Written whole or not at all (a reader never sees half a file)."""
    return write_json_atomic(path, payload, indent=2, default=str)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def current_run_dir() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def suspended():
    """Stage summaries written inside are not the run's (a scratch re-run such as engine parity)."""
    value = os.environ.pop(RUN_DIR_ENV, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[RUN_DIR_ENV] = value


def write_stage_summary(stage: str, payload: dict) -> Path | None:
    """``summaries/<stage>.json`` of the current run (``None`` outside ``mbolake run``)."""
    run_dir = current_run_dir()
    if run_dir is None:
        return None
    return write_json(run_dir / "summaries" / f"{stage}.json", {"stage": stage, "written_at": now_iso(), **payload})


def stage_summaries(run_dir: Path) -> dict[str, dict]:
    """Every stage summary of a run, by stage name."""
    found = {}
    for path in sorted((Path(run_dir) / "summaries").glob("*.json")):
        payload = read_json(path)
        if payload is not None:
            found[payload.get("stage", path.stem)] = payload
    return found


def read_run(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / "run.json")


# -- what one notebook's stages did, for its console line and its run.json entry ------------

def summaries_state(run_dir: Path) -> dict[str, int]:
    """``summaries/*.json`` -> modification time (ns): taken before and after a notebook."""
    folder = Path(run_dir) / "summaries"
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def summaries_written(run_dir: Path, before: dict[str, int]) -> list[dict]:
    """The stage summaries written or rewritten since ``before`` (``summaries_state``), in
    the order they were written."""
    after = summaries_state(run_dir)
    changed = sorted((mtime, name) for name, mtime in after.items() if before.get(name) != mtime)
    found = [read_json(Path(run_dir) / "summaries" / name) for _, name in changed]
    return [payload for payload in found if payload is not None]


def stage_digest(summary: dict) -> dict:
    """The counts of a stage summary worth a console line: rows in and out; for a stage with
    one details row per file (Bronze), files by outcome and records rejected by validation."""
    digest = {"stage": summary.get("stage", "?"), "rows_in": int(summary.get("rows_in") or 0),
              "rows_out": int(summary.get("rows_out") or 0)}
    if "equal" in summary:
        digest["equal"] = bool(summary["equal"])
        compared = [row for row in summary.get("details") or [] if isinstance(row, dict) and "equal" in row]
        if compared:
            digest["tables"] = len(compared)
            digest["unequal"] = [_unequal_name(row) for row in compared if not row["equal"]]
    # Bronze's details: one row per file with its status (a parity row has "equal" and a status too)
    files = [row for row in summary.get("details") or [] if isinstance(row, dict) and "status" in row
             and "equal" not in row]
    if files:
        statuses = [row["status"] for row in files]
        digest["files"] = {"ingested": statuses.count("ingested"), "quarantined": statuses.count("quarantined"),
                           "skipped": sum(s.startswith("skipped") for s in statuses)}
        digest["rejected_records"] = int(sum(row.get("rejected_records") or 0 for row in files))
    return digest


def _unequal_name(row: dict) -> str:
    """A table that is not equal, with its status when it says more than "different" (missing, empty)."""
    name, status = str(row.get("table", "?")), row.get("status")
    return f"{name} ({status})" if status and status != "different" else name


def compact_count(n: int) -> str:
    """1234 -> ``1.2 k``, 2_400_000 -> ``2.4 M``; below 1000 the number itself."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def digest_text(digest: dict) -> str:
    """``BronzeProcessDBN: 8 files ingested, 2 quarantined, 1 skipped; 2.4 M rows`` or
    ``SilverRebuildOrderBook: 2.4 M -> 1.1 M rows``."""
    parts = []
    if "files" in digest:
        files = digest["files"]
        parts.append(f"{files['ingested']} file(s) ingested, {files['quarantined']} quarantined, {files['skipped']} skipped")
        parts.append(f"{compact_count(digest['rows_out'])} rows"
                     + (f", {compact_count(digest['rejected_records'])} records quarantined"
                        if digest["rejected_records"] else ""))
    elif "tables" in digest:  # a parity check: tables compared, the unequal ones named
        equal = digest["tables"] - len(digest["unequal"])
        parts.append(f"{equal}/{digest['tables']} tables equal" + (
            f", NOT EQUAL: {', '.join(digest['unequal'])}" if digest["unequal"] else ""))
    else:
        parts.append(f"{compact_count(digest['rows_in'])} -> {compact_count(digest['rows_out'])} rows")
    if "equal" in digest and "tables" not in digest:
        parts.append("equal" if digest["equal"] else "NOT EQUAL")
    return f"{digest['stage']}: " + "; ".join(parts)
