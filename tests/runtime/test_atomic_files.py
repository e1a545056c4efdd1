"""Atomic file writes: a rewrite replaces the whole file, leaves no temporary behind, and survives
concurrent writers and a failed write."""
from __future__ import annotations

import json
import threading

import pytest

from mbolake.runtime.atomic_files import write_json_atomic, write_text_atomic


def test_a_rewrite_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "streams" / "job.status.json"  # the folder is created
    write_json_atomic(path, {"batch_id": 1, "padding": "x" * 5000})
    write_json_atomic(path, {"batch_id": 2}, indent=1)
    assert json.loads(path.read_text()) == {"batch_id": 2}
    assert path.read_text() == '{\n "batch_id": 2\n}'
    assert [p.name for p in path.parent.iterdir()] == ["job.status.json"]


def test_two_threads_rewriting_one_file_never_share_a_temporary(tmp_path):
    path, errors = tmp_path / "progress.json", []

    def rewrite(writer: int) -> None:
        try:
            for sent in range(500):
                write_json_atomic(path, {"writer": writer, "sent": sent})
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=rewrite, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads(path.read_text())["sent"] == 499
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "run.json", '{"status": "running"}')
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, '{"status": "\ud800"}')  # a lone surrogate has no UTF-8 encoding
    assert path.read_text() == '{"status": "running"}'
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
