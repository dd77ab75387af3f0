# SPDX-License-Identifier: BSD-3-Clause
"""A physical streaming read replica of the project-local cluster, under ``var/replica``.

Large DaCHS sites serve their catalogues from several database servers: reads
scale out over hot standbys, writes stay on one primary.  ``casuvo replica up``
makes the same arrangement on one machine:

- the primary needs no change: PostgreSQL 15's defaults are ``wal_level =
  replica`` and ``max_wal_senders = 10``, and the ``pg_hba.conf`` that
  ``initdb`` writes lets local connections replicate (``local replication
  all`` and ``host replication all 127.0.0.1/32``) with the cluster's trust
  method; the owner role ``postgres`` has the REPLICATION attribute.
  :func:`check_primary` says which of these is missing on another server;
- a physical replication slot (:data:`SLOT`) on the primary keeps every WAL
  segment the replica has not received yet, so the replica cannot fall behind
  so far that it must be rebuilt; the price is that WAL piles up on the
  primary while the replica is stopped, so :func:`remove` drops the slot
  with the replica's data;
- ``pg_basebackup -R -X stream -S`` copies the primary into
  ``var/replica/pgdata`` and writes ``standby.signal`` and
  ``primary_conninfo``; the copy gets its own port (``Settings.replica_port``)
  and socket directory, ``hot_standby = on`` (read queries while it replays)
  and ``hot_standby_feedback = on`` (the primary keeps row versions a running
  query on the replica still needs, so long TAP queries are not cancelled by
  a conflict with vacuum on the primary).

The replica is read-only: any write is refused by PostgreSQL itself
("cannot execute … in a read-only transaction").
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from casuvo.config import Settings
from casuvo.storage import pgcluster

__all__ = [
    "SLOT",
    "ReplicaError",
    "ReplicaState",
    "check_primary",
    "down",
    "is_running",
    "remove",
    "state",
    "up",
]

log = logging.getLogger(__name__)

#: the physical replication slot on the primary that holds the replica's WAL
SLOT = "casuvo_replica"

#: settings appended to the copied postgresql.conf (later lines win over the primary's)
STANDBY_CONF = """
# casuvo streaming read replica (casuvo/storage/replica.py)
port = {port}
unix_socket_directories = '{socket}'
hot_standby = on
hot_standby_feedback = on
# the replica shares the machine with its primary
shared_buffers = 128MB
maintenance_work_mem = 64MB
"""


class ReplicaError(RuntimeError):
    """The replica could not be made, started or stopped (the message says why)."""


@dataclass(frozen=True)
class ReplicaState:
    """What ``casuvo replica status`` reports, read from both servers."""

    port: int
    running: bool
    in_recovery: bool | None
    """``pg_is_in_recovery()`` on the replica (None: it does not answer)."""
    streaming: bool
    """The primary's ``pg_stat_replication`` shows a sender in state ``streaming``
    for the replica's slot."""
    replay_lag_bytes: int | None
    """WAL the replica has received but not replayed yet, in bytes (None: unknown)."""


def _pgdata(settings: Settings) -> Path:
    return settings.replica_dir / "pgdata"


def _socket(settings: Settings) -> Path:
    return settings.replica_dir / "socket"


def _logfile(settings: Settings) -> Path:
    return settings.log_dir / "postgresql" / "replica.log"


def is_running(settings: Settings) -> bool:
    """True if the replica's postmaster answers on ``Settings.replica_port``."""
    proc = subprocess.run(
        [str(pgcluster.PG_BIN / "pg_isready"), "-h", settings.db_host, "-p",
         str(settings.replica_port)], capture_output=True, check=False)
    return proc.returncode == 0


def check_primary(settings: Settings) -> None:
    """Refuse, naming the setting, if the primary cannot feed a streaming replica."""
    if not pgcluster.is_running(settings):
        raise ReplicaError(
            f"the primary PostgreSQL on {settings.db_host}:{settings.db_port} is not "
            "running: start it with `casuvo up` first")
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()[0]
        senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
        can_replicate = conn.execute(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]
    if wal_level not in ("replica", "logical"):
        raise ReplicaError(f"the primary has wal_level = {wal_level}: a streaming replica "
                           "needs replica (the PostgreSQL default); set it and restart")
    if senders < 1:
        raise ReplicaError("the primary has max_wal_senders = 0: set it to at least 1")
    if not can_replicate:
        raise ReplicaError(f"role {settings.db_user} may not replicate: "
                           f"ALTER ROLE {settings.db_user} REPLICATION")


def _ensure_slot(settings: Settings) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
            "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (SLOT, SLOT))


def _base_backup(settings: Settings) -> None:
    """Copy the primary into the replica's data directory, as a standby of it."""
    pgdata = _pgdata(settings)
    if pgdata.exists():
        shutil.rmtree(pgdata)  # a copy that did not finish
    for d in (settings.replica_dir, pgdata, _socket(settings), _logfile(settings).parent):
        d.mkdir(parents=True, exist_ok=True)
        pgcluster.chown_postgres(d)
    pgdata.chmod(0o700)
    log.info("copying the primary into %s (pg_basebackup)", pgdata)
    started = time.monotonic()
    pgcluster.as_postgres([
        str(pgcluster.PG_BIN / "pg_basebackup"), "-h", settings.db_host,
        "-p", str(settings.db_port), "-U", settings.db_user, "-D", str(pgdata),
        "-R", "-X", "stream", "-S", SLOT, "-c", "fast", "--no-password"])
    log.info("base backup done in %.1f s", time.monotonic() - started)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(STANDBY_CONF.format(port=settings.replica_port, socket=_socket(settings)))


def up(settings: Settings, timeout: float = 120) -> ReplicaState:
    """Make (once) and start the replica; return when the primary streams to it."""
    if not settings.manage_db:
        raise ReplicaError(
            "CASUVO_MANAGE_DB is false: casuvo replicates only its project-local cluster; "
            "an external server's replicas are run by its operators (deploy/k8s: "
            "postgres-replica.yaml), and `casuvo replica serve` reads from them")
    check_primary(settings)
    _ensure_slot(settings)
    if not (_pgdata(settings) / "standby.signal").exists():
        _base_backup(settings)
    if not is_running(settings):
        log.info("starting the read replica on port %s", settings.replica_port)
        pgcluster.as_postgres([str(pgcluster.PG_BIN / "pg_ctl"), "-D", str(_pgdata(settings)),
                               "-l", str(_logfile(settings)), "-w", "-t", "60", "start"])
    deadline = time.monotonic() + timeout
    while True:
        current = state(settings)
        if current.running and current.in_recovery and current.streaming:
            _write_marker(settings, current)
            return current
        if time.monotonic() > deadline:
            raise ReplicaError(
                f"the replica on port {settings.replica_port} did not stream from the "
                f"primary within {timeout:.0f} s ({current}); see {_logfile(settings)}")
        time.sleep(0.3)


def _write_marker(settings: Settings, current: ReplicaState) -> None:
    (settings.replica_dir / "replica.json").write_text(json.dumps(
        {"port": current.port, "slot": SLOT, "primary_port": settings.db_port}))


def state(settings: Settings) -> ReplicaState:
    """The replica's state as both servers see it (never raises for a stopped server)."""
    running = is_running(settings)
    in_recovery: bool | None = None
    lag: int | None = None
    if running:
        try:
            with psycopg.connect(settings.replica_dsn, autocommit=True,
                                 connect_timeout=5) as conn:
                in_recovery, lag = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_wal_lsn_diff("
                    "pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint"
                ).fetchone()
        except psycopg.OperationalError:
            running = False
    streaming = False
    if pgcluster.is_running(settings):
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            streaming = bool(conn.execute(
                "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s"
                " ON s.active_pid = r.pid WHERE s.slot_name = %s AND r.state = 'streaming'",
                (SLOT,)).fetchone()[0])
    return ReplicaState(settings.replica_port, running, in_recovery, streaming, lag)


def down(settings: Settings) -> bool:
    """Stop the replica (data and slot kept); returns whether it was running."""
    if not (_pgdata(settings) / "PG_VERSION").exists() or not is_running(settings):
        return False
    pgcluster.as_postgres([str(pgcluster.PG_BIN / "pg_ctl"), "-D", str(_pgdata(settings)),
                           "-m", "fast", "-w", "stop"])
    return True


def remove(settings: Settings) -> bool:
    """Stop the replica, delete its data and drop its slot on the primary (which then
    keeps no WAL for it); returns whether there was anything to remove."""
    existed = _pgdata(settings).exists()
    down(settings)
    if existed:
        shutil.rmtree(_pgdata(settings))
    (settings.replica_dir / "replica.json").unlink(missing_ok=True)
    if pgcluster.is_running(settings):
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            # the primary's WAL sender lets go of the slot shortly after the replica stops
            deadline = time.monotonic() + 30
            while conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                               (SLOT,)).fetchone() == (True,):
                if time.monotonic() > deadline:
                    raise ReplicaError(f"slot {SLOT} is still in use on the primary")
                time.sleep(0.1)
            dropped = conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s", (SLOT,)).fetchall()
        existed = existed or bool(dropped)
    return existed
