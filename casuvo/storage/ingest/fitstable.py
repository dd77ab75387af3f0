# SPDX-License-Identifier: BSD-3-Clause
"""Reading catalogue files (FITS binary tables) for ingestion, strictly.

astropy only *warns* about a truncated file or a bad checksum and may hand back
zero-filled rows; for ingestion any such warning is an error that names the
file, so nothing half-read reaches the database.

:func:`read_rows` is the ingest's fast path: the table's rows are read from
the file in one piece and kept as they are (big-endian, as FITS and binary
COPY both want them), and the data checksum (``DATASUM``) is verified with one
vectorised sum.  astropy's own column access converts every column to native
byte order (which the COPY encoder would undo) and its checksum routine is
several times slower than the read; together they cost more than the COPY.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

__all__ = ["CatalogueFileError", "column_names", "read_columns", "read_rows"]


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


#: FITS TFORM letters whose raw bytes are the value: big-endian numbers, characters.
_PLAIN = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def _raw_dtype(hdu: fits.BinTableHDU) -> np.dtype | None:
    """The record layout of the table's rows on disk, or None if some column needs
    astropy's conversions (scaling, logicals, arrays, bits, variable length)."""
    names, formats = [], []
    for col in hdu.columns:
        tform = col.format.strip()
        repeat, letter = (tform[:-1] or "1"), tform[-1]
        if not repeat.isdigit() or col.bscale not in (None, 1) or col.bzero not in (None, 0):
            return None
        if letter == "A":
            formats.append(f"S{int(repeat)}")
        elif letter in _PLAIN and repeat == "1":
            formats.append(_PLAIN[letter])
        else:
            return None
        names.append(col.name)
    try:
        dtype = np.dtype({"names": names, "formats": formats})
    except (ValueError, TypeError):
        return None
    return dtype if dtype.itemsize == hdu.header["NAXIS1"] else None


def _datasum(data: np.ndarray) -> int:
    """FITS ``DATASUM``: the 32-bit ones' complement sum of the data's big-endian
    words (the zero padding to 2880 bytes adds nothing)."""
    whole = len(data) // 4 * 4
    total = int(data[:whole].view(">u4").sum(dtype=np.uint64))
    if whole < len(data):
        total += int.from_bytes(bytes(data[whole:]).ljust(4, b"\0"), "big")
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def read_rows(path: Path, names: Sequence[str],
              order_by: str | None = None) -> dict[str, np.ndarray]:
    """The named columns of ``path`` as big-endian views of its rows, for binary COPY.

    As :func:`read_columns` (case-insensitive names, TNULL integers masked, the
    same errors for a truncated, corrupt or incomplete file), but floats keep
    their NaN and strings their padding (``S`` arrays), and the rows are sorted
    on ``order_by`` if given (one gather of whole rows).  Tables whose layout
    needs astropy's conversions are read by :func:`read_columns` instead.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                index, hdu = next(((i, h) for i, h in enumerate(hdul)
                                   if isinstance(h, fits.BinTableHDU)), (None, None))
                if hdu is None:
                    raise CatalogueFileError(f"{path}: no binary table extension")
                header = hdu.header
                dtype = _raw_dtype(hdu)
                start = hdul.fileinfo(index)["datLoc"]
                columns = hdu.columns
        except CatalogueFileError:
            raise
        except (OSError, ValueError, TypeError, KeyError, IndexError, AstropyWarning) as exc:
            raise CatalogueFileError(f"{path}: not a readable FITS table ({exc})") from exc
    exact = {n.lower(): n for n in columns.names}
    missing = [n for n in names if n.lower() not in exact]
    if missing:
        raise CatalogueFileError(f"{path}: missing column(s) {', '.join(missing)}")
    if dtype is None:
        arrays = read_columns(path, names)
        if order_by:
            order = np.argsort(arrays[order_by], kind="stable")
            arrays = {k: v[order] for k, v in arrays.items()}
        return arrays
    size = header["NAXIS1"] * header["NAXIS2"]
    data = np.fromfile(path, dtype=np.uint8, count=size + header.get("PCOUNT", 0),
                       offset=start)
    if len(data) < size + header.get("PCOUNT", 0):
        raise CatalogueFileError(f"{path}: table data truncated")
    if "DATASUM" in header and str(_datasum(data)) != str(header["DATASUM"]).strip():
        raise CatalogueFileError(f"{path}: data checksum mismatch (corrupt file)")
    rows = data[:size].view(dtype)
    if order_by:
        rows = rows[np.argsort(rows[exact[order_by.lower()]], kind="stable")]
    out: dict[str, np.ndarray] = {}
    for name in names:
        fits_name = exact[name.lower()]
        out[name] = rows[fits_name]
        null = columns[fits_name].null
        if out[name].dtype.kind in "iu" and isinstance(null, int | np.integer):
            out[name] = np.ma.MaskedArray(out[name], mask=out[name] == null)
    return out
