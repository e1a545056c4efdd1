"""Notebook 39 fails the run when the engines' tables differ: a one-session lake built on
``local`` and declared built on ``spark``, so the check re-runs the stages on ``local`` too (no
Spark here: the Spark side is tests/stages/test_engine_parity_spark.py). Untouched, every table
is equal and ``mbolake run`` exits 0; with one bar_5s value moved, it exits 1 naming the table."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mbolake.io import delta_tables
from mbolake.runtime import orchestrator, run_record
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BAR_5S
from mbolake.stages import SILVER_GOLD_STAGES, BronzeProcessDBN

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

SESSION = dt.date(2025, 11, 10)
NOTEBOOK = ["30_gold/39_engine_parity"]
AS_IF_SPARK = {"engine": "spark"}  # the lake's engine as the notebook is told: it re-runs on local


@pytest.fixture
def lake(project):
    ctx = Context(profile=load_profile("local"))
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=SESSION, intensity=10_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    for stage in SILVER_GOLD_STAGES:
        stage().run(ctx, underlier="ES", engine="local")
    return ctx


def run_39(ctx: Context, run_id: str) -> tuple[int, dict, dict]:
    """``mbolake run 30_gold/39_engine_parity``: exit code, run.json, the parity summary."""
    code = orchestrator.main_run(NOTEBOOK, AS_IF_SPARK, run_id, None)
    run_dir = Path(ctx.profile.runs_root) / run_id
    summary = json.loads((run_dir / "summaries" / "engine_parity.json").read_text())
    return code, run_record.read_run(run_dir), summary


def move_one_bar(ctx: Context) -> int:
    """bar5s_midprice_eob of the session's bar at 08:30 New York + 10 min, a quarter point up."""
    from deltalake import DeltaTable

    bar_ts = int(dt.datetime(2025, 11, 10, 13, 40, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    DeltaTable(delta_tables.table_uri(ctx.profile, BAR_5S)).update(
        predicate=f"session_date = '{SESSION}' AND bar_ts = {bar_ts}",
        updates={"bar5s_midprice_eob": "bar5s_midprice_eob + 0.25"})
    return bar_ts


def test_notebook_39_passes_on_equal_tables_and_fails_the_run_on_a_difference(lake):
    code, record, summary = run_39(lake, "parity-equal")
    assert (code, record["status"], summary["engines"]) == (0, "ok", ["spark", "local"])
    statuses = {d["table"]: d["status"] for d in summary["details"]}
    assert len(statuses) == 9 and set(statuses.values()) <= {"equal", "empty"}, statuses
    assert statuses["silver.bar_5s"] == statuses["silver.orderbook_state"] == "equal"

    bar_ts = move_one_bar(lake)
    code, record, summary = run_39(lake, "parity-different")

    assert (code, record["status"]) == (1, "failed")
    assert record["failed"]["notebook"] == "30_gold/39_engine_parity"
    assert record["failed"]["error"].startswith("cell [")
    assert "AssertionError: engine parity, session 2025-11-10: spark (the lake) and local differ in silver.bar_5s: " \
           "first difference in column bar5s_midprice_eob at row 120 (contract_id=" in record["failed"]["error"]
    statuses = {d["table"]: d["status"] for d in summary["details"]}
    assert [t for t, s in statuses.items() if s == "different"] == ["silver.bar_5s"] and summary["status"] == "different"
    assert f"bar_ts={bar_ts}" in {d["table"]: d["notes"] for d in summary["details"]}["silver.bar_5s"]
