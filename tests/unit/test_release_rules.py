# SPDX-License-Identifier: BSD-3-Clause
"""The SDP keyword rules (casuvo.release.rules) and the SDP writers' keyword fixes,
on small synthetic files: a good file of each kind passes, and each broken
keyword is named with its HDU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from casuvo.release.rules import check_hdul
from casuvo.release.sdp import finish, fix_header, write_spectrum
from casuvo.spectra.spectrum import Spectrum

SCIENCE = {
    "ORIGIN": "ESO-PARANAL", "TELESCOP": "ESO-VISTA", "INSTRUME": "VIRCAM", "FILTER": "J",
    "OBJECT": "field", "RA": 10.0, "DEC": -20.0, "EQUINOX": 2000.0, "RADESYS": "ICRS",
    "EXPTIME": 10.0, "TEXPTIME": 20.0, "MJD-OBS": 60000.0, "MJD-END": 60000.001,
    "DATE": "2024-01-01T00:00:00", "PROG_ID": "179.B-2002(A)", "OBID1": 1, "NCOMBINE": 2,
    "OBSTECH": "IMAGE,JITTER", "FLUXCAL": "ABSOLUTE", "PROCSOFT": "casuvo/1", "REFERENC": "",
    "PRODLVL": 3, "PROV1": "a.fits", "ASSON1": "a_conf.fit", "DIT": 5.0, "NDIT": 1,
    "NJITTER": 2, "NOFFSETS": 1, "NUSTEP": 1,
}
IMAGE = {
    "BUNIT": "adu", "PHOTZP": 26.0, "PHOTSYS": "VEGA", "ABMAGLIM": 20.0, "ABMAGSAT": 12.0,
    "PSF_FWHM": 0.8, "ELLIPTIC": 0.05, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
    "CRVAL1": 10.0, "CRVAL2": -20.0, "CRPIX1": 16.5, "CRPIX2": 16.5, "CD1_1": -1e-4,
    "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4, "CUNIT1": "deg", "CUNIT2": "deg",
}


def _image(**changes: object) -> fits.HDUList:
    header = fits.Header()
    for key, value in {**SCIENCE, **IMAGE, "PRODCATG": "SCIENCE.IMAGE"}.items():
        header[key] = value
    for key, value in changes.items():
        key = key.replace("_", "-") if key.startswith("MJD") else key
        if value is None:
            header.remove(key)
        else:
            header[key] = value
    hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((32, 32), np.float32), header)])
    for hdu in hdul:
        hdu.add_checksum(when="test")
    return hdul


def _named(problems: list) -> set[tuple[int | None, str | None]]:
    return {(p.hdu, p.keyword) for p in problems}


def test_a_good_simple_image_passes() -> None:
    assert check_hdul("good.fits", _image()) == []


@pytest.mark.parametrize("changes, named", [
    ({"PRODCATG": None}, (0, "PRODCATG")),
    ({"ABMAGLIM": None}, (0, "ABMAGLIM")),
    ({"MJD_END": 59999.0}, (0, "MJD-END")),
    ({"EXPTIME": 40.0}, (0, "EXPTIME")),
    ({"TEXPTIME": 1000.0}, (0, "TEXPTIME")),
    ({"NCOMBINE": 0}, (0, "NCOMBINE")),
    ({"RADESYS": "GALACTIC"}, (0, "RADESYS")),
    ({"REFERENC": "see the paper"}, (0, "REFERENC")),
    ({"PROV0001": "x.fits"}, (0, "PROV0001")),
    ({"CDELT1": 1.0}, (0, "CDELT1")),
    ({"ABMAGSAT": 21.0}, (0, "ABMAGLIM")),
    ({"PSF_FWHM": 0.0}, (0, "PSF_FWHM")),
    ({"RA": 12.0}, (0, "RA")),
    ({"ORIGIN": "CASU"}, (0, "NOESODAT")),
    ({"ASSON1": "dir/a_conf.fit"}, (0, "ASSON1")),
    ({"NJITTER": None}, (0, "NJITTER")),
    ({"PRODCATG": "SCIENCE.HOLOGRAM"}, (0, "PRODCATG")),
])
def test_each_broken_keyword_is_named(changes: dict, named: tuple) -> None:
    problems = check_hdul("bad.fits", _image(**changes))
    assert named in _named(problems), [str(p) for p in problems]


def test_a_changed_file_fails_its_checksums() -> None:
    hdul = _image()
    hdul[0].data[3, 3] = 1.0
    assert (0, "DATASUM") in _named(check_hdul("x.fits", hdul))


def test_fix_header_writes_a_cd_matrix_and_removes_repeats() -> None:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = 0.5, 0.1, -0.1, 0.5
    header["CDELT1"], header["CDELT2"] = -2e-4, 2e-4
    header.append(("PHOTSYS", "AB"))
    header.append(("PHOTSYS", "VEGA"))
    header["PROV0001"] = "a.fits"
    header["PROV0002"] = "b.fits"
    fix_header(header)
    assert (header["CD1_1"], header["CD1_2"]) == (pytest.approx(-1e-4), pytest.approx(-2e-5))
    assert (header["CD2_1"], header["CD2_2"]) == (pytest.approx(-2e-5), pytest.approx(1e-4))
    assert not any(k.startswith(("PC", "CDELT")) for k in header)
    assert [c.value for c in header.cards if c.keyword == "PHOTSYS"] == ["VEGA"]
    assert (header["PROV1"], header["PROV2"]) == ("a.fits", "b.fits")


def _spectrum_file(tmp_path: Path) -> fits.HDUList:
    wave = np.linspace(5000.0, 5100.0, 201)
    spectrum = Spectrum(wave, np.full(wave.size, 2.0), np.full(wave.size, 0.1),
                        "1e-17 erg/(s cm2 Angstrom)",
                        {"TELESCOP": "ESO-VLT-U2", "INSTRUME": "GIRAFFE", "DATE": "2024-01-01"})
    archive = {"object": "star", "ra": 10.0, "dec": -20.0, "mjd_obs": 60000.0,
               "mjd_end": 60000.05, "texptime": 3600.0, "obid": 7, "ncombine": 2,
               "prog_id": "188.B-3002(A)", "spec_res": 19800.0, "calib_level": 3}
    path = write_spectrum(spectrum, tmp_path / "s.fits", archive=archive,
                          provenance=["a.fits"], note="test")
    return fits.open(path)


def test_a_written_spectrum_passes_and_states_its_bins(tmp_path: Path) -> None:
    hdul = _spectrum_file(tmp_path)
    assert check_hdul("s.fits", hdul) == []
    h, t = hdul[0].header, hdul[1].header
    assert (h["WAVELMIN"], h["WAVELMAX"], h["SPEC_BIN"]) == (
        pytest.approx(500.0), pytest.approx(510.0), pytest.approx(0.05))
    assert h["SNR"] == pytest.approx(20.0)
    assert t["TELAPSE"] == pytest.approx(0.05 * 86400)
    assert (h["ORIGIN"], h["PROV1"], t["NELEM"]) == ("ESO-PARANAL", "a.fits", 201)


@pytest.mark.parametrize("changes, named", [
    ({(1, "TELAPSE"): 10.0}, (1, "TELAPSE")),
    ({(1, "TMID"): 1.0}, (1, "TMID")),
    ({(0, "SPEC_BIN"): 1.0}, (0, "SPEC_BIN")),
    ({(0, "WAVELMIN"): 400.0}, (0, "WAVELMIN")),
    ({(1, "RA"): 11.0}, (1, "RA")),
    ({(0, "BUNIT"): "adu"}, (0, "BUNIT")),
    ({(0, "TOT_FLUX"): True, (0, "FLUXCAL"): "UNCALIBRATED"}, (0, "TOT_FLUX")),
])
def test_spectrum_rules_name_the_keyword(tmp_path: Path, changes: dict, named: tuple) -> None:
    hdul = _spectrum_file(tmp_path)
    for (hdu, key), value in changes.items():
        hdul[hdu].header[key] = value
    finish(hdul, tmp_path / "changed.fits", "test")
    with fits.open(tmp_path / "changed.fits") as changed:
        assert named in _named(check_hdul("changed.fits", changed))
