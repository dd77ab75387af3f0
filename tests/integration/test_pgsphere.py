# SPDX-License-Identifier: BSD-3-Clause
"""casuvo's pgSphere adapters against the real PostgreSQL + pgSphere of the running stack.

Values go in through the dumpers and come back through the loaders; pgSphere's
own functions (long, lat, radius, npoints, area, ``@``) check that it
understood them, and astropy (separations) and spherical trigonometry check
pgSphere's answers.  The published image footprints are read back through the
loaders and compared with astropy's corners of the product files.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import astropy.units as u
import numpy as np
import psycopg
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.config import Settings
from casuvo.sky.pgsphere import SCircle, SPoint, SPoly, register

pytestmark = pytest.mark.integration

#: pgSphere prints radians with 15 significant digits: 1e-14 relative, ~1e-9″
ANGLE_TOL_DEG = 1e-12
#: pgSphere's area() is the polygon's angle sum minus (n − 2)π, so its error is
#: absolute: measured up to 2.4e-12 sr (a 0.001° square comes out as 0)
AREA_TOL_SR = 1e-11


@pytest.fixture(scope="module")
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection that knows the pgSphere types; everything it does is rolled back."""
    with psycopg.connect(settings.dsn) as connection:
        register(connection)
        yield connection
        connection.rollback()


POINTS = [SPoint(0.0, 0.0), SPoint(194.3, -64.75), SPoint(359.999999, 89.9999),
          SPoint(123.456789012345, -89.5)]
CIRCLES = [SCircle(SPoint(194.3, -64.75), 0.01), SCircle(SPoint(359.9, 0.05), 2.5),
           SCircle(SPoint(10.0, 89.0), 1.5)]
POLYS = [SPoly.from_degrees([194.2, 194.4, 194.4, 194.2], [-64.8, -64.8, -64.7, -64.7]),
         SPoly.from_degrees([359.9, 0.1, 0.0], [-0.1, -0.1, 0.1])]


def _close(a: float, b: float) -> bool:
    """Angles equal within the tolerance, longitudes modulo 360°."""
    d = (a - b + 180.0) % 360.0 - 180.0
    return abs(d) < ANGLE_TOL_DEG


def test_values_round_trip_through_a_table(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TEMP TABLE casuvo_pgs_roundtrip (p spoint, c scircle, s spoly)"
                 " ON COMMIT DROP")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO casuvo_pgs_roundtrip VALUES (%s, %s, %s)",
                        [(p, c, s) for p, c, s in zip(POINTS, CIRCLES + CIRCLES[:1],
                                                      POLYS + POLYS, strict=True)])
    rows = conn.execute("SELECT p, c, s FROM casuvo_pgs_roundtrip").fetchall()
    assert len(rows) == len(POINTS)
    for (p, c, s), p0, c0, s0 in zip(rows, POINTS, CIRCLES + CIRCLES[:1], POLYS + POLYS,
                                     strict=True):
        assert isinstance(p, SPoint) and isinstance(c, SCircle) and isinstance(s, SPoly)
        assert _close(p.ra, p0.ra) and _close(p.dec, p0.dec)
        assert _close(c.center.ra, c0.center.ra) and _close(c.center.dec, c0.center.dec)
        assert _close(c.radius, c0.radius)
        assert len(s.vertices) == len(s0.vertices)
        for v, v0 in zip(s.vertices, s0.vertices, strict=True):
            assert _close(v.ra, v0.ra) and _close(v.dec, v0.dec)


def test_arrays_of_points_are_loaded(conn: psycopg.Connection) -> None:
    got = conn.execute("SELECT ARRAY[%s, %s]", POINTS[:2]).fetchone()[0]
    assert all(isinstance(p, SPoint) for p in got)
    assert _close(got[1].ra, 194.3) and _close(got[1].dec, -64.75)


@pytest.mark.parametrize("point", POINTS)
def test_pgsphere_reads_the_point_written(conn: psycopg.Connection, point: SPoint) -> None:
    lon, lat = conn.execute("SELECT degrees(long(%s)), degrees(lat(%s))",
                            (point, point)).fetchone()
    assert _close(lon, point.ra) and _close(lat, point.dec)


@pytest.mark.parametrize("circle", CIRCLES)
def test_pgsphere_reads_the_circle_written(conn: psycopg.Connection, circle: SCircle) -> None:
    radius, lon, lat = conn.execute(
        "SELECT degrees(radius(%s)), degrees(long(center(%s))), degrees(lat(center(%s)))",
        (circle, circle, circle)).fetchone()
    assert _close(radius, circle.radius)
    assert _close(lon, circle.center.ra) and _close(lat, circle.center.dec)


@pytest.mark.parametrize("circle", CIRCLES)
def test_point_in_circle_agrees_with_astropy(conn: psycopg.Connection,
                                             circle: SCircle) -> None:
    """Points 0.1 % inside and outside the rim, all round it: pgSphere's ``@`` = astropy's."""
    centre = SkyCoord(circle.center.ra, circle.center.dec, unit="deg")
    angles = np.arange(0.0, 360.0, 15.0)
    for factor in (0.999, 1.001):
        probes = centre.directional_offset_by(angles * u.deg, factor * circle.radius * u.deg)
        points = [SPoint(float(ra) % 360.0, float(dec))
                  for ra, dec in zip(probes.ra.deg, probes.dec.deg, strict=True)]
        inside = [conn.execute("SELECT %s @ %s", (p, circle)).fetchone()[0] for p in points]
        expected = centre.separation(probes).deg < circle.radius
        assert inside == list(expected)
        assert all(inside) if factor < 1 else not any(inside)


def _spherical_area(ra: np.ndarray, dec: np.ndarray) -> float:
    """Area (sr) of a convex spherical polygon: its fan of triangles, each by its excess.

    tan(E/2) = |a·(b×c)| / (1 + a·b + b·c + c·a) for unit vectors a, b, c
    (Van Oosterom & Strackee 1983).
    """
    r, d = np.radians(ra), np.radians(dec)
    v = np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
    total, a = 0.0, v[0]
    for b, c in pairwise(v[1:]):
        num = abs(float(np.dot(a, np.cross(b, c))))
        den = 1.0 + float(np.dot(a, b) + np.dot(b, c) + np.dot(c, a))
        total += 2.0 * math.atan2(num, den)
    return total


def test_area_of_the_octant(conn: psycopg.Connection) -> None:
    octant = SPoly.from_degrees([0.0, 90.0, 0.0], [0.0, 0.0, 90.0])
    area = conn.execute("SELECT area(%s)", (octant,)).fetchone()[0]
    assert area == pytest.approx(math.pi / 2, rel=1e-12)
    assert _spherical_area(*octant.as_arrays()) == pytest.approx(math.pi / 2, rel=1e-12)


@pytest.mark.parametrize("poly", POLYS)
def test_polygon_area_agrees_with_spherical_excess(conn: psycopg.Connection,
                                                   poly: SPoly) -> None:
    area, n = conn.execute("SELECT area(%s), npoints(%s)", (poly, poly)).fetchone()
    assert n == len(poly.vertices)
    assert area == pytest.approx(_spherical_area(*poly.as_arrays()), rel=0, abs=AREA_TOL_SR)


# --------------------------------------------------------------------------- published

def _corners(path: Path, ext: int) -> np.ndarray:
    """astropy's four corners (pixel centres, SIP applied) of one image extension."""
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        header = hdul[ext].header
        return WCS(header).calc_footprint(header, undistort=True)


@pytest.mark.parametrize("collection", ["vista", "vst"])
def test_published_footprints_are_the_image_corners(conn: psycopg.Connection,
                                                    settings: Settings,
                                                    collection: str) -> None:
    """``coverage`` and ObsCore ``s_region`` of every image, read through the loader.

    Their vertices are astropy's corners of the image in the products (in
    either direction round the polygon), and pgSphere's area of them is the
    spherical one.
    """
    rows = conn.execute(
        f"SELECT i.filename, i.nightobs, i.extnum, i.coverage, o.s_region"
        f" FROM {collection}.images AS i JOIN ivoa.obscore AS o"
        f" ON o.obs_publisher_did = i.obs_publisher_did"
        f" ORDER BY i.filename, i.extnum").fetchall()
    assert rows
    products = settings.data_dir / "products" / collection
    worst = 0.0
    for filename, night, ext, coverage, s_region in rows:
        assert isinstance(coverage, SPoly) and s_region == coverage
        ra, dec = coverage.as_arrays()
        corners = _corners(products / str(night) / filename, ext)
        got = SkyCoord(ra, dec, unit="deg")
        # the same four vertices, as a set
        for c_ra, c_dec in corners:
            worst = max(worst, float(got.separation(SkyCoord(c_ra, c_dec, unit="deg"))
                                     .arcsec.min()))
        area = conn.execute("SELECT area(%s)", (coverage,)).fetchone()[0]
        assert area == pytest.approx(_spherical_area(ra, dec), rel=0, abs=AREA_TOL_SR)
    print(f"{collection}: {len(rows)} images, worst vertex {worst:.2e} arcsec from astropy's")
    assert worst < 1e-6

