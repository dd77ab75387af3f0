# SPDX-License-Identifier: BSD-3-Clause
"""The streaming read replica (``casuvo replica up``) and the DaCHS server reading it.

The module starts the replica through the command line, as an operator would,
and removes it at the end (its data and the slot, so the primary keeps no WAL
for it).  Answers of the replica-backed server are compared with SQL on the
*primary*, read as the same audience (the public, a member of one team) under
the release policies (``bench/public.py``), so the replica is shown to serve
the primary's rows, with the primary's release control; the replica's own
statistics show the queries ran there and not on the primary.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import pyvo
import requests
from astropy.io.votable import parse

from casuvo.config import Settings
from casuvo.dachs.errors import READ_ONLY_MESSAGE
from casuvo.storage import replica
from casuvo.storage.access import ANONYMOUS, groups_setting

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import public  # noqa: E402  -- bench/public.py: SQL that reads as a request does

#: whom the TAP comparisons act for: the public, and a member of one team only
#: (``services/access.toml``), each with the ``casuvo.groups`` the server gives it
AUDIENCES = {
    "public": (None, ANONYMOUS),
    "vvv-member": (("vvv-member", "demo-vvv-pw"), groups_setting(["vvv"])),
}
#: seconds a committed change may take to be visible on the replica
REPLAY_WAIT_S = 20.0
#: seconds within which every idle backend has reported its table statistics
#: (PostgreSQL 15's PGSTAT_IDLE_INTERVAL, 10 s, and a margin)
STATS_REPORT_S = 11.0


def _casuvo(casuvo_bin: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(casuvo_bin), *args], capture_output=True, text=True,
                          check=False, timeout=600, env=env)


@pytest.fixture(scope="module")
def replica_url(settings: Settings, casuvo_bin: Path) -> Iterator[str]:
    """Start the replica and its DaCHS; remove both afterwards."""
    started = time.monotonic()
    done = _casuvo(casuvo_bin, "replica", "up")
    assert done.returncode == 0, done.stdout + done.stderr
    state = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\ncasuvo replica up: {time.monotonic() - started:.1f} s")
    try:
        yield state["server"]
    finally:
        down = _casuvo(casuvo_bin, "replica", "down", "--remove")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not replica.is_running(settings)


def _session(auth: tuple[str, str] | None) -> requests.Session:
    session = requests.Session()
    session.auth = auth  # None: anonymous (the tests' sessions log in otherwise)
    return session


def _tap(base: str, auth: tuple[str, str] | None) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(f"{base.rstrip('/')}/tap", session=_session(auth))


def _scans(dsn: str, table: str = "sources", schema: str = "gaia") -> int:
    """Sequential plus index scans of ``schema.table`` that the server counted."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE schemaname = %s AND relname = %s", (schema, table)).fetchone()[0]


def _cone_centre(settings: Settings) -> tuple[float, float]:
    """A position among the public Gaia sources (the median source of the table)."""
    with public.connect(settings) as conn:
        ra, dec = conn.execute(
            "SELECT ra, dec FROM gaia.sources ORDER BY source_id"
            " OFFSET (SELECT count(*) / 2 FROM gaia.sources) LIMIT 1").fetchone()
    return float(ra), float(dec)


def test_the_replica_is_a_hot_standby_streaming_from_the_primary(
        settings: Settings, replica_url: str, casuvo_bin: Path) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT r.state, s.slot_type FROM pg_stat_replication r"
            " JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = %s",
            (replica.SLOT,)).fetchall()
    assert rows == [("streaming", "physical")]
    with psycopg.connect(settings.replica_dsn, autocommit=True) as conn:
        in_recovery, port = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('port')::int").fetchone()
        assert conn.execute("SHOW hot_standby").fetchone()[0] == "on"
    assert in_recovery is True
    assert port == settings.replica_port != settings.db_port
    status = _casuvo(casuvo_bin, "replica", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    reported = json.loads(status.stdout)
    assert reported["streaming"] and reported["in_recovery"]
    assert reported["server"] == replica_url


def test_a_row_committed_on_the_primary_arrives_on_the_replica(
        settings: Settings, replica_url: str) -> None:
    table = f"public.replica_probe_{secrets.token_hex(4)}"
    token = secrets.token_hex(16)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (token text)")
        try:
            conn.execute(f"INSERT INTO {table} VALUES (%s)", (token,))
            committed = time.monotonic()
            seen = None
            with psycopg.connect(settings.replica_dsn, autocommit=True) as standby:
                while time.monotonic() - committed < REPLAY_WAIT_S:
                    if standby.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
                        seen = standby.execute(f"SELECT token FROM {table}").fetchall()
                        if seen:
                            break
                    time.sleep(0.05)
            print(f"\nrow visible on the replica after {time.monotonic() - committed:.3f} s")
            assert seen == [(token,)]
        finally:
            conn.execute(f"DROP TABLE {table}")
    with psycopg.connect(settings.replica_dsn, autocommit=True) as standby:
        deadline = time.monotonic() + REPLAY_WAIT_S
        while standby.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
            assert time.monotonic() < deadline, f"{table} not dropped on the replica"
            time.sleep(0.05)


@pytest.mark.parametrize("audience", sorted(AUDIENCES))
def test_tap_through_the_replica_returns_the_primarys_rows(
        settings: Settings, replica_url: str, audience: str) -> None:
    auth, setting = AUDIENCES[audience]
    ra, dec = _cone_centre(settings)
    radius = 0.05
    cone = ("SELECT source_id, ra, dec FROM gaia.sources WHERE 1=CONTAINS("
            f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))")
    tap = _tap(replica_url, auth)
    served = tap.run_sync(cone, maxrec=100000).to_table()
    obscore = tap.run_sync("SELECT COUNT(*) AS n FROM ivoa.obscore").to_table()
    with public.connect(settings, setting) as conn:
        expected = conn.execute(
            "SELECT source_id, ra, dec FROM gaia.sources WHERE"
            " spoint(radians(ra), radians(dec)) @ scircle(spoint(radians(%s), radians(%s)),"
            " radians(%s))", (ra, dec, radius)).fetchall()
        expected_obscore = conn.execute("SELECT count(*) FROM ivoa.obscore").fetchone()[0]
    assert len(expected) >= 5
    assert sorted((int(r["source_id"]), float(r["ra"]), float(r["dec"])) for r in served) == \
        sorted((int(s), float(a), float(d)) for s, a, d in expected)
    assert int(obscore["n"][0]) == expected_obscore > 0


@pytest.mark.parametrize(("protocol", "collection"), [("sia", "vista"), ("ssa", "ges")])
def test_image_and_spectrum_searches_through_the_replica(
        endpoints: dict, replica_url: str, protocol: str, collection: str) -> None:
    """SIA and SSA are reads: the replica's server finds the products the primary's does."""
    url = endpoints[protocol][collection]
    base = endpoints["base"].rstrip("/")
    params = {"MAXREC": "100000"} if protocol == "sia" else {"REQUEST": "queryData"}
    found = []
    for server in (base, replica_url.rstrip("/")):
        answer = requests.get(url.replace(base, server), params=params, timeout=120,
                              auth=AUDIENCES["vvv-member"][0])
        assert answer.status_code == 200, answer.text
        table = pyvo.dal.DALResults(parse(io.BytesIO(answer.content)), url=url).to_table()
        column = "obs_publisher_did" if protocol == "sia" else "ssa_pubDID"
        found.append(sorted(str(v) for v in table[column]))
    assert found[0] and found[0] == found[1]


def test_a_cutout_through_the_replica_is_the_primarys(
        settings: Settings, endpoints: dict, replica_url: str) -> None:
    """SODA reads the product's row and its file: the same bytes from either server."""
    auth, setting = AUDIENCES["vvv-member"]
    with public.connect(settings, setting) as conn:
        did, ra, dec = conn.execute(
            "SELECT obs_publisher_did, s_ra, s_dec FROM ivoa.obscore WHERE"
            " obs_collection = 'VVV' AND dataproduct_type = 'image'"
            " ORDER BY obs_publisher_did LIMIT 1").fetchone()
    base = endpoints["base"].rstrip("/")
    cutouts = []
    for server in (base, replica_url.rstrip("/")):
        answer = requests.get(endpoints["soda"]["vista"].replace(base, server), timeout=120,
                              params={"ID": did, "CIRCLE": f"{ra} {dec} 0.01"}, auth=auth)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/fits"
        cutouts.append(answer.content)
    assert cutouts[0][:6] == b"SIMPLE" and cutouts[0] == cutouts[1]


def test_release_control_holds_on_the_replica(settings: Settings, replica_url: str) -> None:
    """The team member sees more ObsCore rows than the public, on the replica too."""
    counts = {}
    for audience, (auth, _) in AUDIENCES.items():
        table = _tap(replica_url, auth).run_sync(
            "SELECT COUNT(*) AS n FROM ivoa.obscore").to_table()
        counts[audience] = int(table["n"][0])
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        everything = conn.execute("SELECT count(*) FROM ivoa.obscore").fetchone()[0]
    assert counts["public"] < counts["vvv-member"] <= everything


def test_the_queries_run_on_the_replica_not_on_the_primary(
        settings: Settings, replica_url: str, endpoints: dict) -> None:
    ra, dec = _cone_centre(settings)
    queries = 3
    on_primary = _scans(settings.dsn)
    on_replica = _scans(settings.replica_dsn)
    tap = _tap(replica_url, None)
    for i in range(queries):
        tap.run_sync("SELECT source_id FROM gaia.sources WHERE 1=CONTAINS(POINT('ICRS', ra,"
                     f" dec), CIRCLE('ICRS', {ra}, {dec}, {0.01 * (i + 1)}))")
    # SCS through the replica's server reads the replica as well
    scs = endpoints["scs"]["gaia.sources"].replace(endpoints["base"].rstrip("/"),
                                                   replica_url.rstrip("/"))
    answer = pyvo.dal.SCSService(scs, session=_session(None)).search((ra, dec), 0.01)
    assert len(answer) >= 1
    done = time.monotonic()
    # an idle backend reports its counts within PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s)
    while _scans(settings.replica_dsn) < on_replica + queries + 1:
        assert time.monotonic() < done + REPLAY_WAIT_S, \
            "the replica counted no scans of gaia.sources"
        time.sleep(0.2)
    time.sleep(max(0.0, done + STATS_REPORT_S - time.monotonic()))
    assert _scans(settings.dsn) == on_primary


def test_writes_through_the_replica_are_refused(settings: Settings, replica_url: str) -> None:
    with psycopg.connect(settings.replica_dsn, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction,
                          match="read-only transaction"):
        conn.execute("CREATE TABLE public.replica_write_probe (x int)")
    tap = f"{replica_url.rstrip('/')}/tap"
    session = _session(None)
    job = session.post(f"{tap}/async", data={
        "LANG": "ADQL", "REQUEST": "doQuery", "QUERY": "SELECT TOP 1 * FROM ivoa.obscore"},
        timeout=60, allow_redirects=False)
    votable = ('<?xml version="1.0"?><VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/'
               'VOTable/v1.3"><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA>'
               "<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")
    upload = session.post(f"{tap}/sync", data={
        "LANG": "ADQL", "REQUEST": "doQuery", "QUERY": "SELECT * FROM TAP_UPLOAD.t",
        "UPLOAD": "t,param:t"}, files={"t": ("t.xml", votable, "text/xml")}, timeout=60)
    for answer in (job, upload):
        assert answer.status_code == 403, answer.text
        assert 'value="ERROR"' in answer.text and READ_ONLY_MESSAGE in answer.text


def test_a_stopped_replica_catches_up_through_its_slot(
        settings: Settings, replica_url: str, casuvo_bin: Path) -> None:
    """While the replica is down its slot holds the WAL it has not received; after
    ``casuvo replica up`` it replays what was committed meanwhile (no new copy)."""
    down = _casuvo(casuvo_bin, "replica", "down")
    assert down.returncode == 0 and not replica.is_running(settings), down.stdout
    table = f"public.replica_probe_{secrets.token_hex(4)}"
    token = secrets.token_hex(16)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (token text)")
        try:
            conn.execute(f"INSERT INTO {table} VALUES (%s)", (token,))
            written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            conn.execute("SELECT pg_switch_wal()")  # the row's segment is complete
            active, wal_status, held = conn.execute(
                "SELECT active, wal_status, restart_lsn <= %s::pg_lsn FROM"
                " pg_replication_slots WHERE slot_name = %s", (written, replica.SLOT)
            ).fetchone()
            assert (active, wal_status, held) == (False, "reserved", True)
            marker = settings.replica_dir / "pgdata" / "PG_VERSION"
            copied = marker.stat().st_mtime
            up = _casuvo(casuvo_bin, "replica", "up", "--no-server")
            assert up.returncode == 0, up.stdout + up.stderr
            assert marker.stat().st_mtime == copied  # replayed, not copied again
            with psycopg.connect(settings.replica_dsn, autocommit=True) as standby:
                deadline = time.monotonic() + REPLAY_WAIT_S
                while not (standby.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
                           and standby.execute(f"SELECT token FROM {table}").fetchall()):
                    assert time.monotonic() < deadline, "the replica did not catch up"
                    time.sleep(0.05)
                assert standby.execute(f"SELECT token FROM {table}").fetchall() == [(token,)]
        finally:
            conn.execute(f"DROP TABLE {table}")


def test_replica_up_without_a_running_primary_says_so(
        settings: Settings, casuvo_bin: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    env = {**os.environ, "CASUVO_VAR": str(tmp_path), "CASUVO_DB_PORT": str(port)}
    done = _casuvo(casuvo_bin, "replica", "up", env=env)
    assert done.returncode == 1
    assert f"the primary PostgreSQL on localhost:{port} is not running" in done.stdout
    assert "casuvo up" in done.stdout
    assert not (tmp_path / "replica").exists()
