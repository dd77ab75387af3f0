# SPDX-License-Identifier: BSD-3-Clause
"""Reading catalogue files (FITS binary tables) for ingestion, strictly.

astropy only *warns* about a truncated file or a bad checksum and may hand back
zero-filled rows; for ingestion any such warning is an error that names the
file, so nothing half-read reaches the database.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

__all__ = ["CatalogueFileError", "column_names", "read_columns"]


class CatalogueFileError(ValueError):
    """A catalogue file cannot be ingested; the message names file and problem."""


def _open(path: Path) -> fits.HDUList:
    try:
        return fits.open(path, memmap=False, checksum=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise CatalogueFileError(f"{path}: not a readable FITS file ({exc})") from exc


def _table_hdu(path: Path, hdul: fits.HDUList) -> fits.BinTableHDU:
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU):
            return hdu
    raise CatalogueFileError(f"{path}: no binary table extension")


def column_names(path: Path) -> list[str]:
    """Column names of the first binary table of ``path`` (reads the header only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            header = fits.getheader(path, 1)
        except (OSError, ValueError, IndexError, AstropyWarning) as exc:
            raise CatalogueFileError(f"{path}: cannot read table header ({exc})") from exc
    return [header[f"TTYPE{i}"] for i in range(1, header.get("TFIELDS", 0) + 1)]


def read_columns(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of ``path`` as native numpy arrays.

    Names match case-insensitively (SQL folds unquoted names to lower case).
    Integer columns with a TNULL come back as masked arrays, masked where the
    value is TNULL, so that NULLs survive into the database.  Raises
    :class:`CatalogueFileError` for a truncated or corrupt file (size,
    checksum), a missing column, or a column that is not all there.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with _open(path) as hdul:
                hdu = _table_hdu(path, hdul)
                expected = hdu.header["NAXIS1"] * hdu.header["NAXIS2"]
                exact = {n.lower(): n for n in hdu.columns.names}
                missing = [n for n in names if n.lower() not in exact]
                if missing:
                    raise CatalogueFileError(
                        f"{path}: missing column(s) {', '.join(missing)}")
                data = hdu.data
                if data is None or data.nbytes < expected:
                    raise CatalogueFileError(f"{path}: table data truncated")
                out = {}
                for name in names:
                    fits_name = exact[name.lower()]
                    col = np.asarray(data[fits_name])
                    out[name] = col.astype(col.dtype.newbyteorder("="), copy=True) \
                        if col.dtype.kind in "iuf" else np.array(col)
                    null = hdu.columns[fits_name].null
                    if col.dtype.kind in "iu" and isinstance(null, int | np.integer):
                        out[name] = np.ma.MaskedArray(out[name], mask=out[name] == null)
                return out
        except CatalogueFileError:
            raise
        except (OSError, ValueError, TypeError, KeyError, AstropyWarning) as exc:
            raise CatalogueFileError(f"{path}: corrupt or truncated table ({exc})") from exc
