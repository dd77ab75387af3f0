# SPDX-License-Identifier: BSD-3-Clause
"""A real multi-process Dask cluster for the tests: ``casuvo cluster up`` (a scheduler
and two workers, each under its nanny, as separate processes of the compute
environment), stopped with ``casuvo cluster down`` afterwards."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import pytest

from casuvo.config import Settings

__all__ = ["process_cluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def process_cluster(settings: Settings) -> Iterator[dict]:
    """The state ``casuvo cluster up --workers 2`` printed (address, pids)."""
    casuvo = str(settings.var / "venv" / "bin" / "casuvo")
    up = subprocess.run([casuvo, "cluster", "up", "--workers", "2", "--port",
                         str(_free_port()), "--dashboard-port", str(_free_port())],
                        capture_output=True, text=True, timeout=300, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads(up.stdout.strip().splitlines()[-1])
    yield state
    down = subprocess.run([casuvo, "cluster", "down"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert down.stdout.strip() == "stopped", down.stdout + down.stderr
