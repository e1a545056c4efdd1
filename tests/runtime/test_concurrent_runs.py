"""``mbolake run`` side by side, as a scheduler or two users start them: real kernels, every run ok
with a folder and record of its own; the same file landed by two Bronze runs at once lands once."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mbolake.io import delta_tables
from mbolake.runtime.config import load_profile
from mbolake.sample import synth
from mbolake.schemas import BRONZE_MBO, INGEST_MANIFEST

from tests.helpers import make_project

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

MBOLAKE = str(Path(sys.executable).with_name("mbolake"))


def start_run(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MBOLAKE_HOME": str(home)}
    return subprocess.Popen([MBOLAKE, "run", *args, "--no-reports"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(runs: list[subprocess.Popen]) -> list[str]:
    """Every run's console output; each must have exited 0."""
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output
    return outputs


def run_records(home: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((home / "runs").glob("*/run.json"))]


def test_two_runs_in_separate_homes_at_once_both_finish(tmp_path):
    homes = [make_project(tmp_path / name) for name in ("a", "b")]
    finish([start_run(home, "00_setup/00_environment_check") for home in homes])

    for home in homes:
        [record] = run_records(home)
        assert record["status"] == "ok" and [n["status"] for n in record["notebooks"]] == ["ok"]
        assert (home / "runs" / record["run_id"] / "00_setup__00_environment_check.ipynb").exists()


def test_three_runs_at_once_two_landing_the_same_file_in_one_home(tmp_path, monkeypatch):
    """Two Bronze runs of one home (no run id given) and a third run in another home, started together."""
    shared, other = make_project(tmp_path / "shared"), make_project(tmp_path / "other")
    [raw] = synth.generate_sample(shared / "raw-dbn", synth.SynthParams(sessions=1, first_date=dt.date(2025, 11, 4),
                                                                        intensity=10_000, seed=7), progress=False)
    runs = [start_run(shared, "10_bronze"), start_run(shared, "10_bronze"),
            start_run(other, "00_setup/00_environment_check")]
    outputs = finish(runs)

    records = run_records(shared)
    assert len(records) == 2 and records[0]["run_id"] != records[1]["run_id"], outputs
    assert all(r["status"] == "ok" for r in records + run_records(other))
    monkeypatch.setenv("MBOLAKE_HOME", str(shared))
    profile = load_profile()
    manifest = delta_tables.read(profile, INGEST_MANIFEST).to_pandas()
    landed = delta_tables.read(profile, BRONZE_MBO, columns=["ts_recv"]).num_rows
    assert sorted(manifest.status) == ["ingested", "skipped_duplicate"], manifest[["path", "status"]]
    assert landed == int(manifest.loc[manifest.status == "ingested", "record_count"].sum()) > 5_000
    assert {Path(p).name for p in manifest.path} == {raw.name}
