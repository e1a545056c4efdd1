"""Which session engine parity checks, and a bad choice failing before any Spark work: a
small lake through Bronze and the order book on ``local`` (delta-rs, no Spark)."""
from __future__ import annotations

import datetime as dt

import pytest

from mbolake.runtime.config import load_profile
from mbolake.runtime.context import Context
from mbolake.sample import synth
from mbolake.stages import BronzeProcessDBN, SilverRebuildOrderBook
from mbolake.stages.engine_parity import check_engine_parity, last_session

FIRST, SECOND = dt.date(2025, 11, 10), dt.date(2025, 11, 11)


@pytest.fixture
def lake(project):
    ctx = Context(profile=load_profile("local"))
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=2, first_date=FIRST, intensity=10_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    SilverRebuildOrderBook().run(ctx, underlier="ES", engine="local")
    return ctx


def test_the_last_session_of_the_selection_with_silver_rows_of_the_product(lake):
    assert last_session(lake, underlier="ES") == SECOND
    assert last_session(lake, end_date=FIRST, underlier="ES") == FIRST
    assert last_session(lake, start_date=FIRST, end_date=SECOND) == SECOND
    with pytest.raises(ValueError, match="no session of TSLA with Silver rows between None and None"):
        last_session(lake, underlier="TSLA")
    with pytest.raises(ValueError, match="no session of ES with Silver rows between 2025-11-12 and None"):
        last_session(lake, start_date=dt.date(2025, 11, 12), underlier="ES")


def test_a_session_without_data_fails_before_spark_starts(lake):
    with pytest.raises(ValueError, match="no ES Bronze rows for session 2025-12-01"):
        check_engine_parity(lake, underlier="ES", session_date="2025-12-01")
    with pytest.raises(ValueError, match="no session of ES with Silver rows between 2026-01-01 and None"):
        check_engine_parity(lake, underlier="ES", start_date=dt.date(2026, 1, 1))
    assert "spark" not in lake.__dict__  # no Spark session was asked for
