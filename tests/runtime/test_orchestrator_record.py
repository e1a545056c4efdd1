"""The run's record: exit codes for bad input before any work, one console line per notebook,
full logs in runs/<run_id>/logs/, run.json; Spark starts without writing to the console."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mbolake.runtime import orchestrator, run_record
from mbolake.runtime.config import load_profile
from mbolake.runtime.spark import jvm_output_to


def test_an_unknown_parameter_is_refused_before_any_work(project, capsys):
    code = orchestrator.main_run(["10_bronze"], {"chunk_recrods": 20_000}, "typo", None)
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown parameter 'chunk_recrods'" in err and "chunk_records" in err  # the known names are listed
    assert len(err.strip().splitlines()) == 1
    assert not (project / "runs" / "typo").exists()


def test_a_bad_profile_or_notebook_is_one_line_and_exit_2(project, capsys):
    assert orchestrator.main_run(["10_bronze"], {}, "p", "nope") == 2
    assert orchestrator.main_run(["99_nothing"], {}, "p", None) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "unknown profile 'nope'" in lines[0] and "no notebook or stage folder '99_nothing'" in lines[1]


def test_jvm_output_to_sends_child_processes_output_to_the_file(tmp_path, capfd):
    log = tmp_path / "logs" / "child.log"
    with jvm_output_to(log):
        subprocess.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], check=True)
    print("back on the console")
    captured = capfd.readouterr()
    assert log.read_text().split() == ["out", "err"]
    assert "back on the console" in captured.out and "err" not in captured.err


@pytest.mark.notebooks
def test_a_failed_run_prints_one_line_per_notebook_and_records_where(project, capsys, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    rendered = []
    code = orchestrator.main_run(["00_setup/01_download_databento"], {"confirm_download": False}, "r1", None,
                                 lambda profile, run_id: rendered.append(run_id))
    out = capsys.readouterr()
    assert code == 1 and rendered == ["r1"]  # the reports still render after a failure
    lines = out.out.strip().splitlines()
    assert lines[0].startswith("run r1: 1 notebook(s)")
    assert lines[1].split()[:2] == ["FAILED", "00_setup/01_download_databento"]
    assert "DATABENTO_API_KEY is not set" in lines[1] and "cell [" in lines[1]
    assert lines[2].startswith("FAILED after 0 notebook(s) ok")
    assert "Kernel is running over TCP" not in out.out + out.err and out.err == ""
    run_dir = project / "runs" / "r1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["failed"]["notebook"] == "00_setup/01_download_databento"
    assert "DATABENTO_API_KEY" in record["failed"]["error"]
    log = (run_dir / "logs" / "00_setup__01_download_databento.log").read_text()
    assert "DATABENTO_API_KEY is not set" in log  # the notebook's output, in full
    assert "Kernel is running over TCP" not in log  # the kernel listens on IPC sockets, not TCP
    assert (run_dir / "00_setup__01_download_databento.ipynb").exists()


@pytest.mark.spark
def test_spark_starts_without_console_noise_and_resolves_its_jars_once(project, tmp_path):
    """The first start resolves the Delta and Kafka jars with Ivy and lists the files; the next one
    starts from the list (no resolution). The profile's Ivy folder here is a new one over the real
    cache (nothing is downloaded)."""
    real = Path("~/.cache/mbolake/ivy").expanduser()
    ivy = tmp_path / "ivy"
    ivy.mkdir()
    for folder in ("cache", "jars"):
        (ivy / folder).symlink_to(real / folder)
    conf = project / "conf" / "local.yaml"
    conf.write_text(conf.read_text().replace("ivy_cache: ~/.cache/mbolake/ivy", f"ivy_cache: {ivy}"))
    script = "from mbolake.runtime.spark import get_spark; s = get_spark(); print('version', s.version); s.stop()"
    logs = []
    for start in ("first", "second"):
        logs.append(tmp_path / f"spark-{start}.log")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "MBOLAKE_SPARK_LOG": str(logs[-1])})
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("version 4.") and done.stderr == ""
    first, second = (log.read_text() for log in logs)
    assert "resolving dependencies" in first  # Ivy's report went to the log ...
    assert "resolves to a loopback address" not in first and "NativeCodeLoader" not in first  # ... quieter
    [listing] = ivy.glob("mbolake-resolved-jars-*.txt")
    jars = listing.read_text().split()
    assert any("delta-spark_2.13-4.0.1.jar" in jar for jar in jars) and any("spark-sql-kafka" in jar for jar in jars)
    assert "resolving dependencies" not in second and "resolution report" not in second


@pytest.mark.spark
@pytest.mark.notebooks
@pytest.mark.slow
def test_executed_notebooks_carry_no_start_up_noise_and_figures_that_draw_offline(project):
    """Spark starts inside 00's kernel: nothing of it in the notebook, all of it in the run's log."""
    import nbformat

    runs = orchestrator.run_notebooks(["00_setup/00_environment_check", "00_setup/02_generate_sample"],
                                      {"sessions": 1, "intensity": 10_000}, run_id="quiet", log=lambda _: None)
    streams, html = [], []
    for run in runs:
        for cell in nbformat.read(run.output, as_version=4).cells:
            for out in cell.get("outputs", []):
                if out.get("name") == "stderr":
                    streams.append(out["text"])
                html.append(out.get("data", {}).get("text/html", ""))
    assert streams == []  # no Ivy report, no log4j warnings, no tqdm/IProgress or MLflow warnings
    figures = [h for h in html if "Plotly.newPlot" in h]
    assert figures and not any("cdnjs" in h for h in figures)  # no MathJax or plotly.js from a CDN
    assert any(len(h) > 1_000_000 for h in html)  # plotly.js itself, inline once per notebook
    spark_log = (project / "runs" / "quiet" / "logs" / "00_setup__00_environment_check.log").read_text()
    assert "WARNING: Using incubator modules" in spark_log  # the JVM's own start-up line


def test_a_notebook_line_carries_its_stages_counts_and_wraps_once_for_several():
    bronze = run_record.stage_digest({
        "stage": "BronzeProcessDBN", "rows_in": 2_400_120, "rows_out": 2_400_000,
        "details": [{"status": "ingested", "rejected_records": 120}] * 8 + [{"status": "quarantined"}] * 2
        + [{"status": "skipped_duplicate"}, {"status": "skipped_name"}]})
    assert bronze["files"] == {"ingested": 8, "quarantined": 2, "skipped": 2} and bronze["rejected_records"] == 960
    assert run_record.digest_text(bronze) == ("BronzeProcessDBN: 8 file(s) ingested, 2 quarantined, 2 skipped; "
                                              "2.4 M rows, 960 records quarantined")
    one = orchestrator.notebook_line("ok", Path("10_bronze/10_bronze_ingest.ipynb"), 41.2, "",
                                     [{**bronze, "text": run_record.digest_text(bronze)}])
    assert one.split()[:4] == ["ok", "10_bronze/10_bronze_ingest", "41.2", "s"] and "\n" not in one
    stages = [run_record.stage_digest({"stage": name, "rows_in": 5_321_000, "rows_out": 12_345})
              for name in ("SilverAddSessionLevels", "SilverComputeBar5sFeatures", "SilverExtractLevelApproach2m")]
    assert run_record.digest_text(stages[0]) == "SilverAddSessionLevels: 5.3 M -> 12.3 k rows"
    two = orchestrator.notebook_line("ok", Path("20_silver/22_silver_levels_bars.ipynb"), 9.0, "",
                                     [{**d, "text": run_record.digest_text(d)} for d in stages])
    first, second = two.split("\n")
    assert first.split() == ["ok", "20_silver/22_silver_levels_bars", "9.0", "s"]
    assert second.startswith(" " * 9) and second.count(" -> ") == 3 and second.count(" | ") == 2
    parity = run_record.stage_digest({"stage": "engine_parity", "equal": False, "rows_in": 297_791, "rows_out": 507_231,
                                      "details": [{"table": "silver.orderbook_state", "equal": True, "status": "equal"},
                                                  {"table": "silver.bar_5s", "equal": False, "status": "different"},
                                                  {"table": "gold.labels", "equal": False, "status": "empty"}]})
    assert run_record.digest_text(parity) == ("engine_parity: 1/3 tables equal, "
                                              "NOT EQUAL: silver.bar_5s, gold.labels (empty)")


@pytest.mark.notebooks
def test_a_bronze_run_that_quarantines_a_file_shows_the_counts_on_its_line_and_in_run_json(project, capsys):
    from mbolake.sample import synth

    raw = load_profile("local").raw_dbn_root
    [good] = synth.generate_sample(raw, synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 4), intensity=10_000),
                                   progress=False)
    data = good.read_bytes()
    (good.parent / "truncated.mbo.dbn.zst").write_bytes(data[: len(data) // 2])
    shutil.copy(good, good.parent / "near-miss.dbn.zstd")

    code = orchestrator.main_run(["10_bronze/10_bronze_ingest"], {"chunk_records": 10_000}, "b1", None)

    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0, lines
    [line] = [n for n in lines if "10_bronze/10_bronze_ingest" in n]
    record = json.loads((project / "runs" / "b1" / "run.json").read_text())
    [digest] = record["notebooks"][0]["summaries"]
    assert digest["stage"] == "BronzeProcessDBN"
    assert digest["files"] == {"ingested": 1, "quarantined": 1, "skipped": 1} and digest["rows_out"] > 0
    assert line.split()[0] == "ok" and line.endswith(digest["text"])
    assert "BronzeProcessDBN: 1 file(s) ingested, 1 quarantined, 1 skipped; " in line
    assert (project / "runs" / "b1" / "summaries" / "BronzeProcessDBN.json").exists()
