"""The landing zone walk: DBN names and their near misses, per day folder in a date range."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from mbolake.io.landing import discover, near_misses

FILES = [
    "ES/FUT/20240102/a.dbn.zst", "ES/FUT/20240102/b.dbn", "ES/FUT/20240102/c.dbn.zstd", "ES/FUT/20240102/notes.txt",
    "ES/FUT/20240103/d.DBN", "ES/FUT/20240103/e.dbn.zst",
    "ES/FUT/20240105/f.dbn.zst", "ES/FUT/20240105/g.mbo.zst",
    "ES/OPT/20240103/h.dbn",
    "ES/FUT/20241399/bad-date.dbn",  # eight digits, not a date: not a day folder
    "ES/FUT/latest/i.dbn",  # not a day folder
    "NQ/FUT/20240103/j.dbn",
]


def make_tree(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    (root / "ES/FUT/20240103/k.dbn").symlink_to(root / "missing.dbn")  # dangling: listed for quarantine
    (root / "ES/FUT/20240103/folder.dbn").mkdir()
    return root


def relative(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_discover_lists_dbn_names_of_every_type_in_date_and_name_order(tmp_path):
    root = make_tree(tmp_path)
    assert relative(discover(root, "ES"), root) == [
        "ES/FUT/20240102/a.dbn.zst", "ES/FUT/20240102/b.dbn",
        "ES/FUT/20240103/e.dbn.zst", "ES/FUT/20240103/folder.dbn", "ES/FUT/20240103/k.dbn",
        "ES/FUT/20240105/f.dbn.zst",
        "ES/OPT/20240103/h.dbn",
    ]


def test_discover_keeps_one_type_and_the_date_range(tmp_path):
    root = make_tree(tmp_path)
    found = discover(root, "ES", "FUT", dt.date(2024, 1, 3), dt.date(2024, 1, 4))
    assert relative(found, root) == ["ES/FUT/20240103/e.dbn.zst", "ES/FUT/20240103/folder.dbn", "ES/FUT/20240103/k.dbn"]


def test_near_misses_walk_the_same_folders_with_the_other_filter(tmp_path):
    root = make_tree(tmp_path)
    assert relative(near_misses(root, "ES"), root) == [
        "ES/FUT/20240102/c.dbn.zstd", "ES/FUT/20240103/d.DBN", "ES/FUT/20240105/g.mbo.zst",
    ]
    assert relative(near_misses(root, "ES", "FUT", start_date=dt.date(2024, 1, 4)), root) == ["ES/FUT/20240105/g.mbo.zst"]


def test_an_underlier_without_a_folder_has_nothing(tmp_path):
    root = make_tree(tmp_path)
    assert discover(root, "CL") == [] and near_misses(root, "CL") == []
