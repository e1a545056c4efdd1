"""Shared test fixtures: Databento's real files, a throwaway project root, one Spark session."""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, make_project, missing_prerequisite


@pytest.fixture(scope="session")
def dbn_fixtures() -> Path:
    if not FIXTURES.is_dir():
        missing_prerequisite(f"Databento's real test files are not here ({FIXTURES}); they live outside the project")
    return FIXTURES


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project root; MBOLAKE_HOME points at it for this test (and its kernels)."""
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("MBOLAKE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session with Delta for the whole run (its catalog lake is throwaway)."""
    from mbolake.runtime.config import load_profile
    from mbolake.runtime.spark import get_spark

    root = make_project(tmp_path_factory.mktemp("spark_project"))
    old = os.environ.get("MBOLAKE_HOME")
    os.environ["MBOLAKE_HOME"] = str(root)
    try:
        session = get_spark(load_profile("local"))
    finally:
        if old is None:
            os.environ.pop("MBOLAKE_HOME", None)
        else:
            os.environ["MBOLAKE_HOME"] = old
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pipeline_home(tmp_path_factory) -> Path:
    """A project home built once for the session: one generated session landed and run through every
    batch stage (``tests.realtime.test_rt_silver.land_and_build_batch``: Bronze, Silver, Gold on the
    local engine), and 40_ml (split, sweep, serve) run by ``mbolake``'s runner as run ``ml`` on a
    generated training snapshot of the same feature set, registering and serving a champion.

    The ML notebooks' test checks run ``ml``; the replay leg and then the tutorial notebook run on
    the home; tests that write stream tables take a copy (``pipeline_copy``). The fixture leaves no
    environment behind: each test points ``MBOLAKE_HOME`` at the home."""
    from mbolake.runtime.config import load_profile
    from mbolake.runtime.orchestrator import run_notebooks
    from mbolake.sample.ml_snapshot import write_synthetic_snapshot

    from tests.realtime.test_rt_silver import land_and_build_batch

    root = make_project(tmp_path_factory.mktemp("pipeline_home") / "project")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MBOLAKE_HOME", str(root))
        profile = load_profile("local")
        land_and_build_batch(profile)
        write_synthetic_snapshot(profile.ml_artifacts_root, "ES_MODEL", dt.date(2026, 1, 6), n_sessions=8,
                                 episodes_per_session=20)
        run_notebooks(["40_ml"], {"max_evals": 3, "seed": 3}, run_id="ml", log=lambda _: None)
    return root


@pytest.fixture
def pipeline_copy(pipeline_home, tmp_path, monkeypatch) -> Path:
    """A copy of ``pipeline_home`` of this test's own (its stream tables, checkpoints and job files);
    ``MBOLAKE_HOME`` points at it."""
    copy = shutil.copytree(pipeline_home, tmp_path / "project", symlinks=True)
    monkeypatch.setenv("MBOLAKE_HOME", str(copy))
    return copy

