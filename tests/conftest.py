"""Shared test fixtures: Databento's real files, a throwaway project root, one Spark session."""
from __future__ import annotations

import os
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
