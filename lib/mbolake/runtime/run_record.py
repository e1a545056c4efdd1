"""The record a run leaves in ``runs/<run_id>/``: ``run.json`` (every notebook, its status and
time, the reports), ``summaries/<stage>.json`` (what each stage did) and ``logs/``.

``mbolake run`` sets ``MBOLAKE_RUN_DIR`` for the notebooks' kernels, so a stage run inside a
notebook writes its summary into the run's folder; outside a run nothing is written.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

RUN_DIR_ENV = "MBOLAKE_RUN_DIR"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, payload: dict) -> Path:
    """Written whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)
    return path


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def current_run_dir() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


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
