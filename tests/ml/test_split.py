"""Time-ordered split of a training snapshot (FEATURES.md §6; mbolake.ml.split)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from mbolake.ml.snapshot import SnapshotError, load_snapshot
from mbolake.ml.split import SplitError, load_split, log_split_to_mlflow, plan_split, split_snapshot, walk_forward_folds
from mbolake.sample.ml_snapshot import write_synthetic_snapshot

RUN_DATE = dt.date(2024, 6, 1)


def days(n, start=dt.date(2024, 1, 1)):
    return [start + dt.timedelta(days=i) for i in range(n)]


@pytest.fixture
def snapshot(tmp_path):
    write_synthetic_snapshot(tmp_path / "ml", run_date=RUN_DATE, n_sessions=10, episodes_per_session=6)
    return load_snapshot(tmp_path / "ml", "ES_MODEL", RUN_DATE)


def test_snapshot_loads_features_with_layout_names(snapshot):
    from mbolake.features.setup_vector import SETUP_V3_LAYOUT

    X = snapshot.X()
    assert X.shape == (60, 345)
    assert list(X.columns) == list(SETUP_V3_LAYOUT)
    assert snapshot.feature_set == "setup_v3" and snapshot.data_version.startswith("sha256:")
    assert list(snapshot.frame["vector_time"]) == sorted(snapshot.frame["vector_time"])


def test_snapshot_refuses_a_changed_file(snapshot):
    with open(snapshot.path / "training_view.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(SnapshotError, match="manifest hash"):
        load_snapshot(snapshot.path.parents[2], "ES_MODEL", RUN_DATE)


def test_fractions_are_time_ordered_without_overlap():
    plan = plan_split(reversed(days(10)), fractions=(0.6, 0.2, 0.2))
    assert plan["train"] == days(10)[:6] and plan["val"] == days(10)[6:8] and plan["test"] == days(10)[8:]
    assert plan["embargo"] == []


def test_embargo_drops_whole_sessions_between_parts():
    plan = plan_split(days(12), fractions=(0.5, 0.25, 0.25), embargo_sessions=1)
    s = days(12)
    assert plan["train"] == s[:5] and plan["embargo"] == [s[5], s[8]]
    assert plan["val"] == s[6:8] and plan["test"] == s[9:]


def test_explicit_dates_and_embargo_against_the_gap():
    s = days(10)
    plan = plan_split(s, dates={"train": (s[0], s[4]), "val": (s[5], s[6]), "test": (s[8], s[9])},
                      embargo_sessions=1)
    # val directly follows train: its first session is embargoed; test already has a one-session gap.
    assert plan["val"] == [s[6]] and plan["test"] == [s[8], s[9]] and plan["embargo"] == [s[5]]


def test_overlapping_dates_are_refused_naming_the_parts():
    s = days(10)
    with pytest.raises(SplitError, match="'val'.*'test'.*overlap"):
        plan_split(s, dates={"train": (s[0], s[4]), "val": (s[5], s[7]), "test": (s[7], s[9])})
    with pytest.raises(SplitError, match="comes before"):
        plan_split(s, dates={"train": (s[5], s[6]), "val": (s[0], s[1]), "test": (s[8], s[9])})


def test_an_empty_part_is_refused_naming_the_part():
    s = days(10)
    with pytest.raises(SplitError, match="'val' is empty"):
        plan_split(s, dates={"train": (s[0], s[4]), "val": (dt.date(2030, 1, 1), dt.date(2030, 1, 2)),
                             "test": (dt.date(2031, 1, 1), dt.date(2031, 1, 2))})
    with pytest.raises(SplitError, match="'test' is empty"):
        plan_split(s, dates={"train": (s[0], s[3]), "val": (s[5], s[6]), "test": (s[7], s[7])},
                   embargo_sessions=1)
    with pytest.raises(SplitError, match="'val' is empty"):
        plan_split(days(4), fractions=(0.9, 0.0, 0.1))
    with pytest.raises(SplitError, match="cannot make train, val and test"):
        plan_split(days(4), embargo_sessions=1)


def test_split_writes_parts_next_to_the_snapshot(snapshot):
    summary = split_snapshot(snapshot, name="s1", fractions=(0.6, 0.2, 0.2), embargo_sessions=1)
    folder = snapshot.path / "splits" / "s1"
    assert sorted(p.name for p in folder.iterdir()) == ["split.json", "test.parquet", "train.parquet", "val.parquet"]
    assert json.loads((folder / "split.json").read_text()) == summary
    parts = load_split(summary)
    dates = {p: set(df["session_date"]) for p, df in parts.items()}
    assert not (dates["train"] & dates["val"]) and not (dates["val"] & dates["test"])
    assert max(dates["train"]) < min(dates["val"]) and max(dates["val"]) < min(dates["test"])
    assert sum(v["rows"] for v in summary["parts"].values()) + summary["unused_rows"] == 60
    assert len(summary["embargoed"]) == 2 and summary["unused_rows"] == 12
    for p, info in summary["parts"].items():
        assert info["rows"] == len(parts[p]) and len(info["sha256"]) == 64
        assert info["first_date"] == min(dates[p]).isoformat() and info["last_date"] == max(dates[p]).isoformat()
    with pytest.raises(FileExistsError):
        split_snapshot(snapshot, name="s1")
    again = split_snapshot(snapshot, name="s1", fractions=(0.6, 0.2, 0.2), embargo_sessions=1, overwrite=True)
    assert again["parts"]["train"]["sha256"] == summary["parts"]["train"]["sha256"]


def test_walk_forward_folds_expand_in_time():
    s = days(10)
    folds = walk_forward_folds(s, 3, min_train_sessions=4)
    assert [len(v) for _, v in folds] == [2, 2, 2]
    for train, val in folds:
        assert train == s[:s.index(val[0])] and max(train) < min(val)
    embargoed = walk_forward_folds(s, 2, embargo_sessions=1, min_train_sessions=3)
    for train, val in embargoed:
        assert s.index(val[0]) - s.index(train[-1]) == 2
    with pytest.raises(SplitError, match="walk-forward"):
        walk_forward_folds(days(3), 3)


@pytest.mark.slow  # a fresh MLflow sqlite store: its schema migrations take ~5-10 s
def test_split_is_logged_to_mlflow(snapshot, tmp_path):
    import mlflow

    from mbolake.ml.tracking import setup_mlflow

    old = mlflow.get_tracking_uri()
    try:
        setup_mlflow(tracking_uri=f"sqlite:///{tmp_path}/mlruns.db", artifact_root=(tmp_path / "art").as_uri(),
                     experiment="split-test")
        summary = split_snapshot(snapshot, name="logged")
        with mlflow.start_run() as run:
            log_split_to_mlflow(summary)
        got = mlflow.get_run(run.info.run_id)
        assert got.data.params["split.train.rows"] == str(summary["parts"]["train"]["rows"])
        assert got.data.params["split.test.sha256"] == summary["parts"]["test"]["sha256"]
        assert got.data.params["split.val.first_date"] == summary["parts"]["val"]["first_date"]
        inputs = {{t.key: t.value for t in d.tags}["mlflow.data.context"]: d for d in got.inputs.dataset_inputs}
        assert set(inputs) == {"train", "val", "test"}
        assert summary["parts"]["train"]["path"] in inputs["train"].dataset.source
        assert (tmp_path / "art" / "split-test").exists()
    finally:
        mlflow.set_tracking_uri(old)
