"""Report helpers without a kernel: the sweep's metrics table and the index of runs."""
from __future__ import annotations

import pytest

from mbolake.reports.render import ReportError, report_names, shared_parameters, write_index
from mbolake.reports.sweep import metrics_table
from mbolake.runtime import run_record

from tests.helpers import REPO


def test_metrics_table_has_one_row_per_metric_and_a_column_per_part_and_baseline():
    parent = {"best_val_log_loss": 1.0, "best_val_baseline_majority_log_loss": 9.0,
              "best_val_baseline_prior_log_loss": 1.09, "best_val_macro_f1": 0.4, "test_log_loss": 1.05,
              "test_baseline_majority_log_loss": 9.5, "test_baseline_prior_log_loss": 1.1, "test_macro_f1": 0.35,
              "sweep_seconds": 12.0}
    table = metrics_table(parent).set_index("metric")
    assert list(table.index) == ["log_loss", "macro_f1"]
    assert table.loc["log_loss"].tolist() == [1.0, 9.0, 1.09, 1.05, 9.5, 1.1]
    assert table.loc["macro_f1", "test"] == 0.35 and table.loc["macro_f1"].isna().sum() == 4


def test_index_lists_every_run_newest_first_with_status_and_reports(tmp_path):
    run_record.write_json(tmp_path / "r1" / "run.json", {"run_id": "r1", "status": "ok", "planned": ["a", "b"],
                          "notebooks": [{"notebook": "a", "status": "ok"}, {"notebook": "b", "status": "ok"}],
                          "reports": {"validation": {"html": "reports/validation.html", "status": "ok"}}})
    run_record.write_json(tmp_path / "r2" / "run.json", {"run_id": "r2", "status": "failed", "planned": ["a", "b"],
                          "notebooks": [{"notebook": "a", "status": "failed"}],
                          "failed": {"notebook": "a", "error": "cell [2]: ValueError: bad"}})
    (tmp_path / "not-a-run").mkdir()
    page = write_index(tmp_path).read_text()
    assert page.index("<td>r2</td>") < page.index("<td>r1</td>")
    assert '<tr class="failed"><td>r2</td>' in page and "cell [2]: ValueError: bad" in page
    assert '<tr class="ok"><td>r1</td>' in page and '<td>2/2</td>' in page
    assert 'href="r1/reports/validation.html"' in page and "not-a-run" not in page


def test_report_names():
    assert report_names("all") == ("validation", "features", "sweep")
    assert report_names("sweep") == ("sweep",)
    with pytest.raises(ReportError, match="unknown report 'sweeps'"):
        report_names("sweeps")


def test_a_run_passes_the_reports_only_the_parameters_they_declare():
    run = {"profile": "local", "sessions": 6, "intensity": 60_000, "max_evals": 3, "model_id": "ES_MODEL"}
    for name in ("validation", "features", "sweep"):
        assert shared_parameters(REPO / "reports" / f"{name}.ipynb", run) == {"model_id": "ES_MODEL"}


def test_mbolake_report_refuses_bad_input_with_exit_2(project, capsys):
    from mbolake import cli

    (project / "runs" / "r1").mkdir(parents=True)
    assert cli.main(["report", "sweeps", "--run-id", "r1"]) == 2
    assert cli.main(["report", "all", "--run-id", "nope"]) == 2
    assert cli.main(["report", "validation", "--run-id", "r1", "-p", "modle_id=ES_MODEL"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert "unknown report 'sweeps'" in lines[0] and "no run 'nope'" in lines[1]
    assert "unknown parameter 'modle_id'" in lines[2] and "model_id" in lines[2]
    assert not (project / "runs" / "r1" / "reports").exists()
