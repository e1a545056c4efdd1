"""Named fault points for crash and race tests of real processes.

A stage calls ``reach("bronze.after_data_commit")`` at the moments where a crash or a
concurrent writer matters. The points:

- ``bronze.before_data_commit``, ``bronze.after_data_commit``, ``bronze.after_quarantine_commit``
  (``stages.bronze``: one file's commits);
- ``stage.between_outputs`` (``engines.local``: one output table of a stage written, the next not);
- ``rt_bronze.after_merge`` (a micro-batch MERGEd into ``bronze.mbo_stream``, not committed by Spark);
- ``rt_silver.between_appends`` (before each of a micro-batch's stream table appends but the
  first: one table appended, the next not; a kill ends at the first) and
  ``rt_silver.after_appends`` (all appended, the micro-batch not committed by Spark).

Nothing happens unless the environment asks for it:

- ``MBOLAKE_KILL_AT=<point>``: the process ends at once there (``os._exit``, no cleanup,
  no ``finally``), as a SIGKILL or a power cut would end it.
- ``MBOLAKE_PAUSE_AT=<point>`` with ``MBOLAKE_PAUSE_GATE=<file>``: the process writes
  ``<file>.<pid>.waiting`` and waits there until ``<file>`` exists, so a test can hold two
  processes at the same point and release them together.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

KILLED_EXIT_CODE = 137  # what a shell reports for a SIGKILLed process
PAUSE_LIMIT_SECONDS = 120.0


def reach(point: str) -> None:
    if os.environ.get("MBOLAKE_KILL_AT") == point:
        os._exit(KILLED_EXIT_CODE)
    if os.environ.get("MBOLAKE_PAUSE_AT") == point and os.environ.get("MBOLAKE_PAUSE_GATE"):
        _wait_at_gate(Path(os.environ["MBOLAKE_PAUSE_GATE"]))


def _wait_at_gate(gate: Path) -> None:
    gate.with_name(f"{gate.name}.{os.getpid()}.waiting").touch()
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"fault gate {gate} was not opened within {PAUSE_LIMIT_SECONDS:.0f} s")
        time.sleep(0.02)
