"""Hyperopt (TPE) sweep over model families in one search space (FEATURES.md §6).

Families: logistic regression, histogram gradient boosting and k-nearest neighbours
("similar setups"); each is the last step of a Pipeline(impute -> StandardScaler -> model)
fitted on training rows only. Every trial is a nested MLflow run with its parameters,
validation metrics, baselines and plots; the parent run keeps the best. The best
configuration is refit on train + val, evaluated once on test and logged as an MLflow
pyfunc model (``setup_model.py``) that returns class probabilities and, on request, the
k most similar historical setups.
"""
from __future__ import annotations

import importlib.metadata as md
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .snapshot import META_COLUMNS, feature_matrix
from .split import PARTS, load_split, log_split_to_mlflow, walk_forward_folds

TARGETS = {"outcome": ("BREAK", "CHOP", "REJECT"), "break_vs_reject": ("BREAK", "REJECT")}
FAMILIES = ("logreg", "hgb", "knn")
MODEL_FILE = Path(__file__).with_name("setup_model.py")
METRICS = ("log_loss", "macro_f1", "balanced_accuracy")


# ----------------------------------------------------------------------------- data

def target_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows usable for ``target`` (``break_vs_reject`` drops CHOP), with label_complete only."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(TARGETS)}")
    rows = frame
    if "label_complete" in rows:
        rows = rows[rows["label_complete"].astype(bool)]
    rows = rows[rows["outcome"].isin(TARGETS[target])]
    return rows.reset_index(drop=True)


# ----------------------------------------------------------------------------- models

def search_space():
    from hyperopt import hp
    from hyperopt.pyll import scope

    return hp.choice("family", [
        {"family": "logreg",
         "C": hp.loguniform("logreg_C", math.log(1e-3), math.log(10.0)),
         "class_weight": hp.choice("logreg_class_weight", [None, "balanced"])},
        {"family": "hgb",
         "learning_rate": hp.loguniform("hgb_learning_rate", math.log(0.02), math.log(0.3)),
         "max_iter": scope.int(hp.quniform("hgb_max_iter", 25, 150, 25)),
         "max_leaf_nodes": scope.int(hp.quniform("hgb_max_leaf_nodes", 7, 31, 8)),
         "min_samples_leaf": scope.int(hp.quniform("hgb_min_samples_leaf", 10, 40, 10)),
         "l2_regularization": hp.loguniform("hgb_l2_regularization", math.log(1e-4), math.log(1.0))},
        {"family": "knn",
         "n_neighbors": scope.int(hp.quniform("knn_n_neighbors", 5, 50, 5)),
         "weights": hp.choice("knn_weights", ["uniform", "distance"])},
    ])


def build_pipeline(params: Mapping, seed: int = 0, n_train: int | None = None):
    """Pipeline(impute -> scale -> model) for one point of the search space."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    family = params["family"]
    if family == "logreg":
        model = LogisticRegression(C=float(params["C"]), class_weight=params.get("class_weight"), max_iter=2000,
                                   random_state=seed)
    elif family == "hgb":
        model = HistGradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]), max_iter=int(params["max_iter"]),
            max_leaf_nodes=int(params["max_leaf_nodes"]), min_samples_leaf=int(params["min_samples_leaf"]),
            l2_regularization=float(params["l2_regularization"]), early_stopping=False, random_state=seed)
    elif family == "knn":
        k = int(params["n_neighbors"])
        if n_train is not None:
            k = max(1, min(k, n_train))
        model = KNeighborsClassifier(n_neighbors=k, weights=params["weights"], algorithm="brute")
    else:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()), ("model", model)])


def aligned_proba(pipeline, X, classes) -> np.ndarray:
    """predict_proba with a column per ``classes`` (zeros for a class unseen in training)."""
    raw = pipeline.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    pos = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(pipeline.classes_):
        out[:, pos[c]] = raw[:, j]
    return out


# ----------------------------------------------------------------------------- metrics

def _clip(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-15, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def classification_metrics(y_true, proba: np.ndarray, classes) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss

    classes = list(classes)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    return {"log_loss": float(log_loss(y_true, _clip(proba), labels=classes)),
            "macro_f1": float(f1_score(y_true, pred, labels=classes, average="macro", zero_division=0)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, pred))}


def baseline_metrics(y_train, y_eval, classes) -> dict[str, float]:
    """Majority-class (one-hot) and label-prior (train frequencies) baselines on ``y_eval``."""
    classes = list(classes)
    counts = pd.Series(list(y_train)).value_counts()
    prior = np.array([counts.get(c, 0) for c in classes], dtype=float)
    prior = prior / prior.sum()
    majority = np.zeros_like(prior)
    majority[int(np.argmax(prior))] = 1.0
    n = len(y_eval)
    out = {}
    for name, p in (("majority", majority), ("prior", prior)):
        m = classification_metrics(y_eval, np.tile(p, (n, 1)), classes)
        out.update({f"baseline_{name}_{k}": v for k, v in m.items()})
    return out


def _figures(y_true, proba, classes, title: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import ConfusionMatrixDisplay

    classes = list(classes)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    cm_fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, pred, labels=classes, ax=ax, colorbar=False)
    ax.set_title(f"confusion matrix - {title}")
    cm_fig.tight_layout()
    cal_fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    y = np.asarray(y_true)
    for i, c in enumerate(classes):
        if (y == c).any() and (y != c).any():
            frac, mean = calibration_curve(y == c, proba[:, i], n_bins=5, strategy="quantile")
            ax.plot(mean, frac, marker="o", label=str(c))
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"calibration (one vs rest) - {title}")
    ax.legend(loc="best", fontsize=8)
    cal_fig.tight_layout()
    return cm_fig, cal_fig


def log_plots(y_true, proba, classes, prefix: str, title: str) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    cm_fig, cal_fig = _figures(y_true, proba, classes, title)
    try:
        mlflow.log_figure(cm_fig, f"{prefix}/confusion_matrix.png")
        mlflow.log_figure(cal_fig, f"{prefix}/calibration.png")
    finally:
        plt.close(cm_fig)
        plt.close(cal_fig)


# ----------------------------------------------------------------------------- sweep

@dataclass
class SweepResult:
    parent_run_id: str
    experiment_id: str
    target: str
    classes: list[str]
    best_params: dict
    best_val_metrics: dict
    test_metrics: dict
    model_uri: str
    logged_model_id: str | None
    trial_run_ids: list[str]
    losses: list[float]
    feature_set: str
    data_version: str
    snapshot: str
    split_name: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _flat_params(params: Mapping) -> dict:
    return {k: ("None" if v is None else v) for k, v in params.items()}


def _pip_requirements() -> list[str]:
    reqs = []
    for dist in ("mlflow", "scikit-learn", "pandas", "numpy", "pyarrow", "joblib"):
        try:
            reqs.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:  # pragma: no cover
            reqs.append(dist)
    return reqs


def run_sweep(split: Mapping | str | Path, max_evals: int = 30, seed: int = 0, target: str = "outcome",
              n_folds: int | None = None, run_name: str | None = None, plots: bool = True,
              log_split: bool = True, k_similar_example: int = 5) -> SweepResult:
    """Sweep, refit the best on train + val, evaluate once on test and log the model.

    ``split`` is a split summary (``split_snapshot``'s answer) or its folder. With
    ``n_folds`` the trials score on walk-forward folds over the train + val sessions
    (mean of the folds), else on the val part. MLflow must be set up (``tracking.setup_mlflow``).
    """
    import mlflow
    from hyperopt import STATUS_OK, Trials, fmin, space_eval, tpe

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(TARGETS)}")
    if max_evals < 1:
        raise ValueError(f"max_evals must be >= 1, got {max_evals}")
    started = time.perf_counter()
    if not isinstance(split, Mapping):
        split = json.loads((Path(split) / "split.json").read_text())
    summary = split
    manifest = json.loads((Path(summary["snapshot"]) / "manifest.json").read_text())
    layout = list(manifest["feature_layout"])
    feature_set = str(manifest.get("feature_set", ""))
    raw_parts = load_split(summary)
    parts = {p: target_rows(raw_parts[p], target) for p in PARTS}
    for p in PARTS:
        if parts[p].empty:
            raise ValueError(f"split part {p!r} has no rows for target {target!r}")
    classes = [c for c in TARGETS[target]]
    X = {p: feature_matrix(parts[p], layout) for p in PARTS}
    y = {p: parts[p]["outcome"].to_numpy() for p in PARTS}

    if n_folds:
        trval = pd.concat([parts["train"], parts["val"]], ignore_index=True)
        Xtv = pd.concat([X["train"], X["val"]], ignore_index=True)
        ytv = trval["outcome"].to_numpy()
        folds = []
        for tr_s, va_s in walk_forward_folds(trval["session_date"].unique(), n_folds):
            tr = trval["session_date"].isin(set(tr_s)).to_numpy()
            va = trval["session_date"].isin(set(va_s)).to_numpy()
            folds.append((Xtv[tr], ytv[tr], Xtv[va], ytv[va]))
    else:
        folds = [(X["train"], y["train"], X["val"], y["val"])]

    space = search_space()
    trial_runs: list[str] = []

    with mlflow.start_run(run_name=run_name or f"sweep-{summary['model_id']}-{target}-seed{seed}",
                          nested=mlflow.active_run() is not None) as parent:
        mlflow.set_tags({"mbolake.kind": "sweep", "model_id": summary["model_id"], "feature_set": feature_set,
                         "data_version": summary["data_version"], "snapshot": summary["snapshot"],
                         "split": summary["name"], "target": target})
        mlflow.log_params({"max_evals": max_evals, "seed": seed, "target": target, "n_folds": n_folds or 0,
                           "classes": ",".join(classes), "feature_set": feature_set, "n_features": len(layout)})
        if log_split:
            log_split_to_mlflow(summary, raw_parts)

        def objective(params):
            n = len(trial_runs)
            with mlflow.start_run(run_name=f"trial-{n:03d}-{params['family']}", nested=True) as run:
                trial_runs.append(run.info.run_id)
                mlflow.log_params(_flat_params(params))
                mlflow.set_tag("trial", n)
                fold_metrics = []
                last = None
                for Xtr, ytr, Xva, yva in folds:
                    pipe = build_pipeline(params, seed=seed, n_train=len(Xtr)).fit(Xtr, ytr)
                    proba = aligned_proba(pipe, Xva, classes)
                    fold_metrics.append({**classification_metrics(yva, proba, classes),
                                         **baseline_metrics(ytr, yva, classes)})
                    last = (yva, proba)
                metrics = {f"val_{k}": float(np.mean([m[k] for m in fold_metrics])) for k in fold_metrics[0]}
                mlflow.log_metrics(metrics)
                if plots:
                    log_plots(last[0], last[1], classes, "plots", f"trial {n} {params['family']}")
            return {"loss": metrics["val_log_loss"], "status": STATUS_OK, "run_id": run.info.run_id,
                    "metrics": metrics}

        trials = Trials()
        fmin(objective, space, algo=tpe.suggest, max_evals=max_evals, trials=trials,
             rstate=np.random.default_rng(seed), show_progressbar=False)
        best_trial = trials.best_trial
        best_params = space_eval(space, {k: v[0] for k, v in best_trial["misc"]["vals"].items() if v})
        best_val = dict(best_trial["result"]["metrics"])
        mlflow.log_params({f"best.{k}": v for k, v in _flat_params(best_params).items()})
        mlflow.log_metrics({f"best_{k}": v for k, v in best_val.items()})
        mlflow.set_tag("best_trial_run_id", best_trial["result"]["run_id"])

        # Refit on train + val, evaluate once on test.
        Xtv = pd.concat([X["train"], X["val"]], ignore_index=True)
        ytv = np.concatenate([y["train"], y["val"]])
        final = build_pipeline(best_params, seed=seed, n_train=len(Xtv)).fit(Xtv, ytv)
        test_proba = aligned_proba(final, X["test"], classes)
        test_metrics = {f"test_{k}": v for k, v in {**classification_metrics(y["test"], test_proba, classes),
                                                     **baseline_metrics(ytv, y["test"], classes)}.items()}
        mlflow.log_metrics(test_metrics)
        if plots:
            log_plots(y["test"], test_proba, classes, "test_plots", f"test {best_params['family']}")
        meta = pd.concat([parts["train"], parts["val"]], ignore_index=True)[list(META_COLUMNS)].copy()
        model_info = _log_model(final, Xtv, meta, X["test"], layout, feature_set, classes, target, summary,
                                best_params, test_metrics, k_similar_example)
        mlflow.set_tag("model_uri", model_info.model_uri)
        result = SweepResult(
            parent_run_id=parent.info.run_id, experiment_id=parent.info.experiment_id, target=target,
            classes=classes, best_params=dict(best_params), best_val_metrics=best_val, test_metrics=test_metrics,
            model_uri=model_info.model_uri, logged_model_id=getattr(model_info, "model_id", None),
            trial_run_ids=list(trial_runs), losses=[float(t["result"]["loss"]) for t in trials.trials],
            feature_set=feature_set, data_version=summary["data_version"], snapshot=summary["snapshot"],
            split_name=summary["name"], extra={"model_id": summary["model_id"]})
        result.seconds = time.perf_counter() - started
        mlflow.log_metric("sweep_seconds", result.seconds)
    return result


def _log_model(pipeline, X_hist: pd.DataFrame, meta: pd.DataFrame, X_test: pd.DataFrame, layout, feature_set,
               classes, target, summary, best_params, test_metrics, k_example):
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    meta = meta.copy()
    meta["session_date"] = meta["session_date"].astype(str)
    meta["approach_direction"] = meta["approach_direction"].astype("int64")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        joblib.dump(pipeline, tmp / "pipeline.joblib")
        np.save(tmp / "neighbors_X.npy", np.asarray(pipeline[:-1].transform(X_hist), dtype="float64"))
        meta.reset_index(drop=True).to_parquet(tmp / "neighbors_meta.parquet", index=False)
        info = {"feature_set": feature_set, "feature_layout": list(layout), "classes": list(classes),
                "target": target, "model_id": summary["model_id"], "data_version": summary["data_version"],
                "snapshot": summary["snapshot"], "split": summary["name"], "best_params": _flat_params(best_params),
                "history_rows": int(len(meta))}
        (tmp / "model_info.json").write_text(json.dumps(info, indent=2))
        artifacts = {"pipeline": str(tmp / "pipeline.joblib"), "neighbors_X": str(tmp / "neighbors_X.npy"),
                     "neighbors_meta": str(tmp / "neighbors_meta.parquet"),
                     "model_info": str(tmp / "model_info.json")}
        example = X_test.head(3).reset_index(drop=True)
        # The signature's output comes from the real model (with similar setups requested).
        from mlflow.pyfunc import PythonModelContext

        from .setup_model import SetupOutcomeModel

        probe = SetupOutcomeModel()
        probe.load_context(PythonModelContext(artifacts=artifacts, model_config={}))
        out = probe.predict(None, example, params={"k_similar": k_example})
        signature = infer_signature(example, out, params={"k_similar": 0})
        mlflow.log_dict(info, "model_info.json")
        model_info = mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_FILE), artifacts=artifacts, signature=signature,
            input_example=example, pip_requirements=_pip_requirements(),
            metadata={"feature_set": feature_set, "target": target, "classes": list(classes),
                      "data_version": summary["data_version"]})
    try:
        mlflow.set_logged_model_tags(model_info.model_id, {"feature_set": feature_set, "target": target,
                                                           "data_version": summary["data_version"],
                                                           "snapshot": summary["snapshot"]})
    except Exception:  # pragma: no cover - older stores without logged-model tags
        pass
    return model_info
