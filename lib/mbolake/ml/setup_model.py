"""The served setup-outcome model (MLflow "models from code"; self-contained on purpose).

This file is copied into every logged model, so it imports only mlflow, numpy, pandas,
scikit-learn and joblib -- never ``mbolake`` -- and loads the same way under
``mlflow models serve`` and an Azure ML no-code deployment.

``predict(frame, params={"k_similar": k})`` returns one row per input row: ``p_<CLASS>``
probabilities (a column per class), ``predicted`` and, when ``k > 0``, ``similar_setups``:
the k nearest historical setups of the training data (episode_id, session_date,
level_type, approach_direction, outcome, distance) in the model's scaled feature space.
"""
from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

MAX_K_SIMILAR = 100


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class SetupOutcomeModel(PythonModel):
    def load_context(self, context):
        from sklearn.neighbors import NearestNeighbors

        art = context.artifacts
        self.pipeline = joblib.load(art["pipeline"])
        with open(art["model_info"]) as f:
            info = json.load(f)
        self.layout = list(info["feature_layout"])
        self.classes = [str(c) for c in self.pipeline.classes_]
        self.neighbors_X = np.load(art["neighbors_X"])
        meta = pd.read_parquet(art["neighbors_meta"])
        self.neighbors_meta = [{k: _plain(v) for k, v in row.items()} for row in meta.to_dict(orient="records")]
        self._nn = NearestNeighbors(algorithm="brute").fit(self.neighbors_X)

    def _frame(self, model_input) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            missing = [c for c in self.layout if c not in model_input.columns]
            if missing:
                raise ValueError(f"input lacks {len(missing)} feature column(s), e.g. {missing[:3]}")
            return model_input[self.layout].astype("float64")
        return pd.DataFrame(np.asarray(model_input, dtype="float64"), columns=self.layout)

    # A pandas type hint tells MLflow the input is a frame (its schema comes from the logged
    # signature); without one MLflow warns on every load that the hints are missing.
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        X = self._frame(model_input)
        proba = self.pipeline.predict_proba(X)
        out = pd.DataFrame({f"p_{c}": proba[:, i] for i, c in enumerate(self.classes)})
        out["predicted"] = [self.classes[i] for i in np.argmax(proba, axis=1)]
        k = int((params or {}).get("k_similar") or 0)
        if k < 0 or k > MAX_K_SIMILAR:
            raise ValueError(f"k_similar must be within 0..{MAX_K_SIMILAR}, got {k}")
        if k > 0:
            Z = self.pipeline[:-1].transform(X)
            k = min(k, len(self.neighbors_meta))
            dist, idx = self._nn.kneighbors(np.asarray(Z, dtype="float64"), n_neighbors=k)
            out["similar_setups"] = [
                [{**self.neighbors_meta[j], "distance": float(d)} for d, j in zip(drow, irow)]
                for drow, irow in zip(dist, idx)
            ]
        return out


set_model(SetupOutcomeModel())
