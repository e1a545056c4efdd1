"""SilverRebuildOrderBook over Bronze: same rows as the kernel on the file, counters, idempotence."""
from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from mbolake.book import OrderBook
from mbolake.io import delta_tables
from mbolake.io.dbn import UNDEF_PRICE, read_mbo
from mbolake.io.landing import day_folder
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BOOK_QUALITY, ORDERBOOK_STATE
from mbolake.stages.bronze import BronzeProcessDBN
from mbolake.stages.silver_book import SilverRebuildOrderBook

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SESSION = dt.date(2025, 11, 5)


def landed_context(spark, src, day):
    ctx = Context(profile=load_profile("local"))
    ctx.__dict__["spark"] = spark
    folder = day_folder(ctx.profile.raw_dbn_root, "ES", "FUT", day)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    return ctx


@pytest.fixture(scope="module")
def generated_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_book")
    [path] = synth.generate_sample(out, synth.SynthParams(sessions=1, first_date=SESSION, intensity=40_000), progress=False)
    return path


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_silver_rows_equal_the_kernel_replaying_the_file(spark, project, generated_day, engine):
    ctx = landed_context(spark, generated_day, SESSION)
    header, records = read_mbo(generated_day)
    front, _ = synth.front_and_back_month(SESSION)
    [front_id] = [iid for iid, ivs in header.instruments.items() if ivs[0].raw_symbol == front]
    expected = OrderBook().apply(records[records["instrument_id"] == front_id])

    summary = SilverRebuildOrderBook().run(ctx, underlier="ES", engine=engine)

    assert len(summary.details) == 2  # front and back month; the spread is skipped by default
    rows = (spark.read.format("delta").load(ctx.profile.table_path(ORDERBOOK_STATE.name))
            .where(f"contract_id = 'GLBX.MDP3:{front}'").orderBy("ts_recv", "sequence").toPandas())
    assert len(rows) == len(expected["ts_recv"]) > 10_000
    for name in ("ts_recv", "sequence", "bid_sz_00", "ask_sz_09", "bid_ct_03", "depth"):
        assert np.array_equal(rows[name].to_numpy(dtype=np.int64), expected[name].astype(np.int64)), name
    for name in ("bid_px_00", "ask_px_00", "bid_px_09", "ask_px_09"):
        want = expected[name].astype(np.int64)
        got = rows[name]
        assert got.isna().to_numpy().tolist() == (want == UNDEF_PRICE).tolist(), name
        assert np.array_equal(got[want != UNDEF_PRICE].to_numpy(dtype=np.int64), want[want != UNDEF_PRICE]), name
    assert (rows.action + rows.side).isin(["AB", "AA", "CB", "CA", "MB", "MA", "RN"]).all()

    quality = summary.details.set_index("contract_id")
    assert quality.loc[f"GLBX.MDP3:{front}", "unknown_order_refs"] == 0
    assert quality.loc[f"GLBX.MDP3:{front}", "crossed_groups"] == 0
    assert quality.loc[f"GLBX.MDP3:{front}", "locked_groups"] == 0
    assert bool(quality.loc[f"GLBX.MDP3:{front}", "book_complete"])
    assert quality["records"].sum() == summary.rows_in


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_rebuilding_the_same_sessions_replaces_them(spark, project, generated_day, engine):
    ctx = landed_context(spark, generated_day, SESSION)
    first = SilverRebuildOrderBook().run(ctx, underlier="ES", engine=engine)
    first_version = delta_tables.version(ctx.profile, ORDERBOOK_STATE)
    again = SilverRebuildOrderBook().run(ctx, underlier="ES", engine=engine)

    table = spark.read.format("delta").load(ctx.profile.table_path(ORDERBOOK_STATE.name))
    assert table.count() == first.rows_out == again.rows_out
    quality = delta_tables.read(ctx.profile, BOOK_QUALITY).to_pandas()
    assert len(quality) == 2
    assert delta_tables.version(ctx.profile, ORDERBOOK_STATE) == first_version + 1  # one commit per run


def test_a_file_that_starts_mid_session_counts_unknown_orders(spark, project, dbn_fixtures):
    ctx = landed_context(spark, dbn_fixtures / "test_data.mbo.v3.dbn.zst", dt.date(2020, 12, 28))

    summary = SilverRebuildOrderBook().run(ctx, underlier="ES")

    [row] = summary.details.to_dict("records")
    assert row["contract_id"] == "GLBX.MDP3:ESH1" and row["records"] == 2
    assert row["unknown_cancels"] == 2 and row["unknown_order_refs"] == 2
    assert not row["book_complete"]
    assert summary.rows_out == 0  # cancels of unknown orders change nothing
