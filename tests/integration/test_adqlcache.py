# SPDX-License-Identifier: BSD-3-Clause
"""The ADQL template cache (casuvo.dachs.adqlcache) gives DaCHS's answers, value for value.

Every query of a template after the first is answered from the cached
translation with its own numbers put back, by whichever server process gets
it; so each template is sent more often than there are processes, and every
answer is compared with the simulator's truth, not with another answer of the
service.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests.truth import cone_truth

pytestmark = pytest.mark.integration

#: queries per template: more than the server processes behind the front (at most 5)
REPEATS = 8
VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _cone(ra: float, dec: float, r: float, *, contains: int = 1, top: str = "") -> str:
    return (f"SELECT {top}source_id FROM gaia.sources WHERE {contains}=CONTAINS("
            f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")


@pytest.fixture(scope="module")
def sync(endpoints: dict) -> str:
    return endpoints["tap"] + "/sync"


def _run(sync: str, query: str, **params: str) -> requests.Response:
    return requests.post(sync, data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query,
                                     **params}, timeout=60)


def _ids(response: requests.Response) -> set[int]:
    assert response.status_code == 200, response.text[:300]
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    return set(np.asarray(table["source_id"]).tolist())


def _centres(rng: np.random.Generator, ra: float, dec: float, n: int) -> list[tuple]:
    return [(round(ra + rng.uniform(-0.3, 0.3) / np.cos(np.radians(dec)), 5),
             round(dec + rng.uniform(-0.3, 0.3), 5), round(rng.uniform(0.005, 0.03), 5))
            for _ in range(n)]


@pytest.mark.parametrize(("ra", "dec"), [(194.30, -64.75), (290.2208, 37.7717),
                                         (232.01458, -50.70944)])
def test_cones_of_one_template_match_truth(sync: str, gaia_catalogue: Table,
                                           ra: float, dec: float) -> None:
    rng = np.random.default_rng(int(abs(dec) * 100))
    for cra, cdec, r in _centres(rng, ra, dec, REPEATS):
        truth = cone_truth(gaia_catalogue, cra, cdec, r)
        truth.check(_ids(_run(sync, _cone(cra, cdec, r), MAXREC="100000")))


def test_outside_a_cone_is_not_inside(sync: str, gaia_catalogue: Table) -> None:
    """``0=CONTAINS`` keeps its 0 in the template: its answer is the complement."""
    rng = np.random.default_rng(7)
    for cra, cdec, r in _centres(rng, 290.2208, 37.7717, 3):
        truth = cone_truth(gaia_catalogue, cra, cdec, r)
        query = ("SELECT COUNT(*) AS n FROM gaia.sources WHERE 0=CONTAINS(POINT('ICRS', ra, dec),"
                 f" CIRCLE('ICRS', {cra}, {cdec}, {r}))")
        table = parse_single_table(io.BytesIO(_run(sync, query).content)).to_table()
        n = int(table["n"][0])
        assert len(gaia_catalogue) - len(truth.allowed) <= n
        assert n <= len(gaia_catalogue) - len(truth.inside)
        inside = _ids(_run(sync, _cone(cra, cdec, r), MAXREC="100000"))
        truth.check(inside)


def test_a_bad_latitude_is_refused_after_its_template_served(sync: str) -> None:
    for dec in np.linspace(37.5, 38.0, REPEATS):
        assert _run(sync, _cone(290.2, float(dec), 0.01)).status_code == 200
    for bad in ("97.5", "-90.5"):
        response = _run(sync, _cone(290.2, bad, 0.01))  # type: ignore[arg-type]
        assert response.status_code == 400
        assert "Latitude" in response.text and "out of range" in response.text


def test_the_result_states_the_query_it_answers(sync: str) -> None:
    for i in range(REPEATS):
        ra = 290.1 + i / 1000
        query = _cone(ra, 37.7, 0.002)
        root = ET.fromstring(_run(sync, query).content)
        infos = {i.get("name"): i.get("value") for i in root.iter(f"{VOT}INFO")}
        assert infos["query"] == query
        assert f"RADIANS({ra})" in infos["sql_query"]


def test_maxrec_and_overflow_hold_for_every_query_of_a_template(sync: str,
                                                                gaia_catalogue: Table) -> None:
    for i in range(REPEATS):
        ra, dec = 290.2208 + i / 500, 37.7717
        assert len(cone_truth(gaia_catalogue, ra, dec, 0.05).inside) > 5
        response = _run(sync, _cone(ra, dec, 0.05), MAXREC="5")
        assert len(_ids(response)) == 5
        root = ET.fromstring(response.content)
        status = [i.get("value") for i in root.iter(f"{VOT}INFO")
                  if i.get("name") == "QUERY_STATUS"]
        assert "OVERFLOW" in status
    for i in range(REPEATS):  # TOP is part of the template: every TOP is its own
        top = 3 + i
        assert len(_ids(_run(sync, _cone(290.2208, 37.7717, 0.05, top=f"TOP {top} ")))) == top
