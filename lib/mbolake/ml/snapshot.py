"""Read a frozen training snapshot (written by ``stages.training_snapshot.export_training_snapshot``)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.calendar import as_date
from ..runtime.config import model_snapshots_dir, snapshot_dir  # noqa: F401 (snapshot_dir re-exported)

DATA_FILE = "training_view.parquet"
MANIFEST_FILE = "manifest.json"
# Columns carried next to the features for retrieval of similar setups.
META_COLUMNS = ("episode_id", "session_date", "level_type", "approach_direction", "outcome")


class SnapshotError(ValueError):
    pass


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_version(manifest: dict) -> str:
    """A short, stable identity of the snapshot's data: its own ``data_version`` when the
    manifest carries one, else a digest of the Delta versions read, code version and file hashes."""
    if manifest.get("data_version"):
        return str(manifest["data_version"])
    ident = {k: manifest.get(k) for k in ("model_id", "run_date", "delta_versions", "code_version", "files")}
    return "sha256:" + hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Snapshot:
    path: Path
    frame: pd.DataFrame = field(repr=False)
    manifest: dict = field(repr=False)

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id") or self.path.parent.name)

    @property
    def run_date(self) -> str:
        return str(self.manifest.get("run_date") or self.path.name)

    @property
    def feature_set(self) -> str:
        return str(self.manifest.get("feature_set", ""))

    @property
    def feature_layout(self) -> list[str]:
        return list(self.manifest["feature_layout"])

    @property
    def data_version(self) -> str:
        return data_version(self.manifest)

    @property
    def sessions(self) -> list[dt.date]:
        return sorted(self.frame["session_date"].unique())

    def X(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        return feature_matrix(self.frame if frame is None else frame, self.feature_layout)


def feature_matrix(frame: pd.DataFrame, layout: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """``feature_vector`` (list of floats per row) as a float64 frame with the layout's column names."""
    if frame.empty:
        return pd.DataFrame(np.empty((0, len(layout))), columns=list(layout))
    mat = np.vstack([np.asarray(v, dtype=np.float64) for v in frame["feature_vector"]])
    if mat.shape[1] != len(layout):
        raise SnapshotError(f"feature_vector has {mat.shape[1]} numbers but the feature layout names {len(layout)}")
    return pd.DataFrame(mat, columns=list(layout), index=frame.index)


def load_snapshot(ml_artifacts_root: str | Path, model_id: str, run_date: dt.date | str,
                  verify: bool = True) -> Snapshot:
    """The snapshot for ``(model_id, run_date)``; with ``verify`` its files must match the manifest hashes."""
    return load_snapshot_dir(snapshot_dir(ml_artifacts_root, model_id, run_date), verify=verify)


def load_snapshot_dir(path: str | Path, verify: bool = True) -> Snapshot:
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.exists():
        raise SnapshotError(f"no training snapshot at {path} (missing {MANIFEST_FILE})")
    manifest = json.loads(manifest_path.read_text())
    if "feature_layout" not in manifest:
        raise SnapshotError(f"{manifest_path} has no feature_layout")
    data_file = path / DATA_FILE
    if verify:
        for name, digest in (manifest.get("files") or {}).items():
            got = sha256_file(path / name)
            if got != digest:
                raise SnapshotError(f"{path / name} does not match its manifest hash (snapshot changed?)")
    frame = pd.read_parquet(data_file)
    frame["session_date"] = frame["session_date"].map(as_date)
    if "vector_time" in frame:
        frame = frame.sort_values(["vector_time", "episode_id"], kind="stable").reset_index(drop=True)
    return Snapshot(path=path, frame=frame, manifest=manifest)


def resolve_snapshot_dir(ml_artifacts_root: str | Path, model_id: str, run_date=None, explicit: str | None = None) -> Path:
    """The snapshot folder a notebook works on: ``explicit`` when given (e.g. an Azure ML
    mount), else ``(model_id, run_date)``, else the model's latest run date."""
    if explicit:
        return Path(explicit)
    if run_date:
        return snapshot_dir(ml_artifacts_root, model_id, run_date)
    runs = sorted(p for p in model_snapshots_dir(ml_artifacts_root, model_id).glob("????-??-??") if p.is_dir())
    if not runs:
        raise SnapshotError(f"no training snapshot for {model_id!r} under {ml_artifacts_root}: run 30_gold first")
    return runs[-1]
