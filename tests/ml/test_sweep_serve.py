"""Sweep -> register -> serve round trip on a real MLflow sqlite store (no mocks).

One synthetic snapshot (8 sessions x 30 episodes, learnable outcomes) and one sweep are
shared by the module; sweeps are tiny (max_evals 4) for a 2-core machine.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mbolake.ml.snapshot import feature_matrix, load_snapshot
from mbolake.ml.split import load_split, split_snapshot
from mbolake.sample.ml_snapshot import write_synthetic_snapshot

RUN_DATE = dt.date(2024, 6, 1)
SEED = 11
MAX_EVALS = 4

# the module-scoped sweep alone takes about a minute on 2 cores
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import mlflow

    from mbolake.ml.tracking import setup_mlflow

    root = tmp_path_factory.mktemp("ml_project")
    write_synthetic_snapshot(root / "ml" / "artifacts", run_date=RUN_DATE, n_sessions=8, episodes_per_session=30)
    snap = load_snapshot(root / "ml" / "artifacts", "ES_MODEL", RUN_DATE)
    summary = split_snapshot(snap, name="main", fractions=(0.5, 0.25, 0.25))
    uri = f"sqlite:///{root}/mlruns.db"
    old = mlflow.get_tracking_uri()
    exp_id = setup_mlflow(tracking_uri=uri, artifact_root=(root / "mlartifacts").as_uri(), experiment="sweep-test")
    yield {"root": root, "snapshot": snap, "split": summary, "uri": uri, "experiment_id": exp_id}
    mlflow.set_tracking_uri(old)


@pytest.fixture(scope="module")
def sweep(env):
    from mbolake.ml.sweep import run_sweep

    t0 = time.perf_counter()
    result = run_sweep(env["split"], max_evals=MAX_EVALS, seed=SEED, target="outcome")
    result.extra["wall"] = time.perf_counter() - t0
    return result


def test_sweep_writes_nested_trial_runs_and_keeps_the_best(env, sweep):
    from mlflow import MlflowClient

    client = MlflowClient()
    parent = client.get_run(sweep.parent_run_id)
    children = client.search_runs([env["experiment_id"]],
                                  filter_string=f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'")
    assert len(children) == MAX_EVALS == len(sweep.trial_run_ids) == len(sweep.losses)
    for child in children:
        m = child.data.metrics
        for k in ("val_log_loss", "val_macro_f1", "val_balanced_accuracy", "val_baseline_majority_macro_f1",
                  "val_baseline_majority_log_loss", "val_baseline_prior_log_loss", "val_baseline_prior_macro_f1"):
            assert k in m, k
        assert child.data.params["family"] in ("logreg", "hgb", "knn")
        arts = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert arts == {"plots/confusion_matrix.png", "plots/calibration.png"}
    best = min(children, key=lambda r: r.data.metrics["val_log_loss"])
    assert parent.data.tags["best_trial_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_log_loss"] == pytest.approx(min(sweep.losses))
    assert parent.data.params["best.family"] == sweep.best_params["family"]
    assert parent.data.params["split.train.rows"] == str(env["split"]["parts"]["train"]["rows"])
    # The outcome is learnable: the best beats the label-prior baseline on val and on test.
    assert sweep.best_val_metrics["val_log_loss"] < sweep.best_val_metrics["val_baseline_prior_log_loss"]
    assert sweep.test_metrics["test_macro_f1"] > sweep.test_metrics["test_baseline_majority_macro_f1"] + 0.2
    assert "test_log_loss" in parent.data.metrics


def test_logged_model_has_signature_example_and_layout(env, sweep):
    import mlflow

    from mbolake.features.setup_vector import SETUP_V3_LAYOUT

    info = mlflow.models.get_model_info(sweep.model_uri)
    assert info.signature.inputs.input_names() == list(SETUP_V3_LAYOUT)
    assert [p.name for p in info.signature.params] == ["k_similar"]
    assert info.saved_input_example_info is not None
    assert info.metadata["feature_set"] == "setup_v3"
    local = mlflow.artifacts.download_artifacts(f"runs:/{sweep.parent_run_id}/model_info.json")
    assert json.loads(Path(local).read_text())["feature_layout"] == list(SETUP_V3_LAYOUT)
    model = mlflow.pyfunc.load_model(sweep.model_uri)
    test = load_split(env["split"])["test"]
    X = feature_matrix(test, env["snapshot"].feature_layout)
    out = model.predict(X.head(4), params={"k_similar": 3})
    probs = out[["p_BREAK", "p_CHOP", "p_REJECT"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    train_val = set(load_split(env["split"])["train"]["episode_id"]) | set(load_split(env["split"])["val"]["episode_id"])
    for similar in out["similar_setups"]:
        assert len(similar) == 3
        assert set(similar[0]) == {"episode_id", "session_date", "level_type", "approach_direction", "outcome",
                                   "distance"}
        assert all(s["episode_id"] in train_val for s in similar)  # history only, never the test rows
        assert [s["distance"] for s in similar] == sorted(s["distance"] for s in similar)
    assert "similar_setups" not in model.predict(X.head(2)).columns


def test_same_snapshot_and_seed_give_the_same_best(env, sweep):
    from mbolake.ml.sweep import run_sweep

    again = run_sweep(env["split"], max_evals=MAX_EVALS, seed=SEED, target="outcome", plots=False,
                      log_split=False)
    assert again.parent_run_id != sweep.parent_run_id
    assert again.best_params == sweep.best_params
    assert again.losses == sweep.losses
    assert again.best_val_metrics == sweep.best_val_metrics
    assert again.test_metrics == sweep.test_metrics


def test_binary_break_vs_reject_drops_chop(env):
    from mbolake.ml.sweep import run_sweep

    r = run_sweep(env["split"], max_evals=2, seed=3, target="break_vs_reject", plots=False, log_split=False)
    assert r.classes == ["BREAK", "REJECT"]
    import mlflow

    out = mlflow.pyfunc.load_model(r.model_uri).predict(env["snapshot"].X().head(3))
    assert [c for c in out.columns if c.startswith("p_")] == ["p_BREAK", "p_REJECT"]
    with pytest.raises(ValueError, match="unknown target"):
        run_sweep(env["split"], max_evals=1, target="direction")


def test_register_champion_with_tags(env, sweep):
    from mlflow import MlflowClient

    from mbolake.ml.registry import register_best

    version = register_best(sweep)
    client = MlflowClient()
    assert version.name == "ES_MODEL_setup_v3"
    champ = client.get_model_version_by_alias("ES_MODEL_setup_v3", "champion")
    assert champ.version == version.version
    tags = champ.tags
    assert tags["feature_set"] == "setup_v3"
    assert tags["snapshot"] == str(env["snapshot"].path)
    assert tags["data_version"] == env["snapshot"].data_version
    assert float(tags["test_log_loss"]) == pytest.approx(sweep.test_metrics["test_log_loss"], rel=1e-5)
    assert "test_macro_f1" in tags


@pytest.mark.serve
def test_serving_round_trip_over_http(env, sweep):
    from mlflow import MlflowClient

    from mbolake.ml.registry import champion_uri, register_best
    from mbolake.ml.serve import serving_round_trip

    try:
        MlflowClient().get_model_version_by_alias("ES_MODEL_setup_v3", "champion")
    except Exception:
        register_best(sweep)
    test = load_split(env["split"])["test"]
    X = feature_matrix(test, env["snapshot"].feature_layout)
    t0 = time.perf_counter()
    rt = serving_round_trip(champion_uri("ES_MODEL_setup_v3"), env["uri"], X, k_similar=5,
                            log_dir=env["root"] / "serve_logs")
    elapsed = time.perf_counter() - t0
    assert rt.rows == len(X) and rt.equal, (rt.max_abs_diff, rt.predictions_http.head())
    assert rt.max_abs_diff <= 1e-9
    assert all(len(s) == 5 for s in rt.predictions_http["similar_setups"])
    assert {"episode_id", "session_date", "level_type", "approach_direction", "outcome", "distance"} == \
        set(rt.predictions_http["similar_setups"][0][0])
    # The server is gone afterwards.
    with pytest.raises(OSError):
        urllib.request.urlopen(rt.url + "/ping", timeout=2)
    print(f"serving round trip: {elapsed:.1f}s (startup {rt.seconds_startup:.1f}s, scoring {rt.seconds_scoring:.2f}s)")


def test_sweep_on_walk_forward_folds(env):
    import mlflow

    from mbolake.ml.sweep import run_sweep

    r = run_sweep(env["split"], max_evals=2, seed=5, n_folds=2, plots=False, log_split=False)
    parent = mlflow.get_run(r.parent_run_id)
    assert parent.data.params["n_folds"] == "2"
    assert set(r.best_val_metrics) >= {"val_log_loss", "val_macro_f1", "val_baseline_prior_log_loss"}
    assert len(r.trial_run_ids) == 2
