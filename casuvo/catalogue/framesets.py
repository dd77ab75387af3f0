# SPDX-License-Identifier: BSD-3-Clause
"""The tile catalogues a band merge reads, and the frame sets it chooses from them.

A survey field observed in several passbands has one CASU catalogue per tile
(``<products>/<survey>/<night>/*_st_tl_cat.fits``).  This module reads what the
band merge needs from them — the calibration and QC keywords of the headers
(:class:`TileFrame`) and the catalogue columns — strictly: a missing keyword
or column, a truncated table or a bad checksum is a :class:`BandMergeError`
naming the file.

**Frame sets.**  As in the VSA, a *frame set* is the set of frames merged into
sources: here one tile per passband per field (OBJECT).  A field/band observed
several times (VVV Ks on two nights) contributes the tile chosen by
:func:`select_frame_sets`: only tiles that passed QC (``QCSTATUS = 'pass'``)
of completed OBs (``OBSTATUS = 'Completed'``) count; among them the best seeing
(smallest ``PSF_FWHM``), then the deepest (largest ``ABMAGLIM``), then the
latest.  A band whose every tile failed QC is left out of that frame set (its
columns are NULL) rather than publishing bad photometry.

Pure numpy + astropy: it runs in both Python environments.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from casuvo.surveys.registry import Band

__all__ = ["TILE_COLUMNS", "BandMergeError", "TileFrame", "read_tile_columns",
           "read_tile_frame", "select_frame_sets", "tile_catalogues"]

log = logging.getLogger(__name__)

#: The catalogue columns the merge reads from every tile catalogue.
TILE_COLUMNS = ("RA", "DEC", "Aper_flux_3", "Aper_flux_3_err", "Aper_flux_4",
                "Aper_flux_4_err", "Classification", "Ellipticity", "Error_bit_flag",
                "Av_conf", "Peak_height")


class BandMergeError(ValueError):
    """A tile catalogue cannot be merged; the message names the file and the problem."""


def tile_catalogues(products_dir: Path, survey: str) -> list[Path]:
    """Every tile catalogue of a survey (``<products>/<survey>/<night>/*_st_tl_cat.fits``).

    ``survey`` is the registry key, the name of the pipeline's product directory.
    """
    return sorted((products_dir / survey).glob("2*/*_st_tl_cat.fits"))


@dataclass(frozen=True)
class TileFrame:
    """The facts about one tile catalogue that frame-set selection and calibration need."""

    path: Path
    field: str
    filter: str
    mjd: float
    psf_fwhm: float
    """arcsec."""
    depth: float
    """ABMAGLIM (5σ, AB)."""
    qcstatus: str
    obstatus: str
    magzpt: float
    exptime: float
    apcor3: float
    apcor4: float
    extinct: float
    airmass: float
    saturate: float

    @property
    def usable(self) -> bool:
        """Passed QC and comes from a completed OB."""
        return self.qcstatus.strip().lower() == "pass" and \
            self.obstatus.strip().lower() == "completed"


def _open(path: Path) -> fits.HDUList:
    try:
        return fits.open(path, memmap=False, checksum=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise BandMergeError(f"{path}: not a readable FITS file ({exc})") from exc


def _frame(path: Path, primary: fits.Header, ext: fits.Header) -> TileFrame:
    def get(key: str, header: fits.Header | None = None) -> object:
        for h in (header,) if header is not None else (ext, primary):
            if key in h:
                return h[key]
        raise BandMergeError(f"{path}: keyword {key} missing")

    try:
        return TileFrame(
            path=path, field=str(get("OBJECT", primary)).strip(),
            filter=str(get("FILTER", primary)).strip(), mjd=float(get("MJD-OBS", primary)),
            psf_fwhm=float(get("PSF_FWHM")), depth=float(get("ABMAGLIM")),
            qcstatus=str(primary.get("QCSTATUS", "pass")),
            obstatus=str(primary.get("OBSTATUS", "Completed")),
            magzpt=float(get("MAGZPT")), exptime=float(get("EXPTIME")),
            apcor3=float(get("APCOR3")), apcor4=float(get("APCOR4")),
            extinct=float(get("EXTINCT")), airmass=float(get("AMSTART", primary)),
            saturate=float(get("SATURATE")))
    except (TypeError, ValueError) as exc:
        raise BandMergeError(f"{path}: bad calibration keyword ({exc})") from exc


def read_tile_frame(path: Path) -> TileFrame:
    """The headers of a tile catalogue (primary + first table), strictly read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with _open(path) as hdul:
                if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                    raise BandMergeError(f"{path}: no binary table extension")
                return _frame(path, hdul[0].header, hdul[1].header)
        except BandMergeError:
            raise
        except (OSError, ValueError, KeyError, AstropyWarning) as exc:
            raise BandMergeError(f"{path}: corrupt or truncated catalogue ({exc})") from exc


def read_tile_columns(path: Path) -> dict[str, np.ndarray]:
    """The catalogue columns merging uses, as native-endian arrays; errors name the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with _open(path) as hdul:
                hdu = hdul[1]
                missing = [c for c in TILE_COLUMNS if c not in hdu.columns.names]
                if missing:
                    raise BandMergeError(f"{path}: missing column(s) {', '.join(missing)}")
                data = hdu.data
                if data is None or data.nbytes < hdu.header["NAXIS1"] * hdu.header["NAXIS2"]:
                    raise BandMergeError(f"{path}: table data truncated")
                return {c: np.asarray(data[c]).astype(data[c].dtype.newbyteorder("="))
                        for c in TILE_COLUMNS}
        except BandMergeError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AstropyWarning) as exc:
            raise BandMergeError(f"{path}: corrupt or truncated catalogue ({exc})") from exc


def select_frame_sets(frames: Iterable[TileFrame], bands: Sequence[Band]
                      ) -> dict[str, dict[str, TileFrame]]:
    """{field: {band prefix: tile}}: one tile per band and field (see the module notes).

    Tiles in a filter that is not one of ``bands`` (a survey's registry bands)
    are ignored; so are tiles that failed QC.  Fields with no usable tile at all
    are absent.
    """
    prefix = {b.filter: b.prefix for b in bands}
    best: dict[str, dict[str, TileFrame]] = {}
    for frame in frames:
        if frame.filter not in prefix:
            log.info("%s: filter %s is not merged; ignored", frame.path.name, frame.filter)
            continue
        if not frame.usable:
            log.warning("%s: QCSTATUS %s, OBSTATUS %s: not merged", frame.path.name,
                        frame.qcstatus.strip(), frame.obstatus.strip())
            continue
        slot = best.setdefault(frame.field, {})
        key = prefix[frame.filter]
        rank = (frame.psf_fwhm, -frame.depth, -frame.mjd, frame.path.name)
        if key not in slot or rank < (slot[key].psf_fwhm, -slot[key].depth, -slot[key].mjd,
                                      slot[key].path.name):
            slot[key] = frame
    return best
