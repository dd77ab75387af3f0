# SPDX-License-Identifier: BSD-3-Clause
"""A Dask cluster of separate processes on this machine: ``casuvo cluster up|down|status``.

The pipelines and the cross-match run on a local in-process cluster by
default; given ``--scheduler ADDRESS`` they run on any Dask cluster.  This
module starts a real one the way a site would: ``dask scheduler`` and one
``dask worker`` per worker, each a separate process of the compute
environment (design decision 12), each worker under its *nanny*, which
restarts it when it dies — the scheduler then re-runs the tasks the dead
worker held, so a run finishes with the same products.  What was started
(process ids, the scheduler address, the dashboard) is kept in
``var/cluster/cluster.json``; logs go to ``var/logs/dask-*.log``.

It only starts processes (no Dask import): the command line runs in the
service environment, which has no Dask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from casuvo.processes import pid_alive

__all__ = ["ClusterError", "ClusterState", "cluster_down", "cluster_state", "cluster_up"]

log = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster could not be started (names the process and its log)."""


@dataclass
class ClusterState:
    """What ``cluster_up`` started."""

    address: str
    dashboard: str
    scheduler_pid: int
    worker_pids: list[int] = field(default_factory=list)
    """The workers' nanny processes (each restarts its worker)."""

    def alive(self) -> bool:
        return pid_alive(self.scheduler_pid)


def _state_file(var: Path) -> Path:
    return var / "cluster" / "cluster.json"


def cluster_state(var: Path) -> ClusterState | None:
    """The running cluster started from ``var`` (None: none, or it has died)."""
    path = _state_file(var)
    if not path.exists():
        return None
    state = ClusterState(**json.loads(path.read_text()))
    return state if state.alive() else None


def _wait_port(host: str, port: int, seconds: float, proc: subprocess.Popen, log_path: Path
               ) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"the scheduler exited ({proc.returncode}); see {log_path}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise ClusterError(f"the scheduler did not listen on {host}:{port} within {seconds:.0f} s;"
                       f" see {log_path}")


def _wait_workers(python: Path, address: str, n: int, seconds: float) -> None:
    """Wait until ``n`` workers have joined (asked in the compute environment)."""
    code = ("import sys; from distributed import Client\n"
            f"c = Client({address!r}, timeout={seconds})\n"
            f"c.wait_for_workers({n}, timeout={seconds})\n"
            "print(len(c.scheduler_info()['workers'])); c.close()")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=False, timeout=seconds + 30)
    if done.returncode != 0:
        raise ClusterError(f"{n} workers did not join {address}: "
                           f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")


def cluster_up(var: Path, python: Path, *, workers: int = 2, threads: int = 1,
               port: int = 8786, dashboard_port: int = 8787, host: str = "127.0.0.1",
               memory_limit: str = "auto", env: dict[str, str] | None = None,
               timeout: float = 120) -> ClusterState:
    """Start a scheduler and ``workers`` workers (with nannies); returns their state.

    A cluster already running from ``var`` is returned as it is.
    """
    running = cluster_state(var)
    if running is not None:
        return running
    dask = python.parent / "dask"
    if not dask.exists():
        raise ClusterError(f"{dask} not found: the compute environment is not installed "
                           "(make demo)")
    logs = var / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = var / "cluster"
    work.mkdir(parents=True, exist_ok=True)
    environ = dict(os.environ if env is None else env)
    environ.setdefault("MALLOC_TRIM_THRESHOLD_", "65536")
    address = f"tcp://{host}:{port}"
    scheduler_log = logs / "dask-scheduler.log"
    with open(scheduler_log, "ab") as out:
        scheduler = subprocess.Popen(
            [str(dask), "scheduler", "--host", host, "--port", str(port),
             "--dashboard-address", f"{host}:{dashboard_port}"],
            stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True)
    _wait_port(host, port, timeout, scheduler, scheduler_log)
    pids = []
    for i in range(workers):
        with open(logs / f"dask-worker-{i}.log", "ab") as out:
            proc = subprocess.Popen(
                [str(dask), "worker", address, "--name", f"casuvo-{i}", "--nthreads",
                 str(threads), "--nworkers", "1", "--memory-limit", memory_limit,
                 "--local-directory", str(work / f"worker-{i}"), "--host", host],
                stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True)
        pids.append(proc.pid)
    state = ClusterState(address, f"http://{host}:{dashboard_port}/status", scheduler.pid, pids)
    _state_file(var).write_text(json.dumps(asdict(state), indent=1))
    try:
        _wait_workers(python, address, workers, timeout)
    except ClusterError:
        cluster_down(var)
        raise
    log.info("Dask cluster at %s: %d workers × %d threads; dashboard %s", address, workers,
             threads, state.dashboard)
    return state


def cluster_down(var: Path, timeout: float = 20) -> bool:
    """Stop the cluster started from ``var`` (workers, then the scheduler)."""
    path = _state_file(var)
    if not path.exists():
        return False
    state = ClusterState(**json.loads(path.read_text()))
    for pid in [*state.worker_pids, state.scheduler_pid]:
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + timeout
    for pid in [*state.worker_pids, state.scheduler_pid]:
        while pid_alive(pid) and time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    path.unlink()
    return True
