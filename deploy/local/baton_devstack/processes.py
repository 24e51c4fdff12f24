"""Signalling and waiting on processes identified by pid (not necessarily our children).

The launchers record pids in files so that a later, different process (e.g.
``baton-devstack infra-down``) can stop what an earlier one started. Before
signalling such a pid we check its command line, so a recycled pid never gets
a signal meant for the broker.
"""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path


def pid_cmdline(pid: int) -> list[str]:
    """The argv of a live process, or [] when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` exits; True if it did within ``timeout`` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return _poll_pid_exit(pid, timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000)) or not pid_alive(pid)
    finally:
        os.close(fd)


def _poll_pid_exit(pid: int, timeout: float) -> bool:
    """Fallback for kernels without pidfd: poll /proc."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def terminate_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL and wait for the exit."""
    send_signal(pid, signal.SIGTERM)
    if wait_pid_exit(pid, timeout):
        return
    send_signal(pid, signal.SIGKILL)
    if not wait_pid_exit(pid, 10.0):
        raise RuntimeError(f"process {pid} survived SIGKILL")


def read_pid_file(path: Path) -> int | None:
    """The pid stored in ``path``, or None when the file is missing or malformed."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
