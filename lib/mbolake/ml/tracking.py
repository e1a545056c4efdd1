"""MLflow set-up for a profile (DESIGN.md §3): local = sqlite store + ./mlartifacts."""
from __future__ import annotations

import logging

import mlflow

DEFAULT_EXPERIMENT = "mbolake-setup-models"


def tracking_uri_for(profile) -> str:
    """The profile's tracking URI (``Profile.mlflow_tracking_uri``)."""
    return profile.mlflow_tracking_uri


def artifact_root_for(profile) -> str | None:
    """The profile's artifact root URI (``Profile.mlflow_artifact_root``), or None."""
    return profile.mlflow_artifact_root


def setup_mlflow(profile=None, experiment: str = DEFAULT_EXPERIMENT, tracking_uri: str | None = None,
                 artifact_root: str | None = None) -> str:
    """Point MLflow at the profile's store and make ``experiment`` current; returns its id.

    A new experiment's artifacts go to ``<artifact_root>/<experiment>`` (local profile:
    ``./mlartifacts``); on Azure ML the workspace decides.
    """
    if profile is None and tracking_uri is None:
        from ..runtime.config import load_profile
        profile = load_profile()
    uri = tracking_uri or tracking_uri_for(profile)
    if artifact_root is None and profile is not None:
        artifact_root = artifact_root_for(profile)
    # MLflow logs at INFO by default (store creation, input-example validation): in a notebook
    # those land as stderr cells; its warnings and errors still show.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if artifact_root:
            location = artifact_root.rstrip("/") + "/" + experiment
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id
