"""A small lake for the report tests: two generated sessions through Bronze and the order book
(local engine, no Spark), one corrupt file quarantined, a run record with a failed notebook."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from mbolake.runtime import run_record
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import context

FIRST = dt.date(2025, 11, 6)


def build_small_lake(root: Path, sessions: int = 2, intensity: int = 20_000) -> Path:
    """Bronze (two sessions + one truncated file) and Silver's order books under ``root``."""
    from mbolake.sample.sessions import ensure_sample
    from mbolake.stages import BronzeProcessDBN, SilverRebuildOrderBook

    profile = load_profile("local")
    result = ensure_sample(profile, sessions=sessions, first_date=FIRST, intensity=intensity, seed=3, progress=False)
    good = result.paths[0]
    bad_dir = good.parent.parent / "20251110"
    bad_dir.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    (bad_dir / "glbx-mdp3-20251110.mbo.dbn.zst").write_bytes(data[: len(data) // 3])  # cut inside a zstd frame
    ctx = context(profile)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    SilverRebuildOrderBook().run(ctx, underlier="ES", engine="local")
    return root


def write_run(root: Path, run_id: str, failed_at: str | None = None) -> Path:
    """A run record as ``mbolake run`` leaves it (the notebooks themselves are not re-run here)."""
    profile = load_profile("local")
    run_dir = Path(profile.runs_root) / run_id
    planned = ["10_bronze/10_bronze_ingest", "20_silver/20_silver_orderbook", "20_silver/23_silver_approach"]
    notebooks = [{"notebook": n, "status": "ok", "seconds": 1.0, "output": "", "log": ""} for n in planned[:2]]
    record = {"run_id": run_id, "status": "ok", "planned": planned, "notebooks": notebooks, "failed": None,
              "started_at": run_record.now_iso(), "parameters": {"profile": "local"}}
    if failed_at:
        entry = {"notebook": failed_at, "status": "failed", "seconds": 2.0,
                 "error": "cell [3]: ValueError: no MBP-10 rows for ES", "output": "", "log": ""}
        record.update(status="failed", failed=entry, notebooks=notebooks + [entry])
    run_record.write_json(run_dir / "run.json", record)
    return run_dir
