"""A missing prerequisite is a skip on a developer's machine and a failure under ``CI=true``,
and a test that does not need Databento's files runs without them. Each case is a real pytest
run in a subprocess, with ``MBOLAKE_DBN_FIXTURES`` pointing at a folder that does not exist."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


def run_pytest(tmp_path, ci: bool, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"MBOLAKE_DBN_FIXTURES": str(tmp_path / "no-such-folder")}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_missing_databento_files_skip_locally_and_fail_under_ci(tmp_path):
    test = "tests/io/test_dbn.py::test_metadata_bytes_point_at_the_records"
    local = run_pytest(tmp_path, False, test)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    assert "Databento's real test files are not here" in local.stdout
    ci = run_pytest(tmp_path, True, test)
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout
    assert "CI=true: a missing prerequisite is a failure" in ci.stdout


@pytest.mark.slow
def test_the_two_process_ingest_of_a_new_table_needs_no_databento_file(tmp_path):
    ci = run_pytest(tmp_path, True, "tests/stages/test_bronze_hostile.py",
                    "-k", "two_processes_ingesting_the_same_new_file and new_table")
    assert ci.returncode == 0 and "1 passed" in ci.stdout, ci.stdout
