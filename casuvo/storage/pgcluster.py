# SPDX-License-Identifier: BSD-3-Clause
"""The project-local PostgreSQL 15 cluster under ``var/pgdata``.

``initdb`` and ``pg_ctl`` refuse to run as root, so they run as the
``postgres`` account; the cluster gets its own port and socket directory and
listens on localhost only, so it never touches the machine's own clusters.
With ``CASUVO_MANAGE_DB=false`` none of this runs and casuvo uses the external
server named by the ``CASUVO_DB_*`` settings.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from casuvo.config import Settings

__all__ = ["ClusterError", "as_postgres", "chown_postgres", "create_database", "ensure_running",
           "is_running", "stop"]

log = logging.getLogger(__name__)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
EXTENSIONS = ("pg_sphere", "q3c")


class ClusterError(RuntimeError):
    """The local cluster could not be created, started or stopped."""


def as_postgres(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the ``postgres`` account (they refuse root)."""
    cmd = args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode:
        raise ClusterError(f"{' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def chown_postgres(path: Path) -> None:
    """Give ``path`` to the ``postgres`` account (when running as root)."""
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _initdb(settings: Settings) -> None:
    pgdata = settings.pgdata
    log.info("creating PostgreSQL cluster in %s", pgdata)
    for d in (pgdata, settings.pgsocket, settings.log_dir / "postgresql"):
        d.mkdir(parents=True, exist_ok=True)
        chown_postgres(d)
    pgdata.chmod(0o700)
    as_postgres([
        str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--locale=C.UTF-8",
    ])
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# casuvo project-local cluster\n"
            f"port = {settings.db_port}\n"
            "listen_addresses = 'localhost'\n"
            f"unix_socket_directories = '{settings.pgsocket}'\n"
            "shared_buffers = 512MB\n"
            "maintenance_work_mem = 512MB\n"
            "work_mem = 64MB\n"
            "max_wal_size = 4GB\n"
            "checkpoint_timeout = 15min\n"
            "synchronous_commit = off\n"
            "max_connections = 100\n"
            "# a streaming read replica may connect (casuvo.storage.replica); these\n"
            "# are PostgreSQL 15's defaults, stated because the replica relies on them\n"
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
            "max_replication_slots = 10\n"
        )


def is_running(settings: Settings) -> bool:
    """True if the local cluster's postmaster answers."""
    proc = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-h", settings.db_host, "-p", str(settings.db_port)],
        capture_output=True, check=False)
    return proc.returncode == 0


def ensure_running(settings: Settings) -> None:
    """Create (once) and start the local cluster; a no-op for an external server."""
    if not settings.manage_db:
        return
    if not (settings.pgdata / "PG_VERSION").exists():
        _initdb(settings)
    if is_running(settings):
        return
    logfile = settings.log_dir / "postgresql" / "postgresql.log"
    log.info("starting PostgreSQL on port %s", settings.db_port)
    as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(settings.pgdata), "-l", str(logfile),
                  "-w", "-t", "60", "start"])
    for _ in range(60):
        if is_running(settings):
            return
        time.sleep(0.5)
    raise ClusterError(f"PostgreSQL did not come up; see {logfile}")


def stop(settings: Settings) -> bool:
    """Stop the local cluster (data kept); returns whether it was running."""
    if not settings.manage_db or not (settings.pgdata / "PG_VERSION").exists():
        return False
    if not is_running(settings):
        return False
    as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(settings.pgdata), "-m", "fast",
                  "-w", "stop"])
    return True


def create_database(settings: Settings) -> None:
    """Create the shared database (UTF-8, from template0) with pgSphere and q3c."""
    admin = settings.dsn.replace(f"dbname={settings.db_name}", "dbname=postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)).fetchone()
        if not exists:
            log.info("creating database %s", settings.db_name)
            conn.execute(
                f'CREATE DATABASE "{settings.db_name}" TEMPLATE template0 ENCODING \'UTF8\'')
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for ext in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
