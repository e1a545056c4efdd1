"""Every notebook runs under papermill with small parameters (the way jobs run them)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.orchestrator import DEMO_PIPELINE, NotebookFailed, run_notebooks
from mbolake.schemas import BRONZE_MBO, INGEST_MANIFEST

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

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


@pytest.mark.spark  # the Bronze, Silver and Gold notebooks start Spark in their kernels
def test_the_demo_pipeline_runs_end_to_end(project, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    # two sessions are too few to split; the real-time leg needs the champion (tests/realtime/test_replay_leg.py)
    through_gold = [n for n in DEMO_PIPELINE if not n.startswith(("40_ml", "50_realtime"))]
    runs = run_notebooks(through_gold, SMALL, run_id="demo", log=lambda _: None)

    assert [r.output.name for r in runs] == [f"{Path(n).parent.name}__{Path(n).name}" for n in through_gold]
    assert all(r.output.parent == project / "runs" / "demo" for r in runs)
    profile = load_profile()
    manifest = delta_tables.read(profile, INGEST_MANIFEST).to_pandas()
    assert manifest.status.tolist() == ["ingested", "ingested"]
    assert sum(manifest.record_count) == delta_tables.read(profile, BRONZE_MBO, columns=["ts_recv"]).num_rows
    assert 110_000 < sum(manifest.record_count) < 130_000  # two sessions of ~60k records
    text, mimes = outputs_of(runs[2].output)
    assert "BronzeProcessDBN" in text and "2 file(s): 2 ingested" in text
    assert "application/vnd.plotly.v1+json" in mimes  # the message-rate chart
    for run in runs[3:]:  # every Silver and Gold notebook shows at least one chart
        assert "application/vnd.plotly.v1+json" in outputs_of(run.output)[1], run.output.name
    snapshot = project / "ml" / "artifacts" / "datasets" / "ES_MODEL" / "2026-01-05"
    assert (snapshot / "manifest.json").exists() and (snapshot / "training_view.parquet").exists()
    # 39_engine_parity: the last session's Silver and Gold again on Spark equal the lake's, table for table
    parity = json.loads((project / "runs" / "demo" / "summaries" / "engine_parity.json").read_text())
    assert parity["equal"] is True and parity["session_date"] == "2025-11-07" and len(parity["details"]) == 9

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


@pytest.mark.serve  # 43_serve starts `mlflow models serve`
def test_ml_notebooks_split_sweep_register_and_serve(pipeline_home, monkeypatch):
    """40_ml on a generated snapshot (Gold's export is tested above): a real MLflow store and server.
    The notebooks ran as run ``ml`` of ``conftest.pipeline_home`` (the real-time tests serve its champion)."""
    import mlflow

    from mbolake.ml.tracking import tracking_uri_for

    monkeypatch.setenv("MBOLAKE_HOME", str(pipeline_home))
    profile = load_profile()
    record = json.loads((pipeline_home / "runs" / "ml" / "run.json").read_text())
    assert record["parameters"] == {"profile": "local", "max_evals": 3, "seed": 3} and record["status"] == "ok"
    outputs = [pipeline_home / "runs" / "ml" / n["output"] for n in record["notebooks"]]

    assert [o.name for o in outputs] == ["40_ml__41_split.ipynb", "40_ml__42_sweep.ipynb", "40_ml__43_serve.ipynb"]
    assert (pipeline_home / "mlruns.db").exists()
    uri = tracking_uri_for(profile)  # both URIs: an earlier test of this process may have set another registry
    champion = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
        "ES_MODEL_setup_v3", "champion")
    assert champion.tags["feature_set"] == "setup_v3" and "test_macro_f1" in champion.tags
    text, mimes = outputs_of(outputs[-1])
    assert "equal to in-process = True" in text
    assert "application/vnd.plotly.v1+json" in outputs_of(outputs[0])[1]
