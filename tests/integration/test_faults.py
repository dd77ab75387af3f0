# SPDX-License-Identifier: BSD-3-Clause
"""Faults on the service side: PostgreSQL restarted under load, a catalogue ingest killed.

- The project cluster is restarted (``pg_ctl restart -m fast``) while clients
  query TAP sync, SCS and SIA through the front: requests fail only while the
  database is down, every request started after the restart succeeds, with no
  manual step (``casuvo.dachs.dbreconnect``); the sync jobs it broke do not block
  the async queue.  The cluster is running again when
  the test ends, whatever happens.
- A catalogue ingest (``casuvo.storage.ingest``: the Gaia catalogue, a survey's
  merged source table) is killed with SIGKILL half-way, once while it copies
  rows and once while it builds indexes, into a scratch copy of the published
  table: the table keeps what it held, the ledger records nothing as loaded,
  and the rerun loads only the files the killed one had not committed, and
  every row of the files exactly once (counted from the FITS headers, an
  independent count), and says so in the ledger.  The scratch
  schema and its ledger rows are removed afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import requests
from astropy.io import fits

from casuvo.config import Settings
from casuvo.storage import pgcluster
from casuvo.storage.ingest import ingest_catalogue

SCRATCH = "casuvo_faults"


# ---------------------------------------------------------------- database restart

@dataclass(frozen=True)
class _Answer:
    service: str
    started: float
    ended: float
    status: int | str


def _get(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            return response.status if b'value="ERROR"' not in body else "error document"
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return type(exc).__name__


def _restart(settings: Settings) -> None:
    log = settings.log_dir / "postgresql" / "postgresql.log"
    cmd = [str(pgcluster.PG_BIN / "pg_ctl"), "-D", str(settings.pgdata), "-l", str(log),
           "-m", "fast", "-w", "-t", "60", "restart"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture()
def restartable(settings: Settings) -> Iterator[Settings]:
    """The project cluster, running again at the end whatever the test did to it."""
    assert settings.manage_db, "the restart test needs the project-local cluster"
    yield settings
    pgcluster.ensure_running(settings)


def test_services_answer_again_after_a_database_restart(restartable: Settings,
                                                         endpoints: dict) -> None:
    where = "1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 290.22, 37.77, 0.05))"
    urls = {
        "tap": endpoints["tap"] + "/sync?" + urllib.parse.urlencode({
            "REQUEST": "doQuery", "LANG": "ADQL",
            "QUERY": f"SELECT TOP 5 source_id FROM gaia.sources WHERE {where}"}),
        "scs": endpoints["scs"]["gaia.sources"] + "?RA=290.22&DEC=37.77&SR=0.01",
        "sia": endpoints["sia"]["vst"] + "?POS=CIRCLE%20290.22%2037.77%200.1",
    }
    for url in urls.values():
        assert _get(url) == 200, url

    # 1. Idle: every pooled connection is killed; the next requests must not use them.
    _restart(restartable)
    idle = {name: [_get(url) for _ in range(4)] for name, url in urls.items()}
    assert all(status == 200 for answers in idle.values() for status in answers), idle

    # 2. Under load: two clients per service query throughout the restart.
    answers: list[_Answer] = []
    stop = threading.Event()

    def client(name: str, url: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            status = _get(url)
            answers.append(_Answer(name, started, time.monotonic(), status))

    threads = [threading.Thread(target=client, args=item) for item in urls.items()
               for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        down = time.monotonic()
        _restart(restartable)
        up = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [a for a in answers if a.status != 200]
    after = [a for a in answers if a.started >= up]
    print(f"\ndatabase restart under load: down {up - down:.2f} s; {len(answers)} requests, "
          f"{len(failed)} failed (statuses {sorted({str(a.status) for a in failed})}), "
          f"the last failure ended {max((a.ended for a in failed), default=down) - up:+.2f} s "
          f"after the restart; {len(after)} requests after it")
    assert not [a for a in after if a.status != 200], "requests failed after the restart"
    assert all(any(a.service == name for a in after) for name in urls)
    # Nothing failed before the database went down or after it was back.
    assert all(down - 0.5 <= a.ended and a.started <= up for a in failed)

    # The sync jobs the restart broke do not stay EXECUTING (they would fill the
    # async queue's slots), and an async job runs to completion.
    t = time.monotonic()
    while _stranded(restartable) and time.monotonic() < t + 30:
        time.sleep(0.5)
    assert not _stranded(restartable)
    print(f"stranded sync jobs gone {time.monotonic() - up:.1f} s after the restart")
    assert _run_async(endpoints["tap"], f"SELECT TOP 5 source_id FROM gaia.sources "
                                        f"WHERE {where}") == "COMPLETED"


def _stranded(settings: Settings) -> list[str]:
    """Transient (sync) TAP jobs in EXECUTING."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return [job for (job,) in conn.execute(
            "SELECT jobid FROM tap_schema.tapjobs WHERE phase = 'EXECUTING' AND pid = -1")]


def _run_async(tap: str, query: str) -> str:
    """Create and start an async TAP job, wait for it to end, delete it; its last phase."""
    created = requests.post(tap + "/async", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                  "QUERY": query},
                            allow_redirects=False, timeout=30)
    assert created.status_code == 303, created.text[:300]
    job = created.headers["location"]
    try:
        requests.post(job + "/phase", data={"PHASE": "RUN"}, timeout=30).raise_for_status()
        deadline = time.monotonic() + 60
        phase = "PENDING"
        while time.monotonic() < deadline and phase not in ("COMPLETED", "ERROR", "ABORTED"):
            phase = requests.get(job + "/phase", params={"WAIT": "5"}, timeout=30).text.strip()
        return phase
    finally:
        requests.delete(job, allow_redirects=False, timeout=30)


# ---------------------------------------------------------------- ingest killed

@dataclass(frozen=True)
class _Case:
    name: str
    source: str
    """The published table whose definition the scratch table copies."""
    files: tuple[str, ...]
    """Globs under var/data."""
    order_by: str
    key: str
    """A column unique per row."""
    phase: str
    """Where the kill lands: 'copy' (rows of some files in the new table) or 'indexes'."""


CASES = [
    _Case("gaia", "gaia.sources", ("gaia/gaia_*.fits",), "source_id", "source_id", "copy"),
    _Case("vista.sources", "vista.sources", ("products/vista/merged/vista_sources.fits",),
          "sourceid", "sourceid", "indexes"),
]


@pytest.fixture()
def scratch(settings: Settings) -> Iterator[psycopg.Connection]:
    """A scratch schema (dropped afterwards with its ledger rows)."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCRATCH}")
        try:
            yield conn
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE")
            conn.execute("DELETE FROM ledger.ingests WHERE target LIKE %s", (f"{SCRATCH}.%",))
            conn.execute("DELETE FROM ledger.builds WHERE target LIKE %s", (f"{SCRATCH}.%",))


def _phase_reached(conn: psycopg.Connection, shadow: str, phase: str) -> bool:
    if conn.execute("SELECT to_regclass(%s)", (shadow,)).fetchone()[0] is None:
        return False
    if phase == "copy":
        return conn.execute(f"SELECT EXISTS (SELECT 1 FROM {shadow})").fetchone()[0]
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index"
                        " WHERE relid = to_regclass(%s))", (shadow,)).fetchone()[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_killed_ingest_reruns_to_every_row_once(case: _Case, settings: Settings,
                                                scratch: psycopg.Connection) -> None:
    files = sorted(p for pattern in case.files for p in settings.data_dir.glob(pattern))
    assert files
    expected = {str(f): fits.getheader(f, 1)["NAXIS2"] for f in files}
    table = f"{SCRATCH}.{case.source.replace('.', '_')}"
    shadow = f"{table}__casuvo_load"
    scratch.execute(f"CREATE TABLE {table} (LIKE {case.source} INCLUDING ALL)")
    script = ("import sys; from pathlib import Path; "
              "from casuvo.storage.ingest import ingest_catalogue; "
              "ingest_catalogue(sys.argv[1], sys.argv[2], [Path(p) for p in sys.argv[4:]], "
              "order_by=sys.argv[3], progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script, settings.dsn, table, case.order_by,
                             *map(str, files)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _phase_reached(scratch, shadow, case.phase):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the ingest finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    # Killed: the table holds what it held (nothing), the ledger loaded nothing; the
    # new table keeps the files it had committed, for the rerun.
    assert scratch.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    progress = f"{table}__casuvo_files"
    kept = dict(scratch.execute(f"SELECT file, rows FROM {progress}").fetchall())
    assert kept and all(expected[f] == rows for f, rows in kept.items())
    if case.phase == "indexes":
        assert kept == expected
    assert scratch.execute("SELECT count(*) FROM ledger.ingests WHERE target = %s"
                           " AND status = 'ok'", (table,)).fetchone()[0] == 0
    assert scratch.execute("SELECT count(*) FROM ledger.builds WHERE target = %s",
                           (table,)).fetchone()[0] == 0

    result = ingest_catalogue(settings.dsn, table, files, order_by=case.order_by,
                              progress=False)
    total = sum(expected.values())
    assert not result.skipped and result.rows == total
    assert result.resumed_files == len(kept)
    rows, distinct = scratch.execute(
        f"SELECT count(*), count(DISTINCT {case.key}) FROM {table}").fetchone()
    assert rows == distinct == total
    assert scratch.execute("SELECT to_regclass(%s), to_regclass(%s)",
                           (shadow, progress)).fetchone() == (None, None)
    ledgered = scratch.execute("SELECT file, rows FROM ledger.ingests WHERE target = %s"
                               " AND status = 'ok'", (table,)).fetchall()
    assert sorted(ledgered) == sorted(expected.items())
    # The published table's indexes are all there, under their own names.
    names = {r[0] for r in scratch.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (SCRATCH,))}
    assert names and not any("__casuvo" in n for n in names)
    # A second rerun finds it up to date and does nothing.
    again = ingest_catalogue(settings.dsn, table, files, order_by=case.order_by,
                             progress=False)
    assert again.skipped and again.rows == total
