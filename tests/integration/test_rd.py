# SPDX-License-Identifier: BSD-3-Clause
"""The resource descriptors: valid, their regression suites pass, and they match casuvo's COPY."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import psycopg
import pytest
from astropy import units as u
from astropy.io import fits

from casuvo.dachs.instance import dachs, dachs_env, resource_names
from casuvo.storage.ingest.catalogue import copy_columns

pytestmark = pytest.mark.integration

GENERATED = {"designation", "healpix12", "pos"}


@pytest.mark.parametrize("rd", ["gaia/q"])
def test_dachs_val(settings, rd: str) -> None:
    proc = dachs(settings, "val", "-v", rd, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.parametrize("rd", ["gaia/q"])
def test_dachs_regression_suite(settings, rd: str) -> None:
    proc = dachs(settings, "test", "-v", rd, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\b0 of [1-9]\d* bad", out), out


def test_every_rd_is_published(settings) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        published = {r[0] for r in conn.execute("SELECT DISTINCT sourcerd FROM dc.resources")}
    assert {f"{name}/q" for name in resource_names(settings)} <= published


def test_copy_columns_equal_rd_columns(settings, gaia_files) -> None:
    out = subprocess.run([sys.executable, "-m", "casuvo.dachs.rdschema", "gaia/q", "sources"],
                         env=dachs_env(settings), capture_output=True, text=True, check=True)
    declared = [c["name"] for c in json.loads(out.stdout)]
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        copied = [c.name for c in copy_columns(conn, "gaia.sources")]
    assert copied == [n for n in declared if n not in GENERATED]
    # ...and the simulator writes exactly those columns, with the RD's units.
    header = fits.getheader(gaia_files[0], 1)
    in_file = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
    assert sorted(in_file) == sorted(copied)
    units = {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}") for i in range(1, header["TFIELDS"]
                                                                          + 1)}
    for col in json.loads(out.stdout):
        if col["name"] in units and col["unit"]:
            assert u.Unit(units[col["name"]], format="fits", parse_strict="silent") == \
                u.Unit(col["unit"], format="vounit", parse_strict="silent"), col["name"]


def test_generated_columns_are_consistent(settings) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM gaia.sources WHERE healpix12 <> source_id / 34359738368"
            " OR designation <> 'Gaia DR3 ' || source_id"
            " OR abs(degrees(long(pos)) - ra) > 1e-9 OR abs(degrees(lat(pos)) - dec) > 1e-9"
        ).fetchone()[0]
    assert bad == 0
