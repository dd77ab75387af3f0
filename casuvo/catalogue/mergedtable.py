# SPDX-License-Identifier: BSD-3-Clause
"""The band-merged source table of a survey: its columns, identifiers and file.

The table has one row per source and VSA-named columns (``<survey>Source``):
the identifiers and position, ``mergedClass`` and its probabilities, the
point-source colours ``<a>m<b>Pnt`` of the survey's registry colours (NULL
unless both bands are measured), then per band, in the survey's merge order,
the columns of :data:`BAND_COLUMNS` with the band's prefix (``jAperMag3``,
``ksClass``, ``hppErrBits``; ``<b>mjd`` is the tile's MJD-OBS, the start of its
first exposure).  :func:`column_names` is what ``resdir/common/sources.rd``
declares, less the generated ``healpix12`` and ``pos``.

**frameSetID** ``= survey code × 2^32 + CRC-32(field name)``, stable across
reprocessing (the code is the registry's ``[survey] code``).

**sourceID.**  Gaia's scheme (:mod:`casuvo.sky.healpix`): nested HEALPix level-12
index × 2^35 + a running number whose 12-bit chunk is
``(survey code << 8) | (CRC-32(field) mod 256)``, the counter running in
(dec, ra) order inside each level-12 pixel.  So ``healpix12 = sourceID / 2^35``,
sorting on sourceID sorts along the HEALPix curve, the same tiles always give
the same identifiers, and two surveys' identifiers never collide.

The file (:func:`write_merged`) is a FITS binary table written atomically,
with the survey, its filters, the pairing radius and the merged tiles
(``PROVn``) in the primary header; NULL integers are TNULL values
(:data:`casuvo.catalogue.measurements.CLASS_NULL`, ``ERRBITS_NULL``).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from casuvo.catalogue.measurements import CLASS_NULL, ERRBITS_NULL
from casuvo.catalogue.pairing import PAIRING_RADIUS_ARCSEC
from casuvo.sky.healpix import GAIA_HEALPIX_ORDER, gaia_source_ids, lonlat_to_nested
from casuvo.storage.files import write_fits

if TYPE_CHECKING:
    from casuvo.catalogue.framesets import TileFrame
    from casuvo.surveys.registry import Survey

__all__ = ["BAND_COLUMNS", "band_columns", "column_names", "frame_set_id", "frame_set_members",
           "merged_path",
           "source_ids", "write_merged"]

#: Per-band columns: (suffix, numpy dtype, unit).
BAND_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("AperMag3", "f4", "mag"), ("AperMag3Err", "f4", "mag"),
    ("AperMag4", "f4", "mag"), ("AperMag4Err", "f4", "mag"),
    ("Class", "i2", None), ("Ell", "f4", None), ("ppErrBits", "i4", None),
    ("Xi", "f4", "arcsec"), ("Eta", "f4", "arcsec"), ("mjd", "f8", "d"),
)


def column_names(survey: Survey) -> list[str]:
    """The columns of a survey's merged table, in order (what the RD declares, less the
    generated healpix12 and pos)."""
    names = ["sourceID", "frameSetID", "ra", "dec", "mergedClass", "pStar", "pGalaxy",
             "pNoise", "pSaturated"]
    for a, b in survey.colours:
        names += [f"{a}m{b}Pnt", f"{a}m{b}PntErr"]
    for band in survey.bands:
        names += [band.prefix + suffix for suffix, _, _ in BAND_COLUMNS]
    return names


def merged_path(products_dir: Path, survey: str) -> Path:
    """Where a survey's merged catalogue lives: ``<products>/<survey>/merged/…``.

    ``survey`` is the registry key, the name of the pipeline's product directory.
    """
    return products_dir / survey / "merged" / f"{survey}_sources.fits"


def frame_set_id(survey: Survey, field: str) -> int:
    """VSA-style frameSetID: survey code × 2^32 + CRC-32 of the field name."""
    return survey.code * 2**32 + zlib.crc32(field.encode("utf-8"))


def frame_set_members(path: Path, survey: Survey, products_dir: Path) -> list[tuple[int, str]]:
    """``(frameSetID, tile catalogue name)`` of every tile a merged file was made from.

    The tiles are the file's ``PROVn`` cards; their fields come from the tile
    catalogues themselves (under ``products_dir``), so that the frame sets the
    database records are the ones :func:`frame_set_id` gave the rows.
    """
    from casuvo.catalogue.framesets import BandMergeError, read_tile_frame, tile_catalogues

    header = fits.getheader(path)
    names = [str(header[k]) for k in header if k.startswith("PROV") and k[4:].isdigit()]
    if not names:
        raise BandMergeError(f"{path}: no PROVn cards, so no frame sets to record")
    tiles = {p.name: p for p in tile_catalogues(products_dir, survey.key)}
    members = []
    for name in names:
        if name not in tiles:
            raise BandMergeError(f"{path}: tile catalogue {name} (a PROVn card) is not under "
                                 f"{products_dir / survey.key}")
        members.append((frame_set_id(survey, read_tile_frame(tiles[name]).field), name))
    return members


def source_ids(ra: np.ndarray, dec: np.ndarray, survey: Survey, field: str) -> np.ndarray:
    """Gaia-encoded sourceIDs (see the module notes); stable for the same positions."""
    ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    chunk = (survey.code << 8) | (zlib.crc32(field.encode("utf-8")) & 0xFF)
    hpx = lonlat_to_nested(ra, dec, GAIA_HEALPIX_ORDER)
    order = np.lexsort((ra, dec, hpx))
    ids = np.empty(len(ra), dtype=np.int64)
    ids[order] = gaia_source_ids(ra[order], dec[order], chunk=chunk)
    return ids


def band_columns(values: Mapping[str, np.ndarray], has: np.ndarray, n: int
                 ) -> dict[str, Column]:
    """One band's output columns; NULL (NaN, or masked integers) where it has no detection."""
    out: dict[str, Column] = {}
    for suffix, dtype, unit in BAND_COLUMNS:
        src = values.get(suffix)
        if np.dtype(dtype).kind == "i":
            fill = CLASS_NULL if suffix == "Class" else ERRBITS_NULL
            data = np.where(has, src, fill) if src is not None else np.full(n, fill)
            out[suffix] = MaskedColumn(data.astype(dtype), mask=~has, fill_value=fill)
        else:
            data = np.where(has, src, np.nan) if src is not None else np.full(n, np.nan)
            out[suffix] = Column(data.astype(dtype), unit=unit)
    return out


def write_merged(table: Table, frames: Sequence[TileFrame], survey: Survey, path: Path
                 ) -> None:
    """Write the merged table atomically (temporary name, then rename) with provenance."""
    primary = fits.PrimaryHDU()
    h = primary.header
    h["SURVEY"] = survey.key
    h["PRODCATG"] = "SCIENCE.CATALOG"
    h["FILTER"] = "MULTI"
    for i, band in enumerate(survey.bands, start=1):
        h[f"FILTER{i}"] = band.filter
    h["PAIRRAD"] = (PAIRING_RADIUS_ARCSEC, "[arcsec] band pairing radius")
    for i, frame in enumerate(frames, start=1):
        h[f"PROV{i}"] = frame.path.name
    hdu = fits.table_to_hdu(table)
    hdu.header["EXTNAME"] = "SOURCES"
    write_fits(fits.HDUList([primary, hdu]), path, checksum=True)
