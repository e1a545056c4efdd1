"""The sweep report: the trials of the latest Hyperopt sweep in MLflow (loss over time,
parameters against loss per model family), the best trial against the baselines, the
champion's confusion matrix and calibration on test, its tags and lineage."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..runtime.config import Profile
from .paths import display_path

CLASSES = ("BREAK", "CHOP", "REJECT")
PATH_TAGS = ("snapshot",)  # tags holding a path of the machine that trained the model


def client(profile: Profile):
    """An MLflow client on the profile's store (``None`` when the store does not exist yet)."""
    import mlflow

    uri = profile.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def champion(mlflow_client, model_id: str):
    from .validation import champion_name

    try:
        return mlflow_client.get_model_version_by_alias(champion_name(model_id), "champion")
    except Exception:
        return None


def trials(mlflow_client, parent_run_id: str) -> pd.DataFrame:
    """The nested trial runs of one sweep: start time, family, parameters, validation metrics."""
    import mlflow

    runs = mlflow.search_runs(experiment_ids=[mlflow_client.get_run(parent_run_id).info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", order_by=["start_time"])
    if runs.empty:
        return runs
    runs = runs.rename(columns=lambda c: c.replace("params.", "").replace("metrics.", ""))
    runs.insert(0, "trial", range(1, len(runs) + 1))
    return runs


def loss_column(frame: pd.DataFrame) -> str:
    for name in ("val_log_loss", "log_loss", "loss"):
        if name in frame.columns:
            return name
    return next(c for c in frame.columns if "loss" in c)


def plot_loss(frame: pd.DataFrame):
    import plotly.express as px

    loss = loss_column(frame)
    frame = frame.assign(best_so_far=frame[loss].cummin())
    fig = px.scatter(frame, x="trial", y=loss, color="family" if "family" in frame else None,
                     title="Trials: validation log loss over time (line: best so far)")
    fig.add_scatter(x=frame["trial"], y=frame["best_so_far"], mode="lines", name="best so far")
    return fig


def plot_params(frame: pd.DataFrame):
    """Each numeric parameter against the loss, one panel per parameter, coloured by family."""
    import plotly.express as px

    loss = loss_column(frame)
    skip = {"trial", loss, "family"}
    params = [c for c in frame.columns if c not in skip and not c.startswith(("tags.", "run_id", "experiment_id",
              "status", "artifact_uri", "start_time", "end_time", "val_", "test_", "baseline"))]
    numeric = [c for c in params if pd.to_numeric(frame[c], errors="coerce").notna().any()]
    long = frame.melt(id_vars=["trial", "family", loss] if "family" in frame else ["trial", loss],
                      value_vars=numeric, var_name="parameter")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return px.scatter(long.dropna(subset=["value"]), x="value", y=loss, color="family" if "family" in long else None,
                      facet_col="parameter", facet_col_wrap=3, title="Parameters against loss per model family")


def metrics_table(parent_metrics: dict) -> pd.DataFrame:
    """One row per metric; columns: validation (best trial), test (refit champion) and the
    majority-class and label-prior baselines on each."""
    rows: dict[str, dict] = {}
    for key, value in parent_metrics.items():
        if key.startswith("best_val_"):
            part, rest = "validation", key[len("best_val_"):]
        elif key.startswith("test_"):
            part, rest = "test", key[len("test_"):]
        else:
            continue
        column = part
        for prefix, name in (("baseline_majority_", "majority class"), ("baseline_prior_", "label prior")):
            if rest.startswith(prefix):
                rest, column = rest[len(prefix):], f"{name} ({part})"
        rows.setdefault(rest, {})[column] = float(value)
    columns = ["validation", "majority class (validation)", "label prior (validation)", "test", "majority class (test)",
               "label prior (test)"]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns).rename_axis("metric").reset_index()


def tags_table(version, root) -> pd.DataFrame:
    """The champion's tags, sorted; a path (``snapshot``) relative to the project ``root``."""
    rows = [(k, display_path(v, root) if k in PATH_TAGS else v) for k, v in sorted(version.tags.items())]
    return pd.DataFrame(rows, columns=["tag", "value"])


def test_predictions(version):
    """(true labels, class probabilities, predicted labels) of the champion on its snapshot's test split."""
    import mlflow.pyfunc

    from ..ml.snapshot import feature_matrix, load_snapshot_dir
    from ..ml.split import load_split

    snapshot = load_snapshot_dir(version.tags["snapshot"])
    test = load_split(Path(snapshot.path) / "splits" / version.tags.get("split", "default"))["test"]
    model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    out = model.predict(feature_matrix(test, snapshot.feature_layout))
    proba = out[[c for c in out.columns if c.startswith("p_")]].rename(columns=lambda c: c[2:])
    return test["outcome"].to_numpy(), proba, out["predicted"].to_numpy()


def plot_confusion(y_true, y_pred, classes):
    import plotly.express as px
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(classes))
    return px.imshow(matrix, x=list(classes), y=list(classes), text_auto=True, color_continuous_scale="Blues",
                     labels={"x": "predicted", "y": "true"}, title="Champion on test: confusion matrix")


def plot_calibration(y_true, proba: pd.DataFrame, bins: int = 5):
    import numpy as np
    import plotly.express as px

    rows = []
    for cls in proba.columns:
        p = proba[cls].to_numpy(dtype=float)
        edges = np.linspace(0, 1, bins + 1)
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        for b in range(bins):
            mask = which == b
            if mask.any():
                rows.append({"class": cls, "predicted": p[mask].mean(), "observed": (y_true[mask] == cls).mean(),
                             "n": int(mask.sum())})
    fig = px.line(pd.DataFrame(rows), x="predicted", y="observed", color="class", markers=True,
                  title="Champion on test: calibration (observed frequency per predicted-probability bin)")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="grey"))
    return fig
