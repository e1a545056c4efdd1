"""One client for both endpoints of DESIGN.md §3.

* ``mlflow_local``: ``mlflow models serve`` -> ``POST {url}/invocations`` with
  ``{"dataframe_split": {...}, "params": {...}}``; answer ``{"predictions": [...]}``.
* ``azureml_online``: an Azure ML managed online endpoint (MLflow no-code deployment) ->
  ``POST {scoring_uri}`` with ``{"input_data": {"columns", "index", "data"}, "params": {...}}``,
  ``Authorization: Bearer <key>`` and optionally ``azureml-model-deployment``.

The key comes from the caller or the environment (``MBOLAKE_ENDPOINT_KEY``), never from code.
"""
from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

KINDS = ("mlflow_local", "azureml_online")


class InferenceError(RuntimeError):
    pass


def _cell(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN; the model's imputer fills missing values
    return v


def split_payload(frame: pd.DataFrame) -> dict:
    return {"columns": [str(c) for c in frame.columns], "index": [_cell(i) for i in frame.index],
            "data": [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]}


@dataclass
class InferenceClient:
    url: str
    kind: str = "mlflow_local"
    api_key: str | None = None
    deployment: str | None = None
    timeout: float = 60.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown endpoint kind {self.kind!r}; choose one of {KINDS}")
        if self.kind == "azureml_online" and self.api_key is None:
            self.api_key = os.environ.get("MBOLAKE_ENDPOINT_KEY")

    @property
    def scoring_url(self) -> str:
        if self.kind == "mlflow_local":
            return self.url.rstrip("/") + "/invocations"
        return self.url  # the endpoint's scoring_uri (ends in /score)

    def payload(self, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> dict:
        body: dict = {("dataframe_split" if self.kind == "mlflow_local" else "input_data"): split_payload(frame)}
        if params:
            body["params"] = dict(params)
        return body

    def headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        if self.kind == "azureml_online":
            if not self.api_key:
                raise InferenceError("an Azure ML endpoint needs a key (api_key or MBOLAKE_ENDPOINT_KEY)")
            h["Authorization"] = f"Bearer {self.api_key}"
            if self.deployment:
                h["azureml-model-deployment"] = self.deployment
        return h

    def request(self, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> urllib.request.Request:
        data = json.dumps(self.payload(frame, params), allow_nan=False).encode()
        return urllib.request.Request(self.scoring_url, data=data, headers=self.headers(), method="POST")

    def predict(self, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        req = self.request(frame, params)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read().decode())
        except urllib.error.HTTPError as e:
            raise InferenceError(f"{self.scoring_url} answered {e.code}: {e.read().decode(errors='replace')[:500]}") from e
        return parse_predictions(answer)


def parse_predictions(answer) -> pd.DataFrame:
    """Both answers as a frame: ``{"predictions": [records]}`` (MLflow) or a bare list (Azure ML)."""
    if isinstance(answer, str):
        answer = json.loads(answer)
    if isinstance(answer, Mapping) and "predictions" in answer:
        answer = answer["predictions"]
    if isinstance(answer, Mapping):  # split/columns orientation
        if "columns" in answer and "data" in answer:
            return pd.DataFrame(answer["data"], columns=answer["columns"])
        return pd.DataFrame(answer)
    return pd.DataFrame(list(answer))


def client_for_profile(profile, url: str | None = None, **kwargs) -> InferenceClient:
    """The profile's endpoint: local -> ``http://127.0.0.1:<port>`` (``url``); azure -> scoring URI from env."""
    ep = dict(profile.settings.get("endpoint", {}))
    kind = ep.get("kind", "mlflow_local")
    if url is None:
        url = ep.get("url") or os.environ.get("MBOLAKE_ENDPOINT_URL")
    if not url:
        raise ValueError(f"profile {profile.name!r}: no endpoint url (pass url or set MBOLAKE_ENDPOINT_URL)")
    return InferenceClient(url=url, kind=kind, **kwargs)
