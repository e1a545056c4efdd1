"""Notebook housekeeping: strip outputs before commit (``make strip-notebooks``).

The one exception: a notebook whose metadata says ``"mbolake": {"keep_outputs": true}`` (the
tutorial, ``notebooks/90_tutorial/``, whose committed outputs nbval compares in ``make test``)
keeps its outputs and execution counts; only its run metadata goes."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def keeps_outputs(nb) -> bool:
    """True for a notebook committed with its outputs (metadata ``mbolake.keep_outputs``)."""
    return bool(nb.metadata.get("mbolake", {}).get("keep_outputs"))


def strip(path: Path) -> bool:
    """Remove outputs, execution counts and run metadata (only the run metadata of a notebook that
    :func:`keeps_outputs`); True when the file changed."""
    nb = nbformat.read(path, as_version=4)
    keep = keeps_outputs(nb)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if not keep:
            if cell.get("outputs") or cell.get("execution_count") is not None:
                changed = True
            cell["outputs"], cell["execution_count"] = [], None
        for key in ("execution", "papermill"):
            if cell.metadata.pop(key, None) is not None:
                changed = True
    if nb.metadata.pop("papermill", None) is not None:
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "strip":
        print("usage: python -m mbolake.runtime.notebook_tools strip <folder>", file=sys.stderr)
        return 2
    for nb in sorted(Path(argv[1]).rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts and strip(nb):
            print(f"stripped {nb}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
