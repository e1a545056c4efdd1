"""Offline validation of the Azure ML definitions in deploy/azureml (no workspace calls)."""
from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

DEPLOY = REPO / "deploy" / "azureml"


def _refs(command: str, kind: str) -> set[str]:
    return set(re.findall(r"\$\{\{" + kind + r"\.([A-Za-z_][A-Za-z0-9_]*)\}\}", command))


@pytest.mark.parametrize("name,notebook", [("split_job.yml", "41_split.ipynb"), ("sweep_job.yml", "42_sweep.ipynb")])
def test_command_jobs_load_and_validate(name, notebook):
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import Command

    job = load_job(DEPLOY / name)
    assert isinstance(job, Command)
    assert job._validate().passed
    assert "papermill" in job.command and f"notebooks/40_ml/{notebook}" in job.command
    assert _refs(job.command, "inputs") <= set(job.inputs)
    assert _refs(job.command, "outputs") <= set(job.outputs)
    data_inputs = [i for i in job.inputs.values() if getattr(i, "type", None) == "uri_folder"]
    # Registered data assets (``azureml:<name>@latest``; the SDK keeps ``<name>@latest``), no storage URL.
    assert data_inputs and all(str(i.path).endswith("@latest") and "://" not in str(i.path) for i in data_inputs)
    assert job.environment_variables["MLFLOW_EXPERIMENT_NAME"] == "mbolake-setup-models"
    assert "MLFLOW_TRACKING_URI" not in job.environment_variables  # Azure ML injects the workspace URI


def test_sweep_wrapper_loads():
    from azure.ai.ml import load_job
    from azure.ai.ml.sweep import SweepJob

    job = load_job(DEPLOY / "sweep_wrapper.yml")
    assert isinstance(job, SweepJob)
    assert job.objective.primary_metric == "best_val_log_loss" and job.objective.goal == "minimize"
    assert set(job.search_space) == {"target", "seed"}
    assert set(job.search_space["target"].values) == {"outcome", "break_vs_reject"}
    assert _refs(job.trial.command, "search_space") == set(job.search_space)
    assert _refs(job.trial.command, "inputs") <= set(job.inputs)
    assert job.limits.max_total_trials == 4


def test_endpoint_and_no_code_deployment_load():
    from azure.ai.ml import load_online_deployment, load_online_endpoint
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    endpoint = load_online_endpoint(DEPLOY / "endpoint.yml")
    assert isinstance(endpoint, ManagedOnlineEndpoint) and endpoint.auth_mode == "key"
    deployment = load_online_deployment(DEPLOY / "deployment.yml")
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert deployment.endpoint_name == endpoint.name
    assert str(deployment.model).removeprefix("azureml:").startswith("ES_MODEL_setup_v3")
    # No-code MLflow deployment: neither a scoring script nor an environment.
    assert deployment.code_configuration is None and deployment.environment is None


def test_environment_points_at_the_project_conda_file():
    from azure.ai.ml import load_environment

    env = load_environment(DEPLOY / "environment.yml")
    assert env.name == "mbolake-ml" and env.image
    assert (DEPLOY / "../../environment.yml").resolve().exists()


def test_no_account_names_in_definitions():
    text = "\n".join(p.read_text() for p in DEPLOY.glob("*.yml"))
    assert not re.search(r"subscriptions/|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-|\.blob\.core|\.dfs\.core|key:\s*\S{20,}",
                         text)
