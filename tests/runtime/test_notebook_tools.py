"""Notebook housekeeping, and the conventions every committed notebook follows."""
from __future__ import annotations

import ast
import re

import nbformat
import pytest

from mbolake.runtime import notebook_tools

from tests.helpers import REPO

COMMITTED = sorted(p for p in (REPO / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def executed_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.5}
    nb.metadata["kernelspec"] = {"name": "mbolake", "display_name": "mbolake", "language": "python"}
    header = nbformat.v4.new_markdown_cell("# Title")
    params = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    params.metadata["tags"] = ["parameters"]
    params.metadata["execution"] = {"iopub.status.busy": "2025-11-03T00:00:00Z"}
    work = nbformat.v4.new_code_cell("print(x)", execution_count=2)
    work.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    work.metadata["papermill"] = {"duration": 0.1}
    nb.cells = [header, params, work]
    return nb


def test_strip_removes_outputs_counts_and_run_metadata(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(executed_notebook(), path)
    assert notebook_tools.strip(path) is True
    nb = nbformat.read(path, as_version=4)
    header, params, work = nb.cells
    assert header.source == "# Title"
    assert params.source == "x = 1" and work.source == "print(x)"
    for cell in (params, work):
        assert cell.outputs == []
        assert cell.execution_count is None
        assert "execution" not in cell.metadata and "papermill" not in cell.metadata
    assert params.metadata["tags"] == ["parameters"]
    assert "papermill" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "mbolake"
    nbformat.validate(nb)
    # a clean notebook is left alone
    before = path.read_bytes()
    assert notebook_tools.strip(path) is False
    assert path.read_bytes() == before


def test_strip_reports_a_change_for_metadata_only(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells = [nbformat.v4.new_code_cell("1")]
    path = tmp_path / "meta.ipynb"
    nbformat.write(nb, path)
    assert notebook_tools.strip(path) is True
    assert "papermill" not in nbformat.read(path, as_version=4).metadata


def test_strip_keeps_the_outputs_of_a_notebook_marked_keep_outputs(tmp_path):
    nb = executed_notebook()
    nb.metadata["mbolake"] = {"keep_outputs": True}
    path = tmp_path / "tutorial.ipynb"
    nbformat.write(nb, path)
    assert notebook_tools.strip(path) is True  # its run metadata goes
    header, params, work = nbformat.read(path, as_version=4).cells
    assert work.outputs[0].text == "1\n" and (params.execution_count, work.execution_count) == (1, 2)
    assert "execution" not in params.metadata and "papermill" not in work.metadata
    assert "papermill" not in nbformat.read(path, as_version=4).metadata
    assert notebook_tools.strip(path) is False


def test_main_strips_a_folder_but_not_checkpoints(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()
    nbformat.write(executed_notebook(), tmp_path / "a" / "one.ipynb")
    nbformat.write(executed_notebook(), tmp_path / ".ipynb_checkpoints" / "one-checkpoint.ipynb")
    assert notebook_tools.main(["strip", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"stripped {tmp_path / 'a' / 'one.ipynb'}"
    assert nbformat.read(tmp_path / "a" / "one.ipynb", as_version=4).cells[2].outputs == []
    assert nbformat.read(tmp_path / ".ipynb_checkpoints" / "one-checkpoint.ipynb", as_version=4).cells[2].outputs
    assert notebook_tools.main(["strip"]) == 2
    assert notebook_tools.main(["clean", str(tmp_path)]) == 2


# --- the committed notebooks ---------------------------------------------------------------


def test_there_are_committed_notebooks():
    assert len(COMMITTED) >= 4


def _assigned_names(source: str) -> list[str]:
    names = []
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"parameters cell may only assign: {ast.unparse(node)}"
        for target in node.targets:
            assert isinstance(target, ast.Name)
            names.append(target.id)
    return names


def _params_call_keys(source: str) -> list[str] | None:
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "params"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "mbolake"
            and node.args
            and isinstance(node.args[0], ast.Dict)
        ):
            return [k.value for k in node.args[0].keys]
    return None


@pytest.mark.parametrize("path", COMMITTED, ids=[p.relative_to(REPO / "notebooks").as_posix() for p in COMMITTED])
def test_committed_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    if notebook_tools.keeps_outputs(nb):  # the tutorial: nbval compares its outputs (tests/realtime/test_tutorial.py)
        assert path.parent.name == "90_tutorial", "only the tutorial is committed with outputs"
        assert [c.execution_count for _, c in code] == list(range(1, len(code) + 1)), "run top to bottom, once"
    else:
        for i, cell in code:
            assert cell.outputs == [], f"cell {i} has outputs"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    for i, cell in code:
        assert "execution" not in cell.metadata and "papermill" not in cell.metadata, f"cell {i} has run metadata"
    assert "papermill" not in nb.metadata

    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"cells tagged parameters: {tagged}"
    index = tagged[0]
    cell = nb.cells[index]
    assert cell.cell_type == "code"

    header = nb.cells[0]
    assert header.cell_type == "markdown"
    assert re.match(r"# \S", header.source), "the first cell starts with a level-1 title"
    assert all(c.cell_type == "markdown" for c in nb.cells[:index])

    names = _assigned_names(cell.source)
    assert names, "the parameters cell assigns nothing"
    for name in names:
        assert f"`{name}`" in header.source, f"parameter {name} is not documented in the header"

    follower = nb.cells[index + 1]
    assert follower.cell_type == "code"
    assert "mbolake.params(" in follower.source
    assert "globals()" in follower.source
    keys = _params_call_keys(follower.source)
    assert keys is not None, "mbolake.params({...}, globals()) with a literal spec"
    assert sorted(keys) == sorted(names), "the spec declares exactly the parameters cell's names"
