# SPDX-License-Identifier: BSD-3-Clause
"""Bad input to TAP and Cone Search: a 4xx and the protocol's error document, never a 500."""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io.votable import parse

pytestmark = pytest.mark.integration

GOOD = "SELECT TOP 3 source_id FROM gaia.sources"


def _votable_error(response: requests.Response) -> str:
    """The error message of a DALI/SCS error VOTable (fails if there is none)."""
    assert "xml" in response.headers["content-type"]
    vot = parse(io.BytesIO(response.content), verify="ignore")
    infos = list(vot.infos)
    for res in vot.resources:
        infos.extend(res.infos)
    status = {i.name: i for i in infos}
    if "QUERY_STATUS" in status:
        assert status["QUERY_STATUS"].value == "ERROR"
        return status["QUERY_STATUS"].content or ""
    assert "Error" in status, f"no error INFO in {response.text[:300]}"
    return status["Error"].value


def _sync(endpoints: dict, **params: str) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", **params}
    return requests.post(endpoints["tap"] + "/sync", data=data, timeout=60)


@pytest.mark.parametrize(("query", "needle"), [
    ("SELEKT source_id FROM gaia.sources", "Could not parse"),
    ("SELECT source_id FROM gaia.nosuchtable", "gaia.nosuchtable"),
    ("SELECT nosuchcolumn FROM gaia.sources", "nosuchcolumn"),
    ("SELECT source_id FROM gaia.sources WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
     " CIRCLE('ICRS', 10, 10, -1))", "radius"),
    ("SELECT source_id FROM gaia.sources WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
     " CIRCLE('ICRS', 10, 100, 1))", "100"),
])
def test_bad_adql_is_400_with_message(endpoints: dict, query: str, needle: str) -> None:
    response = _sync(endpoints, QUERY=query)
    assert response.status_code == 400, response.text[:500]
    assert needle.lower() in _votable_error(response).lower()


@pytest.mark.parametrize(("maxrec", "needle"), [
    # DaCHS turns MAXREC into the query's LIMIT, and says so about a negative one
    ("-5", "limit must not be negative"),
    ("lots", "field maxrec: 'lots' is not a valid literal for maxrec"),
    ("1e99", "field maxrec: '1e99' is not a valid literal for maxrec"),
])
def test_absurd_maxrec_is_400(endpoints: dict, maxrec: str, needle: str) -> None:
    response = _sync(endpoints, QUERY=GOOD, MAXREC=maxrec)
    assert response.status_code == 400, response.text[:500]
    assert needle in _votable_error(response).lower()


def test_huge_maxrec_is_capped_not_failed(endpoints: dict, gaia_catalogue) -> None:
    """A large but well-formed MAXREC is honoured up to the server's hard limit.

    Capped: the limit DaCHS puts on the SQL (its ``sql_query`` INFO) is the hard
    limit the service declares (TAPRegExt outputLimit/hard), not MAXREC.  Honoured:
    all of gaia.sources comes back, more rows than the default limit, not flagged.
    """
    tap = pyvo.dal.TAPService(endpoints["tap"])
    hard, default = tap.hardlimit, tap.maxrec
    assert default < len(gaia_catalogue) < hard < 100_000_000_000
    response = _sync(endpoints, QUERY="SELECT source_id FROM gaia.sources",
                     MAXREC="100000000000")
    assert response.status_code == 200, response.text[:500]
    vot = parse(io.BytesIO(response.content))
    infos = {i.name: i.value for res in vot.resources for i in res.infos
             if i.name in ("sql_query", "QUERY_STATUS")}
    # one row past the limit is fetched (never returned) to tell a cut result
    assert infos["sql_query"].endswith(f" LIMIT {hard + 1}")
    assert infos["QUERY_STATUS"] == "OK"
    assert len(vot.get_first_table().array) == len(gaia_catalogue)


def test_unknown_lang_is_400(endpoints: dict) -> None:
    response = requests.post(endpoints["tap"] + "/sync", timeout=60,
                             data={"REQUEST": "doQuery", "LANG": "SQL99", "QUERY": GOOD})
    assert response.status_code == 400
    assert "sql99" in _votable_error(response).lower()


def test_broken_upload_is_400(endpoints: dict) -> None:
    files = {"broken": ("broken.xml", b"<VOTABLE><RESOURCE><TABLE><FIELD name='a'",
                        "application/x-votable+xml")}
    response = requests.post(
        endpoints["tap"] + "/sync", timeout=60, files=files,
        data={"REQUEST": "doQuery", "LANG": "ADQL", "UPLOAD": "mine,param:broken",
              "QUERY": "SELECT * FROM TAP_UPLOAD.mine"})
    assert response.status_code == 400, response.text[:500]
    assert "while ingesting upload mine:" in _votable_error(response).lower()


def test_upload_without_file_is_400(endpoints: dict) -> None:
    response = _sync(endpoints, UPLOAD="mine,param:nothere",
                     QUERY="SELECT * FROM TAP_UPLOAD.mine")
    assert response.status_code == 400, response.text[:500]
    assert "nothere" in _votable_error(response)


def test_pyvo_raises_with_the_server_message(endpoints: dict) -> None:
    tap = pyvo.dal.TAPService(endpoints["tap"])
    with pytest.raises(pyvo.dal.DALQueryError, match="nosuchcolumn"):
        tap.run_sync("SELECT nosuchcolumn FROM gaia.sources")


@pytest.mark.parametrize(("params", "name"), [
    ({"RA": "10", "DEC": "100", "SR": "0.1"}, "DEC"),
    ({"RA": "400", "DEC": "10", "SR": "0.1"}, "RA"),
    ({"RA": "10", "DEC": "10", "SR": "-1"}, "SR"),
    ({"RA": "10", "DEC": "10", "SR": "45"}, "SR"),
    ({"RA": "ten", "DEC": "10", "SR": "0.1"}, "RA"),
    ({"RA": "10", "DEC": "10"}, "SR"),
])
def test_scs_out_of_range_is_400(endpoints: dict, params: dict, name: str) -> None:
    response = requests.get(endpoints["scs"]["gaia.sources"], params=params, timeout=60)
    assert response.status_code == 400, response.text[:500]
    assert name in _votable_error(response)


def test_no_500_on_garbage_requests(endpoints: dict) -> None:
    for data in ({"REQUEST": "doQuery"}, {"LANG": "ADQL", "QUERY": ""},
                 {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": "'; DROP TABLE x; --"}):
        response = requests.post(endpoints["tap"] + "/sync", data=data, timeout=60)
        assert 400 <= response.status_code < 500, (data, response.status_code)
