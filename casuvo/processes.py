# SPDX-License-Identifier: BSD-3-Clause
"""Whether a process started by casuvo still runs (the DaCHS front, the Dask cluster).

Both keep the process ids they started in a state file under ``var/`` and ask
again later, from another ``casuvo`` command: a process that exited but was not
reaped yet (a zombie of this process) counts as gone.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive"]


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
