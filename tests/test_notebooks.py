"""Every notebook runs under papermill with small parameters (the way jobs run them)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mbolake import delta_tables
from mbolake.config import load_profile
from mbolake.orchestrator import DEMO_PIPELINE, NotebookFailed, run_notebooks
from mbolake.schemas import BRONZE_MBO, INGEST_MANIFEST

pytestmark = pytest.mark.notebooks

SMALL = {"sessions": 2, "intensity": 60_000, "first_date": "2025-11-06", "run_date": "2026-01-05"}


def outputs_of(path) -> tuple[str, set[str]]:
    """All text the executed notebook shows, and the MIME types of its rich outputs."""
    nb = nbformat.read(path, as_version=4)
    parts, mimes = [], set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [v for v in out.get("data", {}).values() if isinstance(v, str)]
            mimes.update(out.get("data", {}))
    return "\n".join(parts), mimes


def test_the_demo_pipeline_runs_end_to_end(project, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    runs = run_notebooks(DEMO_PIPELINE, SMALL, run_id="demo", log=lambda _: None)

    assert [r.output.name for r in runs] == [f"{Path(n).parent.name}__{Path(n).name}" for n in DEMO_PIPELINE]
    assert all(r.output.parent == project / "runs" / "demo" for r in runs)
    profile = load_profile()
    manifest = delta_tables.read(profile, INGEST_MANIFEST).to_pandas()
    assert manifest.status.tolist() == ["ingested", "ingested"]
    assert sum(manifest.record_count) == delta_tables.read(profile, BRONZE_MBO, columns=["ts_recv"]).num_rows
    assert 110_000 < sum(manifest.record_count) < 130_000  # two sessions of ~60k records
    text, mimes = outputs_of(runs[2].output)
    assert "BronzeProcessDBN" in text and "2 file(s) {&#x27;ingested&#x27;: 2}" in text.replace("'", "&#x27;")
    assert "application/vnd.plotly.v1+json" in mimes  # the message-rate chart
    for run in runs[3:]:  # every Silver and Gold notebook shows at least one chart
        assert "application/vnd.plotly.v1+json" in outputs_of(run.output)[1], run.output.name
    snapshot = project / "ml" / "artifacts" / "datasets" / "ES_MODEL" / "2026-01-05"
    assert (snapshot / "manifest.json").exists() and (snapshot / "training_view.parquet").exists()

    # A second run generates nothing and lands nothing new.
    run_notebooks(DEMO_PIPELINE[1:3], SMALL, run_id="again", log=lambda _: None)
    statuses = delta_tables.read(profile, INGEST_MANIFEST).to_pandas().status.tolist()
    assert sorted(statuses) == ["ingested", "ingested", "skipped_duplicate", "skipped_duplicate"]


def test_download_notebook_stops_with_a_clear_message_without_a_key(project, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(["00_setup/01_download_databento.ipynb"], run_id="dl", log=lambda _: None)
    assert "DATABENTO_API_KEY is not set" in str(failure.value)
    assert failure.value.output.exists()  # the executed copy with the traceback is kept


def test_a_bad_parameter_fails_before_any_work_naming_it(project):
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(["10_bronze"], {"chunk_records": 5}, run_id="bad", log=lambda _: None)
    assert "parameter 'chunk_records': 5 is below the minimum 10000" in str(failure.value)
    assert not delta_tables.exists(load_profile(), INGEST_MANIFEST)
