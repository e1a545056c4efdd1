"""Helpers shared by the test tree (import as ``from tests.helpers import ...``).

The one definition of the repository root and of Databento's real DBN test files
(``../shared/fixtures/dbn``, outside the project; ``MBOLAKE_DBN_FIXTURES`` names another
folder); conftest.py builds its fixtures on these. ``missing_prerequisite`` is how a test says
that something outside the project is not here: a skip on a developer's machine, a failure
under ``CI=true``, where every prerequisite is installed and a skip would hide a lost check.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("MBOLAKE_DBN_FIXTURES") or REPO.parent / "shared" / "fixtures" / "dbn")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_prerequisite(reason: str) -> None:
    """Skip with ``reason``; under ``CI=true`` fail with it instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def make_project(root: Path) -> Path:
    """A project root of its own (conf/ + a link to the real notebooks) for one test's lake."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    for conf in (REPO / "conf").glob("*.yaml"):
        shutil.copy(conf, root / "conf" / conf.name)
    if not (root / "notebooks").exists():
        (root / "notebooks").symlink_to(REPO / "notebooks")
    return root


def session_file(root: Path) -> Path:
    """The one generated DBN file in the landing zone of a home (``conftest.pipeline_home``)."""
    [path] = (root / "raw-dbn").rglob("*.dbn.zst")
    return path
