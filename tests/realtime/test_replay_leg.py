"""The demo's real-time leg as the demo runs it (notebooks 52 then 50 under papermill): a landed
session replayed through the broker, rt bronze, rt silver and rt inference (the champion served),
the stream tables equal to the batch tables, every vector scored, the overview charts drawn."""
from __future__ import annotations

import json

import pytest

from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.runtime.orchestrator import run_notebooks
from mbolake.schemas import INFERENCE_SCORES_STREAM, SETUP_VECTORS_STREAM

from ..notebooks.test_notebooks import outputs_of

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.serve, pytest.mark.notebooks, pytest.mark.slow]


def test_the_replay_leg_streams_a_session_equal_to_batch_and_scores_it(pipeline_copy, broker):
    # the batch tables and the champion: a copy of conftest.pipeline_home
    project, profile = pipeline_copy, load_profile("local")
    runs = run_notebooks(["50_realtime/52_rt_replay_leg.ipynb", "50_realtime/50_realtime_overview.ipynb"],
                         {"bootstrap": broker["bootstrap"], "until": "11:00", "max_offsets": 20_000},
                         run_id="rt", log=lambda _: None)

    parity = json.loads((project / "runs" / "rt" / "summaries" / "stream_parity.json").read_text())
    assert parity["equal"] is True, parity["notes"]
    results = {d["table"]: d for d in parity["details"]}
    assert {table: d["status"] for table, d in results.items()} == dict.fromkeys(results, "equal")
    assert results["gold.setup_vectors"]["rows"] >= 2, "the replay should reach past a few episodes"
    assert 1_790 <= results["silver.bar_5s"]["rows"] <= 150 * 12  # 08:30-11:00 of 5-second bars
    vectors = delta_tables.read(profile, SETUP_VECTORS_STREAM, ["episode_id", "feature_hash"]).to_pandas()
    scores = delta_tables.read(profile, INFERENCE_SCORES_STREAM, ["episode_id", "feature_hash"]).to_pandas()
    assert sorted(scores["episode_id"]) == sorted(vectors["episode_id"])  # every vector scored, once
    assert (scores.sort_values("episode_id")["feature_hash"].to_numpy()
            == vectors.sort_values("episode_id")["feature_hash"].to_numpy()).all()
    for run in runs:
        text, mimes = outputs_of(run.output)
        assert "application/vnd.plotly.v1+json" in mimes, run.output.name
    text, _ = outputs_of(runs[1].output)
    assert "rt_silver" in text and "lag_p50_s" in text
