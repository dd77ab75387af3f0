# SPDX-License-Identifier: BSD-3-Clause
"""What the DAL modules of the corpus share: sample positions and the values
their valid cases are checked against, computed without the services.

Sample positions come from the database (one small query per collection or
table, when the cases are generated); the expected answers come from the
product files' own FITS headers (astropy WCS) and from SQL on the published
tables with the distance computed in numpy, never from the service under test.
"""

from __future__ import annotations

import functools
import io
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import requests
from astropy.io import fits, votable
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.config import Settings

warnings.filterwarnings("ignore", category=FITSFixedWarning)

#: Pixels of slack at an image's edge: a footprint polygon joins the corners
#: with great circles, the image's edges are slightly curved (SIP).
EDGE_PX = 3.0


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


def sql(query: str, args: tuple = ()) -> list[tuple]:
    with psycopg.connect(settings().dsn) as conn:
        return conn.execute(query, args).fetchall()


def rows(answer: requests.Response) -> list[dict]:
    """The first table of a VOTable answer as dicts (values as Python objects)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = votable.parse_single_table(io.BytesIO(answer.content)).to_table()
    return [{name: _plain(row[name]) for name in table.colnames} for row in table]


def _plain(value: object) -> object:
    if np.ma.is_masked(value):
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size != 1:
        return value.tolist()
    return value.item() if hasattr(value, "item") else value


def angular_distance(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float
                     ) -> np.ndarray:
    """Great-circle distance in degrees (haversine, stable at small separations)."""
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = (np.sin((d1 - d2) / 2) ** 2
         + np.cos(d1) * np.cos(d2) * np.sin((r1 - r2) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


@dataclass(eq=False)
class Image:
    """One published image: its ID, file, extension, WCS header and shape."""

    did: str
    accref: str
    path: Path
    ext: int
    header: fits.Header
    """the extension's WCS cards (and NAXISn): all a footprint needs"""
    shape: tuple[int, int]
    mjd: float
    """start of the first exposure (MJD-OBS)"""
    mjd_end: float
    """end of the last exposure (MJD-END)"""

    @functools.cached_property
    def wcs(self) -> WCS:
        return WCS(self.header)

    def linear(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The CD matrix (degrees per pixel), from CDi_j or PCi_j × CDELTi."""
        h = self.header
        if "CD1_1" in h or "CD2_2" in h:
            return ((h.get("CD1_1", 0.0), h.get("CD1_2", 0.0)),
                    (h.get("CD2_1", 0.0), h.get("CD2_2", 0.0)))
        d1, d2 = h.get("CDELT1", 1.0), h.get("CDELT2", 1.0)
        return ((h.get("PC1_1", 1.0) * d1, h.get("PC1_2", 0.0) * d1),
                (h.get("PC2_1", 0.0) * d2, h.get("PC2_2", 1.0) * d2))

    def rough_centre(self) -> tuple[float, float]:
        """The centre from the linear part of the TAN WCS (no distortion): a
        cheap first cut, good to well under a tenth of a degree."""
        h = self.header
        ny, nx = self.shape
        dx, dy = (nx + 1) / 2 - h["CRPIX1"], (ny + 1) / 2 - h["CRPIX2"]
        (a, b), (c, d) = self.linear()
        xi, eta = math.radians(a * dx + b * dy), math.radians(c * dx + d * dy)
        ra0, dec0 = math.radians(h["CRVAL1"]), math.radians(h["CRVAL2"])
        denominator = math.cos(dec0) - eta * math.sin(dec0)
        ra = ra0 + math.atan2(xi, denominator)
        dec = math.atan2(math.sin(dec0) + eta * math.cos(dec0), math.hypot(xi, denominator))
        return math.degrees(ra) % 360, math.degrees(dec)

    def centre(self) -> tuple[float, float]:
        ny, nx = self.shape
        ra, dec = self.wcs.all_pix2world((nx - 1) / 2, (ny - 1) / 2, 0)
        return float(ra), float(dec)

    def pixel(self, ra: float, dec: float) -> tuple[float, float]:
        with warnings.catch_warnings():
            # far off the image the SIP inversion does not converge: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            x, y = self.wcs.all_world2pix(ra, dec, 0, quiet=True)
        return float(x), float(y)

    def scale(self) -> float:
        """Pixel size in degrees (mean of both axes)."""
        return float(np.sqrt(abs(np.linalg.det(self.wcs.pixel_scale_matrix))))

    def relation(self, ra: float, dec: float, half_width: float) -> str:
        """``in``, ``out`` or ``edge`` for a region of ``half_width`` degrees at (ra, dec).

        ``in``: the centre lies well inside the pixels (the region certainly
        overlaps the image); ``out``: even the region's farthest reach misses
        them; ``edge``: too close to tell without the service's own polygon.
        """
        ny, nx = self.shape
        (a, b), (c, d) = self.linear()
        pixel = math.sqrt(abs(a * d - b * c))
        reach = half_width * 2 + 0.02 + math.hypot(nx, ny) / 2 * pixel
        if angular_distance(np.array(ra), np.array(dec), *self.rough_centre()) > reach:
            return "out"
        x, y = self.pixel(ra, dec)
        if not (np.isfinite(x) and np.isfinite(y)):
            # the distortion does not invert this far out: the projection alone
            x, y = (float(v) for v in self.wcs.wcs_world2pix(ra, dec, 0))
        reach = half_width * math.sqrt(2) / self.scale() + EDGE_PX
        beyond = max(-0.5 - x, x - (nx - 0.5), -0.5 - y, y - (ny - 0.5))
        if beyond < -EDGE_PX:
            return "in"
        return "out" if beyond > reach else "edge"


#: The header cards an image's footprint and time need (TAN, TAN-SIP, TPV, ZPN).
_KEPT = re.compile(rb"(NAXIS[12]?|CTYPE[12]|CUNIT[12]|CRVAL[12]|CRPIX[12]|CD[12]_[12]"
                   rb"|CDELT[12]|PC[12]_[12]|PV[12]_\d+|A_\S+|B_\S+|AP_\S+|BP_\S+"
                   rb"|RADESYS|EQUINOX|LONPOLE|LATPOLE|MJD-OBS|MJD-END|EXTNAME)")


def read_headers(path: Path) -> list[fits.Header]:
    """The WCS, time and name cards of every HDU of a FITS file, read from its
    header blocks directly (data units are skipped, nothing else is parsed):
    astropy's full header parsing of a few thousand CASU headers takes
    seconds, these cards milliseconds."""
    found = []
    with open(path, "rb") as f:
        while True:
            cards, values = [], {}
            while True:
                block = f.read(2880)
                if len(block) < 2880:
                    return found
                done = False
                for i in range(0, 2880, 80):
                    card = block[i:i + 80]
                    key = card[:8].rstrip()
                    if key == b"END":
                        done = True
                        break
                    if key in (b"BITPIX", b"NAXIS", b"NAXIS1", b"NAXIS2", b"NAXIS3", b"PCOUNT",
                               b"GCOUNT"):
                        values[key] = int(card[10:].split(b"/")[0])
                    if _KEPT.fullmatch(key):
                        cards.append(card)
                if done:
                    break
            found.append(fits.Header.fromstring(b"".join(cards).decode("ascii")))
            naxis = values.get(b"NAXIS", 0)
            size = 0
            if naxis:
                size = abs(values[b"BITPIX"]) // 8 * values.get(b"GCOUNT", 1)
                count = 1
                for n in range(1, naxis + 1):
                    count *= values[b"NAXIS%d" % n]
                size *= count + values.get(b"PCOUNT", 0)
            f.seek(-(-size // 2880) * 2880, 1)


@functools.cache
def images(schema: str) -> tuple[Image, ...]:
    """Every image of a collection, from the product files' headers."""
    found = []
    by_file: dict[str, list[tuple[str, str, int]]] = {}
    for did, accref in sql(f"SELECT obs_publisher_did, accref FROM {schema}.images"):
        rel, ext = accref.rsplit("/", 1)
        by_file.setdefault(rel, []).append((did, accref, int(ext)))
    for rel, members in by_file.items():
        path = settings().data_dir / rel
        headers = read_headers(path)
        for did, accref, ext in members:
            header = headers[ext]
            mjd = {key: float(header.get(key, headers[0].get(key)))
                   for key in ("MJD-OBS", "MJD-END")}
            for key in ("MJD-OBS", "MJD-END", "EXTNAME"):
                header.remove(key, ignore_missing=True)
            found.append(Image(did, accref, path, ext, header,
                               (int(header["NAXIS2"]), int(header["NAXIS1"])),
                               mjd["MJD-OBS"], mjd["MJD-END"]))
    return tuple(found)


@functools.cache
@functools.cache
def image_schemas() -> frozenset[str]:
    """Collections with an image archive (``<schema>.images``); the others' SODA and
    DataLink serve spectra (``corpus/ssa.py``)."""
    return frozenset(r[0] for r in sql(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'images'"))


def sample_image(schema: str, imagetype: str = "tile") -> Image:
    """A fixed image of the collection (the first of its type by accref)."""
    (accref,) = sql(f"SELECT accref FROM {schema}.images WHERE imagetype = %s"
                    " ORDER BY accref LIMIT 1", (imagetype,))[0]
    return next(i for i in images(schema) if i.accref == accref)


@functools.cache
def expected_images(schema: str, ra: float, dec: float, half_width: float
                    ) -> dict[str, set[str]]:
    """IDs of the images certainly overlapping (``in``), certainly missing
    (``out``) a region, and those too close to its edge to tell."""
    found: dict[str, set[str]] = {"in": set(), "out": set(), "edge": set()}
    for image in images(schema):
        found[image.relation(ra, dec, half_width)].add(image.did)
    return found


def assert_images(got: Iterable[str], expected: dict[str, set[str]]) -> None:
    got = set(got)
    assert expected["in"], "the sample region overlaps no image: the check has no teeth"
    assert expected["in"] <= got, f"missing: {sorted(expected['in'] - got)[:5]}"
    assert not got & expected["out"], f"not overlapping: {sorted(got & expected['out'])[:5]}"


@functools.cache
def main_columns(table: str) -> tuple[str, str, str]:
    """(id, ra, dec) column names of a table, by their UCDs in TAP_SCHEMA."""
    found = dict(sql("SELECT ucd, column_name FROM tap_schema.columns WHERE table_name = %s",
                     (table,)))
    return (found["meta.id;meta.main"], found["pos.eq.ra;meta.main"],
            found["pos.eq.dec;meta.main"])


@functools.cache
def sample_source(table: str) -> tuple[float, float]:
    """A position with sources around it: the first row of the table's id order."""
    ident, ra, dec = main_columns(table)
    return sql(f"SELECT {ra}, {dec} FROM {table} ORDER BY {ident} LIMIT 1 OFFSET 50")[0]


def cone_ids(table: str, ra: float, dec: float, radius: float, margin: float = 1e-7
             ) -> tuple[set, set]:
    """(IDs certainly within ``radius`` degrees, IDs within rounding of the edge):
    SQL selects a declination band, numpy computes the distances."""
    ident, racol, deccol = main_columns(table)
    found = sql(f"SELECT {ident}, {racol}, {deccol} FROM {table}"
                f" WHERE {deccol} BETWEEN %s AND %s", (dec - radius - 0.01, dec + radius + 0.01))
    if not found:
        return set(), set()
    ids = np.array([r[0] for r in found])
    dist = angular_distance(np.array([r[1] for r in found], float),
                            np.array([r[2] for r in found], float), ra, dec)
    inside = set(ids[dist < radius - margin].tolist())
    edge = set(ids[abs(dist - radius) <= margin].tolist())
    return inside, edge
