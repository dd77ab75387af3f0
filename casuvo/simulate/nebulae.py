# SPDX-License-Identifier: BSD-3-Clause
"""The demo sky's planetary-nebula catalogue, HASH/Kerber-like, and its truth.

A planetary-nebula catalogue gives the position of the *nebula*, measured on
images of the nebula, to a few arcseconds, and its angular size; it does not
name the central star.  Finding the star in Gaia is the user's job (the
``notebooks/pn_gaia.ipynb`` science case), so the catalogue here has what
HASH (Parker et al. 2016) or Kerber et al. (2003) give, and the answer goes
to a separate truth file:

``catalogues/pn_catalogue.fits`` (HDU ``PN_CATALOGUE``)
    ``name``, ``png`` (the PN G lll.l±bb.b designation), ``raj2000``,
    ``dej2000`` (the catalogued nebula centre, degrees), ``pos_err`` (1σ per
    coordinate, arcsec), ``maj_diam``, ``min_diam`` (arcsec) and ``pn_stat``
    (``T``: true PN).
``truth/pn_catalogue_truth.fits`` (HDU ``TRUTH``)
    ``name``, ``field``, ``source_id`` (the central star's Gaia source_id),
    ``ra_true``, ``dec_true`` (the true centre = the star at J2016.0) and
    ``offset`` (catalogue minus true position, arcsec).

The catalogue position is the true centre plus a Gaussian offset of
``pos_error_arcsec`` per coordinate, drawn from a stream of its own for each
nebula (seed, "PN", name), so it does not depend on which fields were
simulated.  The J2000 position of a nebula and the J2016 position of its star
differ by the star's proper motion over 16 years (≲ 0.1″), far below the
catalogue errors.
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from casuvo.simulate.fields import DEMO_FIELDS, PLANETARY_NEBULAE, Field, nebulae_in

__all__ = ["PN_VERSION", "central_star_rows", "pn_catalogue_paths", "png_designation",
           "simulate_pn_catalogue", "write_pn_catalogue"]

log = logging.getLogger(__name__)

#: Bumped when the catalogue's model or layout changes.
PN_VERSION = 1
#: A Gaia truth row within this of a nebula's centre is its central star (arcsec): the
#: Gaia simulator puts central stars exactly there, and field stars never come so close.
_CENTRAL_STAR_MATCH_ARCSEC = 1e-3
#: Seed words of the catalogue positions' streams ("PN", "CAT").
_STREAM = (0x504E, 0x434154)


def pn_catalogue_paths(outdir: Path) -> tuple[Path, Path]:
    """(catalogue, truth) file paths of the planetary-nebula catalogue under ``outdir``."""
    outdir = Path(outdir)
    return (outdir / "catalogues" / "pn_catalogue.fits",
            outdir / "truth" / "pn_catalogue_truth.fits")


def central_star_rows(field: Field, truth: Table) -> np.ndarray:
    """Boolean mask of the Gaia truth rows of ``field`` that are central stars of nebulae."""
    mask = np.zeros(len(truth), dtype=bool)
    for pn in nebulae_in(field):
        mask |= _rows_at(pn.ra, pn.dec, truth)
    return mask


def png_designation(ra: float, dec: float) -> str:
    """The ``PN G lll.l±bb.b`` designation of a position (truncated, as the catalogues do)."""
    gal = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    lon = math.floor(float(gal.l.deg) * 10) / 10
    lat = float(gal.b.deg)
    sign = "-" if lat < 0 else "+"
    return f"PN G{lon:05.1f}{sign}{math.floor(abs(lat) * 10) / 10:04.1f}"


def _field_of(ra: float, dec: float) -> Field:
    for field in DEMO_FIELDS:
        if bool(field.contains(ra, dec)):
            return field
    raise ValueError(f"no demo field contains the nebula at ({ra}, {dec})")


def simulate_pn_catalogue(seed: int, gaia_truths: dict[str, Table]) -> tuple[Table, Table]:
    """The catalogue and its truth, given the Gaia truth tables by field name.

    Every nebula of :data:`~casuvo.simulate.fields.PLANETARY_NEBULAE` needs its
    field's Gaia truth (to name its central star); a ValueError says which is missing.
    """
    rows, truth_rows = [], []
    for pn in PLANETARY_NEBULAE:
        field = _field_of(pn.ra, pn.dec)
        if field.name not in gaia_truths:
            raise ValueError(f"{pn.name}: the Gaia truth of field {field.name} is needed")
        gt = gaia_truths[field.name]
        star = np.flatnonzero(_rows_at(pn.ra, pn.dec, gt))
        if len(star) != 1:
            raise ValueError(f"{pn.name}: {len(star)} Gaia truth rows at its centre in "
                             f"{field.name}, expected 1 (Gaia files of an older simulator?)")
        rng = np.random.default_rng([seed, *_STREAM, zlib.crc32(pn.name.encode())])
        east, north = rng.normal(0.0, pn.pos_error_arcsec, 2)
        ra, dec = Field("_", pn.ra, pn.dec, 1.0, "").from_tangent(east / 3600, north / 3600)
        rows.append((pn.name, png_designation(pn.ra, pn.dec), float(ra), float(dec),
                     pn.pos_error_arcsec, pn.major_diam_arcsec, pn.minor_diam_arcsec, "T"))
        truth_rows.append((pn.name, field.name, int(gt["source_id"][star[0]]), pn.ra, pn.dec,
                           float(math.hypot(east, north))))
    meta = {"SEED": seed, "PNVERS": PN_VERSION}
    cat = Table(rows=rows, names=("name", "png", "raj2000", "dej2000", "pos_err", "maj_diam",
                                  "min_diam", "pn_stat"),
                dtype=("U32", "U16", "f8", "f8", "f4", "f4", "f4", "U1"), meta=meta)
    for col, unit in (("raj2000", "deg"), ("dej2000", "deg"), ("pos_err", "arcsec"),
                      ("maj_diam", "arcsec"), ("min_diam", "arcsec")):
        cat[col].unit = unit
    truth = Table(rows=truth_rows, names=("name", "field", "source_id", "ra_true", "dec_true",
                                          "offset"),
                  dtype=("U32", "U16", "i8", "f8", "f8", "f8"), meta=meta)
    for col, unit in (("ra_true", "deg"), ("dec_true", "deg"), ("offset", "arcsec")):
        truth[col].unit = unit
    return cat, truth


def _rows_at(ra: float, dec: float, truth: Table) -> np.ndarray:
    """Whether each Gaia truth row lies at (ra, dec), to :data:`_CENTRAL_STAR_MATCH_ARCSEC`."""
    tra = np.asarray(truth["ra_true"], dtype=np.float64)
    tdec = np.asarray(truth["dec_true"], dtype=np.float64)
    dra = (tra - ra + 180.0) % 360.0 - 180.0
    sep = np.hypot(dra * math.cos(math.radians(dec)), tdec - dec) * 3600.0
    return sep <= _CENTRAL_STAR_MATCH_ARCSEC


def _hdu(table: Table, extname: str) -> fits.BinTableHDU:
    hdu = fits.table_to_hdu(table)
    hdu.name = extname
    hdu.header["SEED"] = (table.meta["SEED"], "random seed of the simulation")
    hdu.header["PNVERS"] = (table.meta["PNVERS"], "casuvo PN catalogue version")
    return hdu


def _same_as_file(table: Table, path: Path) -> bool:
    try:
        old = Table.read(path, hdu=1, character_as_bytes=False)
    except (OSError, ValueError, KeyError):
        return False
    if old.colnames != table.colnames or len(old) != len(table):
        return False
    if old.meta.get("SEED") != table.meta["SEED"] or old.meta.get("PNVERS") != PN_VERSION:
        return False
    return all(np.array_equal(np.asarray(old[c]), np.asarray(table[c])) for c in table.colnames)


def write_pn_catalogue(outdir: Path, seed: int) -> tuple[Path, Path] | None:
    """Write the catalogue and its truth under ``outdir`` (unless the same files are there).

    Reads the Gaia truth files of the demo fields with nebulae (``outdir/truth/``);
    when one is missing or predates the central stars (a run limited to other
    fields), writes nothing and returns None.  Files are replaced atomically,
    truth first.
    """
    from casuvo.simulate.gaia import gaia_paths, write_table_file

    truths = {}
    for field in DEMO_FIELDS:
        if not nebulae_in(field):
            continue
        path = gaia_paths(field, outdir)[1]
        if not path.exists():
            log.warning("%s missing: planetary-nebula catalogue not written", path)
            return None
        truths[field.name] = Table.read(path, hdu=1, character_as_bytes=False)
    try:
        cat, truth = simulate_pn_catalogue(seed, truths)
    except ValueError as exc:
        log.warning("planetary-nebula catalogue not written: %s", exc)
        return None
    cat_path, truth_path = pn_catalogue_paths(outdir)
    if _same_as_file(cat, cat_path) and _same_as_file(truth, truth_path):
        log.info("planetary-nebula catalogue up to date, skipped")
        return cat_path, truth_path
    write_table_file(_hdu(truth, "TRUTH"), truth_path)
    write_table_file(_hdu(cat, "PN_CATALOGUE"), cat_path)
    log.info("%d planetary nebulae -> %s", len(cat), cat_path)
    return cat_path, truth_path
