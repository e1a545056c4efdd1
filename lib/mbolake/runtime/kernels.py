"""The Jupyter kernels that execute notebooks: private sockets and a start timeout a busy machine can meet.

Every kernel listens on IPC sockets in a folder of its own (``mkdtemp``, mode 0700), never in the
kernel's working directory: every run of every home that links a notebook folder shares that
directory, and two kernels there would pick the same socket names and talk to each other.

How long a run waits for a kernel's first reply is the profile's ``notebooks.kernel_start_timeout_s``,
else ``MBOLAKE_KERNEL_START_TIMEOUT`` (seconds; the environment wins), else 300 s: a kernel that
starts in 5 s on an idle machine can need more than papermill's 60 s beside a test suite or other jobs.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from .config import Profile, ProfileError

START_TIMEOUT_ENV = "MBOLAKE_KERNEL_START_TIMEOUT"
START_TIMEOUT_SETTING = "notebooks.kernel_start_timeout_s"
DEFAULT_START_TIMEOUT_S = 300
# What jupyter_client raises when a kernel does not answer its first kernel_info request in time.
_NO_REPLY = "Kernel didn't respond"


class KernelStartTimeout(RuntimeError):
    """The kernel did not reply within the start timeout; the message says how to raise it."""


def start_timeout(profile: Profile) -> int:
    """Seconds to wait for a kernel's first reply (see the module's docstring for where it comes from)."""
    value, source = os.environ.get(START_TIMEOUT_ENV), START_TIMEOUT_ENV
    if value is None:
        value = (profile.settings.get("notebooks") or {}).get("kernel_start_timeout_s")
        source = f"{START_TIMEOUT_SETTING} in conf/{profile.name}.yaml"
    if value is None:
        return DEFAULT_START_TIMEOUT_S
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{source} must be a whole number of seconds, not {value!r}") from None
    if seconds < 1:
        raise ProfileError(f"{source} must be at least 1 second, not {seconds}")
    return seconds


def start_timeout_failure(exc: BaseException, kernel_name: str, seconds: int, profile: Profile) -> KernelStartTimeout | None:
    """The error to raise instead of ``exc`` when ``exc`` is a kernel that never replied, else None."""
    if _NO_REPLY not in str(exc):
        return None
    return KernelStartTimeout(
        f"kernel {kernel_name!r} did not start: no reply to its first kernel_info request within {seconds} s "
        f"(the kernel start timeout). On a busy machine raise it: {START_TIMEOUT_SETTING} in "
        f"conf/{profile.name}.yaml, or the environment variable {START_TIMEOUT_ENV}=<seconds>")


def private_kernel_manager():
    """A kernel manager class whose kernels listen on IPC sockets in a private folder of their own."""
    from jupyter_client.manager import AsyncKernelManager

    class PrivateIpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            # short: a socket path longer than ~100 bytes is refused by the OS
            self.socket_dir = tempfile.mkdtemp(prefix="mbolake-kernel-")
            self.ip = os.path.join(self.socket_dir, "k")

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self.socket_dir, ignore_errors=True)

        cleanup_resources = _async_cleanup_resources  # what nbclient calls when a start fails

    return PrivateIpcKernelManager


def execute_notebook(source: str, output: str, parameters: dict, kernel_name: str, cwd: str, profile: Profile,
                     **papermill_options) -> None:
    """papermill's ``execute_notebook`` on a kernel with private sockets, waiting the profile's start
    timeout for it; a kernel that never replies raises ``KernelStartTimeout`` naming the setting."""
    import papermill

    seconds = start_timeout(profile)
    try:
        papermill.execute_notebook(source, output, parameters=parameters, kernel_name=kernel_name, cwd=cwd,
                                   start_timeout=seconds, kernel_manager_class=private_kernel_manager(),
                                   **papermill_options)
    except RuntimeError as exc:
        timeout = start_timeout_failure(exc, kernel_name, seconds, profile)
        if timeout is None:
            raise
        raise timeout from exc
