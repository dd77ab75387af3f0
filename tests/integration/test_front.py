# SPDX-License-Identifier: BSD-3-Clause
"""Several DaCHS processes behind the haproxy front: TAP async, uploads, SCS, errors.

Each test goes through the public URL and, where it matters that every process
gives the same answer, to each DaCHS process on its internal port as well
(``var/front/processes.json``).  With ``CASUVO_SERVER_PROCESSES=1`` there is no
front and the "processes" are the one server on the public port, so the same
tests hold for a single process.  Answers are compared with the simulated
catalogue (``tests.truth``), not with another query of the service.
"""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import requests
from astropy.io.votable import parse, parse_single_table
from astropy.table import Table

from casuvo.config import Settings
from casuvo.dachs import front
from tests.truth import cone_truth

pytestmark = pytest.mark.integration

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
RA, DEC, R = 194.30, -64.75, 0.03


@pytest.fixture(scope="module")
def processes(settings: Settings, endpoints: dict) -> list[str]:
    """Base URL of every DaCHS process (bypassing the front), the primary first."""
    state = front.read_state(settings)
    if settings.dachs_processes > 1:
        assert state is not None and front.is_running(settings), \
            "CASUVO_SERVER_PROCESSES > 1 but no front runs: `casuvo up` starts it"
        assert len(state.ports) == settings.dachs_processes
        return state.process_urls()
    return [endpoints["base"].rstrip("/")]


def _cone_adql(ra: float, dec: float, r: float) -> str:
    return ("SELECT source_id FROM gaia.sources WHERE "
            f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")


def _ids(content: bytes) -> set[int]:
    table = parse_single_table(io.BytesIO(content), verify="ignore").to_table()
    return {int(s) for s in table["source_id"]}


def _phase(job_xml: bytes) -> str:
    return ET.fromstring(job_xml).findtext(f"{UWS}phase")


def test_async_job_created_polled_and_fetched_through_the_front(
        endpoints: dict, processes: list[str], gaia_catalogue: Table) -> None:
    truth = cone_truth(gaia_catalogue, RA, DEC, R)
    assert len(truth.inside) > 20
    created = requests.post(endpoints["tap"] + "/async", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": _cone_adql(RA, DEC, R)},
        allow_redirects=False, timeout=60)
    assert created.status_code == 303, created.text[:300]
    job = created.headers["location"]
    # job URLs name the public port, whichever process made them
    assert job.startswith(endpoints["base"]) and "/async/" in job, job
    path = job[len(endpoints["base"].rstrip("/")):]
    # the new job is visible from every process: its state is in the database
    for base in processes:
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 200, (base, response.text[:300])
        assert _phase(response.content) == "PENDING"
    started = requests.post(job + "/phase", data={"PHASE": "RUN"}, timeout=30)
    assert started.status_code in (200, 303), started.text[:300]
    deadline = time.monotonic() + 120
    phase = "PENDING"
    while time.monotonic() < deadline:
        phase = _phase(requests.get(job, params={"WAIT": "5"}, timeout=60).content)
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
    assert phase == "COMPLETED"
    # the result is served by every process from the shared job directory
    for base in [endpoints["base"].rstrip("/"), *processes]:
        result = requests.get(base + path + "/results/result", timeout=60)
        assert result.status_code == 200, (base, result.text[:300])
        truth.check(_ids(result.content))
    deleted = requests.delete(job, allow_redirects=False, timeout=30)
    assert deleted.status_code in (200, 303)
    assert requests.get(job, timeout=30).status_code == 404


def test_sync_upload_join_through_the_front(endpoints: dict,
                                            gaia_catalogue: Table) -> None:
    positions = [(194.30, -64.75), (194.33, -64.76), (232.0146, -50.7094)]
    r = 5 / 3600
    mine = Table({"pid": np.arange(len(positions), dtype=np.int32),
                  "ra": [p[0] for p in positions], "dec": [p[1] for p in positions]})
    buf = io.BytesIO()
    mine.write(buf, format="votable")
    query = ("SELECT m.pid, g.source_id FROM TAP_UPLOAD.mine AS m JOIN gaia.sources AS g"
             " ON 1=CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', m.ra, m.dec,"
             f" {r}))")
    # several times, so that the front sends it to more than one process
    for _ in range(4):
        response = requests.post(endpoints["tap"] + "/sync", data={
            "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "UPLOAD": "mine,param:mine"},
            files={"mine": ("mine.xml", buf.getvalue(), "application/x-votable+xml")},
            timeout=60)
        assert response.status_code == 200, response.text[:500]
        got = parse_single_table(io.BytesIO(response.content), verify="ignore").to_table()
        for pid, (ra, dec) in enumerate(positions):
            truth = cone_truth(gaia_catalogue, ra, dec, r)
            pairs = zip(got["pid"], got["source_id"], strict=True)
            truth.check({int(s) for p, s in pairs if p == pid})


def test_scs_through_the_front_and_every_process(endpoints: dict, processes: list[str],
                                                 gaia_catalogue: Table) -> None:
    truth = cone_truth(gaia_catalogue, RA, DEC, R)
    url = endpoints["scs"]["gaia.sources"]
    path = url[len(endpoints["base"].rstrip("/")):]
    for target in [url, *(base + path for base in processes)]:
        response = requests.get(target, params={"RA": RA, "DEC": DEC, "SR": R,
                                                "VERB": 1}, timeout=60)
        assert response.status_code == 200, (target, response.text[:300])
        truth.check(_ids(response.content))


def test_bad_query_is_400_with_error_votable_from_every_process(
        endpoints: dict, processes: list[str]) -> None:
    path = endpoints["tap"][len(endpoints["base"].rstrip("/")):] + "/sync"
    for base in [endpoints["base"].rstrip("/"), *processes]:
        response = requests.post(base + path, data={
            "REQUEST": "doQuery", "LANG": "ADQL",
            "QUERY": "SELECT nosuchcolumn FROM gaia.sources"}, timeout=60)
        assert response.status_code == 400, (base, response.text[:300])
        vot = parse(io.BytesIO(response.content), verify="ignore")
        status = {i.name: i for res in vot.resources for i in res.infos}
        status.update({i.name: i for i in vot.infos})
        assert status["QUERY_STATUS"].value == "ERROR"
        assert "nosuchcolumn" in (status["QUERY_STATUS"].content or "").lower()
    scs = endpoints["scs"]["gaia.sources"]
    response = requests.get(scs, params={"RA": 10, "DEC": 100, "SR": 0.1}, timeout=60)
    assert response.status_code == 400, response.text[:300]


def test_light_requests_reach_the_primary_and_work_the_others(
        settings: Settings, endpoints: dict) -> None:
    """Health, VOSI and pages are answered by process 0; TAP sync and SCS by the others.

    Each request carries a unique marker in its URL; which process answered is
    read from the access logs the processes write (``server-<i>/web.log``).
    """
    base = endpoints["base"].rstrip("/")
    marker = f"probe{time.time_ns()}"
    light = [f"{base}/tap/availability?m={marker}l1", f"{base}/tap/capabilities?m={marker}l2",
             f"{base}/robots.txt?m={marker}l3"]
    work = [f"{endpoints['tap']}/sync?REQUEST=doQuery&LANG=ADQL&QUERY="
            f"SELECT+TOP+1+source_id+FROM+gaia.sources&m={marker}w{i}" for i in range(4)]
    work += [f"{endpoints['scs']['gaia.sources']}?RA={RA}&DEC={DEC}&SR=0.001&m={marker}w9"]
    for url in light + work:
        assert requests.get(url, timeout=60).status_code < 500, url
    if settings.dachs_processes == 1:
        return  # one process answers everything; nothing to route
    time.sleep(1.0)  # the access log is written after the answer
    logs = [(settings.dachs_root / "logs" / f"server-{i}" / "web.log").read_text(
        errors="replace") for i in range(settings.dachs_processes)]

    def served_by(tag: str) -> list[int]:
        return [i for i, text in enumerate(logs) if f"{marker}{tag}" in text]

    for i in (1, 2, 3):
        assert served_by(f"l{i}") == [0], f"light request l{i} served by {served_by(f'l{i}')}"
    for tag in ("w0", "w1", "w2", "w3", "w9"):
        got = served_by(tag)
        assert len(got) == 1 and got[0] != 0, f"work request {tag} served by {got}"


def test_cached_capabilities_are_the_same_document_for_every_client(endpoints: dict) -> None:
    """The front caches the static VOSI documents; whether a client accepts gzip or
    not, it gets a document it can read (the cache keeps one form for all)."""
    url = endpoints["tap"].rstrip("/") + "/capabilities"
    first = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=30)
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    for answer in (first, plain):
        assert answer.status_code == 200
        assert answer.headers.get("content-encoding", "identity") == "identity"
        root = ET.fromstring(answer.content)
        assert root.tag.endswith("capabilities")
    assert first.content == plain.content
