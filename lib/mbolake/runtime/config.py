"""Profiles: where things live (conf/<profile>.yaml, DESIGN.md §3).

The profile comes from the ``profile`` argument, else ``MBOLAKE_PROFILE``, else ``local``.
Relative paths resolve against the project root (the folder holding ``conf/``), or
``MBOLAKE_HOME`` when set; ``${VAR}`` placeholders resolve from the environment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .dotenv import load_dotenv
from .project import DEFAULT_PROFILE, ProfileError, project_root  # callers keep importing them from here

SNAPSHOTS_FOLDER = "datasets"  # under the ML artifacts root: {model_id}/{run_date}/
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def model_snapshots_dir(ml_artifacts_root: str | Path, model_id: str) -> Path:
    """The folder holding every training snapshot of a model family (one subfolder per run date)."""
    return Path(ml_artifacts_root) / SNAPSHOTS_FOLDER / model_id


def snapshot_dir(ml_artifacts_root: str | Path, model_id: str, run_date) -> Path:
    """``{ml_artifacts_root}/datasets/{model_id}/{run_date}``: where the training snapshot of
    ``model_id`` frozen on ``run_date`` (a date or ISO string) lives. The one definition of that
    layout (the export stage writes there, ``mbolake.ml.snapshot`` reads there)."""
    from ..core.calendar import as_date

    return model_snapshots_dir(ml_artifacts_root, model_id) / as_date(run_date).isoformat()


def _expand(value: Any, profile: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, profile) for k, v in value.items()}
    if isinstance(value, str):
        def env(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ProfileError(f"profile {profile!r} needs the environment variable {name}")
            return os.environ[name]

        return _PLACEHOLDER.sub(env, value)
    return value


@dataclass(frozen=True)
class Profile:
    name: str
    root: Path
    settings: dict = field(repr=False)

    def path(self, key: str) -> str:
        """A location setting as an absolute local path, or unchanged when it is a URI."""
        value = str(self.settings[key])
        if "://" in value:
            return value
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (self.root / p).resolve())

    @property
    def lake_root(self) -> str:
        return self.path("lake_root")

    @property
    def raw_dbn_root(self) -> str:
        return self.path("raw_dbn_root")

    @property
    def runs_root(self) -> str:
        return self.path("runs_root")

    @property
    def ml_artifacts_root(self) -> str:
        return self.path("ml_artifacts_root")

    def snapshot_dir(self, model_id: str, run_date) -> Path:
        """The training snapshot folder of ``model_id`` for ``run_date`` (see :func:`snapshot_dir`)."""
        return snapshot_dir(self.ml_artifacts_root, model_id, run_date)

    def layer_path(self, layer: str) -> str:
        return f"{self.lake_root}/{layer}"

    def table_path(self, table: str) -> str:
        """``bronze.mbo`` -> ``<lake_root>/bronze/mbo``."""
        layer, name = table.split(".", 1)
        return f"{self.layer_path(layer)}/{name}"

    @property
    def spark(self) -> dict:
        return dict(self.settings.get("spark", {}))

    @property
    def mlflow_tracking_uri(self) -> str:
        """``mlflow.tracking_uri`` (else ``MLFLOW_TRACKING_URI``); a relative sqlite path or
        plain folder becomes absolute against the project root."""
        uri = str(self.settings.get("mlflow", {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI", ""))
        if not uri:
            raise ValueError(f"profile {self.name!r} has no mlflow.tracking_uri")
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str(_resolve(self.root, uri[len("sqlite:///"):]))
        if "://" not in uri:  # a plain folder (file store)
            return str(_resolve(self.root, uri))
        return uri

    @property
    def mlflow_artifact_root(self) -> str | None:
        """``mlflow.artifact_root`` as a URI (a local folder becomes ``file://``), or None."""
        value = self.settings.get("mlflow", {}).get("artifact_root")
        if not value:
            return None
        value = str(value)
        return value if "://" in value else _resolve(self.root, value).as_uri()


def _resolve(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (root / p).resolve()


def load_profile(name: str | None = None) -> Profile:
    name = name or os.environ.get("MBOLAKE_PROFILE") or DEFAULT_PROFILE
    root = project_root()
    path = root / "conf" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (root / "conf").glob("*.yaml"))
        raise ProfileError(f"unknown profile {name!r}: no {path} (known: {', '.join(known)})")
    settings = yaml.safe_load(path.read_text()) or {}
    load_dotenv()  # ${VAR} placeholders may be filled from .env
    return Profile(name=name, root=root, settings=_expand(settings, name))
