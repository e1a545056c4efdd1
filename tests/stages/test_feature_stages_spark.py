"""Silver and Gold feature stages end to end on generated sessions (Spark + Delta)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

from mbolake.features.setup_vector import N_FEATURES, feature_hash
from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import (
    BAR_5S,
    BOOK_QUALITY,
    FEATURE_PRIMITIVES,
    LABELS,
    MBO_NORMALIZED,
    ORDERBOOK_STATE,
    SESSION_LEVELS,
    SETUP_VECTORS,
    TRAINING_VIEW,
)
from mbolake.stages import (
    BronzeProcessDBN,
    GoldExtractSetupVectors,
    SilverAddSessionLevels,
    SilverComputeBar5sFeatures,
    SilverExtractLevelApproach2m,
    SilverFilterFirst4Hours,
    SilverNormalizeMBO,
    SilverRebuildOrderBook,
)
from mbolake.stages.training_snapshot import export_training_snapshot

from tests.helpers import make_project

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FIRST = dt.date(2025, 11, 10)
STAGES = (SilverRebuildOrderBook, SilverNormalizeMBO, SilverAddSessionLevels, SilverComputeBar5sFeatures,
          SilverExtractLevelApproach2m, GoldExtractSetupVectors)


def build_chain(spark, root, engine):
    """Two generated sessions landed and run through every stage once on ``engine``."""
    old = os.environ.get("MBOLAKE_HOME")
    os.environ["MBOLAKE_HOME"] = str(root)
    ctx = Context(profile=load_profile("local"))
    ctx.__dict__["spark"] = spark
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=2, first_date=FIRST, intensity=80_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    summaries = {stage.__name__: stage().run(ctx, underlier="ES", engine=engine) for stage in STAGES}
    return ctx, summaries, old


def restore_home(old):
    if old is None:
        os.environ.pop("MBOLAKE_HOME", None)
    else:
        os.environ["MBOLAKE_HOME"] = old


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """The chain on the profile's engine (``local``: delta-rs on the driver)."""
    ctx, summaries, old = build_chain(spark, make_project(tmp_path_factory.mktemp("chain")), None)
    yield ctx, summaries
    restore_home(old)


@pytest.fixture(scope="module")
def built_on_spark(spark, tmp_path_factory, built):
    """The same chain with every stage grouped and written by Spark."""
    ctx, summaries, old = build_chain(spark, make_project(tmp_path_factory.mktemp("chain_spark")), "spark")
    yield ctx, summaries
    restore_home(old)


def table(ctx, t):
    return ctx.spark.read.format("delta").load(ctx.profile.table_path(t.name))


def test_normalize_keeps_the_front_month_and_tags_phases(built):
    ctx, summaries = built
    front, _ = synth.front_and_back_month(FIRST)
    normalized = table(ctx, MBO_NORMALIZED)
    assert [r.symbol for r in normalized.select("symbol").distinct().collect()] == [front]
    selection = summaries["SilverNormalizeMBO"].details
    assert (selection["front_month_dominance"] > 0.9).all() and not normalized.where("roll_contaminated").count()
    phases = {r.session_phase for r in normalized.select("session_phase").distinct().collect()}
    assert phases == {"overnight", "premarket", "rth"}  # the sample runs 04:30-13:00 New York


def test_every_bar_of_the_window_once_per_session(built):
    ctx, summaries = built
    bars = table(ctx, BAR_5S).groupBy("session_date").count().orderBy("session_date").toPandas()
    assert bars["count"].tolist() == [2880, 2880]
    assert summaries["SilverComputeBar5sFeatures"].rows_out == 5760
    first_bar = table(ctx, BAR_5S).agg({"bar_ts": "min"}).first()[0]
    assert first_bar == int(dt.datetime(2025, 11, 10, 13, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9  # 08:30 NY


def test_episodes_vectors_and_labels_are_consistent(built):
    ctx, _ = built
    vectors = table(ctx, SETUP_VECTORS).toPandas()
    labels = table(ctx, LABELS).toPandas()
    prims = table(ctx, FEATURE_PRIMITIVES).where("position = 0").toPandas()
    assert len(vectors) == len(labels) == len(prims) > 5
    assert set(vectors.approach_direction) == {1, -1}
    assert set(labels.outcome) <= {"BREAK", "REJECT", "CHOP"} and len(set(labels.outcome)) >= 2
    for row in vectors.itertuples():
        vec = np.asarray(row.feature_vector, dtype=np.float64)
        assert vec.shape == (N_FEATURES,) == (345,) and np.isfinite(vec).all()
        assert row.feature_hash == feature_hash("setup_v3", vec)
    # No opening-range episode may be asked before 09:47 (the range closes at 09:45).
    or_times = vectors[vectors.level_type.str.startswith("or")].vector_time
    first_allowed = int(dt.datetime(2025, 11, 10, 14, 47, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert (or_times[vectors.session_date == FIRST] >= first_allowed).all()
    view = table(ctx, TRAINING_VIEW).toPandas()
    assert len(view) == len(vectors) and view.levels_complete.all()


def test_rerunning_the_stages_gives_identical_features_and_hashes(built):
    ctx, _ = built
    before_bars = table(ctx, BAR_5S).drop("data_version").orderBy("session_date", "bar_ts").toPandas()
    before_vec = table(ctx, SETUP_VECTORS).select("episode_id", "feature_hash").orderBy("episode_id").toPandas()
    for stage in STAGES[3:]:
        stage().run(ctx, underlier="ES")
    after_bars = table(ctx, BAR_5S).drop("data_version").orderBy("session_date", "bar_ts").toPandas()
    after_vec = table(ctx, SETUP_VECTORS).select("episode_id", "feature_hash").orderBy("episode_id").toPandas()
    assert after_bars.equals(before_bars)
    assert after_vec.equals(before_vec)
    lineage = json.loads(table(ctx, SETUP_VECTORS).first().data_version)
    assert set(lineage["inputs"]) == {"silver.feature_primitives", "silver.session_levels", "silver.mbo_normalized"}
    assert lineage["inputs"]["silver.feature_primitives"] == delta_tables.version(ctx.profile, FEATURE_PRIMITIVES)


def test_training_snapshot_is_frozen_with_a_manifest(built):
    ctx, _ = built
    exported = export_training_snapshot(ctx, "ES_MODEL", dt.date(2026, 1, 2))
    target = exported.path
    assert exported.created
    manifest = json.loads((target / "manifest.json").read_text())
    data = target / "training_view.parquet"
    assert manifest["files"] == {data.name: hashlib.sha256(data.read_bytes()).hexdigest()}
    assert manifest["rows"] == table(ctx, TRAINING_VIEW).where("label_complete").count()
    assert len(manifest["feature_layout"]) == 345
    # The same rows as Spark would select them, in the snapshot's order.
    expected = (table(ctx, TRAINING_VIEW).where("model_id = 'ES_MODEL' AND label_complete")
                .orderBy("vector_time", "episode_id").toPandas())
    pd.testing.assert_frame_equal(pd.read_parquet(data), expected, check_exact=True)
    # Exporting the same snapshot again keeps the folder as it is (tests/stages/test_training_snapshot.py).
    mtime = data.stat().st_mtime_ns
    again = export_training_snapshot(ctx, "ES_MODEL", dt.date(2026, 1, 2))
    assert not again.created and again.path == target and data.stat().st_mtime_ns == mtime


ROW_KEYS = {MBO_NORMALIZED: ["session_date", "record_index"], ORDERBOOK_STATE: ["contract_id", "ts_recv", "sequence"],
            BOOK_QUALITY: ["contract_id", "session_date"], SESSION_LEVELS: ["contract_id", "session_date"],
            BAR_5S: ["session_date", "bar_ts"], FEATURE_PRIMITIVES: ["episode_id", "position"],
            SETUP_VECTORS: ["episode_id"], LABELS: ["episode_id"], TRAINING_VIEW: ["episode_id"]}


@pytest.mark.parametrize("contract_table", list(ROW_KEYS), ids=lambda t: t.name)
def test_both_engines_write_the_same_rows(built, built_on_spark, contract_table):
    """Lineage aside (the engines commit different table versions), every value is identical."""
    ignored = ["data_version", "ingest_time", "ingest_batch_id"]
    frames = []
    for ctx, _ in (built, built_on_spark):
        pdf = delta_tables.read(ctx.profile, contract_table).to_pandas()
        pdf = pdf.drop(columns=[c for c in ignored if c in pdf.columns])
        frames.append(pdf.sort_values(ROW_KEYS[contract_table]).reset_index(drop=True))
    local, on_spark = frames
    assert len(local) == len(on_spark) > 0
    pd.testing.assert_frame_equal(local, on_spark, check_exact=True)


def test_a_non_default_session_window_reaches_the_bars_and_gold_lineage(built, tmp_path):
    """The window is a value the stages take: bars cover it, and every row's lineage and Gold's
    ``lookback_spec`` record it (they used to say 08:30-12:30 whatever the notebooks passed)."""
    import shutil

    ctx, _ = built
    root = make_project(tmp_path / "window")
    shutil.copytree(ctx.profile.lake_root, root / "lake")
    old = os.environ.get("MBOLAKE_HOME")
    os.environ["MBOLAKE_HOME"] = str(root)
    try:
        moved = Context(profile=load_profile("local"))
        window = SilverFilterFirst4Hours((9, 0), (12, 0))
        SilverComputeBar5sFeatures(window).run(moved, underlier="ES", engine="local")
        SilverExtractLevelApproach2m(window).run(moved, underlier="ES", engine="local")
        gold = GoldExtractSetupVectors().run(moved, underlier="ES", engine="local")
        bars = delta_tables.read(moved.profile, BAR_5S, ["session_date", "data_version"]).to_pandas()
        vectors = delta_tables.read(moved.profile, SETUP_VECTORS, ["lookback_spec"]).to_pandas()
    finally:
        restore_home(old)
    assert bars.groupby("session_date").size().tolist() == [3 * 720, 3 * 720]  # 09:00-12:00, 5-second bars
    assert {tuple(json.loads(v)["window"]) for v in bars["data_version"]} == {("09:00", "12:00")}
    assert gold.rows_out == len(vectors) > 0
    assert {tuple(json.loads(v)["window"]) for v in vectors["lookback_spec"]} == {("09:00", "12:00")}
