"""BronzeProcessDBN end to end: real DBN files -> Delta -> read back with Spark."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import databento
import numpy as np
import pyarrow as pa
import pytest

from mbolake.core.products import get_product
from mbolake.io import delta_tables
from mbolake.io.dbn import read_mbo
from mbolake.io.landing import day_folder
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, INGEST_MANIFEST, QUARANTINE
from mbolake.stages.bronze import SHA_KEY, BronzeProcessDBN
from mbolake.stages.bronze_records import FileContext, order_id_unsigned, to_bronze_table

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SESSION = dt.date(2025, 11, 4)
DATABENTO_FIELDS = ["ts_recv", "ts_event", "ts_in_delta", "rtype", "publisher_id", "instrument_id", "channel_id",
                    "action", "side", "price", "size", "order_id", "flags", "sequence"]


def bronze_context(spark) -> Context:
    ctx = Context(profile=load_profile("local"))
    ctx.__dict__["spark"] = spark  # the shared session of the test run
    return ctx


def bronze(ctx):
    return ctx.spark.read.format("delta").load(ctx.profile.table_path(BRONZE_MBO.name))


@pytest.fixture(scope="module")
def generated_day(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=60_000), progress=False)
    return path


def land(ctx, src: Path, day: dt.date, name: str | None = None) -> Path:
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", day)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, folder / (name or src.name)))


def test_real_files_of_all_three_dbn_versions_land_with_identical_exact_values(spark, project, dbn_fixtures):
    ctx = bronze_context(spark)
    names = ["test_data.mbo.v1.dbn.zst", "test_data.mbo.v2.dbn.zst", "test_data.mbo.v3.dbn.zst", "test_data.mbo.v3.dbn"]
    for name in names:
        land(ctx, dbn_fixtures / name, dt.date(2020, 12, 28))

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    # the .dbn and the .dbn.zst of v3 hold the same DBN stream: one content key, landed once
    assert [f.status for f in summary.details.itertuples()] == ["ingested"] * 3 + ["skipped_duplicate"]
    rows = bronze(ctx).orderBy("source_file", "record_index").toPandas()
    assert len(rows) == 6
    per_file = [g[DATABENTO_FIELDS].reset_index(drop=True) for _, g in rows.groupby("source_file")]
    for other in per_file[1:]:
        assert other.equals(per_file[0])
    first = per_file[0].iloc[0]
    assert (first.ts_recv, first.ts_event, first.ts_in_delta) == (1609160400000704060, 1609160400000429831, 22993)
    assert (first.action, first.side, first.price, first["size"]) == ("C", "A", 3722750000000, 1)
    assert (first.order_id, first["flags"], first.sequence, first.instrument_id) == (647784973705, 128, 1170352, 5482)
    assert set(rows.symbol) == {"ESH1"} and set(rows.contract_id) == {"GLBX.MDP3:ESH1"}
    assert set(rows.session_date) == {dt.date(2020, 12, 28)} and set(rows.venue) == {"GLBX.MDP3"}
    assert sorted(rows.record_index.unique()) == [0, 1]
    manifest = delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas()
    assert sorted(manifest.dbn_version.dropna()) == [1, 2, 3]


def test_generated_day_lands_exactly_as_databento_decodes_it(spark, project, generated_day):
    ctx = bronze_context(spark)
    land(ctx, generated_day, SESSION)
    reference = databento.DBNStore.from_file(str(generated_day)).to_df(price_type="fixed", map_symbols=True)
    _, raw = read_mbo(generated_day)

    summary = BronzeProcessDBN(chunk_records=7_919).run(ctx, underlier="ES", progress=False)

    [outcome] = summary.details.itertuples()
    assert outcome.status == "ingested" and outcome.record_count == len(reference) == len(raw)
    assert outcome.session_dates == [SESSION]
    rows = bronze(ctx).orderBy("record_index").toPandas()
    assert rows.record_index.tolist() == list(range(len(raw)))
    assert rows.action.value_counts().to_dict() == reference.action.value_counts().to_dict()
    assert rows.groupby("symbol").size().to_dict() == reference.groupby("symbol").size().to_dict()
    assert np.array_equal(rows.ts_recv.to_numpy(), raw["ts_recv"].astype(np.int64))
    assert np.array_equal(order_id_unsigned(rows.order_id.to_numpy()), raw["order_id"])
    undefined = raw["price"] == np.iinfo(np.int64).max
    assert rows.price.isna().to_numpy().tolist() == undefined.tolist()
    assert np.array_equal(rows.price[~undefined].to_numpy(dtype=np.int64), raw["price"][~undefined])
    front, back = synth.front_and_back_month(SESSION)
    types = rows.groupby("symbol").instrument_type.first().to_dict()
    assert types == {front: "FUT", back: "FUT", f"{front}-{back}": "SPREAD"}
    assert set(rows.session_date) == {SESSION}
    assert rows.source_file.unique().tolist() == [f"raw-dbn/ES/FUT/{SESSION:%Y%m%d}/{generated_day.name}"]


def test_ingesting_the_same_day_twice_leaves_the_same_rows(spark, project, generated_day):
    ctx = bronze_context(spark)
    land(ctx, generated_day, SESSION)
    first = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    count_after_first = bronze(ctx).count()
    version_after_first = delta_tables.version(ctx.profile, BRONZE_MBO)

    again = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    assert [f.status for f in first.details.itertuples()] == ["ingested"]
    assert [(f.status, f.reason) for f in again.details.itertuples()] == [("skipped_duplicate", "sha256 already ingested")]
    assert bronze(ctx).count() == count_after_first == first.rows_out
    assert delta_tables.version(ctx.profile, BRONZE_MBO) == version_after_first
    statuses = delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas().status.tolist()
    assert sorted(statuses) == ["ingested", "skipped_duplicate"]


def test_corrupt_files_are_quarantined_and_the_good_one_lands(spark, project, generated_day, dbn_fixtures):
    ctx = bronze_context(spark)
    good = land(ctx, generated_day, SESSION)
    data = good.read_bytes()
    bad_day = SESSION + dt.timedelta(days=1)
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", bad_day)
    folder.mkdir(parents=True)
    (folder / "a_truncated.mbo.dbn.zst").write_bytes(data[: len(data) * 2 // 3])
    (folder / "b_empty.mbo.dbn.zst").write_bytes(b"")
    (folder / "c_garbage.mbo.dbn").write_bytes(np.random.default_rng(1).bytes(4096))
    land(ctx, dbn_fixtures / "test_data.mbp-10.v3.dbn.zst", bad_day, "d_mbp10.dbn.zst")

    summary = BronzeProcessDBN(chunk_records=10_000).run(ctx, underlier="ES", progress=False)

    assert summary.details["status"].value_counts().to_dict() == {"ingested": 1, "quarantined": 4}
    quarantine = delta_tables.read(ctx.profile, QUARANTINE).to_pandas().sort_values("source_file")
    assert quarantine.reason.tolist() == ["truncated", "empty", "not_dbn", "not_mbo"]
    assert all(Path(s).name in d for s, d in zip(quarantine.source_file, quarantine.detail))
    rows = bronze(ctx)
    assert rows.count() == summary.rows_out == len(read_mbo(good)[1])
    assert rows.select("source_file").distinct().count() == 1  # nothing of the truncated file is visible
    manifest = delta_tables.read(ctx.profile, INGEST_MANIFEST).to_pandas()
    assert manifest.groupby("status").size().to_dict() == {"ingested": 1, "quarantined": 4}


def test_a_run_that_died_after_the_data_commit_is_recovered_not_landed_twice(spark, project, generated_day):
    ctx = bronze_context(spark)
    path = land(ctx, generated_day, SESSION)
    header, records = read_mbo(path)
    from mbolake.io.landing import sha256_of

    # The data commit of an earlier run whose manifest row never got written.
    file_ctx = FileContext(header, get_product("ES"), "raw-dbn/earlier", "dead-batch", 1)
    delta_tables.append(ctx.profile, BRONZE_MBO, to_bronze_table(records, file_ctx, 0),
                        commit_metadata={SHA_KEY: sha256_of(path)})

    summary = BronzeProcessDBN().run(ctx, underlier="ES", progress=False)

    [outcome] = summary.details.itertuples()
    assert outcome.status == "ingested" and outcome.reason.startswith("recovered")
    assert bronze(ctx).count() == len(records)


def test_bronze_rows_can_be_queried_from_the_catalog(spark, project, generated_day):
    ctx = bronze_context(spark)
    land(ctx, generated_day, SESSION)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    spark.sql("DROP TABLE IF EXISTS bronze.mbo")
    assert "bronze.mbo" in delta_tables.register_tables(spark, ctx.profile)
    counts = spark.sql("SELECT action, count(*) AS n FROM bronze.mbo GROUP BY action").toPandas()
    assert set(counts.action) == {"R", "A", "C", "M", "T", "F"}
    spark.sql("DROP TABLE bronze.mbo")


def test_a_bad_date_range_fails_before_any_work(spark, project):
    ctx = bronze_context(spark)
    with pytest.raises(ValueError, match="start_date 2025-11-05 is after end_date 2025-11-04"):
        BronzeProcessDBN().run(ctx, underlier="ES", start_date=dt.date(2025, 11, 5), end_date=dt.date(2025, 11, 4))
    with pytest.raises(ValueError, match="unknown underlier 'NQ'"):
        BronzeProcessDBN().run(ctx, underlier="NQ")
    assert not delta_tables.exists(ctx.profile, INGEST_MANIFEST)


def test_schema_is_enforced_on_write(project):
    profile = load_profile("local")
    bad = pa.table({"ts_recv": pa.array([1], pa.int64())})
    with pytest.raises(ValueError, match="bronze.mbo: missing column"):
        delta_tables.append(profile, BRONZE_MBO, bad)
