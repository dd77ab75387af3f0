# SPDX-License-Identifier: BSD-3-Clause
"""Archive products written as ESO SDP files, with deterministic bytes.

The pipelines already write most Phase 3 keywords (PRODCATG, PROVi, ASSON1,
PHOTZP, ABMAGLIM, PSF_FWHM, …).  What a delivery needs on top, done here on
a copy (the archive's own files are never touched):

- the WCS as a CDi_j matrix (the standard forbids CDELTi; astropy writes
  PCi_j + CDELTi), keywords once per HDU, PROVi not zero-padded, PRODLVL
  (the product's ObsCore calibration level), NOESODAT for non-ESO data;
- a tile (and its confidence map) as a *simple* image: the image in the
  primary HDU, as the ESO FAQ prescribes for VISTA/VST tiles;
- the band-merged source table as a SCIENCE.CATALOG: table ``PHASE3CATALOG``
  with TUCD/TCOMM/TUNIT per column (from the archive's column metadata),
  FILTERi/MAGLIMi, OBIDi and MJDs from its tiles, restricted to the frame
  sets the release may hold;
- each per-object spectrum of the three spectroscopic formats as the one
  SCIENCE.SPECTRUM layout (a one-row binary table WAVE, FLUX, ERR, with the
  Spectrum DM utypes and the spectral keywords).

CHECKSUM/DATASUM carry the release's name as their comment instead of the
time of writing, so that rebuilding a release from the same archive state
gives byte-identical files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from casuvo.release.rules import iter_prov

__all__ = ["finish", "fix_header", "write_catalog", "write_copy", "write_simple_image",
           "write_spectrum"]

#: Telescopes of ESO's sites (their products' ORIGIN is 'ESO-PARANAL').
ESO_TELESCOPES = ("ESO-VISTA", "ESO-VST", "ESO-VLT")
#: Cards of an HDU's structure, never carried from one HDU to another.
_STRUCTURE = re.compile(r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|EXTNAME|"
                        r"INHERIT|CHECKSUM|DATASUM|BSCALE|BZERO)$")


def fix_header(header: fits.Header) -> None:
    """CDi_j instead of PCi_j/CDELTi, each keyword once, PROVi/OBIDi not zero-padded."""
    if "CTYPE1" in header and ("PC1_1" in header or "CDELT1" in header):
        naxis = 2 if "CTYPE2" in header else 1
        cdelt = [float(header.get(f"CDELT{i}", 1.0)) for i in range(1, naxis + 1)]
        position = header.index("PC1_1") if "PC1_1" in header else header.index("CTYPE1")
        cards = []
        for i in range(1, naxis + 1):
            for j in range(1, naxis + 1):
                pc = float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0))
                cards.append((f"CD{i}_{j}", pc * cdelt[i - 1], "[deg/pixel] WCS matrix"))
        for key in [k for k in header if re.match(r"^(PC\d_\d|CDELT\d)$", k)]:
            del header[key]
        for offset, card in enumerate(cards):
            header.insert(position + offset, card)
    seen: dict[str, int] = {}
    for index, card in enumerate(header.cards):
        if card.keyword not in ("COMMENT", "HISTORY", ""):
            seen[card.keyword] = index
    # the last value of a repeated keyword is the one a reader sees: keep it
    repeated = [index for index, card in enumerate(header.cards)
                if card.keyword not in ("COMMENT", "HISTORY", "")
                and seen[card.keyword] != index]
    for index in reversed(repeated):
        del header[index]
    for prefix in ("PROV", "OBID"):
        padded = [k for k in header if re.match(rf"^{prefix}0\d*$", k)]
        if padded:
            values = [header[k] for k in sorted(padded)]
            for key in padded:
                del header[key]
            for n, value in enumerate(values, start=1):
                header[f"{prefix}{n}"] = value


def _primary_keywords(header: fits.Header, prodlvl: int) -> None:
    header["PRODLVL"] = (prodlvl, "ObsCore calibration level of the product")
    telescope = str(header.get("TELESCOP", "")).strip()
    if telescope.startswith(ESO_TELESCOPES):
        header["ORIGIN"] = "ESO-PARANAL"
    elif not str(header.get("ORIGIN", "")).startswith("ESO"):
        header["NOESODAT"] = (True, "not data of an ESO facility")


def finish(hdul: fits.HDUList, path: Path, note: str) -> Path:
    """Checksums with ``note`` as comment (not the time), then write ``path``."""
    for hdu in hdul:
        for key in ("CHECKSUM", "DATASUM"):
            hdu.header.remove(key, ignore_missing=True)
        hdu.add_checksum(when=note)
    tmp = path.with_name(path.name + ".part")
    hdul.writeto(tmp, overwrite=True, output_verify="exception", checksum=False)
    tmp.replace(path)
    return path


def write_copy(src: Path, dst: Path, *, prodlvl: int, note: str,
               provenance: Sequence[str] | None = None) -> Path:
    """A MEF image, weight map or source list, keyword-fixed (``provenance``
    replaces its PROVi when given)."""
    with fits.open(src, memmap=True, do_not_scale_image_data=True) as hdul:
        out = fits.HDUList([hdu.copy() for hdu in hdul])
    for hdu in out:
        fix_header(hdu.header)
    _primary_keywords(out[0].header, prodlvl)
    if provenance is not None:
        _set_provenance(out[0].header, provenance)
    return finish(out, dst, note)


def _set_provenance(header: fits.Header, names: Sequence[str]) -> None:
    for key, _ in list(iter_prov(header)):
        del header[key]
    for n, name in enumerate(names, start=1):
        header[f"PROV{n}"] = name


def write_simple_image(src: Path, dst: Path, *, prodlvl: int, note: str,
                       asson: str | None = None) -> Path:
    """A one-image product (tile, tile confidence map) with its image in the primary HDU."""
    with fits.open(src, memmap=True, do_not_scale_image_data=True) as hdul:
        images = [h for h in hdul if h.header.get("NAXIS") == 2]
        if len(images) != 1:
            raise ValueError(f"{src.name}: {len(images)} images, a simple image has one")
        image = images[0]
        header = fits.Header()
        for card in (*hdul[0].header.cards, *image.header.cards):
            if _STRUCTURE.match(card.keyword) or card.keyword in ("COMMENT", "HISTORY"):
                continue
            if card.keyword in header:
                del header[card.keyword]   # the image's own value wins
            header.append(card)
        primary = fits.PrimaryHDU(data=np.array(image.data), header=header)
        if image.header.get("BZERO") is not None:
            primary.header["BZERO"] = image.header["BZERO"]
    fix_header(primary.header)
    _primary_keywords(primary.header, prodlvl)
    if asson:
        primary.header["ASSON1"] = asson
    return finish(fits.HDUList([primary]), dst, note)


def write_catalog(src: Path, dst: Path, *, frame_sets: Iterable[int] | None,
                  columns: Mapping[str, tuple[str, str, str]],
                  tiles: Sequence[fits.Header], provenance: Sequence[str],
                  bands: Sequence[tuple[str, str]], note: str) -> int:
    """The merged source table as a SCIENCE.CATALOG; returns its row count.

    ``frame_sets``: those the release may hold (None: all); ``columns``: column
    name (any case) → (unit, UCD, description) from the archive; ``tiles``: the
    primary+table headers of the tile catalogues it is built from (for OBIDs,
    MJDs, programme, depth); ``bands``: (filter name, column prefix) per band.
    """
    with fits.open(src, memmap=False) as hdul:
        data = hdul[1].data
        keep = (np.ones(len(data), bool) if frame_sets is None
                else np.isin(data["frameSetID"], np.asarray(sorted(frame_sets), dtype=np.int64)))
        table = data[keep]
        cols = hdul[1].columns
    # a band the released frame sets did not observe leaves its columns empty:
    # they are left out (and the band from FILTERi)
    cols = fits.ColDefs([col for col in cols if _has_values(table[col.name], col)])
    observed = {str(t.get("FILTER", "")).strip() for t in tiles}
    bands = [b for b in bands if b[0] in observed]
    new_cols = []
    for col in cols:
        unit, ucd, description = columns.get(col.name.lower(), ("", "", ""))
        new_cols.append(fits.Column(name=col.name, format=col.format, unit=unit or "",
                                    null=col.null, array=table[col.name]))
    hdu = fits.BinTableHDU.from_columns(new_cols, name="PHASE3CATALOG")
    for i, col in enumerate(cols, start=1):
        unit, ucd, description = columns.get(col.name.lower(), ("", "", ""))
        if f"TUNIT{i}" in hdu.header:
            hdu.header[f"TUNIT{i}"] = unit or ""
        else:
            hdu.header.insert(f"TFORM{i}", (f"TUNIT{i}", unit or ""), after=True)
        hdu.header.insert(f"TUNIT{i}", (f"TUCD{i}", ucd), after=True)
        hdu.header.insert(f"TUCD{i}", (f"TCOMM{i}", description[:68]), after=True)
    primary = fits.PrimaryHDU()
    h = primary.header
    first = tiles[0]
    for key in ("ORIGIN", "TELESCOP", "INSTRUME", "OBJECT", "OBSTECH", "PROCSOFT", "REFERENC",
                "RADESYS"):
        if key in first:
            h[key] = first[key]
    programmes = sorted({str(t.get("PROG_ID")) for t in tiles})
    if len(programmes) == 1:
        h["PROG_ID"] = programmes[0]
    else:
        h["PROG_ID"] = "MULTI"
        for n, p in enumerate(programmes, start=1):
            h[f"PROGID{n}"] = p
    obids = sorted({int(t[k]) for t in tiles for k in t if re.match(r"^OBID\d+$", k)})
    for n, obid in enumerate(obids, start=1):
        h[f"OBID{n}"] = obid
    h["MJD-OBS"] = min(float(t["MJD-OBS"]) for t in tiles)
    h["MJD-END"] = max(float(t["MJD-END"]) for t in tiles)
    h["DATE"] = max(str(t.get("DATE", "")) for t in tiles)
    h["PRODCATG"] = "SCIENCE.CATALOG"
    h["FILTER"] = "MULTI"
    for n, (band, _) in enumerate(bands, start=1):
        h[f"FILTER{n}"] = band
        depths = [float(t["ABMAGLIM"]) for t in tiles
                  if str(t.get("FILTER", "")).strip() == band and "ABMAGLIM" in t]
        if depths:
            h[f"MAGLIM{n}"] = (round(min(depths), 3), f"[mag] 5-sigma AB limit, {band}")
    h["PHOTSYS"] = "VEGA"
    h["APMATCHD"] = (False, "aperture photometry per band, not matched")
    h["M_EPOCH"] = (False, "one epoch per band")
    h["NROWS"] = int(len(table))
    _set_provenance(h, provenance)
    _primary_keywords(h, 3)
    finish(fits.HDUList([primary, hdu]), dst, note)
    return int(len(table))


def _has_values(values: Any, col: fits.Column) -> bool:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return bool(np.isfinite(array).any())
    if col.null is not None and array.dtype.kind in "iu":
        return bool((array != col.null).any())
    return True


#: (TTYPE, TUTYP, TUCD) of the spectrum columns (Spectrum DM 1.0 utypes).
SPECTRUM_COLUMNS = (
    ("WAVE", "Spectrum.Data.SpectralAxis.Value", "em.wl"),
    ("FLUX", "Spectrum.Data.FluxAxis.Value", "phot.flux.density;em.wl"),
    ("ERR", "Spectrum.Data.FluxAxis.Accuracy.StatError", "stat.error;phot.flux.density;em.wl"),
)


def write_spectrum(spectrum: Any, dst: Path, *, archive: Mapping[str, Any],
                   provenance: Sequence[str], note: str) -> Path:
    """A :class:`~casuvo.spectra.spectrum.Spectrum` as an SDP SCIENCE.SPECTRUM.

    ``archive``: the spectrum's archive record (target name, position, OB id,
    resolving power, …), which wins over the file's keywords where both say.
    """
    meta = spectrum.meta
    wave = np.asarray(spectrum.wave, dtype=np.float64)
    flux = np.asarray(spectrum.flux, dtype=np.float32)
    sigma = np.asarray(spectrum.sigma, dtype=np.float32)
    good = np.isfinite(flux) & np.isfinite(sigma) & (sigma > 0)
    flux = np.where(np.isfinite(flux), flux, np.float32(np.nan))
    sigma = np.where(np.isfinite(sigma), sigma, np.float32(np.nan))
    n = wave.size
    step_nm = float(np.median(np.diff(wave))) / 10
    wmin, wmax = wave[0] / 10, wave[-1] / 10
    start = float(archive["mjd_obs"])
    end = float(archive["mjd_end"])
    texptime = float(archive["texptime"])
    snr = float(np.median(flux[good] / sigma[good])) if good.any() else 0.0
    fluxcal = "ABSOLUTE" if "erg" in str(spectrum.flux_unit) else "UNCALIBRATED"
    p = fits.Header()
    telescope = str(meta.get("TELESCOP", "")).strip()
    p["ORIGIN"] = "ESO-PARANAL" if telescope.startswith(ESO_TELESCOPES) else \
        str(meta.get("ORIGIN", "casuvo"))
    p["TELESCOP"] = telescope
    p["INSTRUME"] = str(meta.get("INSTRUME", "")).strip()
    p["OBJECT"] = str(archive["object"])
    p["RA"] = (float(archive["ra"]), "[deg] target position")
    p["DEC"] = (float(archive["dec"]), "[deg] target position")
    p["EQUINOX"] = 2000.0
    p["RADESYS"] = "ICRS"
    p["SPECSYS"] = str(meta.get("SPECSYS", "BARYCENT")).strip() or "BARYCENT"
    p["EXPTIME"] = (texptime, "[s] total exposure")
    p["TEXPTIME"] = (texptime, "[s] total exposure")
    p["MJD-OBS"] = start
    p["MJD-END"] = end
    p["DATE"] = str(meta.get("DATE", archive.get("date", ""))) or "2000-01-01"
    p["PROG_ID"] = str(archive.get("prog_id") or meta.get("PROG_ID") or "").strip()
    p["OBID1"] = int(archive["obid"])
    p["NCOMBINE"] = int(archive.get("ncombine") or 1)
    p["OBSTECH"] = "MOS"
    p["PRODCATG"] = "SCIENCE.SPECTRUM"
    p["FLUXCAL"] = fluxcal
    p["FLUXERR"] = (-2.0 if fluxcal == "ABSOLUTE" else -1.0, "[%] -2: not determined")
    p["WAVELMIN"] = (wmin, "[nm]")
    p["WAVELMAX"] = (wmax, "[nm]")
    p["SPEC_BIN"] = (step_nm, "[nm] median bin")
    p["SPEC_RES"] = (float(archive["spec_res"]), "resolving power")
    p["SNR"] = (round(snr, 3), "median S/N per bin")
    p["TOT_FLUX"] = False
    p["CONTNORM"] = False
    p["EXT_OBJ"] = False
    p["PROCSOFT"] = str(meta.get("PROCSOFT", meta.get("CASUVERS", "casuvo")))
    p["REFERENC"] = ""
    _set_provenance(p, provenance)
    _primary_keywords(p, int(archive.get("calib_level", 3)))
    primary = fits.PrimaryHDU(header=p)
    columns = [fits.Column(name=name, format=f"{n}{fmt}", unit=unit, array=[values])
               for (name, _, _), fmt, unit, values in zip(
                   SPECTRUM_COLUMNS, ("D", "D", "D"),
                   ("angstrom", spectrum.flux_unit, spectrum.flux_unit),
                   (wave, flux, sigma), strict=True)]
    table = fits.BinTableHDU.from_columns(columns, name="SPECTRUM")
    t = table.header
    for i, (_, utype, ucd) in enumerate(SPECTRUM_COLUMNS, start=1):
        t.insert(f"TUNIT{i}", (f"TUTYP{i}", utype), after=True)
        t.insert(f"TUTYP{i}", (f"TUCD{i}", ucd), after=True)
    t["TDMIN1"] = float(wave[0])
    t["TDMAX1"] = float(wave[-1])
    t["OBJECT"] = p["OBJECT"]
    t["RA"] = p["RA"]
    t["DEC"] = p["DEC"]
    t["NELEM"] = n
    t["VOCLASS"] = "SPECTRUM V1.0"
    t["VOPUB"] = "ESO/SAF"
    t["TITLE"] = f"{p['OBJECT']} {p['INSTRUME']} spectrum"[:68]
    t["APERTURE"] = (float(archive.get("aperture_deg") or 0.00033), "[deg] fibre diameter")
    t["TELAPSE"] = ((end - start) * 86400, "[s]")
    t["TMID"] = ((start + end) / 2, "[d] MJD")
    t["SPEC_VAL"] = ((wmin + wmax) / 2, "[nm]")
    t["SPEC_BW"] = (wmax - wmin, "[nm]")
    return finish(fits.HDUList([primary, table]), dst, note)
