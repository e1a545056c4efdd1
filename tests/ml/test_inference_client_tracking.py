"""Inference client payloads (local MLflow + Azure ML online endpoint) and profile MLflow set-up."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mbolake.ml.inference_client import InferenceClient, InferenceError, client_for_profile, parse_predictions


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1.0, np.nan], "b": [0.5, 2.0]}, index=[7, 8])


def test_local_mlflow_payload(frame):
    c = InferenceClient("http://127.0.0.1:5001/", kind="mlflow_local")
    body = c.payload(frame, params={"k_similar": 5})
    assert c.scoring_url == "http://127.0.0.1:5001/invocations"
    assert body == {"dataframe_split": {"columns": ["a", "b"], "index": [7, 8], "data": [[1.0, 0.5], [None, 2.0]]},
                    "params": {"k_similar": 5}}
    assert "Authorization" not in c.headers()
    req = c.request(frame)
    assert json.loads(req.data) == {"dataframe_split": body["dataframe_split"]}


def test_azureml_online_payload_and_bearer_key(frame, monkeypatch):
    monkeypatch.delenv("MBOLAKE_ENDPOINT_KEY", raising=False)
    url = "https://example-endpoint.invalid/score"
    c = InferenceClient(url, kind="azureml_online", api_key="k-123", deployment="champion")
    body = c.payload(frame, params={"k_similar": 3})
    assert set(body) == {"input_data", "params"}
    assert body["input_data"] == {"columns": ["a", "b"], "index": [7, 8], "data": [[1.0, 0.5], [None, 2.0]]}
    h = c.headers()
    assert h["Authorization"] == "Bearer k-123" and h["azureml-model-deployment"] == "champion"
    assert c.scoring_url == url
    req = c.request(frame)
    assert req.get_header("Authorization") == "Bearer k-123" and req.full_url == url
    with pytest.raises(InferenceError, match="key"):
        InferenceClient(url, kind="azureml_online").headers()
    monkeypatch.setenv("MBOLAKE_ENDPOINT_KEY", "from-env")
    assert InferenceClient(url, kind="azureml_online").headers()["Authorization"] == "Bearer from-env"
    with pytest.raises(ValueError, match="kind"):
        InferenceClient(url, kind="sagemaker")


def test_parse_both_answer_shapes():
    recs = [{"p_BREAK": 0.2, "p_REJECT": 0.8, "predicted": "REJECT"}]
    assert parse_predictions({"predictions": recs}).to_dict(orient="records") == recs
    assert parse_predictions(json.dumps(recs)).to_dict(orient="records") == recs
    assert list(parse_predictions({"columns": ["x"], "data": [[1]]})["x"]) == [1]


def test_tracking_for_the_local_profile(project):
    from mbolake.ml.inference_client import InferenceClient
    from mbolake.ml.tracking import artifact_root_for, tracking_uri_for
    from mbolake.runtime.config import load_profile

    profile = load_profile("local")
    uri = tracking_uri_for(profile)
    assert uri == f"sqlite:///{project.resolve()}/mlruns.db" and uri.startswith("sqlite:////")
    assert artifact_root_for(profile) == (project.resolve() / "mlartifacts").as_uri()
    c = client_for_profile(profile, url="http://127.0.0.1:5555")
    assert isinstance(c, InferenceClient) and c.kind == "mlflow_local"


@pytest.mark.slow  # a fresh MLflow sqlite store: its schema migrations take about 10 s
def test_setup_mlflow_creates_the_experiment_under_the_artifact_root(project):
    import mlflow

    from mbolake.ml.tracking import setup_mlflow
    from mbolake.runtime.config import load_profile

    old = mlflow.get_tracking_uri()
    try:
        exp_id = setup_mlflow(load_profile("local"), experiment="exp-a")
        exp = mlflow.get_experiment(exp_id)
        assert exp.artifact_location == (project.resolve() / "mlartifacts" / "exp-a").as_uri()
        assert (project / "mlruns.db").exists()
        assert setup_mlflow(load_profile("local"), experiment="exp-a") == exp_id
    finally:
        mlflow.set_tracking_uri(old)
