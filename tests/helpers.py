"""Helpers shared by the test tree (import as ``from tests.helpers import ...``).

The one definition of the repository root and of Databento's real DBN test files
(``../shared/fixtures/dbn``, outside the project); conftest.py builds its fixtures on these.
"""
from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "dbn"


def make_project(root: Path) -> Path:
    """A project root of its own (conf/ + a link to the real notebooks) for one test's lake."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    for conf in (REPO / "conf").glob("*.yaml"):
        shutil.copy(conf, root / "conf" / conf.name)
    if not (root / "notebooks").exists():
        (root / "notebooks").symlink_to(REPO / "notebooks")
    return root
