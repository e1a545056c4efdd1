"""A date range with no data, and a range that ends before it starts, in the Silver notebooks
(run under papermill, as jobs run them): a clear message, never a crash deep in a view cell."""
from __future__ import annotations

import datetime as dt

import pytest

from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.context import context
from mbolake.runtime.orchestrator import NotebookFailed, run_notebooks
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, ORDERBOOK_STATE
from mbolake.stages.bronze import BronzeProcessDBN

from tests.notebooks.test_notebooks import outputs_of

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

EMPTY_RANGE = {"start_date": "2025-12-01", "end_date": "2025-12-02"}


@pytest.fixture
def bronze_day(project):
    """One small session of 2025-11-04 in Bronze: the lake has data, just not in EMPTY_RANGE."""
    ctx = context("local")
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 4),
                                                                      intensity=20_000), progress=False)
    assert BronzeProcessDBN().run(ctx, underlier="ES", progress=False).rows_out > 0
    return ctx


def test_a_range_with_no_data_prints_a_message_in_the_silver_notebooks(bronze_day):
    runs = run_notebooks(["20_silver/20_silver_orderbook.ipynb", "20_silver/21_silver_normalize.ipynb"],
                         EMPTY_RANGE, run_id="empty", log=lambda _: None)

    orderbook, normalize = (outputs_of(r.output)[0] for r in runs)
    assert "no contract-sessions of ES in Bronze between 2025-12-01 and 2025-12-02: nothing to chart" in orderbook
    assert "no Bronze records of ES between 2025-12-01 and 2025-12-02: nothing normalized" in normalize
    assert delta_tables.read(load_profile(), BRONZE_MBO, columns=["ts_recv"]).num_rows > 0


def test_a_later_stage_without_its_input_table_names_it(bronze_day):
    assert not delta_tables.exists(bronze_day.profile, ORDERBOOK_STATE)
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(["20_silver/22_silver_levels_bars.ipynb"], EMPTY_RANGE, run_id="no_input", log=lambda _: None)
    assert "SilverAddSessionLevels needs silver.orderbook_state, which does not exist yet" in str(failure.value)


def test_end_date_before_start_date_fails_before_any_work(project):
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(["20_silver/20_silver_orderbook.ipynb"], {"start_date": "2025-11-05", "end_date": "2025-11-03"},
                      run_id="reversed", log=lambda _: None)
    assert "parameter 'end_date': 2025-11-03 is before start_date 2025-11-05" in str(failure.value)
    assert not delta_tables.exists(load_profile(), ORDERBOOK_STATE)
