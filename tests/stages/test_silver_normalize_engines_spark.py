"""SilverNormalizeMBO on both engines when a session loses its outright contracts."""
from __future__ import annotations

import datetime as dt

import pytest

from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, MBO_NORMALIZED
from mbolake.stages.bronze import BronzeProcessDBN
from mbolake.stages.silver_normalize import SilverNormalizeMBO

from tests.helpers import make_project

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FIRST, SECOND = dt.date(2025, 11, 10), dt.date(2025, 11, 11)


@pytest.fixture
def landed(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("MBOLAKE_HOME", str(make_project(tmp_path)))
    ctx = Context(profile=load_profile("local"))
    ctx.__dict__["spark"] = spark
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=2, first_date=FIRST, intensity=20_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    return ctx


def rows_per_session(ctx, instrument_type=None) -> dict:
    rows = delta_tables.read(ctx.profile, MBO_NORMALIZED, ["session_date", "instrument_type"]).to_pandas()
    if instrument_type:
        rows = rows[rows["instrument_type"] == instrument_type]
    return rows.groupby("session_date").size().to_dict()


def drop_outrights(ctx, session: dt.date) -> None:
    """Bronze keeps only the spread of ``session``: no front month can be chosen for it."""
    from deltalake import DeltaTable

    bronze = DeltaTable(delta_tables.table_uri(ctx.profile, BRONZE_MBO), storage_options=delta_tables.storage_options())
    bronze.delete(f"session_date = '{session}' AND instrument_type != 'SPREAD'")


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_a_session_without_outrights_keeps_no_rows_on_either_engine(landed, engine):
    ctx = landed
    SilverNormalizeMBO().run(ctx, underlier="ES", engine="local")
    before = rows_per_session(ctx)
    assert set(before) == {FIRST, SECOND} and min(before.values()) > 1_000

    drop_outrights(ctx, SECOND)
    summary = SilverNormalizeMBO().run(ctx, underlier="ES", engine=engine)

    assert summary.details["session_date"].tolist() == [FIRST]
    assert rows_per_session(ctx) == {FIRST: before[FIRST]}  # the old rows of SECOND are gone

    SilverNormalizeMBO().run(ctx, underlier="ES", engine=engine, include_spreads=True)
    spreads = rows_per_session(ctx, "SPREAD")
    assert set(spreads) == {FIRST} and spreads[FIRST] > 0  # no session without a front month
    assert rows_per_session(ctx)[FIRST] == before[FIRST] + spreads[FIRST]
