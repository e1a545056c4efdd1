"""The tutorial notebook (``notebooks/90_tutorial/90_tutorial.ipynb``) is committed with its
outputs, and nbval re-runs it (``pytest --nbval``) against them, so the tutorial cannot rot.

It runs on ``conftest.pipeline_home``, the home the replay leg builds (which is why this test lives
in tests/realtime: it shares that home rather than building a lake of its own), after the leg.
The outputs it is compared with were produced on a home built the same way:
``MBOLAKE_WRITE_TUTORIAL=1 .venv/bin/python -m pytest tests/realtime/test_tutorial.py`` executes
the notebook in place on that home first (then checks it), to refresh them after a deliberate change.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from mbolake.runtime import notebook_tools

from tests.helpers import REPO

FOLDER = REPO / "notebooks" / "90_tutorial"
TUTORIAL = FOLDER / "90_tutorial.ipynb"
SANITIZE = FOLDER / "nbval_sanitize.cfg"
KERNEL = "mbolake"
FIGURE = "application/vnd.plotly.v1+json"


def write_outputs(home) -> None:
    """Execute the tutorial in place on ``home`` (MBOLAKE_HOME must point at it): outputs and
    execution counts, no timings, the notebook's own metadata kept."""
    from nbclient import NotebookClient

    nb = nbformat.read(TUTORIAL, as_version=4)
    metadata = copy.deepcopy(nb.metadata)  # the kernel's language_info (its Python version) stays out
    NotebookClient(nb, kernel_name=KERNEL, timeout=600, record_timing=False,
                   resources={"metadata": {"path": str(FOLDER)}}).execute()
    nb.metadata = metadata
    nbformat.write(nb, TUTORIAL)
    notebook_tools.strip(TUTORIAL)  # run metadata only: the tutorial keeps its outputs


@pytest.mark.spark
@pytest.mark.notebooks
@pytest.mark.serve
@pytest.mark.slow
def test_the_tutorial_shows_what_it_was_committed_with(pipeline_home, monkeypatch):
    monkeypatch.setenv("MBOLAKE_HOME", str(pipeline_home))
    if os.environ.get("MBOLAKE_WRITE_TUTORIAL"):
        write_outputs(pipeline_home)
    command = [sys.executable, "-m", "pytest", "--nbval", str(TUTORIAL), "--nbval-sanitize-with", str(SANITIZE),
               "--nbval-kernel-name", KERNEL, "--nbval-cell-timeout", "600", "-p", "no:cacheprovider", "-q",
               "--color=no"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "MBOLAKE_HOME": str(pipeline_home)})
    print(result.stdout[-20_000:], result.stderr[-5_000:], sep="\n")
    assert result.returncode == 0, f"nbval failed (exit {result.returncode}); its output is printed above"
    assert re.search(r"\b\d+ passed\b", result.stdout) and " failed" not in result.stdout


def test_the_committed_tutorial_carries_its_outputs_and_nothing_of_the_machine():
    nb = nbformat.read(TUTORIAL, as_version=4)
    assert notebook_tools.keeps_outputs(nb)
    assert nb.metadata["language_info"] == {"name": "python"}, "no interpreter version of the machine that ran it"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[2:]), "every cell after the parameters shows something"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert not any(o.get("name") == "stderr" for c in code for o in c.outputs), "a warning in the committed outputs"
    ignored = [c for c in code if "nbval-ignore-output" in c.metadata.get("tags", [])]
    assert len(ignored) == 1 and FIGURE in ignored[0].outputs[0].data, "one figure, its output not compared"
    assert all(FIGURE not in o.get("data", {}) for c in code if c not in ignored for o in c.outputs)
    text = nbformat.writes(nb)
    assert len(text) < 200_000, "the committed notebook stays small (no plotly.js inline)"
    outputs = json.dumps([o for c in code for o in c.outputs])
    home = os.path.expanduser("~")
    for machine in (str(REPO), str(REPO.parent), *([home] if len(home) > 1 else []), "/tmp/", "/home/", "127.0.0.1:"):
        assert machine not in outputs, f"{machine!r} in the committed outputs"
    assert not re.search(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d", outputs), "a wall-clock time in the committed outputs"
