"""The validation report on a small generated lake: rendered through papermill + nbconvert into one
self-contained HTML file, opened in headless Chromium; a failed run still gets its report."""
from __future__ import annotations

import re
import shutil

import pytest

from mbolake.reports import render
from mbolake.runtime import orchestrator, run_record
from mbolake.runtime.config import load_profile

from tests.reports.conftest import machine_paths, open_page
from tests.reports.small_lake import write_run

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def failed_run_report(small_lake):
    write_run(small_lake, "failed-run", failed_at="20_silver/23_silver_approach")
    [result] = render.render_reports(["validation"], load_profile("local"), "failed-run", log=lambda _: None)
    return result


def test_the_report_shows_every_problem_in_red(failed_run_report):
    assert failed_run_report.status == "ok", failed_run_report.error
    page = failed_run_report.html.read_text()
    assert 'data-status="failed"' in page and "PROBLEMS FOUND" in page
    statuses = {name: status for status, name in re.findall(r'check-(\w+)"[^>]*>\w+</td><td[^>]*><b>([\w ]+)</b>', page)}
    assert statuses == {"notebooks": "failed", "bronze files": "failed", "book quality": "ok",
                        "engine parity": "missing", "lineage": "missing"}
    assert "failed at 20_silver/23_silver_approach: cell [3]: ValueError" in page
    assert "2 landed, 0 skipped, 1 quarantined" in page and "glbx-mdp3-20251110.mbo.dbn.zst" in page
    assert "ends inside a frame" in page  # the quarantine reason
    # a per-contract book skips the channel's other instruments' packets: the jumps are in the table, never red
    assert "seq_jumps" in page and not re.search(r"seq_jumps [\d,]+", page) and "contract-session(s) clean" in page
    for section in ("Notebooks of the run", "Bronze: files landed, skipped, quarantined",
                    "Book quality per contract and session", "Engine parity", "Lineage"):
        assert section in page
    assert 'class="jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr"' not in page  # no error cells


def test_the_html_is_self_contained(failed_run_report):
    page = failed_run_report.html.read_text()
    assert not re.search(r'<script[^>]+src="https?://', page) and not re.search(r'<link[^>]+href="https?://', page)
    assert page.count('class="plotly-graph-div"') == 2  # file statuses, book alarm counters
    assert "Plotly.newPlot" in page


def test_index_lists_the_run_with_its_status_and_report(failed_run_report, small_lake):
    index = (small_lake / "runs" / "index.html").read_text()
    assert '<tr class="failed"><td>failed-run</td>' in index
    assert 'href="failed-run/reports/validation.html"' in index


def test_the_report_shows_no_path_of_the_machine(failed_run_report, small_lake):
    """Bronze's files, the quarantine and the failure are shown relative to the project root."""
    page = failed_run_report.html.read_text()
    assert machine_paths(page, small_lake) == []
    assert machine_paths((small_lake / "runs" / "index.html").read_text(), small_lake) == []
    assert "raw-dbn/ES/" in page  # the quarantined file, relative to the root


@pytest.mark.browser
def test_chromium_draws_every_figure_without_errors(failed_run_report, browser, tmp_path):
    divs, drawn, errors, requests = open_page(browser, failed_run_report.html, tmp_path / "validation.png")
    assert (divs, drawn) == (2, 2)
    assert errors == [] and requests == []
    assert (tmp_path / "validation.png").stat().st_size > 10_000


def test_a_failed_notebook_run_still_writes_its_validation_report(small_lake, monkeypatch, capsys):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    profile = load_profile("local")

    def validation_only(profile, run_id):
        render.render_reports(["validation"], profile, run_id, log=lambda _: None)

    code = orchestrator.main_run(["00_setup/01_download_databento"], {}, "no-key", None, validation_only)
    assert code == 1
    page = (small_lake / "runs" / "no-key" / "reports" / "validation.html").read_text()
    assert "failed at 00_setup/01_download_databento" in page and "DATABENTO_API_KEY is not set" in page
    assert '<tr class="failed"><td>no-key</td>' in (small_lake / "runs" / "index.html").read_text()
    assert profile.name == "local"


@pytest.mark.skipif(shutil.which("quarto") is None, reason="the Quarto CLI is not on PATH (it cannot be installed "
                    "on this machine: see docs/reports.md); the nbconvert path above covers the same sources")
def test_quarto_renders_the_same_source(small_lake):
    write_run(small_lake, "quarto-run")
    result = render.render_report("validation", load_profile("local"), "quarto-run", engine="quarto")
    assert result.status == "ok", result.error
    assert "PROBLEMS FOUND" in result.html.read_text()


@pytest.fixture(scope="module")
def parity_reports(small_lake):
    """Two runs with an engine-parity summary of the small lake's last session: its order-book
    rows against themselves (equal) and against a copy with one bid price moved a tick (not
    equal). The re-run on the other engine is tested in tests/stages/test_engine_parity_spark.py."""
    import numpy as np
    import pyarrow as pa

    from mbolake.runtime.context import context
    from mbolake.schemas import ORDERBOOK_STATE
    from mbolake.stages import engine_parity as ep

    profile = load_profile("local")
    ctx = context(profile)
    session = ep.last_session(ctx)
    states = ep.sort_rows(ep.read_session(ctx, ORDERBOOK_STATE, session), ep.ROW_KEYS[ORDERBOOK_STATE])
    bids = states.column("bid_px_00").to_numpy().copy()
    bids[100] += 250_000_000  # a quarter point, in fixed-point nanos
    altered = states.set_column(states.schema.get_field_index("bid_px_00"), "bid_px_00", pa.array(bids, pa.int64()))
    results = {}
    for run_id, other in (("parity-ok", states), ("parity-bad", altered)):
        equal, notes = ep.compare_rows(states, other, ep.ROW_KEYS[ORDERBOOK_STATE], "spark")
        table = ep.TableParity("SilverRebuildOrderBook", ORDERBOOK_STATE.name, equal, states.num_rows, other.num_rows,
                               notes)
        parity = ep.EngineParity(session, "local", "spark", 0, [table])
        run_dir = write_run(small_lake, run_id)
        with orchestrator.environment(**{run_record.RUN_DIR_ENV: str(run_dir)}):
            parity.record()
        [results[run_id]] = render.render_reports(["validation"], profile, run_id, log=lambda _: None)
    assert np.issubdtype(bids.dtype, np.integer)
    return results


def check_statuses(page: str) -> dict:
    return {name: status for status, name in re.findall(r'check-(\w+)"[^>]*>\w+</td><td[^>]*><b>([\w ]+)</b>', page)}


def test_engine_parity_is_green_when_every_table_is_equal(parity_reports):
    result = parity_reports["parity-ok"]
    assert result.status == "ok", result.error
    page = result.html.read_text()
    assert check_statuses(page)["engine parity"] == "ok" and "1/1 equal" in page
    assert "engine_parity: silver.orderbook_state" in page  # the per-table row of the Engine parity section


def test_engine_parity_is_red_naming_the_table_and_its_first_difference(parity_reports):
    result = parity_reports["parity-bad"]
    assert result.status == "ok", result.error
    page = result.html.read_text()
    assert check_statuses(page)["engine parity"] == "failed" and "0/1 equal" in page
    assert "engine_parity: silver.orderbook_state differs: first difference in column bid_px_00 at row 100" in page
    assert 'data-status="failed"' in page
