# SPDX-License-Identifier: BSD-3-Clause
"""Rapid mode as users meet it: ``<survey>.alerts`` over TAP and its form, the VOEvents.

``casuvo demo`` ran ``casuvo pipeline watch SURVEY --once`` over each imaging
survey's raw area.  Expected values come from elsewhere: the transient's
position from the simulator's truth (``truth/sky_<field>.fits``), the rows from
the compute side's files (``alerts/<survey>/<night>/<exposure>/alerts_table.fits``),
what each user may see from the rule written out here in SQL on the
superuser's connection (which PostgreSQL never filters).  The detection
quality itself (every variable flagged, no false alert) is
``tests/compute/test_rapid.py``'s subject.
"""

from __future__ import annotations

import io
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse_single_table
from astropy.table import Table

from casuvo.config import Settings

pytestmark = pytest.mark.integration

TIMEOUT = 60

#: The columns of ``<survey>.alerts`` in the order the compute side writes them
#: (casuvo.jobs.rapid.ALERT_COLUMNS, written out again here).
COLUMNS = ("ivorn", "kind", "ra", "dec", "mag", "mag_err", "ref_mag", "ref_mag_err",
           "delta_mag", "significance", "exposure", "mjd_obs", "band", "field",
           "reference", "voevent", "owner_group", "release_date")

#: The demo's transient fields: survey → (field, band).
TRANSIENTS = {"vista": ("vvv_disc", "Ks"), "vst": ("vphas_pn", "r")}

VOE = "{http://www.ivoa.net/xml/VOEvent/v2.0}VOEvent"

#: (user, credentials); None: anonymous
USERS = {"anonymous": None, "outsider": ("outsider", "demo-outsider-pw"),
         "vvv-member": ("vvv-member", "demo-vvv-pw"), "member": ("survey-team", "demo-team-pw")}
GROUPS = {"anonymous": (), "outsider": (), "vvv-member": ("vvv",), "member": None}


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("SET casuvo.groups = '*'")
        yield conn


def _files(settings: Settings, survey: str) -> list[Path]:
    return sorted((settings.data_dir / "alerts" / survey).glob("*/*/alerts_table.fits"))


@pytest.mark.parametrize("survey", sorted(TRANSIENTS))
def test_the_table_holds_every_alert_file_row(survey: str, settings: Settings,
                                              db: psycopg.Connection) -> None:
    files = _files(settings, survey)
    assert files, f"no alert files for {survey}: the demo runs `casuvo pipeline watch`"
    on_disk = sorted(str(i) for f in files for i in Table.read(f, hdu=1)["ivorn"])
    columns = tuple(c for (c,) in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = 'alerts' ORDER BY ordinal_position", (survey,)))
    assert columns == COLUMNS
    in_db = sorted(i for (i,) in db.execute(f"SELECT ivorn FROM {survey}.alerts"))
    assert in_db == on_disk and len(set(in_db)) == len(in_db)
    # protected like every product table
    assert db.execute("SELECT relrowsecurity AND relforcerowsecurity FROM pg_class"
                      " WHERE oid = %s::regclass", (f"{survey}.alerts",)).fetchone()[0]


@pytest.mark.parametrize("survey", sorted(TRANSIENTS))
def test_the_transient_is_alerted_with_its_voevent(survey: str, settings: Settings,
                                                   db: psycopg.Connection) -> None:
    field, band = TRANSIENTS[survey]
    sky = Table.read(settings.data_dir / "truth" / f"sky_{field}.fits", hdu=1)
    truth = sky[np.asarray(sky["kind"]).astype(str) == "transient"]
    assert len(truth) == 1
    rows = db.execute(f"SELECT ivorn, ra, dec, band, field, voevent FROM {survey}.alerts"
                      " WHERE kind = 'new'").fetchall()
    assert rows, survey
    where = SkyCoord([r[1] for r in rows], [r[2] for r in rows], unit="deg")
    sep = where.separation(SkyCoord(truth["ra"][0], truth["dec"][0], unit="deg")).arcsec
    hit = int(np.argmin(sep))
    print(f"{survey}: transient alerted {sep[hit]:.2f}″ from the truth")
    assert sep[hit] < 0.5
    ivorn, ra, dec, got_band, got_field, text = rows[hit]
    assert (got_band, got_field) == (band, field)
    event = ET.fromstring(text.encode())
    assert event.tag == VOE and event.get("version") == "2.0"
    assert event.get("role") == "observation" and event.get("ivorn") == ivorn
    assert ivorn.startswith(f"ivo://casuvo.example.org/{survey}/alerts#")
    c1 = float(event.find(".//Position2D/Value2/C1").text)
    c2 = float(event.find(".//Position2D/Value2/C2").text)
    assert abs(c1 - ra) < 1e-6 and abs(c2 - dec) < 1e-6
    assert event.find(".//What/Param[@name='class']").get("value") == "new"


def _tap(user: str, endpoints: dict, adql: str) -> Table:
    session = requests.Session()
    session.auth = USERS[user]
    r = session.post(endpoints["tap"] + "/sync", timeout=TIMEOUT, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql})
    assert r.status_code == 200, r.text[:500]
    return parse_single_table(io.BytesIO(r.content)).to_table()


@pytest.mark.parametrize("user", sorted(USERS))
def test_release_control_over_tap_and_the_form(user: str, endpoints: dict,
                                               db: psycopg.Connection) -> None:
    """Each user sees the alerts released (the later of exposure and reference) or
    owned by a group of theirs, through TAP and through the browsing form."""
    groups = GROUPS[user]
    for survey in sorted(TRANSIENTS):
        sql = f"SELECT ivorn FROM {survey}.alerts"
        if groups is not None:
            sql += " WHERE release_date <= current_date OR owner_group = ANY(%s)"
        expected = sorted(i for (i,) in db.execute(sql, (list(groups),) if groups is not None
                                                   else None))
        got = sorted(str(i) for i in _tap(user, endpoints,
                                          f"SELECT ivorn FROM {survey}.alerts")["ivorn"])
        assert got == expected, (user, survey)
        session = requests.Session()
        session.auth = USERS[user]
        r = session.get(endpoints["base"] + f"{survey}/q/browse/form", timeout=TIMEOUT,
                        params={"__nevow_form__": "genForm", "_FORMAT": "VOTable",
                                "_VERB": "3"})
        assert r.status_code == 200, r.text[:300]
        table = parse_single_table(io.BytesIO(r.content)).to_table()
        assert sorted(str(i) for i in table["ivorn"]) == expected, (user, survey)
    # the demo's proprietary alerts (VVV's embargo) exist, and its public ones (VPHAS+)
    hidden = db.execute("SELECT count(*) FROM vista.alerts WHERE release_date > current_date"
                        ).fetchone()[0]
    public = db.execute("SELECT count(*) FROM vst.alerts WHERE release_date <= current_date"
                        ).fetchone()[0]
    assert hidden > 0 and public > 0


def _casuvo(casuvo_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(casuvo_bin), "pipeline", "watch", *args], capture_output=True,
                          text=True, timeout=600)


def test_watch_again_redoes_nothing(casuvo_bin: Path, db: psycopg.Connection) -> None:
    before = sorted(i for (i,) in db.execute("SELECT ivorn FROM vst.alerts"))
    done = _casuvo(casuvo_bin, "vst", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vst: 0 exposure(s) processed, 0 alert(s)" in done.stdout
    assert f"vst.alerts: {len(before)} alert(s) (up to date)" in done.stdout
    assert sorted(i for (i,) in db.execute("SELECT ivorn FROM vst.alerts")) == before


@pytest.mark.parametrize("args, message", [
    (("nosuch", "--once"), "unknown survey 'nosuch'"),
    (("ges", "--once"), "unknown survey 'ges'"),
    (("vst", "--interval", "0"), "--interval must be a positive number of seconds"),
    (("vst", "--for", "-1"), "--for must be a positive number of seconds"),
    (("vst", "--for", "nan"), "--for must be a positive number of seconds"),
    (("vst", "--night", "2024-05-24", "--once"), "is not a night (YYYYMMDD)"),
])
def test_watch_bad_input(args: tuple[str, ...], message: str, casuvo_bin: Path,
                         db: psycopg.Connection) -> None:
    before = db.execute("SELECT count(*) FROM vst.alerts").fetchone()[0]
    done = _casuvo(casuvo_bin, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert db.execute("SELECT count(*) FROM vst.alerts").fetchone()[0] == before
