# SPDX-License-Identifier: BSD-3-Clause
"""TAP sync without a UWS job (casuvo.dachs.synctap): same answers as DaCHS's job path.

A sync request with an upload still takes DaCHS's own path (a transient
UWS job); the same query with an unused upload is therefore the job-path
reference for every answer of the path without a job: rows, status codes
and error messages must agree, and the rows must agree with the simulated
catalogue.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import psycopg
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests.truth import cone_truth

pytestmark = pytest.mark.integration

CONE = (290.2208, 37.7717, 0.03)
_VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _unused_upload() -> bytes:
    out = io.BytesIO()
    Table({"id": np.array([1], dtype=np.int32)}).write(out, format="votable")
    return out.getvalue()


def _post(endpoints: dict, query: str, *, with_job: bool, **extra: str) -> requests.Response:
    """POST to /tap/sync; ``with_job`` adds an unused upload (DaCHS's job path)."""
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **extra}
    files = None
    if with_job:
        data["UPLOAD"] = "unused,param:unused"
        files = {"unused": ("unused.xml", _unused_upload(), "application/x-votable+xml")}
    return requests.post(f"{endpoints['tap']}/sync", data=data, files=files, timeout=60)


def _error_message(resp: requests.Response) -> str:
    info = ET.fromstring(resp.content).find(f".//{_VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None, resp.text[:300]
    assert info.get("value") == "ERROR"
    return (info.text or "").strip()


def test_cone_rows_equal_job_path_and_truth(endpoints: dict, gaia_catalogue: Table) -> None:
    ra, dec, r = CONE
    query = ("SELECT source_id, ra, dec FROM gaia.sources WHERE 1=CONTAINS("
             f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")
    ids = {}
    for with_job in (False, True):
        resp = _post(endpoints, query, with_job=with_job)
        assert resp.status_code == 200, resp.text[:300]
        table = parse_single_table(io.BytesIO(resp.content)).to_table()
        ids[with_job] = set(np.asarray(table["source_id"]).tolist())
    assert ids[False] == ids[True]
    cone_truth(gaia_catalogue, ra, dec, r).check(ids[False])


def test_overflow_and_format_equal_job_path(endpoints: dict) -> None:
    ra, dec, r = CONE
    query = ("SELECT source_id FROM gaia.sources WHERE 1=CONTAINS("
             f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")
    answers = [_post(endpoints, query, with_job=w, MAXREC="3", RESPONSEFORMAT="csv")
               for w in (False, True)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
    assert len(answers[0].text.splitlines()) == 1 + 3  # header and MAXREC rows


@pytest.mark.parametrize(("query", "extra"), [
    ("SELECT nope FROM gaia.sources", {}),
    ("SELECT FROM WHERE", {}),
    ("SELECT TOP 1 source_id FROM gaia.nothere", {}),
    ("SELECT TOP 1 source_id FROM gaia.sources", {"LANG": "SQL"}),
    ("SELECT TOP 1 source_id FROM gaia.sources", {"RESPONSEFORMAT": "no/such"}),
    ("SELECT TOP 1 source_id / 0 FROM gaia.sources", {}),  # fails in the database
])
def test_errors_equal_job_path(endpoints: dict, query: str, extra: dict) -> None:
    without, with_job = (_post(endpoints, query, with_job=w, **extra) for w in (False, True))
    assert without.status_code == with_job.status_code
    assert 400 <= without.status_code < 500
    assert _error_message(without) == _error_message(with_job)


def test_sync_query_without_upload_makes_no_job(endpoints: dict, settings) -> None:
    """DaCHS makes (and removes) a work directory for every job: the job
    directory tree changes for the job path only."""
    jobs_dir = settings.dachs_root / "state" / "uwsjobs"
    query = "SELECT TOP 1 source_id FROM gaia.sources"
    before = jobs_dir.stat().st_mtime_ns
    for _ in range(5):
        assert _post(endpoints, query, with_job=False).status_code == 200
    assert jobs_dir.stat().st_mtime_ns == before
    assert _post(endpoints, query, with_job=True).status_code == 200
    assert jobs_dir.stat().st_mtime_ns != before  # the reference: a job was made


def _untrusted_backends(settings) -> set[tuple[int, str]]:
    """(pid, start) of the idle backends of DaCHS's query role ``untrusted``."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, backend_start::text FROM pg_stat_activity "
                            "WHERE usename = 'untrusted' AND state = 'idle'").fetchall()
    return {(pid, start) for pid, start in rows}


def test_sync_queries_reuse_their_connections(endpoints: dict, settings) -> None:
    """casuvo.dachs.querypool: after a first round, sync queries start no new backend."""
    query = "SELECT TOP 1 source_id FROM gaia.sources"
    for _ in range(6):
        assert _post(endpoints, query, with_job=False).status_code == 200
    warm = _untrusted_backends(settings)
    assert warm  # pooled connections stay open between requests
    for _ in range(6):
        assert _post(endpoints, query, with_job=False).status_code == 200
    assert _untrusted_backends(settings) <= warm


def test_pooled_connection_forgets_session_settings(settings) -> None:
    """A connection given back is reset: what one request SET never reaches the next."""
    import psycopg2

    from casuvo.dachs import querypool

    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        default = conn.execute("SHOW statement_timeout").fetchone()[0]
    class Connection(psycopg2.extensions.connection):
        """A Python subclass, as DaCHS's ``GAVOConnection`` is (``close`` replaceable)."""

    conn = querypool._take(
        lambda _profile: psycopg2.connect(settings.dsn, connection_factory=Connection), "test")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET statement_timeout = '1234ms'")
            cursor.execute("SET application_name = 'someone else'")
        conn.close()  # back to the pool, not closed
        assert not conn.closed
        again = querypool._take(lambda _profile: pytest.fail("not reused"), "test")
        assert again is conn
        with again.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == default
            cursor.execute("SHOW application_name")
            assert cursor.fetchone()[0] != "someone else"
    finally:
        type(conn).close(conn)


def test_query_failing_in_the_database_leaves_no_open_transaction(endpoints: dict,
                                                                   settings) -> None:
    """A query PostgreSQL refuses at its start (pgSphere: negative radius) gives its
    connection back rolled back, not left 'idle in transaction (aborted)'."""
    query = ("SELECT source_id FROM gaia.sources WHERE "
             "1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 10, -1))")
    for _ in range(3):
        resp = _post(endpoints, query, with_job=False)
        assert 400 <= resp.status_code < 500, resp.text[:300]
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        stuck = conn.execute("SELECT pid, state FROM pg_stat_activity WHERE usename = "
                             "'untrusted' AND state LIKE 'idle in transaction%'").fetchall()
    assert stuck == []
