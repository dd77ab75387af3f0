# SPDX-License-Identifier: BSD-3-Clause
"""The synthetic sky of the cross-match tests (in-memory and HATS engines).

Fields around RA = 0, the north pole and two of the HEALPix vertices where only
three base pixels meet, plus pairs placed on the corners and edges of the
partition pixels so that they straddle partition boundaries, and deliberate
crowding (second neighbours, shared counterparts) so that the best-match rules
differ.  Built with a fixed seed; the truth is returned beside the tables.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from casuvo.sky.healpix import lonlat_to_nested, nested_neighbours, pixel_vertices
from casuvo.xmatch.motion import vectors_to_radec
from tests.compute.conftest import moved_by_astropy

RADIUS = 1.0                      # arcsec
ORDER = 6                         # the partition order the boundary pairs are placed on
#: Field centres: RA = 0 on the equator, the north pole, two 7-neighbour vertices.
FIELDS = ((0.0, 0.0), (0.0, 90.0), (0.0, 41.8103149), (90.0, -41.8103149))
FIELD_RADIUS = 0.3                # deg
PER_FIELD = 1500
SIGMA = 0.2                       # arcsec per axis, counterpart scatter
#: STILTS is a Debian package of deploy/local/install.sh: if it is missing, these tests fail.
STILTS = "stilts"


def offset(ra: np.ndarray, dec: np.ndarray, pa_deg: np.ndarray,
            sep_arcsec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(
        pa_deg * u.deg, sep_arcsec * u.arcsec)
    return moved.ra.deg, moved.dec.deg


def cap(rng: np.random.Generator, ra0: float, dec0: float, n: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points within FIELD_RADIUS of (ra0, dec0)."""
    z = rng.uniform(np.cos(np.radians(FIELD_RADIUS)), 1.0, n)
    sep = np.degrees(np.arccos(z)) * 3600.0
    return offset(np.full(n, ra0), np.full(n, dec0), rng.uniform(0, 360, n), sep)


def boundary_anchors() -> tuple[np.ndarray, np.ndarray]:
    """Corners and edge midpoints of the order-ORDER pixels around every field centre."""
    ra0 = np.array([f[0] for f in FIELDS])
    dec0 = np.array([f[1] for f in FIELDS])
    pixels = np.unique(nested_neighbours(lonlat_to_nested(ra0, dec0, ORDER), ORDER))
    pixels = pixels[pixels >= 0]
    vra, vdec = pixel_vertices(pixels, ORDER)
    corners = SkyCoord(vra.ravel() * u.deg, vdec.ravel() * u.deg).cartesian.xyz.value.T
    nxt = np.roll(np.stack([vra, vdec], -1), -1, axis=1)
    mids = (SkyCoord(vra.ravel() * u.deg, vdec.ravel() * u.deg).cartesian.xyz.value.T
            + SkyCoord(nxt[..., 0].ravel() * u.deg, nxt[..., 1].ravel() * u.deg)
            .cartesian.xyz.value.T)
    points = np.unique(np.round(np.r_[corners, mids / np.linalg.norm(mids, axis=1)[:, None]],
                                12), axis=0)
    return vectors_to_radec(points)


def build_sky(root: Path) -> dict:
    """A.fits, B.fits (under ``root``) and the truth: ``true_b[i]`` is the B row of A row i
    (or -1)."""
    rng = np.random.default_rng(20161)
    parts = [cap(rng, ra0, dec0, PER_FIELD) for ra0, dec0 in FIELDS]
    a_ra = np.concatenate([p[0] for p in parts])
    a_dec = np.concatenate([p[1] for p in parts])
    # Pairs across partition boundaries: A within 0.3″ of a pixel corner or edge,
    # its counterpart 0.4–0.9″ away in any direction.
    anc_ra, anc_dec = boundary_anchors()
    k = anc_ra.size
    b_ra_, b_dec_ = offset(anc_ra, anc_dec, rng.uniform(0, 360, k), rng.uniform(0, 0.3, k))
    a_ra = np.r_[a_ra, b_ra_]
    a_dec = np.r_[a_dec, b_dec_]
    # Close A pairs (0.5–0.9″ apart) that compete for the same counterparts.
    twins = rng.choice(PER_FIELD * len(FIELDS), 150, replace=False)
    t_ra, t_dec = offset(a_ra[twins], a_dec[twins], rng.uniform(0, 360, 150),
                          rng.uniform(0.5, 0.9, 150))
    a_ra = np.r_[a_ra, t_ra]
    a_dec = np.r_[a_dec, t_dec]
    n_a = a_ra.size

    # Counterparts of 85% of A (boundary ones all, at 0.4–0.9″ so they cross the edge).
    has = rng.random(n_a) < 0.85
    boundary = np.zeros(n_a, dtype=bool)
    boundary[PER_FIELD * len(FIELDS):PER_FIELD * len(FIELDS) + k] = True
    has |= boundary
    idx = np.flatnonzero(has)
    sep = np.hypot(*rng.normal(0, SIGMA, (2, idx.size)))
    sep[boundary[idx]] = rng.uniform(0.4, 0.9, int(boundary.sum()))
    c_ra, c_dec = offset(a_ra[idx], a_dec[idx], rng.uniform(0, 360, idx.size), sep)
    # Unrelated B sources: second neighbours within 0.5–0.95″ of 300 A, and a field.
    near = rng.choice(PER_FIELD * len(FIELDS), 300, replace=False)
    n_ra, n_dec = offset(a_ra[near], a_dec[near], rng.uniform(0, 360, 300),
                          rng.uniform(0.5, 0.95, 300))
    f_parts = [cap(rng, ra0, dec0, 300) for ra0, dec0 in FIELDS]
    b_ra = np.r_[c_ra, n_ra, np.concatenate([p[0] for p in f_parts])]
    b_dec = np.r_[c_dec, n_dec, np.concatenate([p[1] for p in f_parts])]
    shuffle = rng.permutation(b_ra.size)
    b_ra, b_dec = b_ra[shuffle], b_dec[shuffle]
    true_b = np.full(n_a, -1, dtype=np.int64)
    true_b[idx] = np.argsort(shuffle)[:idx.size]

    a_path, b_path = root / "a.fits", root / "b.fits"
    Table({"source_id": 10**12 + np.arange(n_a, dtype=np.int64), "ra": a_ra % 360.0,
           "dec": a_dec}).write(a_path)
    Table({"sourceID": 5 * 10**12 + np.arange(b_ra.size, dtype=np.int64),
           "ra": b_ra % 360.0, "dec": b_dec}).write(b_path)
    return {"a": a_path, "b": b_path, "true_b": true_b, "boundary": boundary,
            "a_ra": a_ra % 360.0, "a_dec": a_dec, "b_ra": b_ra % 360.0, "b_dec": b_dec,
            "root": root}


def build_movers(root: Path) -> dict:
    """60 Gaia-like stars at 2016.0 (up to 1″/yr) and their counterparts at 2009–2012
    (``b.fits``, per-row MJDs; star i is B row i and has ``id`` i), written under ``root``."""
    rng = np.random.default_rng(7)
    n = 60
    ra, dec = offset(np.full(n, 150.0), np.full(n, 20.0), rng.uniform(0, 360, n),
                      rng.uniform(0, 3000, n))
    pm = rng.uniform(300, 1000, n)
    pa = rng.uniform(0, 2 * np.pi, n)
    pmra, pmdec = pm * np.sin(pa), pm * np.cos(pa)
    pmra[0] = np.nan                                     # a 2-parameter source: no motion
    epoch_b = rng.uniform(2009.0, 2012.0, n)
    b_ra, b_dec = moved_by_astropy(ra, dec, pmra, pmdec, 2016.0, epoch_b)
    b_ra, b_dec = offset(b_ra, b_dec, rng.uniform(0, 360, n), rng.uniform(0, 0.05, n))
    Table({"source_id": np.arange(n, dtype=np.int64), "ra": ra, "dec": dec, "pmra": pmra,
           "pmdec": pmdec, "ref_epoch": np.full(n, 2016.0)}).write(root / "gaia.fits")
    mjd = Table({"id": np.arange(n, dtype=np.int64), "ra": b_ra, "dec": b_dec,
                 "mjd": (epoch_b - 2000.0) * 365.25 + 51544.5})
    mjd["mjd"].unit = "d"
    mjd.write(root / "b.fits")
    # The same stars all observed at 2010.5, for a fixed target epoch.
    f_ra, f_dec = moved_by_astropy(ra, dec, pmra, pmdec, 2016.0, 2010.5)
    Table({"ra": f_ra, "dec": f_dec}).write(root / "b_fixed.fits")
    return {"root": root, "moved": pm * np.abs(epoch_b - 2016.0) / 1000.0}
