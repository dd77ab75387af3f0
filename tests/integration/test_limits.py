# SPDX-License-Identifier: BSD-3-Clause
"""Machine-readable limits: capabilities, the limits page and OVERFLOW agree with the server.

The expected numbers come from the rendered ``gavo.rc`` (what
``services/gavo.rc.template`` sets) and, for what it leaves out, DaCHS 2.7's
documented defaults written out below; casuvo's own limits from
:mod:`casuvo.dachs.limits` and :mod:`casuvo.dachs.params`.  Row counts are
computed independently in SQL (pgSphere over psycopg).  OVERFLOW must be
flagged exactly when rows were cut: with MAXREC one below the number of
matching rows, and never with MAXREC equal to it.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import math
import re
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping

import psycopg
import pytest
import requests

from casuvo.config import Settings
from casuvo.dachs import limits, params
from casuvo.dachs.instance import dachs_env

pytestmark = pytest.mark.integration

#: DaCHS 2.7's defaults (gavo/base/config.py) for what gavo.rc may leave out
DACHS_DEFAULTS: dict[tuple[str, str], int] = {
    ("web", "sqlTimeout"): 15,
    ("web", "maxUploadSize"): 20_000_000,
    ("web", "maxSyncUploadSize"): 500_000,
    ("async", "defaultExecTimeSync"): 60,
    ("async", "defaultExecTime"): 3600,
    ("async", "maxTAPRunning"): 2,
    ("async", "defaultLifetime"): 172_800,
    ("async", "defaultMAXREC"): 20_000,
    ("async", "hardMAXREC"): 20_000_000,
    ("db", "defaultLimit"): 100,
    ("ivoa", "dalDefaultLimit"): 10_000,
    ("ivoa", "dalHardLimit"): 1_000_000,
}

#: a cone with a few hundred Gaia stars (the VVV field)
RA, DEC, RADIUS = 194.30, -64.75, 0.02
TIMEOUT = 60


@pytest.fixture(scope="module")
def config(settings: Settings) -> dict[tuple[str, str], int]:
    """The configuration values the server runs with: gavo.rc over DaCHS's defaults."""
    rc = configparser.ConfigParser()
    rc.read(settings.gavo_rc)
    return {(section, key): int(rc.get(section, key, fallback=str(default)))
            for (section, key), default in DACHS_DEFAULTS.items()}


@pytest.fixture(scope="module")
def limits_json(endpoints: dict) -> dict:
    resp = requests.get(endpoints["limits"]["json"], timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    return resp.json()


def _values(doc: dict, group: str) -> dict:
    return {key: item["value"] for key, item in doc[group]["limits"].items()}


def _capability(url: str, standard: str) -> ET.Element:
    resp = requests.get(url, timeout=TIMEOUT)
    assert resp.status_code == 200
    for cap in ET.fromstring(resp.content).iter("capability"):
        if cap.get("standardID", "").lower() == standard.lower():
            return cap
    raise AssertionError(f"no {standard} capability at {url}")


def _text(cap: ET.Element, path: str) -> str:
    found = cap.find(path)
    assert found is not None, path
    return (found.text or "").strip()


def _status(body: str) -> list[str]:
    return re.findall(r'<INFO[^>]*name="QUERY_STATUS"[^>]*value="(\w+)"', body)


def _rows(body: str) -> int:
    return body.count("<TR>")


# ---------------------------------------------------------------- capabilities

def test_tap_capabilities_state_the_configured_limits(endpoints: dict, config: dict) -> None:
    cap = _capability(endpoints["tap"] + "/capabilities", "ivo://ivoa.net/std/TAP")
    assert int(_text(cap, "outputLimit/default")) == config["async", "defaultMAXREC"]
    assert int(_text(cap, "outputLimit/hard")) == config["async", "hardMAXREC"]
    assert cap.find("outputLimit/default").get("unit") == "row"
    assert int(_text(cap, "uploadLimit/hard")) == config["web", "maxUploadSize"]
    assert int(_text(cap, "executionDuration/default")) == config["async", "defaultExecTime"]
    assert int(_text(cap, "retentionPeriod/default")) == config["async", "defaultLifetime"]


def test_scs_and_sia_capabilities_state_what_the_services_do(endpoints: dict,
                                                             config: dict) -> None:
    for url in endpoints["scs"].values():
        cap = _capability(url.rsplit("/", 1)[0] + "/capabilities",
                          "ivo://ivoa.net/std/ConeSearch")
        assert float(_text(cap, "maxSR")) == params.MAX_CONE_RADIUS
        assert int(_text(cap, "maxRecords")) == config["ivoa", "dalHardLimit"]
    for protocol, standard in (("sia", "ivo://ivoa.net/std/SIA#query-2.0"),
                               ("sia1", "ivo://ivoa.net/std/SIA")):
        for url in endpoints[protocol].values():
            cap = _capability(url.rsplit("/", 1)[0] + "/capabilities", standard)
            assert int(_text(cap, "maxRecords")) == config["ivoa", "dalHardLimit"]


def test_cone_radius_limit_is_what_the_cone_search_refuses(endpoints: dict) -> None:
    url = endpoints["scs"]["gaia.sources"]
    ok = requests.get(url, params={"RA": RA, "DEC": DEC, "SR": params.MAX_CONE_RADIUS,
                                   "MAXREC": 1}, timeout=TIMEOUT)
    assert ok.status_code == 200
    over = requests.get(url, params={"RA": RA, "DEC": DEC, "SR": params.MAX_CONE_RADIUS * 1.01},
                        timeout=TIMEOUT)
    assert over.status_code == 400
    assert "SR" in over.text


# ---------------------------------------------------------------- the limits page

def test_limits_json_holds_the_configured_and_casuvo_limits(limits_json: dict,
                                                            config: dict) -> None:
    assert _values(limits_json, "tap") == {
        "maxrec_default": config["async", "defaultMAXREC"],
        "maxrec_hard": config["async", "hardMAXREC"],
        "upload_sync": config["web", "maxSyncUploadSize"],
        "upload_async": config["web", "maxUploadSize"],
        "execution_duration_sync": config["async", "defaultExecTimeSync"],
        "execution_duration_async": config["async", "defaultExecTime"],
        "retention_period": config["async", "defaultLifetime"],
        "max_running_jobs": config["async", "maxTAPRunning"]}
    dal = {"maxrec_hard": config["ivoa", "dalHardLimit"],
           "query_timeout": config["web", "sqlTimeout"], "max_radius": params.MAX_CONE_RADIUS}
    assert _values(limits_json, "scs") == {
        "maxrec_default": 10 * config["ivoa", "dalDefaultLimit"], **dal}
    assert _values(limits_json, "sia") == {
        "maxrec_default": config["ivoa", "dalDefaultLimit"], **dal}
    assert _values(limits_json, "datalink") == {
        "maxrec_default": config["db", "defaultLimit"],
        "maxrec_hard": config["ivoa", "dalHardLimit"]}
    # every field of casuvo's ADQL limits, each with its description
    assert _values(limits_json, "adql") == dataclasses.asdict(limits.ADQL)
    for key, item in limits_json["adql"]["limits"].items():
        assert item["description"] and item["description"] != key


def test_limits_page_shows_every_limit_and_is_on_the_front_page(
        endpoints: dict, limits_json: dict) -> None:
    resp = requests.get(endpoints["limits"]["page"], timeout=TIMEOUT)
    assert resp.status_code == 200
    page = resp.text
    cells = dict(re.findall(r'<tr data-limit="([\w.]+)">.*?data-value="([^"]*)"', page))
    expected = {f"{group}.{key}": item["value"] for group, doc in limits_json.items()
                for key, item in doc["limits"].items()}
    assert {k: json.loads(v.replace("&quot;", '"')) for k, v in cells.items()} == expected
    assert urllib.parse.urlsplit(endpoints["limits"]["json"]).path in page
    front = requests.get(endpoints["base"], timeout=TIMEOUT)
    assert urllib.parse.urlsplit(endpoints["limits"]["page"]).path.lstrip("/") in front.text


# ---------------------------------------------------------------- uploads

def _upload(n_bytes: int, rows: int = 3) -> bytes:
    """A VOTable of ``rows`` positions, padded to ``n_bytes`` by its DESCRIPTION.

    The size is in the description, so that the server's time goes into
    receiving the body, not into ingesting rows.
    """
    head = (b'<?xml version="1.0"?><VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/'
            b'VOTable/v1.3"><RESOURCE><TABLE><DESCRIPTION>')
    fields = (b'</DESCRIPTION><FIELD name="ra" datatype="double"/><FIELD name="dec" '
              b'datatype="double"/><DATA><TABLEDATA>')
    body = b"<TR><TD>194.3</TD><TD>-64.75</TD></TR>" * rows
    tail = b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    pad = n_bytes - len(head) - len(fields) - len(body) - len(tail)
    return head + (b"padding " * (pad // 8 + 1))[:pad] + fields + body + tail


def test_upload_limits_are_what_the_server_accepts(endpoints: dict, config: dict) -> None:
    limit = config["web", "maxSyncUploadSize"]
    query = {"REQUEST": "doQuery", "LANG": "ADQL", "UPLOAD": "t,param:t",
             "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t", "FORMAT": "csv"}
    body = _upload(limit - 20_000)
    ok = requests.post(endpoints["tap"] + "/sync", data=query, files={"t": ("t.xml", body)},
                       timeout=TIMEOUT)
    assert ok.status_code == 200, ok.text[:300]
    assert int(ok.text.split()[1]) == 3
    over = requests.post(endpoints["tap"] + "/sync", data=query,
                         files={"t": ("t.xml", _upload(limit + 10_000))}, timeout=TIMEOUT)
    assert over.status_code == 413
    assert 'value="ERROR"' in over.text
    over = requests.post(endpoints["tap"] + "/async", data=query, timeout=TIMEOUT,
                         files={"t": ("t.xml", _upload(config["web", "maxUploadSize"] + 10_000))},
                         allow_redirects=False)
    assert over.status_code == 413


# ---------------------------------------------------------------- MAXREC caps

def test_maxrec_above_the_hard_limits_is_capped(settings: Settings, config: dict) -> None:
    """In the server's code path: TAP's SQL LIMIT and a DAL query's row limit."""
    script = (
        "from casuvo.dachs import overflow\n"
        "overflow.install()\n"
        "from gavo import svcs\n"
        "from gavo.protocols import adqlglue\n"
        "sql, _ = adqlglue.morphADQL('SELECT source_id FROM gaia.sources', maxrec=10**12)\n"
        "top, _ = adqlglue.morphADQL('SELECT TOP 5 source_id FROM gaia.sources', maxrec=10)\n"
        "print(sql)\nprint(top)\n"
        "print(svcs.QueryMeta({'MAXREC': str(10**12)})['dbLimit'])\n")
    out = subprocess.run([sys.executable, "-c", script], env=dachs_env(settings),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    sql, top, dal = out.stdout.strip().splitlines()[-3:]
    assert sql.endswith(f"LIMIT {config['async', 'hardMAXREC'] + 1}"), sql
    assert top.endswith("LIMIT 5"), top
    assert int(dal) == config["ivoa", "dalHardLimit"]


# ---------------------------------------------------------------- OVERFLOW exactly when cut

def _cone_count(settings: Settings) -> int:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM gaia.sources WHERE spoint(radians(ra), radians(dec)) <@"
            " scircle(spoint(radians(%s), radians(%s)), radians(%s))",
            (RA, DEC, RADIUS)).fetchone()[0]


def _tap_sync(endpoints: dict, query: str, maxrec: int) -> str:
    resp = requests.post(endpoints["tap"] + "/sync", timeout=TIMEOUT, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "MAXREC": str(maxrec),
        "FORMAT": "votable/td"})
    assert resp.status_code == 200, resp.text[:300]
    return resp.text


def _cone_adql(top: int | None = None) -> str:
    return (f"SELECT {f'TOP {top} ' if top else ''}source_id FROM gaia.sources WHERE "
            f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {RA}, {DEC}, {RADIUS}))")


def test_tap_sync_overflow_exactly_when_cut(endpoints: dict, settings: Settings) -> None:
    n = _cone_count(settings)
    assert n > 10
    cases = [  # (TOP, MAXREC, rows, cut)
        (None, n - 1, n - 1, True), (None, n, n, False), (None, n + 1, n, False),
        (None, 3, 3, True), (n + 5, n - 1, n - 1, True), (n, n, n, False),
        (n - 1, n - 1, n - 1, False), (5, 3, 3, True)]
    for top, maxrec, rows, cut in cases:
        body = _tap_sync(endpoints, _cone_adql(top), maxrec)
        assert _rows(body) == rows, (top, maxrec)
        assert ("OVERFLOW" in _status(body)) is cut, (top, maxrec, _status(body))


def _tap_async(endpoints: dict, query: str, maxrecs: list[int]) -> list[str]:
    """Results of one async job per MAXREC, the jobs run side by side, then deleted."""
    session = requests.Session()
    jobs = []
    try:
        for maxrec in maxrecs:
            resp = session.post(endpoints["tap"] + "/async", allow_redirects=False,
                                timeout=TIMEOUT, data={
                                    "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query,
                                    "MAXREC": str(maxrec), "FORMAT": "votable/td"})
            assert resp.status_code == 303
            jobs.append(urllib.parse.urljoin(endpoints["tap"], resp.headers["Location"]))
        for job in jobs:
            session.post(job + "/phase", data={"PHASE": "RUN"}, timeout=TIMEOUT)
        results = []
        for job in jobs:
            for _ in range(30):
                phase = session.get(job + "/phase", timeout=TIMEOUT).text.strip()
                if phase not in ("PENDING", "QUEUED", "EXECUTING"):
                    break
                session.get(job, params={"WAIT": "5", "PHASE": phase}, timeout=TIMEOUT)
            assert phase == "COMPLETED", session.get(job + "/error", timeout=TIMEOUT).text[:500]
            results.append(session.get(job + "/results/result", timeout=TIMEOUT).text)
        return results
    finally:
        for job in jobs:
            session.delete(job, allow_redirects=False, timeout=TIMEOUT)


def test_tap_async_overflow_exactly_when_cut(endpoints: dict, settings: Settings) -> None:
    n = _cone_count(settings)
    cut, whole = _tap_async(endpoints, _cone_adql(), [n - 1, n])
    assert (_rows(cut), "OVERFLOW" in _status(cut)) == (n - 1, True)
    assert (_rows(whole), "OVERFLOW" in _status(whole)) == (n, False)


def _dal(url: str, query: Mapping[str, object] | list[tuple[str, str]]) -> str:
    resp = requests.get(url, params=query, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text[:300]
    return resp.text


def test_scs_overflow_exactly_when_cut(endpoints: dict, settings: Settings) -> None:
    n = _cone_count(settings)
    url = endpoints["scs"]["gaia.sources"]
    for maxrec, rows, cut in ((n - 1, n - 1, True), (n, n, False), (1, 1, True)):
        body = _dal(url, {"RA": RA, "DEC": DEC, "SR": RADIUS, "MAXREC": maxrec,
                          "RESPONSEFORMAT": "votable/td"})
        assert (_rows(body), "OVERFLOW" in _status(body)) == (rows, cut), maxrec


def _images(settings: Settings, collection: str) -> tuple[float, float, int, int]:
    """A position near an image, and how many images SIA 2.0 and 1.0 find there."""
    size = 0.02
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ra, dec = conn.execute(f"SELECT centeralpha, centerdelta FROM {collection}.images"
                               " ORDER BY accref LIMIT 1").fetchone()
        sia2 = conn.execute(
            "SELECT count(*) FROM ivoa.obscore WHERE source_table = %s AND s_region &&"
            " scircle(spoint(radians(%s), radians(%s)), radians(%s))",
            (f"{collection}.images", ra, dec, size / 2)).fetchone()[0]
        half_ra = size / 2 / math.cos(math.radians(dec))
        sia1 = conn.execute(
            f"SELECT count(*) FROM {collection}.images WHERE coverage && sbox("
            "spoint(radians(%s), radians(%s)), spoint(radians(%s), radians(%s)))",
            (ra - half_ra, dec - size / 2, ra + half_ra, dec + size / 2)).fetchone()[0]
    return ra, dec, sia2, sia1


@pytest.mark.parametrize("collection", ["vista", "vst"])
def test_sia_overflow_exactly_when_cut(collection: str, endpoints: dict,
                                       settings: Settings) -> None:
    ra, dec, n2, n1 = _images(settings, collection)
    assert n2 > 2 and n1 > 2
    for maxrec, cut in ((n2 - 1, True), (n2, False)):
        body = _dal(endpoints["sia"][collection], {
            "POS": f"CIRCLE {ra} {dec} 0.01", "MAXREC": maxrec, "RESPONSEFORMAT": "votable/td"})
        assert (_rows(body), "OVERFLOW" in _status(body)) == (min(maxrec, n2), cut), maxrec
    for maxrec, cut in ((n1 - 1, True), (n1, False)):
        body = _dal(endpoints["sia1"][collection], {
            "POS": f"{ra},{dec}", "SIZE": "0.02", "MAXREC": maxrec,
            "RESPONSEFORMAT": "votable/td"})
        assert (_rows(body), "OVERFLOW" in _status(body)) == (min(maxrec, n1), cut), maxrec


def test_datalink_overflow_exactly_when_ids_are_left_out(endpoints: dict,
                                                         settings: Settings) -> None:
    """DataLink answers the IDs of a request whole; OVERFLOW when IDs were left out."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        dids = [r[0] for r in conn.execute(
            "SELECT obs_publisher_did FROM vista.images ORDER BY accref LIMIT 3")]
    url = endpoints["datalink"]["vista"]

    def answered(body: str) -> set[str]:
        return set(re.findall(r"<TR><TD>([^<]*)</TD>", body)) & set(dids)

    for ids, maxrec, n_ids, cut in ((dids, 1, 1, True), (dids, 1000, 3, False),
                                    (dids[:1], 1, 1, False), (dids[:1], None, 1, False)):
        query = [("ID", d) for d in ids] + ([("MAXREC", str(maxrec))] if maxrec else [])
        body = _dal(url, query)
        assert len(answered(body)) == n_ids, (len(ids), maxrec)
        assert ("OVERFLOW" in _status(body)) is cut, (len(ids), maxrec, _status(body))
