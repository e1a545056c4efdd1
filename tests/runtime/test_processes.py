"""Stopping real child processes: one that exits on SIGTERM, one that ignores it and is SIGKILLed."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from mbolake.runtime.processes import alive, stop_process

# ignores SIGTERM and starts a `sleep` that inherits the ignored signal; prints the sleep's pid when ready
IGNORES_SIGTERM = """
import signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen(["sleep", "120"])
print(grandchild.pid, flush=True)
time.sleep(120)
"""


def reaped(pid: int) -> bool:
    """Gone from the process table: not even a zombie left."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_process_that_exits_on_sigterm_is_stopped_and_reaped():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    assert alive(proc.pid)
    started = time.monotonic()
    assert stop_process(proc.pid, timeout=10.0) is True
    assert time.monotonic() - started < 5.0  # it did not wait for the timeout
    assert reaped(proc.pid)
    assert not alive(proc.pid)


def test_a_process_that_ignores_sigterm_is_killed_with_its_group_after_the_timeout():
    proc = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    started = time.monotonic()
    try:
        assert stop_process(proc.pid, timeout=1.0, poll_seconds=0.05) is False
        assert time.monotonic() - started >= 1.0  # SIGTERM was given its time first
        assert reaped(proc.pid)
        wait_until(lambda: not alive(grandchild))  # the group went with it (init reaps the orphan)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_process_outside_its_own_group_is_killed_alone():
    # it shares the test's process group: a group kill would take pytest down with it
    proc = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    try:
        assert stop_process(proc.pid, timeout=0.5, poll_seconds=0.05) is False
        assert reaped(proc.pid)
        assert alive(grandchild)
    finally:
        os.kill(grandchild, signal.SIGKILL)


def test_a_zombie_counts_as_gone_and_a_gone_process_stops_at_once():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: not alive(proc.pid))
    assert not reaped(proc.pid)  # exited, still in the table until its parent waits for it
    assert stop_process(proc.pid, timeout=10.0) is True
    assert reaped(proc.pid)

