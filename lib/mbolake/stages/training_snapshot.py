"""The frozen training snapshot: ``gold.training_view`` of one model family, exported to
``ml/artifacts/datasets/{model_id}/{run_date}/`` (Parquet + ``manifest.json``)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from ..engines.spark import read_pinned
from ..runtime.context import Context
from ..schemas import LABELS, SETUP_VECTORS, TRAINING_VIEW


def export_training_snapshot(ctx: Context, model_id: str, run_date: dt.date, complete_only: bool = True) -> Path:
    """Freeze ``gold.training_view`` for ``model_id`` into ``ml/artifacts/datasets/{model_id}/{run_date}/``.

    Parquet plus ``manifest.json`` (row counts, Delta versions read, SHA-256 per file). A
    snapshot is immutable: exporting to an existing folder fails.
    """
    from pyspark.sql import functions as F

    from ..io import delta_tables
    from ..features.setup_vector import FEATURE_SET, SETUP_V2_LAYOUT

    target = Path(ctx.profile.ml_artifacts_root) / "datasets" / model_id / run_date.isoformat()
    if target.exists():
        raise FileExistsError(f"training snapshot {target} exists already; snapshots are immutable")
    view, version = read_pinned(ctx, TRAINING_VIEW, "the training snapshot export")
    view = view.where(F.col("model_id") == model_id)
    if complete_only:
        view = view.where(F.col("label_complete"))
    pdf = view.orderBy("vector_time", "episode_id").toPandas()
    if pdf.empty:
        raise ValueError(f"no labelled episodes for model_id {model_id!r} in {TRAINING_VIEW.name}")
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True)
    data_file = partial / "training_view.parquet"
    pdf.to_parquet(data_file, index=False)
    manifest = {
        "model_id": model_id, "run_date": run_date.isoformat(), "feature_set": FEATURE_SET,
        "feature_layout": list(SETUP_V2_LAYOUT), "rows": len(pdf),
        "outcomes": pdf["outcome"].value_counts().to_dict(),
        "sessions": sorted(str(d) for d in pdf["session_date"].unique()),
        "delta_versions": {TRAINING_VIEW.name: version,
                           **{t: delta_tables.version(ctx.profile, tab) for t, tab in
                              ((SETUP_VECTORS.name, SETUP_VECTORS), (LABELS.name, LABELS))}},
        "code_version": ctx.code_version,
        "files": {data_file.name: hashlib.sha256(data_file.read_bytes()).hexdigest()},
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    partial.rename(target)
    return target
