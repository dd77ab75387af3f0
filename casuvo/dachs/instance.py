# SPDX-License-Identifier: BSD-3-Clause
"""The project-local DaCHS instance: its configuration, database set-up and server.

This module drives DaCHS through its command line (``python -m
casuvo.dachs.server …``, i.e. ``dachs`` with casuvo's server adjustments) with
``GAVOSETTINGS`` pointing at ``var/gavo.rc`` and ``GAVOCUSTOM=/dev/null``, so
nothing from the machine's own DaCHS (``/etc/gavo.rc``, ``~/.gavo``) leaks in.
It never imports ``gavo`` itself.
"""

from __future__ import annotations

import grp
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from string import Template

import psycopg
import requests

from casuvo.config import Settings
from casuvo.storage import access

__all__ = [
    "DachsError",
    "configure",
    "dachs",
    "dachs_env",
    "ensure_initialised",
    "ensure_user_uws",
    "import_rd",
    "newest_source",
    "render_gavo_rc",
    "resource_names",
    "server_pid",
    "server_pids",
    "start_server",
    "stop_server",
    "wait_until_serving",
]

log = logging.getLogger(__name__)


class DachsError(RuntimeError):
    """A ``dachs`` command failed; the message carries its output."""


def dachs_env(settings: Settings) -> dict[str, str]:
    """The environment every ``dachs`` call of this instance runs in."""
    env = dict(os.environ)
    env.update(GAVOSETTINGS=str(settings.gavo_rc), GAVOCUSTOM="/dev/null")
    # Async TAP jobs run as `gavo taprun` child processes of the server: the
    # venv's `gavo` (casuvo.dachs.server) must be the one found.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/bin:/bin")])
    return env


def dachs(settings: Settings, *args: str, check: bool = True,
          timeout: float | None = 1800) -> subprocess.CompletedProcess[str]:
    """Run ``dachs ARGS`` for this instance and return the finished process."""
    cmd = [sys.executable, "-m", "casuvo.dachs.server", *args]
    log.debug("running %s", " ".join(cmd))
    env = dachs_env(settings)
    if args[:1] == ("serve",):
        env = access.server_environment(env)  # its connections start as anonymous
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=False, timeout=timeout)
    if check and proc.returncode:
        raise DachsError(f"dachs {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def resource_names(settings: Settings) -> list[str]:
    """Resource directories shipped in ``resdir/`` (each holds a ``q.rd``)."""
    return sorted(p.parent.name for p in (settings.home / "resdir").glob("*/q.rd"))


def configure(settings: Settings) -> None:
    """Write gavo.rc and the DaCHS root from ``services/`` and ``resdir/``.

    Runs at every ``casuvo up``: the files are small and always regenerated
    from the sources, so an edit in ``services/`` takes effect on restart.
    """
    root = settings.dachs_root
    for sub in ("etc", "inputs", "cache", "logs", "tmp", "state", "web/templates"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    services = settings.home / "services"
    settings.gavo_rc.write_text(render_gavo_rc(settings, settings.http_port,
                                               root / "logs"))
    for name in ("defaultmeta.txt", "userconfig.rd"):
        if (services / name).exists():
            shutil.copy2(services / name, root / "etc" / name)
    templates = services / "templates"
    if templates.is_dir():
        shutil.copytree(templates, root / "web" / "templates", dirs_exist_ok=True)
    # IVOA vocabularies for `dachs val` and the web pages, so nothing reaches
    # the network; DaCHS caches a vocabulary under its defused URL.
    for vocab in sorted((services / "vocabularies").glob("*.json")):
        url = "http://www.ivoa.net/rdf/" + vocab.stem.replace("__", "/")
        dest = root / "cache" / url.replace("/", "=2F")
        shutil.copyfile(vocab, dest)
    # Product files are served from the DaCHS inputs tree as products/...
    _symlink(root / "inputs" / "products", settings.data_dir / "products")
    # ... and the raw exposures (ObsCore calib_level 0) as raw/...
    _symlink(root / "inputs" / "raw", settings.data_dir / "raw")
    # ... and the coverage maps (casuvo.archive.coverage) as hips/ and moc/, which
    # resdir/coverage serves through \getConfig{inputsDir} (a relative staticData
    # would resolve inside the checkout: inputs/coverage is a link into resdir/).
    _symlink(root / "inputs" / "hips", settings.data_dir / "hips")
    _symlink(root / "inputs" / "moc", settings.data_dir / "coverage")
    for rd_dir in sorted(p for p in (settings.home / "resdir").iterdir() if p.is_dir()):
        name = rd_dir.name
        link = root / "inputs" / name
        target = settings.home / "resdir" / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)


def render_gavo_rc(settings: Settings, port: int, log_dir: Path,
                   profile_dir: Path | None = None) -> str:
    """``services/gavo.rc.template`` for a DaCHS server listening on ``port``.

    ``serverURL`` is always the public URL (``settings.server_url``), whichever
    port the process listens on, so that the links DaCHS writes into its
    responses (job URLs, DataLink, capabilities) point at the public port.
    ``profile_dir`` holds the database profiles (default: those ``dachs init``
    wrote, ``var/dachs/etc``; :mod:`casuvo.dachs.readonly` points them at a replica).
    """
    secret = settings.var / "adminpasswd"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(18))
        secret.chmod(0o600)
    from casuvo.dachs.limits import TIMEOUTS

    template = Template((settings.home / "services" / "gavo.rc.template").read_text())
    return template.substitute(
        tap_sync_s=TIMEOUTS.tap_sync_s,
        async_default_s=TIMEOUTS.async_default_s,
        web_sql_s=TIMEOUTS.web_sql_s,
        dachs_root=settings.dachs_root,
        profile_dir=profile_dir or settings.dachs_root / "etc",
        log_dir=log_dir,
        group=grp.getgrgid(os.getegid()).gr_name,
        server_url=settings.server_url,
        http_port=port,
        user=_user_name(),
        adminpasswd=secret.read_text().strip(),
    )


def _symlink(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (created if missing), replacing a stale link."""
    target.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def ensure_initialised(settings: Settings) -> None:
    """``dachs init`` once: roles, system tables, profiles under var/dachs/etc."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        done = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = 'dc' AND tablename = 'tablemeta'"
        ).fetchone()
    if done and (settings.dachs_root / "etc" / "feed").exists():
        return
    log.info("initialising DaCHS in %s", settings.dachs_root)
    dsn = (f"host={settings.db_host} port={settings.db_port} dbname={settings.db_name} "
           f"user={settings.db_user}")
    dachs(settings, "init", "-d", dsn)
    # ObsCore must exist before any RD using an ObsCore mixin is imported.
    dachs(settings, "imp", "//obscore")


def ensure_user_uws(settings: Settings) -> None:
    """DaCHS's table of user UWS jobs (``uws.userjobs``), once: the bulk cutout jobs'.

    ``dachs init`` leaves it out; ``//uws#enable_useruws`` makes it.
    """
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        done = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = 'uws' AND tablename = 'userjobs'"
        ).fetchone()
    if not done:
        dachs(settings, "imp", "//uws", "enable_useruws")


def ensure_users(settings: Settings) -> None:
    """Make DaCHS's users and groups match ``services/access.toml`` (when it changed).

    The file's digest is kept beside DaCHS's state; an unchanged file costs
    nothing, a changed one one process (:mod:`casuvo.dachs.users`).
    """
    import hashlib

    source = settings.home / "services" / "access.toml"
    if not source.exists():
        return
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    marker = settings.dachs_root / "state" / "access.sha256"
    if marker.exists() and marker.read_text() == digest:
        return
    log.info("DaCHS users and groups from %s", source)
    proc = subprocess.run([sys.executable, "-m", "casuvo.dachs.users", str(source)],
                          env=dachs_env(settings), capture_output=True, text=True,
                          check=False, timeout=300)
    if proc.returncode:
        raise DachsError(f"setting up the users of {source} failed:\n{proc.stdout}{proc.stderr}")
    marker.write_text(digest)


def table_exists(settings: Settings, qualified: str) -> bool:
    """True if ``schema.table`` exists in the database."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)
                            ).fetchone()[0]


def import_rd(settings: Settings, rd: str, *, meta_only: bool = False,
              data: tuple[str, ...] = ()) -> None:
    """``dachs imp`` (creating tables, or only their metadata) then ``dachs pub``.

    ``data`` names the RD's data elements to import (default: all of them).
    """
    args = ["imp", *(["-m"] if meta_only else []), rd, *data]
    log.info("dachs %s", " ".join(args))
    dachs(settings, *args)
    dachs(settings, "pub", rd)


def server_pids(settings: Settings) -> list[int]:
    """PIDs of the running DaCHS server processes (the primary first); empty if none."""
    from casuvo.dachs import front

    state = front.read_state(settings)
    if state is not None and front.is_running(settings):
        return list(state.pids)
    pid = server_pid(settings)
    return [] if pid is None else [pid]


def server_pid(settings: Settings) -> int | None:
    """PID of the running single-process DaCHS server (``dachs serve start``), or None."""
    pidfile = settings.dachs_root / "state" / "web.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def newest_source(settings: Settings) -> float:
    """Modification time of the newest RD, service configuration or server-side module.

    The server runs casuvo's DaCHS adjustments (``casuvo/dachs/``) and the
    registry the RDs read (``casuvo/surveys/``, ``pipelines/*/*.toml``): an edit
    of any of them is as much a change of the server as an edit of an RD.
    """
    home = settings.home
    files = [*(home / "resdir").rglob("*"), *(home / "services").rglob("*"),
             *(home / "casuvo" / "dachs").glob("*.py"), *(home / "casuvo" / "surveys").glob("*.py"),
             *(home / "pipelines").glob("*/*.toml")]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def start_server(settings: Settings) -> None:
    """Start the DaCHS server(s) (restarting if the server's sources changed) and wait.

    ``settings.dachs_processes`` == 1: one ``dachs serve start`` on the public
    port.  More: that many DaCHS processes behind haproxy on the public port
    (:mod:`casuvo.dachs.front`).  A running server keeps the RDs and
    configuration it started with, so ``casuvo up`` after an edit restarts it;
    a change of the number of processes restarts it too.
    """
    from casuvo.dachs import front

    n = settings.dachs_processes
    if n > 1:
        _stop_single(settings)
        state = front.read_state(settings)
        if front.is_running(settings) and state is not None and (
                len(state.ports) != n or state.public_port != settings.http_port
                or state.started < newest_source(settings)):
            log.info("resource descriptors, services/ or the process count changed: "
                     "restarting DaCHS")
            front.stop(settings)
        if not front.is_running(settings):
            front.stop(settings)  # whatever survived of a broken front
            log.info("starting %d DaCHS processes behind %s", n, settings.server_url)
            front.start(settings, n)
        wait_until_serving(settings)
        return
    front.stop(settings)
    pidfile = settings.dachs_root / "state" / "web.pid"
    if server_pid(settings) is not None and pidfile.stat().st_mtime < newest_source(settings):
        log.info("resource descriptors or services/ changed: restarting DaCHS")
        _stop_single(settings)
    if server_pid(settings) is None:
        log.info("starting DaCHS on %s", settings.server_url)
        dachs(settings, "serve", "start", timeout=120)
    wait_until_serving(settings)
    # Something else answering on our port (another instance) would fool the check.
    if server_pid(settings) is None:
        raise DachsError(f"DaCHS did not start (is port {settings.http_port} taken by "
                         f"another server?); see {settings.dachs_root / 'logs'}")


def wait_until_serving(settings: Settings, timeout: float = 120) -> None:
    """Block until TAP capabilities answer, so callers can use the services."""
    url = f"{settings.server_url}/tap/capabilities"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise DachsError(f"DaCHS did not answer {url} within {timeout:.0f} s; "
                     f"see {settings.dachs_root / 'logs'}")


def stop_server(settings: Settings) -> bool:
    """Stop the DaCHS server(s), single or behind the front; returns whether any ran."""
    from casuvo.dachs import front

    stopped_front = front.stop(settings)
    return _stop_single(settings) or stopped_front


def _stop_single(settings: Settings) -> bool:
    """Stop the single-process server (``dachs serve start``); returns whether it ran."""
    pid = server_pid(settings)
    if pid is None:
        return False
    dachs(settings, "serve", "stop", check=False, timeout=60)
    for _ in range(40):
        if server_pid(settings) is None:
            return True
        time.sleep(0.25)
    os.kill(pid, signal.SIGTERM)
    return True
