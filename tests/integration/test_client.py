# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.client against the running stack: the talk's ``query_radec`` and SODA cutouts.

The truths are the database (pgSphere on ``vista.images``, queried directly)
and the product files (astropy ``Cutout2D`` on the same extension).  The
client gets only a base URL, as a notebook user would type it.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.table import Table, vstack
from astropy.wcs import WCS, FITSFixedWarning

import casuvo.client
from casuvo.client import (
    DEFAULT_COLUMNS,
    Archive,
    ArchiveError,
    Cutout,
    CutoutError,
    CutoutWarning,
    UnknownArchiveError,
)
from casuvo.config import Settings
from casuvo.sky.pgsphere import SCircle, SPoint, register

pytestmark = pytest.mark.integration

#: the columns the talk's ``VISTADB().query_radec`` notebook prints, in its order
TALK_COLUMNS = ("filename", "coords", "filtername", "surveyname", "nightobs", "totexptime",
                "obsfwhm", "obstatus", "qcstatus")
#: a radius small enough that "overlaps the circle" means "contains the position"
POINT = 0.1 * u.arcsec

warnings.filterwarnings("ignore", category=FITSFixedWarning)


def _sql(settings: Settings, query: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``query``; pgSphere values as parameters (casuvo.sky.pgsphere)."""
    with psycopg.connect(settings.dsn) as conn:
        register(conn)
        return conn.execute(query, params).fetchall()


def _dids_overlapping(settings: Settings, ra: float, dec: float, radius_deg: float,
                      where: str = "", params: tuple = ()) -> list[str]:
    """pgSphere's own answer, in the client's order (night, file, extension)."""
    return [r[0] for r in _sql(
        settings,
        "SELECT obs_publisher_did FROM vista.images"
        f" WHERE coverage && %s {where} ORDER BY nightobs, filename, extnum",
        (SCircle(SPoint(ra, dec), radius_deg), *params))]


@pytest.fixture(scope="module")
def archive(endpoints: dict) -> Archive:
    """The client on an explicit base URL (the one ``casuvo endpoints`` reports)."""
    return Archive("vista", endpoints["base"])


@pytest.fixture(scope="module")
def position(settings: Settings) -> tuple[float, float, list[str]]:
    """A position inside several images, each of which holds the 15″ around it.

    15″ is more than half of every cutout size used here: no cutout is cropped.
    And no other image passes within 1″, so "contains" is a sharp question.

    Returns (ra, dec, DIDs of the images containing it), from pgSphere directly.
    """
    centres = _sql(settings, "SELECT centeralpha, centerdelta FROM vista.images"
                             " WHERE imagetype = 'pawprint' ORDER BY accref")
    # a quarter of a detector off its centre: detector centres of the jittered
    # pawprints of a tile fall on the edges of the others' detectors
    quarter = 0.012
    candidates = [(ra + sx * quarter / np.cos(np.radians(dec)), dec + sy * quarter)
                  for ra, dec in centres for sx in (1, -1) for sy in (1, -1)]
    for ra, dec in candidates:
        contains = [r[0] for r in _sql(
            settings, "SELECT obs_publisher_did FROM vista.images"
                      " WHERE coverage @> %s"
                      " ORDER BY nightobs, filename, extnum", (SPoint(ra, dec),))]
        near = _dids_overlapping(settings, ra, dec, 1 / 3600)
        clear = [r[0] for r in _sql(
            settings, "SELECT obs_publisher_did FROM vista.images"
                      " WHERE coverage @> %s"
                      " ORDER BY nightobs, filename, extnum",
            (SCircle(SPoint(ra, dec), 15 / 3600),))]
        types = {r[0] for r in _sql(settings, "SELECT imagetype FROM vista.images"
                                              " WHERE obs_publisher_did = ANY(%s)", (contains,))}
        if len(contains) >= 4 and contains == near == clear and types == {"pawprint", "tile"}:
            return float(ra), float(dec), contains
    pytest.fail("no VISTA position with pawprints and tiles clear of every image edge")


def test_query_radec_contains_position(archive: Archive, settings: Settings,
                                       position) -> None:
    ra, dec, truth = position
    table = archive.query_radec(ra, dec, radius=POINT)
    assert isinstance(table, Table)
    assert list(table["obs_publisher_did"]) == truth
    # and each image's own WCS puts the position on its pixels
    for accref, in _sql(settings, "SELECT accref FROM vista.images"
                                  " WHERE obs_publisher_did = ANY(%s)", (truth,)):
        rel, ext = accref.rsplit("/", 1)
        header = fits.getheader(settings.data_dir / rel, int(ext))
        x, y = WCS(header).world_to_pixel_values(ra, dec)
        assert -0.5 < x < header["NAXIS1"] - 0.5 and -0.5 < y < header["NAXIS2"] - 0.5


def test_query_radec_talk_columns_hold_db_values(archive: Archive, settings: Settings,
                                                 position) -> None:
    ra, dec, _ = position
    table = archive.query_radec(ra, dec)
    assert tuple(table.colnames[: len(TALK_COLUMNS)]) == TALK_COLUMNS
    assert set(DEFAULT_COLUMNS) <= set(table.colnames)
    assert table.meta["ra"] == pytest.approx(ra) and table.meta["archive"] == "vista"
    rows = {r[0]: r[1:] for r in _sql(
        settings, f"SELECT obs_publisher_did, {', '.join(TALK_COLUMNS)} FROM vista.images"
                  " WHERE obs_publisher_did = ANY(%s)", (list(table["obs_publisher_did"]),))}
    assert len(rows) == len(table) > 0
    for row in table:
        expected = rows[row["obs_publisher_did"]]
        for name, want in zip(TALK_COLUMNS, expected, strict=True):
            got = row[name]
            if want is None:
                assert np.ma.is_masked(got), name
            elif isinstance(want, float):
                assert float(got) == pytest.approx(want, rel=1e-6), name
            else:
                assert got == want, name
    # the talk's example: tile names, sexagesimal centres, the survey's name
    assert set(table["surveyname"]) == {"VVV"}
    assert all(str(c).count(":") == 4 for c in table["coords"])
    assert table["nightobs"].dtype.kind == "i" and table["totexptime"].unit == u.s


@pytest.mark.parametrize("radius", [POINT, 1 * u.arcmin, 0.3])
def test_query_radec_radius_matches_pgsphere(radius, archive: Archive, settings: Settings,
                                             position) -> None:
    ra, dec, truth = position
    r_deg = radius.to_value(u.deg) if isinstance(radius, u.Quantity) else radius
    expected = _dids_overlapping(settings, ra, dec, r_deg)
    got = list(archive.query_radec(ra, dec, radius=radius)["obs_publisher_did"])
    assert got == expected
    assert set(truth) <= set(got)


def test_query_radec_band_and_imagetype(archive: Archive, settings: Settings,
                                        position) -> None:
    ra, dec, _ = position
    radius = 0.2
    everything = archive.query_radec(ra, dec, radius=radius)
    ks = archive.query_radec(ra, dec, radius=radius, band="Ks")
    assert list(ks["obs_publisher_did"]) == _dids_overlapping(
        settings, ra, dec, radius, "AND filtername = %s", ("Ks",))
    assert len(ks) and set(ks["filtername"]) == {"Ks"}
    jh = archive.query_radec(ra, dec, radius=radius, band=["J", "H"])
    assert set(jh["filtername"]) == {"J", "H"}
    assert len(ks) + len(jh) == len(everything)
    tiles = archive.query_radec(ra, dec, radius=radius, imagetype="tile")
    paws = archive.query_radec(ra, dec, radius=radius, imagetype="pawprint")
    assert list(tiles["obs_publisher_did"]) == _dids_overlapping(
        settings, ra, dec, radius, "AND imagetype = 'tile'")
    assert set(tiles["imagetype"]) == {"tile"} and set(paws["imagetype"]) == {"pawprint"}
    assert len(tiles) and len(tiles) + len(paws) == len(everything)
    ks_tiles = archive.query_radec(ra, dec, radius=radius, band="Ks", imagetype="tile")
    assert 0 < len(ks_tiles) == sum(tiles["filtername"] == "Ks")


def test_base_url_explicit_or_from_settings(endpoints: dict, settings: Settings,
                                            position) -> None:
    ra, dec, truth = position
    explicit = Archive("vista", endpoints["base"])       # with its trailing slash
    assert explicit.base_url == endpoints["base"].rstrip("/")
    assert explicit.tap_url == endpoints["tap"]
    configured = Archive("vista", settings=settings)
    assert configured.base_url == settings.server_url
    for client in (explicit, configured):
        assert list(client.query_radec(ra, dec, radius=POINT)["obs_publisher_did"]) == truth


def test_query_radec_nothing_there(archive: Archive) -> None:
    table = archive.query_radec(10.0, 10.0)
    assert len(table) == 0 and set(TALK_COLUMNS) <= set(table.colnames)


@cache
def _accref(settings: Settings, did: str) -> str:
    return _sql(settings, "SELECT accref FROM vista.images WHERE obs_publisher_did = %s",
                (did,))[0][0]


def _check_cutout(cut: Cutout, settings: Settings, ra: float, dec: float,
                  size_arcsec: float) -> None:
    """Pixels equal Cutout2D of the product file; WCS and centre agree with the original."""
    rel, ext = _accref(settings, cut.did).rsplit("/", 1)
    with fits.open(settings.data_dir / rel) as orig:
        full, full_header = orig[int(ext)].data, orig[int(ext)].header
    assert cut.label == f"{Path(rel).name}[{ext}]"
    ny, nx = cut.data.shape
    x0 = round(full_header["CRPIX1"] - cut.header["CRPIX1"])
    y0 = round(full_header["CRPIX2"] - cut.header["CRPIX2"])
    wcs = WCS(full_header)
    expected = Cutout2D(full, (x0 + (nx - 1) / 2, y0 + (ny - 1) / 2), (ny, nx), wcs=wcs,
                        mode="strict")
    np.testing.assert_array_equal(cut.data, expected.data)
    # the cutout's own WCS: its centre pixel lies where the original's puts it, to 0.05″
    centre = cut.wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    assert centre.separation(expected.wcs.pixel_to_world(
        (nx - 1) / 2, (ny - 1) / 2)).arcsec < 0.05
    # and that centre is the requested position, to 1.5 pixels (the position is far
    # from every edge, so nothing is cropped)
    scale = np.sqrt(abs(np.linalg.det(cut.wcs.pixel_scale_matrix))) * 3600
    assert size_arcsec / scale - 3 <= nx <= size_arcsec / scale + 3
    cx, cy = cut.wcs.world_to_pixel_values(ra, dec)
    assert abs(cx - (nx - 1) / 2) < 1.5 and abs(cy - (ny - 1) / 2) < 1.5


def _some_rows(archive: Archive, ra: float, dec: float) -> Table:
    """Three pawprint detectors and two tiles containing the position."""
    table = archive.query_radec(ra, dec, radius=POINT)
    paws = table[table["imagetype"] == "pawprint"][:3]
    tiles = table[table["imagetype"] == "tile"][:2]
    assert len(paws) and len(tiles)
    return vstack([paws, tiles])


def test_cutouts_equal_cutout2d(archive: Archive, settings: Settings, position) -> None:
    ra, dec, _ = position
    rows = _some_rows(archive, ra, dec)
    cutouts = archive.cutouts(rows, ra, dec, size=20 * u.arcsec)
    assert len(cutouts) == len(rows)
    for cut, row in zip(cutouts, rows, strict=True):
        assert isinstance(cut, Cutout) and cut.did == row["obs_publisher_did"]
        assert cut.row["filtername"] == row["filtername"]
        _check_cutout(cut, settings, ra, dec, 20.0)
    hdu = cutouts[0].to_hdu()
    np.testing.assert_array_equal(hdu.data, cutouts[0].data)


def test_cutouts_parallel_equals_serial(archive: Archive, position) -> None:
    ra, dec, _ = position
    rows = _some_rows(archive, ra, dec)
    parallel = archive.cutouts(rows, ra, dec, size=15 * u.arcsec)
    serial = archive.cutouts(rows, ra, dec, size=15 * u.arcsec, scheduler="synchronous")
    assert [c.did for c in parallel] == [c.did for c in serial] == list(
        rows["obs_publisher_did"])
    for a, b in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.header["CRPIX1"] == b.header["CRPIX1"]
        assert a.header["CRPIX2"] == b.header["CRPIX2"]


def test_cutouts_one_row_and_per_row_positions(archive: Archive, settings: Settings,
                                               position) -> None:
    ra, dec, _ = position
    rows = _some_rows(archive, ra, dec)[:2]
    one = archive.cutouts(rows[0], ra * u.deg, dec * u.deg, size=10 * u.arcsec)
    assert len(one) == 1
    _check_cutout(one[0], settings, ra, dec, 10.0)
    # one position per row: the second 3″ north of the first
    two = archive.cutouts(rows, [ra, ra], [dec, dec + 3 / 3600], size=10 * u.arcsec)
    _check_cutout(two[1], settings, ra, dec + 3 / 3600, 10.0)


def _raised_in_client(excinfo: pytest.ExceptionInfo) -> None:
    """The exception comes from casuvo.client itself, not from deep inside a library."""
    assert Path(str(excinfo.traceback[-1].path)).parent == Path(casuvo.client.__file__).parent


@pytest.mark.parametrize(("call", "text"), [
    (lambda a, ra, dec, rows: a.query_radec(ra, 95.0), "dec"),
    (lambda a, ra, dec, rows: a.query_radec(ra, dec, radius=-1 * u.arcsec), "radius"),
    (lambda a, ra, dec, rows: a.query_radec(ra, dec, radius=3 * u.s), "angle"),
    (lambda a, ra, dec, rows: a.query_radec(ra, dec, imagetype="mosaic"), "imagetype"),
    (lambda a, ra, dec, rows: a.query_radec(ra, dec, band=[]), "band"),
    (lambda a, ra, dec, rows: a.cutouts(rows, ra, 95.0), "dec"),
    (lambda a, ra, dec, rows: a.cutouts(rows, ra, dec, size=-5 * u.arcsec), "size"),
    (lambda a, ra, dec, rows: a.cutouts(rows, ra, dec, size=float("nan")), "size"),
    (lambda a, ra, dec, rows: a.cutouts(rows, [ra] * 3, dec), "one per row"),
    (lambda a, ra, dec, rows: a.cutouts([{"filename": "x"}], ra, dec), "obs_publisher_did"),
    (lambda a, ra, dec, rows: a.cutouts(rows, ra, dec, on_error="ignore"), "on_error"),
])
def test_bad_arguments(call, text: str, archive: Archive, position) -> None:
    ra, dec, _ = position
    rows = archive.query_radec(ra, dec, radius=POINT)[:2]
    with pytest.raises(ValueError, match=text) as excinfo:
        call(archive, ra, dec, rows)
    _raised_in_client(excinfo)


def test_unknown_archive(endpoints: dict, position) -> None:
    """The server says which archives it has (TAP_SCHEMA), when a query on another fails."""
    ra, dec, _ = position
    archive = Archive("gaia", endpoints["base"])      # no request yet: nothing to refuse
    assert archive.archives() == ("vista", "vst")
    with pytest.raises(UnknownArchiveError,
                       match="unknown archive 'gaia': the image archives at .* are vista, vst"
                       ) as excinfo:
        archive.query_radec(ra, dec)
    assert isinstance(excinfo.value, ValueError)
    _raised_in_client(excinfo)
    with pytest.raises(ValueError, match="TAP schema name") as excinfo:
        Archive("vista.images; --", endpoints["base"])
    _raised_in_client(excinfo)


def test_unreachable_server(position) -> None:
    ra, dec, _ = position
    with pytest.raises(ArchiveError, match="localhost:9/tap") as excinfo:
        Archive("vista", "http://localhost:9").query_radec(ra, dec)
    _raised_in_client(excinfo)


def _unknown_row(archive: Archive) -> dict:
    """A row naming an image this server does not have, in its own DID scheme."""
    did = str(archive.query_radec(194.3, -64.75, radius=1.0)["obs_publisher_did"][0])
    prefix = did.split("~?", 1)[0]
    return {"obs_publisher_did": f"{prefix}~?products/vista/20990101/v20990101_00001_st.fit/1",
            "filename": "v20990101_00001_st.fit", "extnum": 1}


def test_cutout_of_unknown_image(archive: Archive, position) -> None:
    ra, dec, _ = position
    with pytest.raises(CutoutError) as excinfo:
        archive.cutouts([_unknown_row(archive)], ra, dec)
    _raised_in_client(excinfo)
    (label, why), = excinfo.value.failures.items()
    assert label.startswith("v20990101_00001_st.fit[1] (ivo://")
    assert "NotFoundFault" in why
    assert "v20990101_00001_st.fit[1]" in str(excinfo.value)


def test_cutout_off_the_image(archive: Archive, position) -> None:
    ra, dec, _ = position
    rows = archive.query_radec(ra, dec, radius=POINT)[:2]
    with pytest.raises(CutoutError) as excinfo:
        archive.cutouts(rows, ra, dec - 5.0, size=10 * u.arcsec)
    _raised_in_client(excinfo)
    failures = excinfo.value.failures
    assert len(failures) == 2
    for row in rows:
        why = failures[f"{row['filename']}[{row['extnum']}] ({row['obs_publisher_did']})"]
        assert why.startswith("HTTP 400 from SODA") and "NoOverlap" in why
        assert "Traceback" not in why


def test_cutouts_warn_keeps_the_good_ones(archive: Archive, settings: Settings,
                                          position) -> None:
    ra, dec, _ = position
    good = archive.query_radec(ra, dec, radius=POINT)[0]
    with pytest.warns(CutoutWarning, match=r"(?s)1 cutout.*v20990101_00001_st.fit"):
        out = archive.cutouts([good, _unknown_row(archive)], ra, dec, size=10 * u.arcsec,
                              on_error="warn")
    assert out[1] is None and isinstance(out[0], Cutout)
    _check_cutout(out[0], settings, ra, dec, 10.0)


def test_no_rows_no_requests(archive: Archive, position) -> None:
    """No rows, no cutouts, and no request: a client of an unreachable server still answers."""
    ra, dec, _ = position
    nothing = archive.query_radec(10.0, 10.0)
    assert len(nothing) == 0
    assert archive.cutouts(nothing, ra, dec) == []
    offline = Archive("vista", "http://localhost:9")     # any request would raise
    assert offline.cutouts(nothing, ra, dec) == []
