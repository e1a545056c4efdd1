"""Register the sweep's best model (alias ``champion``) with its lineage as tags."""
from __future__ import annotations

from typing import Mapping

CHAMPION = "champion"


def registered_model_name(model_id: str, feature_set: str, target: str = "outcome") -> str:
    """``ES_MODEL_setup_v3`` for the 3-class outcome; ``..._break_vs_reject`` for the binary task."""
    name = f"{model_id}_{feature_set}"
    return name if target == "outcome" else f"{name}_{target}"


def register_best(result, name: str | None = None, alias: str = CHAMPION, extra_tags: Mapping | None = None,
                  await_seconds: int = 60):
    """Register ``result.model_uri`` (a :class:`~mbolake.ml.sweep.SweepResult`), point ``alias`` at it.

    Tags on the version: feature_set, snapshot, split, data_version, target, parent run id,
    best family and every test metric. Returns the ``ModelVersion``.
    """
    import mlflow
    from mlflow import MlflowClient

    model_id = result.extra.get("model_id") or _model_id_from_snapshot(result.snapshot)
    name = name or registered_model_name(model_id, result.feature_set, result.target)
    tags = {"feature_set": result.feature_set, "snapshot": result.snapshot, "split": result.split_name,
            "data_version": result.data_version, "target": result.target, "classes": ",".join(result.classes),
            "sweep_run_id": result.parent_run_id, "family": str(result.best_params.get("family")),
            **{k: f"{v:.6g}" for k, v in result.test_metrics.items()}, **dict(extra_tags or {})}
    tags = {k: str(v) for k, v in tags.items()}
    version = mlflow.register_model(result.model_uri, name, tags=tags, await_registration_for=await_seconds)
    client = MlflowClient()
    client.set_registered_model_tag(name, "feature_set", result.feature_set)
    client.set_registered_model_tag(name, "target", result.target)
    client.set_registered_model_alias(name, alias, version.version)
    return client.get_model_version(name, version.version)


def champion_uri(name: str, alias: str = CHAMPION) -> str:
    return f"models:/{name}@{alias}"


def _model_id_from_snapshot(snapshot: str) -> str:
    from pathlib import Path

    return Path(snapshot).parent.name
