"""silver.orderbook_state and silver.book_quality are two commits: the summary records the
versions one run left, and reads at those versions stay consistent while a later run is
half-way (killed between its two commits, a real subprocess with MBOLAKE_KILL_AT)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from mbolake.io import delta_tables
from mbolake.runtime.context import context
from mbolake.runtime.faults import KILLED_EXIT_CODE
from mbolake.sample import synth
from mbolake.schemas import BOOK_QUALITY, ORDERBOOK_STATE
from mbolake.stages.bronze import BronzeProcessDBN
from mbolake.stages.silver_book import SilverRebuildOrderBook
from mbolake.views.book import session_book

REPO = Path(__file__).resolve().parents[2]
SESSION = dt.date(2025, 11, 4)
RERUN = ("from mbolake.runtime.context import context\n"
         "from mbolake.stages.silver_book import SilverRebuildOrderBook\n"
         "SilverRebuildOrderBook().run(context('local'), underlier='ES', engine='local')\n")


def test_reads_at_the_recorded_versions_see_one_run_while_the_next_is_half_way(project):
    ctx = context("local")
    synth.generate_sample(ctx.profile.raw_dbn_root, synth.SynthParams(sessions=1, first_date=SESSION, intensity=20_000),
                          progress=False)
    BronzeProcessDBN().run(ctx, underlier="ES", progress=False)
    summary = SilverRebuildOrderBook().run(ctx, underlier="ES", engine="local")
    written = summary.data_version["outputs"]
    assert written == {t.name: delta_tables.version(ctx.profile, t) for t in (ORDERBOOK_STATE, BOOK_QUALITY)}
    busiest = summary.details.sort_values("records", ascending=False).iloc[0]
    before = session_book(ctx, busiest.contract_id, busiest.session_date, version=written[ORDERBOOK_STATE.name])

    env = {**os.environ, "MBOLAKE_HOME": str(project), "MBOLAKE_KILL_AT": "stage.between_outputs",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)]))}
    killed = subprocess.run([sys.executable, "-c", RERUN], env=env, cwd=project, capture_output=True, text=True, timeout=300)
    assert killed.returncode == KILLED_EXIT_CODE, killed.stderr[-2000:]

    # the next run's states are committed, its quality rows are not: the window the order documents
    assert delta_tables.version(ctx.profile, ORDERBOOK_STATE) == written[ORDERBOOK_STATE.name] + 1
    assert delta_tables.version(ctx.profile, BOOK_QUALITY) == written[BOOK_QUALITY.name]
    after = session_book(ctx, busiest.contract_id, busiest.session_date, version=written[ORDERBOOK_STATE.name])
    assert len(after) == len(before) > 0
    assert after.equals(before)
