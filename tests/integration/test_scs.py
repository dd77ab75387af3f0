# SPDX-License-Identifier: BSD-3-Clause
"""Simple Cone Search on gaia.sources with pyvo, its web form, and votlint."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import pyvo
import requests
from astropy.table import Table

from tests.truth import cone_truth

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("ra", "dec", "r"), [(194.30, -64.75, 0.05), (232.0146, -50.7094, 0.1)])
def test_pyvo_cone_matches_truth_and_tap(endpoints: dict, gaia_catalogue: Table,
                                         ra: float, dec: float, r: float) -> None:
    truth = cone_truth(gaia_catalogue, ra, dec, r)
    assert len(truth.inside) > 100
    scs = pyvo.dal.SCSService(endpoints["scs"]["gaia.sources"])
    got = {int(s) for s in scs.search(pos=(ra, dec), radius=r, verbosity=1)
           .to_table()["source_id"]}
    truth.check(got)
    tap = pyvo.dal.TAPService(endpoints["tap"])
    tap_ids = set(np.asarray(tap.run_sync(
        "SELECT source_id FROM gaia.sources WHERE 1=CONTAINS(POINT('ICRS', ra, dec),"
        f" CIRCLE('ICRS', {ra}, {dec}, {r}))", maxrec=100_000)["source_id"]).tolist())
    assert got == tap_ids


def test_empty_cone_is_ok(endpoints: dict) -> None:
    scs = pyvo.dal.SCSService(endpoints["scs"]["gaia.sources"])
    assert len(scs.search(pos=(10.0, 10.0), radius=0.01)) == 0


def test_votlint_accepts_scs_response(endpoints: dict, tmp_path) -> None:
    assert shutil.which("stilts"), "stilts is installed by make test"
    url = endpoints["scs"]["gaia.sources"] + "?RA=194.30&DEC=-64.75&SR=0.02"
    path = tmp_path / "scs.xml"
    path.write_bytes(requests.get(url, timeout=60).content)
    proc = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert not errors, "\n".join(errors)


def test_web_form_returns_a_table(endpoints: dict, gaia_catalogue: Table) -> None:
    truth = cone_truth(gaia_catalogue, 290.2208, 37.7717, 0.5 / 60)
    response = requests.get(endpoints["form"]["gaia.sources"], timeout=60, params={
        "hscs_pos": "290.2208, 37.7717", "hscs_sr": "0.5", "__nevow_form__": "genForm",
        "_FORMAT": "VOTable", "_VERB": "1", "MAXREC": "100000"})
    assert response.status_code == 200
    import io

    from astropy.io.votable import parse_single_table

    table = parse_single_table(io.BytesIO(response.content)).to_table()
    truth.check({int(s) for s in table["source_id"]})


def test_web_form_page_renders(endpoints: dict) -> None:
    response = requests.get(endpoints["form"]["gaia.sources"], timeout=60)
    assert response.status_code == 200
    assert "hscs_pos" in response.text and "casuvo" in response.text.lower()
