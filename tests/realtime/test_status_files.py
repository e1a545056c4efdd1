"""Status and progress files read by one process while another rewrites them: every read parses.

A job rewrites ``<job>.status.json`` after each micro-batch while ``mbolake stream status`` (or a
benchmark) reads it; a replay rewrites its progress file after each chunk. Written in place, a
reader lands between the truncation and the write and gets ``Expecting value: line 1 column 1``.
"""
from __future__ import annotations

import subprocess
import sys

from mbolake.realtime import jobs
from mbolake.realtime.feed import Progress
from mbolake.runtime.config import Profile

REWRITES = 2_000  # of a job's status
PROGRESS_REWRITES = 1_000  # of a replay's progress (each record also re-sorts its entry)
PADDING = 4_000  # characters: a status of a few KB

# what rt bronze, rt silver and rt inference do after each micro-batch
STATUS_WRITER = """
import sys
from mbolake.runtime.atomic_files import write_json_atomic

path, rewrites, padding = sys.argv[1], int(sys.argv[2]), "x" * int(sys.argv[3])
for batch_id in range(rewrites):
    write_json_atomic(path, {"query": "rt_bronze", "batch_id": batch_id, "padding": padding})
"""

# what a replay does after each chunk it sent
PROGRESS_WRITER = """
import sys
from pathlib import Path
from mbolake.realtime.feed import Progress

path, rewrites, padding = sys.argv[1], int(sys.argv[2]), "x" * int(sys.argv[3])
progress = Progress(path)
for sent in range(1, rewrites + 1):
    progress.record("sha-" + padding, Path("/raw/ES/FUT/20251104/a.dbn.zst"), sent)
"""


def poll_while_writing(writer: str, path, rewrites: int, read) -> list:
    """Start ``writer`` in its own process and call ``read()`` until it exits; every value read."""
    proc = subprocess.Popen([sys.executable, "-c", writer, str(path), str(rewrites), str(PADDING)])
    seen = []
    try:
        while proc.poll() is None:
            seen.append(read())
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    return seen


def test_stream_status_reads_a_status_file_being_rewritten(tmp_path):
    profile = Profile("test", tmp_path, {"runs_root": str(tmp_path / "runs")})
    status_file = jobs.stream_dir(profile) / "rt_bronze.status.json"

    def last_batch_id():
        [row] = jobs.status(profile, "rt_bronze")
        return row["last_batch"].get("batch_id")

    seen = poll_while_writing(STATUS_WRITER, status_file, REWRITES, last_batch_id)
    during = {batch_id for batch_id in seen if batch_id is not None}
    assert len(during) >= 20, f"the reads did not overlap the rewrites ({len(seen)} reads)"
    assert last_batch_id() == REWRITES - 1
    assert [p.name for p in status_file.parent.iterdir()] == ["rt_bronze.status.json"]


def test_a_replays_progress_file_reads_whole_while_being_rewritten(tmp_path):
    path, sha = tmp_path / "feeds" / "replay-mbo_raw.json", "sha-" + "x" * PADDING
    seen = poll_while_writing(PROGRESS_WRITER, path, PROGRESS_REWRITES, lambda: Progress(path).sent(sha))
    assert len(set(seen) - {0}) >= 20, f"the reads did not overlap the rewrites ({len(seen)} reads)"
    assert Progress(path).sent(sha) == PROGRESS_REWRITES
    assert [p.name for p in path.parent.iterdir()] == ["replay-mbo_raw.json"]
