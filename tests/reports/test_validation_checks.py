"""The validation report's checks on a real one-session lake, without rendering: a book that
never saw a clear (R) or a snapshot record (``book_complete`` false, as when the data starts
mid-session) is red, named with its contract, session and why; and the engine-parity check is
green only when every table is equal ("empty" is no pass, in its own words; a summary written
before tables had a status is read by its ``equal``)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from mbolake.io import delta_tables
from mbolake.reports import validation as v
from mbolake.runtime import orchestrator, run_record
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO
from mbolake.stages import BronzeProcessDBN, SilverRebuildOrderBook
from mbolake.stages.engine_parity import EngineParity, TableParity

SESSION = dt.date(2025, 11, 10)
FRONT = "GLBX.MDP3:ESZ5"  # the front month of the generated session


def build(without_start_of_book: str | None = None):
    """One generated session through Bronze and the order book; with a contract, its clear (R)
    record is deleted and its snapshot records lose F_SNAPSHOT first (its book then starts from
    nothing while every order it touches is still added in the data: no other alarm)."""
    from deltalake import DeltaTable

    profile = load_profile("local")
    synth.generate_sample(profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=SESSION, intensity=10_000),
                          progress=False)
    ctx = Context(profile=profile)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    if without_start_of_book:
        bronze = DeltaTable(delta_tables.table_uri(profile, BRONZE_MBO))
        bronze.delete(f"contract_id = '{without_start_of_book}' AND action = 'R'")
        bronze.update(predicate=f"contract_id = '{without_start_of_book}' AND (flags & 32) = 32",
                      updates={"flags": "flags - 32"})
    SilverRebuildOrderBook().run(ctx, underlier="ES", engine="local")
    return profile


def check(profile, name: str, run_id: str = "no-run") -> v.Check:
    return next(c for c in v.checks(profile, run_id, "ES_MODEL") if c.name == name)


def test_an_incomplete_book_is_red_naming_contract_session_and_why(project):
    profile = build(without_start_of_book=FRONT)
    quality = v.book_quality(profile).set_index("contract_id")
    assert quality["book_complete"].to_dict() == {"GLBX.MDP3:ESH6": True, FRONT: False}
    assert not quality[list(v.BOOK_ALARMS)].to_numpy().any()  # no counter would have said so

    found = check(profile, "book quality")

    records = int(quality.loc[FRONT, "records"])
    assert records > 5_000
    assert (found.status, found.detail) == ("failed", f"{FRONT} 2025-11-10: book incomplete, no clear (R) or "
                                                      f"snapshot record in its {records:,} records (the data starts "
                                                      "mid-session)")
    banner = v.summary_html([found])
    assert 'data-status="failed"' in banner and "PROBLEMS FOUND" in banner and "book incomplete" in banner
    cells = v.style_book_quality(v.book_quality(profile)).to_html()  # row 1 is ESZ5, column 2 book_complete
    assert cells.count(f"color: {v.RED}") == 1 and f"_row1_col2 {{\n  color: {v.RED};" in cells


def test_complete_books_pass(project):
    found = check(build(), "book quality")
    assert (found.status, found.detail) == ("ok", "2 contract-session(s) clean")


def write_summaries(run_id: str, *summaries: dict, parity: EngineParity | None = None) -> None:
    """Summaries as a run leaves them: engine parity through its own ``record()``, others as given."""
    run_dir = Path(load_profile("local").runs_root) / run_id
    with orchestrator.environment(**{run_record.RUN_DIR_ENV: str(run_dir)}):
        if parity is not None:
            parity.record()
        for summary in summaries:
            run_record.write_stage_summary(summary.pop("stage"), summary)


def table(name: str, rows: int, other_rows: int, rows_equal: bool = True, notes: str = "") -> TableParity:
    return TableParity("SilverComputeBar5sFeatures", name, rows_equal, rows, other_rows, notes)


def engine_parity(*tables: TableParity) -> EngineParity:
    return EngineParity(SESSION, "local", "spark", 10_000, list(tables))


def test_engine_parity_with_an_empty_table_is_not_passed_and_says_empty(project):
    write_summaries("empty-table", parity=engine_parity(table("silver.bar_5s", 2880, 2880), table("gold.labels", 0, 0)))
    profile = load_profile("local")

    parity = v.parity_results(profile, "empty-table")
    found = check(profile, "engine parity", "empty-table")

    assert parity[["check", "status", "equal", "rows"]].values.tolist() == [
        ["engine_parity: silver.bar_5s", "equal", True, 2880], ["engine_parity: gold.labels", "empty", False, 0]]
    assert (found.status, found.detail) == ("empty", "1/2 equal; engine_parity: gold.labels empty: no rows of the "
                                                     "session on either side: nothing compared")
    banner = v.summary_html([found])
    assert 'class="check-empty">EMPTY<' in banner and "ALL CHECKS PASSED" not in banner and v.GREEN not in banner


def test_engine_parity_is_green_only_when_every_table_is_equal(project):
    write_summaries("all-equal", parity=engine_parity(table("silver.bar_5s", 2880, 2880),
                                                      table("gold.labels", 12, 12)))
    found = check(load_profile("local"), "engine parity", "all-equal")
    assert (found.status, found.detail) == ("ok", "2/2 equal")
    assert "ALL CHECKS PASSED" in v.summary_html([found])


def test_a_missing_stream_table_fails_and_old_summaries_without_status_still_read(project):
    stream = {"stage": "stream_parity", "equal": False, "details": [
        {"table": "silver.bar_5s", "equal": True, "status": "equal", "rows": 2880, "notes": ""},
        {"table": "gold.setup_vectors", "equal": False, "status": "missing", "rows": None,
         "notes": "no stream rows"}]}
    old = {"stage": "old_parity", "equal": True, "details": [
        {"table": "silver.orderbook_state", "equal": True, "rows": 5, "notes": ""},
        {"table": "silver.bar_5s", "equal": False, "rows": 7, "notes": "first difference in column mid"}]}
    write_summaries("stream", stream, old)
    profile = load_profile("local")

    parity = v.parity_results(profile, "stream")
    found = check(profile, "engine parity", "stream")

    assert parity[["check", "status", "equal"]].values.tolist() == [
        ["old_parity: silver.orderbook_state", "equal", True], ["old_parity: silver.bar_5s", "different", False],
        ["stream_parity: silver.bar_5s", "equal", True], ["stream_parity: gold.setup_vectors", "missing", False]]
    assert found.status == "failed"
    assert found.detail == ("2/4 equal; old_parity: silver.bar_5s differs: first difference in column mid; "
                            "stream_parity: gold.setup_vectors missing: no stream rows")
