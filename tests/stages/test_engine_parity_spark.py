"""Engine parity on a small generated lake built on ``local``: the last session re-run on
Spark in a scratch lake equals the lake table for table; one altered bar_5s value in the
lake makes exactly that table unequal, named with its first difference; the lake itself is
never written."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from mbolake.io import delta_tables
from mbolake.runtime import run_record
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BAR_5S, BRONZE_MBO, ORDERBOOK_STATE, TABLES
from mbolake.stages import SILVER_GOLD_STAGES, BronzeProcessDBN
from mbolake.stages.engine_parity import check_engine_parity

from tests.helpers import make_project

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FIRST = dt.date(2025, 11, 10)
LAST = dt.date(2025, 11, 11)
CHAIN = SILVER_GOLD_STAGES


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Two generated sessions through Bronze and every stage on ``local`` (delta-rs, no Spark)."""
    root = make_project(tmp_path_factory.mktemp("parity"))
    old = os.environ.get("MBOLAKE_HOME")
    os.environ["MBOLAKE_HOME"] = str(root)
    ctx = Context(profile=load_profile("local"))
    ctx.__dict__["spark"] = spark
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=2, first_date=FIRST, intensity=30_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    for stage in CHAIN:
        stage().run(ctx, underlier="ES", engine="local")
    yield ctx
    if old is None:
        os.environ.pop("MBOLAKE_HOME", None)
    else:
        os.environ["MBOLAKE_HOME"] = old


def versions(ctx) -> dict:
    return {t.name: delta_tables.version(ctx.profile, t) for t in TABLES.values() if delta_tables.exists(ctx.profile, t)}


def test_the_last_session_on_spark_equals_the_lake_table_for_table(lake, tmp_path, monkeypatch):
    monkeypatch.setenv(run_record.RUN_DIR_ENV, str(tmp_path / "run"))
    before = versions(lake)

    parity = check_engine_parity(lake, underlier="ES").record()

    assert (parity.session_date, parity.lake_engine, parity.other_engine) == (LAST, "local", "spark")
    table = parity.frame()
    assert table["table"].tolist() == ["silver.orderbook_state", "silver.book_quality", "silver.mbo_normalized",
                                       "silver.session_levels", "silver.bar_5s", "silver.feature_primitives",
                                       "gold.setup_vectors", "gold.labels", "gold.training_view"]
    assert table["equal"].all() and parity.equal, table[~table["equal"]].to_dict("records")
    assert (table["rows"] == table["other_rows"]).all()
    rows = dict(zip(table["table"], table["rows"]))
    assert rows["silver.bar_5s"] == 2880  # one session's bars, not two
    assert rows["silver.orderbook_state"] > 10_000 and rows["silver.book_quality"] >= 1
    bronze = delta_tables.read(lake.profile, BRONZE_MBO, ["session_date"]).column(0).to_pylist()
    assert parity.bronze_rows == sum(d == LAST for d in bronze) > 0
    assert versions(lake) == before  # the lake was only read
    # the run's record holds the parity summary, and none of the scratch stages' summaries
    written = sorted(p.name for p in (tmp_path / "run" / "summaries").iterdir())
    assert written == ["engine_parity.json"]
    record = json.loads((tmp_path / "run" / "summaries" / "engine_parity.json").read_text())
    assert record["equal"] is True and len(record["details"]) == 9 and record["session_date"] == "2025-11-11"


def test_an_altered_lake_row_makes_its_table_unequal_and_names_it(lake):
    from deltalake import DeltaTable

    bars = DeltaTable(delta_tables.table_uri(lake.profile, BAR_5S))
    first_bar = int(dt.datetime(2025, 11, 11, 13, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9 + 600 * 10**9
    bars.update(predicate=f"session_date = '2025-11-11' AND bar_ts = {first_bar}",
                updates={"bar5s_midprice_eob": "bar5s_midprice_eob + 0.25"})

    parity = check_engine_parity(lake, underlier="ES", session_date="2025-11-11")

    table = parity.frame().set_index("table")
    assert not parity.equal
    assert table.index[~table["equal"]].tolist() == ["silver.bar_5s"]  # every other table still equal
    notes = table.loc["silver.bar_5s", "notes"]
    assert notes.startswith("first difference in column bar5s_midprice_eob at row 120 (contract_id=")
    assert f"bar_ts={first_bar}" in notes and "lake " in notes and "spark " in notes
    assert table.loc["silver.orderbook_state", "equal"] and ORDERBOOK_STATE.name in table.index


def test_a_session_without_bronze_rows_fails_naming_it(lake):
    with pytest.raises(ValueError, match="no ES Bronze rows for session 2025-12-01"):
        check_engine_parity(lake, underlier="ES", session_date=dt.date(2025, 12, 1))
