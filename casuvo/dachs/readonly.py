# SPDX-License-Identifier: BSD-3-Clause
"""A DaCHS server that reads from a streaming replica: the reads of the archive, scaled out.

The server is the same DaCHS with the same adjustments, resource descriptors
and DaCHS root as the primary's (:mod:`casuvo.dachs.instance`); only its
database profiles differ: a copy of the profiles ``dachs init`` wrote (the
same roles and passwords, which the replica has as the primary has them),
with the ``dsn`` profile naming the replica's host and port.  It runs as a
*secondary* (:mod:`casuvo.dachs.server`: no periodic jobs, whose UWS clean-up
would write).

What such a server can serve follows from where DaCHS 2.7 writes
(``docs/replica.md`` has the table):

- reads only — TAP sync without uploads (casuvo runs it without a UWS job,
  :mod:`casuvo.dachs.synctap`), SCS, SIA, SSA, DataLink and SODA, product
  downloads, VOSI, the web pages — work: the release control sets
  ``casuvo.groups`` with ``SET``, which a standby allows, and HTTP basic
  authentication reads ``dc.users``;
- anything that writes is refused by PostgreSQL ("cannot execute … in a
  read-only transaction") and reaches the client as the protocol's error:
  async TAP and DataLink (the UWS job row is an INSERT into
  ``tap_schema.tapjobs``, DaCHS's ``uws.UWS.getNewJobId``), TAP uploads
  (DaCHS loads them into a temporary table, which a standby cannot create),
  and every ``dachs`` command that changes tables.  Send those to the primary
  (on Kubernetes, the Ingress routes them; ``deploy/k8s/README.md``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from casuvo.config import Settings
from casuvo.dachs import front, instance
from casuvo.processes import pid_alive, terminate
from casuvo.storage import access

__all__ = [
    "PROFILES",
    "ReadOnlyError",
    "configure",
    "running_pid",
    "serve",
    "start",
    "stop",
]

log = logging.getLogger(__name__)

#: the profiles ``dachs init`` writes beside ``dsn`` (each begins ``include dsn``)
PROFILES = ("feed", "trustedquery", "untrustedquery")


class ReadOnlyError(RuntimeError):
    """The read-only server could not be configured or started."""


def _home(settings: Settings) -> Path:
    return settings.replica_dir / "dachs"


def _state_file(settings: Settings) -> Path:
    return _home(settings) / "server.json"


def configure(settings: Settings, *, db_host: str, db_port: int, http_port: int,
              profiles: Path) -> Path:
    """Write the server's profiles and gavo.rc (``var/replica/dachs/``); returns the rc.

    ``profiles`` is the directory of DaCHS's own profiles (``var/dachs/etc``
    locally; a mounted Secret on Kubernetes); their roles and passwords are kept,
    the ``dsn`` names ``db_host:db_port``.
    """
    missing = [name for name in PROFILES if not (profiles / name).is_file()]
    if missing:
        raise ReadOnlyError(f"no DaCHS profile(s) {', '.join(missing)} in {profiles}: "
                            "`casuvo up` (dachs init) writes them on the primary")
    home = _home(settings)
    profile_dir = home / "profiles"
    log_dir = home / "logs"
    for d in (profile_dir, log_dir):
        d.mkdir(parents=True, exist_ok=True)
    for name in PROFILES:
        shutil.copyfile(profiles / name, profile_dir / name)
        (profile_dir / name).chmod(0o600)
    (profile_dir / "dsn").write_text(
        f"database = {settings.db_name}\nhost = {db_host}\nport = {db_port}\n")
    rc = home / "gavo.rc"
    served = replace(settings, http_port=http_port)
    rc.write_text(instance.render_gavo_rc(served, http_port, log_dir, profile_dir))
    return rc


def _environment(settings: Settings, rc: Path) -> dict[str, str]:
    env = access.server_environment(instance.dachs_env(settings))
    env["GAVOSETTINGS"] = str(rc)
    return env


def _command() -> list[str]:
    return [sys.executable, "-m", "casuvo.dachs.server", "--secondary", "serve", "start",
            "--foreground"]


def _read_state(settings: Settings) -> dict | None:
    try:
        state = json.loads(_state_file(settings).read_text())
        int(state["pid"]), float(state["started"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return state


def running_pid(settings: Settings) -> int | None:
    """PID of the read-only server ``start`` started, if it still runs."""
    state = _read_state(settings)
    if state is None:
        return None
    pid = int(state["pid"])
    return pid if pid_alive(pid) else None


def start(settings: Settings, timeout: float = 180) -> str:
    """Start (once) a DaCHS server on ``Settings.replica_http_port`` reading from the
    replica; returns its URL when TAP answers."""
    served = replace(settings, http_port=settings.replica_http_port)
    url = served.server_url
    state = _read_state(settings)
    if (running_pid(settings) is not None and state is not None
            and float(state["started"]) < instance.newest_source(settings)):
        # like the primary's server: an edit of the RDs or services/ restarts it
        log.info("resource descriptors or services/ changed: restarting the read-only DaCHS")
        stop(settings)
    if running_pid(settings) is None:
        rc = configure(settings, db_host=settings.db_host, db_port=settings.replica_port,
                       http_port=settings.replica_http_port,
                       profiles=settings.dachs_root / "etc")
        stderr_path = _home(settings) / "logs" / "server.stderr"
        with stderr_path.open("a") as stderr:
            proc = subprocess.Popen(_command(), env=_environment(settings, rc),
                                    stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                    cwd=settings.dachs_root, start_new_session=True)
        _state_file(settings).write_text(json.dumps(
            {"pid": proc.pid, "url": url, "started": time.time()}))
        try:
            front.wait_for([f"{url}/tap/capabilities"], [proc.pid], timeout,
                           _home(settings) / "logs")
        except front.FrontError as exc:
            stop(settings)
            raise ReadOnlyError(f"the read-only DaCHS on {url} did not start: {exc}") from exc
        log.info("read-only DaCHS (reading the replica on port %s) at %s",
                 settings.replica_port, url)
    return url


def stop(settings: Settings) -> bool:
    """Stop the read-only server; returns whether it ran."""
    pid = running_pid(settings)
    _state_file(settings).unlink(missing_ok=True)
    if pid is None:
        return False
    terminate(pid)
    return True


def serve(settings: Settings, profiles: Path) -> None:
    """Run a read-only DaCHS in the foreground (a container's main process).

    It reads the database ``CASUVO_DB_HOST``/``CASUVO_DB_PORT`` name (a replica's
    Service) and listens on ``CASUVO_HTTP_PORT``; the DaCHS root is configured
    from ``services/`` and ``resdir/`` as ``casuvo up`` does (unless it was, by a
    ``casuvo up`` of the same installation), without touching the database.
    """
    if not settings.gavo_rc.exists():
        instance.configure(settings)
    rc = configure(settings, db_host=settings.db_host, db_port=settings.db_port,
                   http_port=settings.http_port, profiles=profiles)
    os.chdir(settings.dachs_root)
    command = _command()
    os.execve(command[0], command, _environment(settings, rc))
