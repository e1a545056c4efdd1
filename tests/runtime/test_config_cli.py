"""Profiles (conf/*.yaml), the command line's parameter parsing, notebook resolution."""
from __future__ import annotations

from pathlib import Path

import pytest

from mbolake import cli
from mbolake.runtime import config, orchestrator

from tests.helpers import REPO

AZURE_VARS = {
    "MBOLAKE_LAKE_ROOT": "abfss://lake@acct.dfs.core.windows.net/lake",
    "MBOLAKE_RAW_DBN_ROOT": "abfss://lake@acct.dfs.core.windows.net/raw-dbn",
    "MBOLAKE_ML_ARTIFACTS_ROOT": "abfss://lake@acct.dfs.core.windows.net/ml",
    "MBOLAKE_RUNS_ROOT": "abfss://lake@acct.dfs.core.windows.net/runs",
    "MBOLAKE_UC_CATALOG": "mbo_prod",
    "MLFLOW_TRACKING_URI": "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/x",
    "MBOLAKE_ENDPOINT_NAME": "mbo-endpoint",
    "EVENTHUBS_NAMESPACE": "mbo-ns",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ["MBOLAKE_HOME", "MBOLAKE_PROFILE", *AZURE_VARS]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MBOLAKE_HOME", str(REPO))


def test_local_profile_paths_are_absolute_under_the_root():
    profile = config.load_profile("local")
    assert profile.name == "local"
    assert profile.root == REPO.resolve()
    assert profile.lake_root == str(REPO.resolve() / "lake")
    assert profile.raw_dbn_root == str(REPO.resolve() / "raw-dbn")
    assert profile.runs_root == str(REPO.resolve() / "runs")
    assert profile.ml_artifacts_root == str(REPO.resolve() / "ml" / "artifacts")
    for p in (profile.lake_root, profile.raw_dbn_root, profile.runs_root, profile.ml_artifacts_root):
        assert Path(p).is_absolute()
    assert profile.table_path("bronze.mbo") == f"{REPO.resolve()}/lake/bronze/mbo"
    assert profile.table_path("bronze.ingest_manifest") == f"{REPO.resolve()}/lake/bronze/ingest_manifest"
    assert profile.spark["master"] == "local[*]"
    assert profile.spark["shuffle_partitions"] == 4


def test_default_profile_and_env_selection(monkeypatch):
    assert config.load_profile().name == "local"
    monkeypatch.setenv("MBOLAKE_PROFILE", "azure")
    with pytest.raises(config.ProfileError, match="'azure'"):
        config.load_profile()


def test_project_root_found_without_mbolake_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MBOLAKE_HOME")
    monkeypatch.chdir(tmp_path)  # not a project: found from the package's own location
    assert config.project_root() == REPO.resolve()


def test_mbolake_home_root_resolves_relative_paths_and_keeps_uris(monkeypatch, tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "local.yaml").write_text(
        "lake_root: ./data/lake\nraw_dbn_root: /abs/raw\nruns_root: s3://bucket/runs\nml_artifacts_root: ml\n"
    )
    monkeypatch.setenv("MBOLAKE_HOME", str(tmp_path))
    profile = config.load_profile("local")
    assert profile.root == tmp_path.resolve()
    assert profile.lake_root == str(tmp_path.resolve() / "data" / "lake")
    assert profile.raw_dbn_root == "/abs/raw"
    assert profile.runs_root == "s3://bucket/runs"
    assert profile.table_path("silver.book") == f"{tmp_path.resolve()}/data/lake/silver/book"
    assert profile.ml_artifacts_root == str(tmp_path.resolve() / "ml")
    assert profile.spark == {}


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(config.ProfileError) as info:
        config.load_profile("staging")
    message = str(info.value)
    assert "unknown profile 'staging'" in message
    assert "known: azure, local" in message


def test_azure_profile_names_the_missing_variable(monkeypatch):
    with pytest.raises(config.ProfileError) as info:
        config.load_profile("azure")
    assert str(info.value) == "profile 'azure' needs the environment variable MBOLAKE_LAKE_ROOT"
    monkeypatch.setenv("MBOLAKE_LAKE_ROOT", AZURE_VARS["MBOLAKE_LAKE_ROOT"])
    with pytest.raises(config.ProfileError, match="MBOLAKE_RAW_DBN_ROOT"):
        config.load_profile("azure")


def test_azure_profile_resolves_from_the_environment(monkeypatch):
    for name, value in AZURE_VARS.items():
        monkeypatch.setenv(name, value)
    profile = config.load_profile("azure")
    assert profile.lake_root == AZURE_VARS["MBOLAKE_LAKE_ROOT"]
    assert profile.raw_dbn_root == AZURE_VARS["MBOLAKE_RAW_DBN_ROOT"]
    assert profile.table_path("bronze.mbo") == "abfss://lake@acct.dfs.core.windows.net/lake/bronze/mbo"
    assert profile.settings["catalog"] == "mbo_prod"
    assert profile.settings["mlflow"]["tracking_uri"] == AZURE_VARS["MLFLOW_TRACKING_URI"]
    assert profile.settings["endpoint"]["name"] == "mbo-endpoint"
    assert profile.settings["bus"]["namespace"] == "mbo-ns"
    assert profile.spark == {"master": "databricks"}
    assert "${" not in repr(profile.settings)


# --- cli ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3),
        (" 42 ", 42),
        ("-7", -7),
        ("1_000", 1000),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("none", None),
        ("null", None),
        ("2025-11-03", "2025-11-03"),
        ("ES.FUT", "ES.FUT"),
        ("", ""),
        ("a,b", "a,b"),
    ],
)
def test_parse_value(text, expected):
    value = cli.parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_parameters():
    assert cli.parse_parameters(["sessions=3", "first_date=2025-11-03", "overwrite=true", "expr=a=b", " seed =7"]) == {
        "sessions": 3,
        "first_date": "2025-11-03",
        "overwrite": True,
        "expr": "a=b",
        "seed": 7,
    }
    assert cli.parse_parameters([]) == {}
    assert cli.parse_parameters(["start_date="]) == {"start_date": ""}


@pytest.mark.parametrize("item", ["sessions", "=3", " =3"])
def test_parse_parameters_rejects_malformed(item):
    with pytest.raises(SystemExit) as info:
        cli.parse_parameters([item])
    assert repr(item) in str(info.value)
    assert "name=value" in str(info.value)


def test_parser_run_and_demo():
    args = cli.build_parser().parse_args(["run", "10_bronze", "00_setup/02_generate_sample", "-p", "a=1", "-p", "b=x", "--run-id", "r1"])
    assert args.command == "run"
    assert args.notebooks == ["10_bronze", "00_setup/02_generate_sample"]
    assert args.param == ["a=1", "b=x"]
    assert args.run_id == "r1" and args.profile is None
    demo = cli.build_parser().parse_args(["demo", "--profile", "azure"])
    assert demo.command == "demo" and demo.profile == "azure" and demo.param == []
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([])


def test_main_passes_parsed_parameters_to_the_orchestrator(monkeypatch):
    calls = []
    monkeypatch.setattr(orchestrator, "main_run", lambda *a: calls.append(a) or 0)
    assert cli.main(["run", "10_bronze", "-p", "chunk_records=20_000", "--run-id", "r2", "--no-reports"]) == 0
    assert calls == [(["10_bronze"], {"chunk_records": 20000}, "r2", None)]
    assert cli.main(["demo"]) == 0
    assert calls[-1][:4] == (orchestrator.DEMO_PIPELINE, {}, None, None)
    assert callable(calls[-1][4])  # the reports are rendered after the notebooks


# --- orchestrator.resolve_notebooks -------------------------------------------------------------

NOTEBOOKS = REPO / "notebooks"


def test_resolve_stage_folder_in_name_order():
    found = orchestrator.resolve_notebooks(["00_setup"], NOTEBOOKS)
    assert [p.relative_to(NOTEBOOKS).as_posix() for p in found] == [
        "00_setup/00_environment_check.ipynb",
        "00_setup/01_download_databento.ipynb",
        "00_setup/02_generate_sample.ipynb",
    ]


def test_resolve_keeps_the_order_given_and_accepts_names_without_suffix():
    found = orchestrator.resolve_notebooks(
        ["10_bronze", "00_setup/02_generate_sample", "00_setup/00_environment_check.ipynb"], NOTEBOOKS
    )
    assert [p.relative_to(NOTEBOOKS).as_posix() for p in found] == [
        "10_bronze/10_bronze_ingest.ipynb",
        "00_setup/02_generate_sample.ipynb",
        "00_setup/00_environment_check.ipynb",
    ]


def test_demo_pipeline_resolves():
    found = orchestrator.resolve_notebooks(orchestrator.DEMO_PIPELINE, NOTEBOOKS)
    assert [p.relative_to(NOTEBOOKS).as_posix() for p in found] == list(orchestrator.DEMO_PIPELINE)
    assert all(p.is_file() for p in found)


def test_resolve_unknown_name_is_an_error():
    with pytest.raises(FileNotFoundError) as info:
        orchestrator.resolve_notebooks(["00_setup", "15_nowhere"], NOTEBOOKS)
    assert "'15_nowhere'" in str(info.value)
    assert str(NOTEBOOKS) in str(info.value)
