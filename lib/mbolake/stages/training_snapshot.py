"""The frozen training snapshot: ``gold.training_view`` of one model family, exported to
``ml/artifacts/datasets/{model_id}/{run_date}/`` (Parquet + ``manifest.json``).

A snapshot is immutable, and exporting it again is safe:

- The export builds the Parquet file in memory first (the selected rows of the training
  view, ordered by ``(vector_time, episode_id)``, written by pandas/pyarrow the same way
  every time) and takes its SHA-256.
- No folder yet: the file and the manifest are written to a temporary folder renamed into
  place (never a half-written snapshot).
- The folder exists and holds the same snapshot (its ``training_view.parquet`` has that
  SHA-256, or, when the Parquet writer changed, the same rows read back, and the manifest
  names the same feature set and layout): nothing is written, the existing folder is returned
  with ``created=False`` and a message saying so. Provenance (Delta versions read, code
  version, creation time) stays that of the first export.
- The folder exists with a different snapshot: ``SnapshotConflict`` (a ``FileExistsError``)
  naming the folder and what differs (rows, sessions, outcomes, feature layout, Delta
  versions, code version, the data file's SHA-256).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..engines.local import PinnedTable, plain_table
from ..runtime.context import Context
from ..schemas import LABELS, SETUP_VECTORS, TRAINING_VIEW

DATA_FILE = "training_view.parquet"
MANIFEST_FILE = "manifest.json"
# What a notebook shows of a snapshot's manifest.
SUMMARY_KEYS = ("rows", "outcomes", "sessions", "delta_versions", "files")


class SnapshotConflict(FileExistsError):
    """The snapshot folder exists and holds another snapshot than the one asked for."""


@dataclass(frozen=True)
class SnapshotExport:
    """What ``export_training_snapshot`` did: the snapshot folder, whether this call wrote it,
    a sentence saying which, and the folder's manifest."""

    path: Path
    created: bool
    message: str
    manifest: dict = field(repr=False)

    def __fspath__(self) -> str:
        return str(self.path)

    def summary(self) -> dict:
        return {k: self.manifest.get(k) for k in SUMMARY_KEYS}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
                       for k, v in self.summary().items())
        return f"<p>{html.escape(self.message)}</p><table>{rows}</table>"


def export_training_snapshot(ctx: Context, model_id: str, run_date: dt.date, complete_only: bool = True
                             ) -> SnapshotExport:
    """Freeze ``gold.training_view`` for ``model_id`` into ``ml/artifacts/datasets/{model_id}/{run_date}/``.

    Parquet plus ``manifest.json`` (row counts, Delta versions read, SHA-256 per file). Running
    it again for the same snapshot returns the existing folder untouched (``created=False``);
    a different snapshot for an existing folder raises ``SnapshotConflict`` (module docstring).
    """
    from ..features.setup_vector import FEATURE_SET, SETUP_V3_LAYOUT
    from ..io import delta_tables

    target = ctx.profile.snapshot_dir(model_id, run_date)
    view = PinnedTable(ctx, TRAINING_VIEW, "the training snapshot export")
    where = pc.field("model_id") == model_id
    if complete_only:
        where = where & pc.field("label_complete")
    rows = plain_table(view.read(where=where)).sort_by([("vector_time", "ascending"), ("episode_id", "ascending")])
    if not rows.num_rows:
        raise ValueError(f"no labelled episodes for model_id {model_id!r} in {TRAINING_VIEW.name}")
    pdf = rows.to_pandas()
    data = parquet_bytes(pdf)
    manifest = {
        "model_id": model_id, "run_date": target.name, "feature_set": FEATURE_SET,
        "feature_layout": list(SETUP_V3_LAYOUT), "complete_only": complete_only, "rows": len(pdf),
        "outcomes": pdf["outcome"].value_counts().to_dict(),
        "sessions": sorted(str(d) for d in pdf["session_date"].unique()),
        "delta_versions": {TRAINING_VIEW.name: view.version,
                           **{t.name: delta_tables.version(ctx.profile, t) for t in (SETUP_VECTORS, LABELS)}},
        "code_version": ctx.code_version,
        "files": {DATA_FILE: hashlib.sha256(data).hexdigest()},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if target.exists():
        return _existing(target, manifest, data)
    partial = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex[:8]}")
    partial.mkdir(parents=True)
    try:
        (partial / DATA_FILE).write_bytes(data)
        (partial / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        os.rename(partial, target)  # fails if another export created the folder meanwhile
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if target.exists():
            return _existing(target, manifest, data)
        raise
    return SnapshotExport(target, True, f"written training snapshot {target} ({len(pdf):,} rows)", manifest)


def parquet_bytes(pdf) -> bytes:
    """The snapshot's data file: the frame written by pandas (pyarrow), no index."""
    buffer = io.BytesIO()
    pdf.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _existing(target: Path, manifest: dict, data: bytes) -> SnapshotExport:
    """The existing folder when it holds the snapshot described by ``manifest`` and ``data``;
    ``SnapshotConflict`` naming what differs otherwise."""
    manifest_path = target / MANIFEST_FILE
    if not manifest_path.exists():
        raise SnapshotConflict(f"training snapshot folder {target} exists without {MANIFEST_FILE} (an interrupted or "
                               f"foreign export?); snapshots are immutable: remove it or export to another run_date")
    existing = json.loads(manifest_path.read_text())
    data_file = target / DATA_FILE
    same_file = data_file.exists() and _sha256(data_file) == manifest["files"][DATA_FILE]
    same_rows = same_file or (data_file.exists() and _same_rows(data_file, data))
    same_layout = all(existing.get(k) == manifest[k] for k in ("feature_set", "feature_layout"))
    if same_rows and same_layout:
        how = "" if same_file else " (the same rows; the data file was written by another Parquet writer)"
        return SnapshotExport(
            target, False,
            f"training snapshot {target} exists with the same {existing.get('rows', manifest['rows']):,} rows "
            f"(written {existing.get('created_at', '?')}){how}: kept as it is, nothing written", existing)
    raise SnapshotConflict(
        f"training snapshot {target} exists with a different snapshot ({'; '.join(_differences(existing, manifest))}); "
        f"snapshots are immutable: export to another run_date, or remove the folder to replace it")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _same_rows(data_file: Path, data: bytes) -> bool:
    """The data file reads back as the same table as ``data`` (columns, types, values, order),
    whatever the bytes of either (writer versions recorded in the file's metadata aside)."""
    import pyarrow.parquet as pq

    try:
        stored = pq.read_table(data_file)
    except (OSError, pa.ArrowException):
        return False
    return stored.equals(pq.read_table(pa.BufferReader(data)), check_metadata=False)


def _differences(existing: dict, new: dict) -> list[str]:
    """What differs between the existing manifest and the one this export would write."""
    found = []
    for key in ("rows", "feature_set", "complete_only", "code_version"):
        if key in existing and existing[key] != new[key]:
            found.append(f"{key} {existing[key]!r} there, {new[key]!r} now")
    if existing.get("feature_layout") != new["feature_layout"]:
        found.append("feature_layout differs")
    old_sessions, new_sessions = set(existing.get("sessions") or ()), set(new["sessions"])
    if old_sessions != new_sessions:
        gone, added = sorted(old_sessions - new_sessions), sorted(new_sessions - old_sessions)
        found.append("sessions" + (f" only there: {', '.join(gone)}" if gone else "")
                     + (f" only now: {', '.join(added)}" if added else ""))
    if existing.get("outcomes") != new["outcomes"]:
        found.append(f"outcomes {existing.get('outcomes')} there, {new['outcomes']} now")
    if existing.get("delta_versions") != new["delta_versions"]:
        found.append(f"delta_versions {existing.get('delta_versions')} there, {new['delta_versions']} now")
    old_sha = (existing.get("files") or {}).get(DATA_FILE)
    found.append(f"{DATA_FILE} SHA-256 {str(old_sha)[:12]}… there, {new['files'][DATA_FILE][:12]}… now")
    return found
