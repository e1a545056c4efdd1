"""Background processes the project starts (the Kafka broker, the streaming jobs): is one alive,
and stop it (SIGTERM, a wait, SIGKILL).

The pid may belong to a process another command started (``mbolake stream start``, then
``mbolake stream stop``): only this process's own children can be reaped here, init reaps the rest.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

KILL_WAIT_SECONDS = 10.0  # SIGKILL is not instant: how long to wait for the kernel to end the process


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not reaped yet) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc: the signal check is all there is
        return True
    state = stat.rsplit(")", 1)[1].split()[0]  # after "(command name)", which may hold spaces
    return state != "Z"


def stop_process(pid: int, timeout: float, poll_seconds: float = 0.2) -> bool:
    """SIGTERM ``pid`` and wait up to ``timeout`` seconds for it to exit; then SIGKILL it, with its
    whole process group when it leads one (a JVM it started goes with it). A child of this process
    is reaped. True when it exited on SIGTERM (or was gone already), False when it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if _wait_until_gone(pid, timeout, poll_seconds):
        return True
    _kill(pid)
    _wait_until_gone(pid, KILL_WAIT_SECONDS, poll_seconds)
    return False


def _wait_until_gone(pid: int, timeout: float, poll_seconds: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_seconds)


def _kill(pid: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not this process's child (or reaped already)
        pass
