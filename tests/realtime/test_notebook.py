"""notebooks/50_realtime/51_rt_bronze.ipynb runs with small parameters against a real broker."""
from __future__ import annotations

import pytest

from mbolake.realtime import feed
from mbolake.realtime.bus import BusSettings

from tests.helpers import REPO

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.notebooks, pytest.mark.slow]


def test_rt_bronze_notebook_drains_the_topic(project, broker, topic, small_session, tmp_path):
    import papermill

    sent = feed.replay(small_session, BusSettings(broker["bootstrap"]), topic=topic, speed="max", report=None).sent
    out = tmp_path / "51.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "50_realtime" / "51_rt_bronze.ipynb"), str(out),
                               parameters={"bootstrap": broker["bootstrap"], "topic": topic, "max_offsets": 50_000},
                               kernel_name="mbolake", cwd=str(project), progress_bar=False)
    import nbformat

    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "merge_seconds" in text and "distinct_keys" in text
    from mbolake.realtime import jobs
    from mbolake.runtime.config import load_profile

    counts, quarantine = jobs.rt_bronze_tables(load_profile("local"))
    assert int(counts["events"].sum()) == sent and (counts["events"] == counts["distinct_keys"]).all()
    assert quarantine.empty
