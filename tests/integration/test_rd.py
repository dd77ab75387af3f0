# SPDX-License-Identifier: BSD-3-Clause
"""The resource descriptors: valid, their regression suites pass, and they match casuvo's COPY."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from astropy import units as u
from astropy.io import fits

from casuvo.config import Settings
from casuvo.dachs.instance import dachs, dachs_env, resource_names
from casuvo.storage.ingest.catalogue import copy_columns
from casuvo.surveys.registry import Registry

pytestmark = pytest.mark.integration

GENERATED = {"designation", "healpix12", "pos"}

#: the streams an imaging survey's q.rd feeds, and those of a survey with merged sources
#: (whose catalogues rapid mode compares, hence its alerts)
ARCHIVE_FEEDS = {"common/images#imageArchive", "common/processing#processing",
                 "common/rawframes#rawFrames"}
SOURCES_FEEDS = {"common/sources#sources", "common/xmatch#gaiaNeighbours",
                 "common/alerts#alerts"}


def published_rds(settings: Settings) -> list[str]:
    """The RDs DaCHS publishes: ``<resdir>/q`` for every ``resdir/*/q.rd``."""
    return [f"{name}/q" for name in resource_names(settings)]


def stream_rds(settings: Settings) -> list[str]:
    """The RDs of shared STREAMs (``resdir/common/*.rd``), fed into the published ones."""
    return sorted(f"common/{p.stem}" for p in (settings.home / "resdir" / "common").glob("*.rd"))


def val_verdicts(output: str) -> dict[str, str]:
    """RD id -> OK or Fail from the output of ``dachs val RD...``.

    ``dachs val`` prints ``RD -- ``, its warnings, then the verdict, and exits 0
    either way.
    """
    parts = re.split(r"^(\S+) -- ", output, flags=re.MULTILINE)
    return {rd: body.strip().splitlines()[-1] if body.strip() else ""
            for rd, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_rd_validates(settings) -> None:
    rds = published_rds(settings) + stream_rds(settings)
    assert "common/images" in rds and "vista/q" in rds, rds
    proc = dachs(settings, "val", "-v", *rds, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert val_verdicts(proc.stdout) == dict.fromkeys(rds, "OK"), out


def test_every_rd_passes_its_regression_suite(settings) -> None:
    """``dachs test`` of every published RD runs at least one regTest and none fails."""
    reports, failures = {}, {}
    for rd in published_rds(settings):
        proc = dachs(settings, "test", "-v", rd, check=False)
        out = proc.stdout + proc.stderr
        found = re.search(r"\b(\d+) of (\d+) bad", out)
        reports[rd] = found.group(0) if found else "no regression tests"
        if proc.returncode or not found or found.group(1) != "0" or found.group(2) == "0":
            failures[rd] = out
    assert not failures, f"{reports}\n" + "\n".join(
        f"--- {rd}\n{out}" for rd, out in failures.items())


def _feeds(path: Path) -> dict[str, dict[str, str]]:
    """The top-level FEEDs of an RD file: stream id -> macro values."""
    return {feed.attrib["source"]: dict(feed.attrib)
            for feed in ET.parse(path).getroot().findall("FEED")}


def test_survey_rds_feed_the_registry_values(settings, registry: Registry) -> None:
    """Each imaging survey's q.rd feeds the shared streams with its registry entry's values."""
    surveys = registry.of_kind("imaging")
    assert surveys
    errors = []
    for survey in surveys:
        path = settings.home / "resdir" / survey.collection / "q.rd"
        if not path.is_file():
            errors.append(f"imaging survey {survey.key!r} ({survey.source}): no {path}")
            continue
        feeds = _feeds(path)
        expected = ARCHIVE_FEEDS | (SOURCES_FEEDS if survey.sources else set())
        if set(feeds) != expected:
            errors.append(f"{path}: FEEDs {sorted(feeds)}, expected {sorted(expected)}")
        values = {"survey": survey.collection, "surveyName": survey.name,
                  "instrument": survey.instrument.name, "waveband": survey.regime}
        missing = set(values) - set(feeds.get("common/images#imageArchive", {}))
        if missing:
            errors.append(f"{path}: the imageArchive FEED lacks {sorted(missing)}")
        for source, attrs in feeds.items():
            for key, value in values.items():
                if key in attrs and attrs[key] != value:
                    errors.append(f"{path}: FEED {source} has {key}={attrs[key]!r}, "
                                  f"the registry ({survey.source}) says {value!r}")
            camera = f"{survey.label}/{survey.instrument.name}"
            if "camera" in attrs and attrs["camera"].casefold() != camera.casefold():
                errors.append(f"{path}: FEED {source} has camera={attrs['camera']!r}, "
                              f"the registry ({survey.source}) says {camera!r}")
    assert not errors, "\n".join(errors)


def test_source_table_columns_follow_the_registry(settings, registry: Registry) -> None:
    """Each survey's sources table has the band and colour columns its config file names.

    The columns come from the registry through the LOOPs of common/sources.rd, so the
    expected names are written out here from the config values, not from that code.
    """
    for survey in registry.of_kind("imaging"):
        if not survey.config["survey"].get("sources"):
            continue
        out = subprocess.run([sys.executable, "-m", "casuvo.dachs.rdschema",
                              f"{survey.collection}/q", "sources"],
                             env=dachs_env(settings), capture_output=True, text=True,
                             check=True)
        columns = {c["name"]: c for c in json.loads(out.stdout)}
        mags = {n for n in columns if n.endswith("AperMag3")}
        assert mags == {f"{b['prefix']}AperMag3" for b in survey.config["bands"]}, survey.key
        colours = {n for n in columns if n.endswith("Pnt")}
        assert colours == {f"{blue}m{red}Pnt" for blue, red in survey.config["merge"]["colours"]}
        for band in survey.config["bands"]:
            assert columns[f"{band['prefix']}mjd"]["ucd"] == f"time.epoch;{band['ucd']}"


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
