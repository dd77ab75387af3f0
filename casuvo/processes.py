# SPDX-License-Identifier: BSD-3-Clause
"""Processes casuvo starts in the background (the DaCHS front, the read-only DaCHS,
the Dask cluster, JupyterHub): whether one still runs, stopping one, free ports.

Each keeps the process ids it started in a state file under ``var/`` and asks
again later, from another ``casuvo`` command: a process that exited but was not
reaped yet (a zombie of this process) counts as gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

__all__ = ["free_ports", "pid_alive", "terminate"]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def terminate(pid: int, timeout: float = 15, *, group: bool = False) -> None:
    """SIGTERM ``pid``, then SIGKILL it (its process group with ``group``) after
    ``timeout`` seconds; waits for it to go, reaping it if it is a child of this one."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            (os.killpg if group else os.kill)(pid, signal.SIGKILL)


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports nothing listens on now (the kernel picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
