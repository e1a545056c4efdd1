"""The training snapshot export: written once, a re-run of the same snapshot is a no-op, a
different one refuses naming the folder (a generated gold.training_view, no Spark)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
import pyarrow as pa
import pytest

from mbolake.io import delta_tables
from mbolake.ml.snapshot import load_snapshot
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample.ml_snapshot import synthetic_training_frame
from mbolake.schemas import TRAINING_VIEW
from mbolake.stages.training_snapshot import SnapshotConflict, export_training_snapshot

RUN_DATE = dt.date(2026, 1, 2)


def write_view(ctx, frame: pd.DataFrame, mode: str = "append") -> None:
    from deltalake import write_deltalake

    rows = pa.Table.from_pandas(frame[TRAINING_VIEW.schema.names], schema=TRAINING_VIEW.schema, preserve_index=False)
    if mode == "append":
        delta_tables.append(ctx.profile, TRAINING_VIEW, rows)
    else:
        write_deltalake(delta_tables.table_uri(ctx.profile, TRAINING_VIEW), rows, mode="overwrite",
                        partition_by=list(TRAINING_VIEW.partition_by))


def view_frame() -> pd.DataFrame:
    """Two model families; two of the 18 ES_MODEL episodes without a complete look-forward."""
    frame = pd.concat([synthetic_training_frame(n_sessions=3, episodes_per_session=6),
                       synthetic_training_frame(n_sessions=2, episodes_per_session=4, model_id="TSLA_MODEL")],
                      ignore_index=True)
    frame.loc[[1, 7], "label_complete"] = False
    return frame


@pytest.fixture
def ctx(project):
    ctx = Context(profile=load_profile("local"))
    write_view(ctx, view_frame())
    return ctx


def files_state(folder):
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.iterdir()}


def test_the_snapshot_holds_the_models_complete_rows_in_time_order(ctx):
    result = export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)

    assert result.created and result.path == ctx.profile.snapshot_dir("ES_MODEL", RUN_DATE)
    assert result.path.parts[-4:] == ("artifacts", "datasets", "ES_MODEL", "2026-01-02")
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["2026-01-02"]  # no temporary folder left
    frame = view_frame()
    expected = frame[(frame.model_id == "ES_MODEL") & frame.label_complete]
    manifest = json.loads((result.path / "manifest.json").read_text())
    data = result.path / "training_view.parquet"
    assert manifest["files"] == {data.name: hashlib.sha256(data.read_bytes()).hexdigest()}
    assert manifest["rows"] == len(expected) == 16 and manifest["complete_only"] is True
    assert manifest["delta_versions"]["gold.training_view"] == delta_tables.version(ctx.profile, TRAINING_VIEW)
    snapshot = load_snapshot(ctx.profile.ml_artifacts_root, "ES_MODEL", RUN_DATE)
    assert snapshot.frame.episode_id.tolist() == expected.sort_values(["vector_time", "episode_id"]).episode_id.tolist()


def test_exporting_the_same_snapshot_again_returns_the_folder_untouched(ctx):
    first = export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)
    before = files_state(first.path)
    write_view(ctx, view_frame(), mode="overwrite")  # a new table version with the same rows

    again = export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)

    assert not again.created and again.path == first.path
    assert "exists with the same 16 rows" in again.message and str(first.path) in again.message
    assert files_state(again.path) == before  # nothing rewritten: same mtimes and SHA-256s
    assert again.manifest == first.manifest  # the first export's provenance is kept
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["2026-01-02"]


def test_a_changed_training_view_refuses_naming_the_folder_and_what_differs(ctx):
    first = export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)
    before = files_state(first.path)
    changed = view_frame()
    changed.loc[0, "outcome"] = "CHOP" if changed.loc[0, "outcome"] != "CHOP" else "BREAK"
    write_view(ctx, changed, mode="overwrite")

    with pytest.raises(SnapshotConflict) as refused:
        export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)

    message = str(refused.value)
    assert isinstance(refused.value, FileExistsError)
    assert str(first.path) in message and "different snapshot" in message
    assert "outcomes" in message and "delta_versions" in message and "training_view.parquet SHA-256" in message
    assert files_state(first.path) == before
    # Another run date is another snapshot.
    assert export_training_snapshot(ctx, "ES_MODEL", RUN_DATE + dt.timedelta(days=1)).created


def test_a_changed_selection_is_a_different_snapshot(ctx):
    export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)
    with pytest.raises(SnapshotConflict, match="rows 16 there, 18 now"):
        export_training_snapshot(ctx, "ES_MODEL", RUN_DATE, complete_only=False)


def test_a_folder_without_manifest_refuses(ctx):
    target = ctx.profile.snapshot_dir("ES_MODEL", RUN_DATE)
    target.mkdir(parents=True)
    with pytest.raises(SnapshotConflict, match=f"{target} exists without manifest.json"):
        export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)


def test_no_training_view_or_no_rows_fail_clearly(project):
    ctx = Context(profile=load_profile("local"))
    with pytest.raises(ValueError, match="needs gold.training_view, which does not exist yet"):
        export_training_snapshot(ctx, "ES_MODEL", RUN_DATE)
    write_view(ctx, synthetic_training_frame(n_sessions=1, episodes_per_session=2))
    with pytest.raises(ValueError, match="no labelled episodes for model_id 'TSLA_MODEL'"):
        export_training_snapshot(ctx, "TSLA_MODEL", RUN_DATE)
