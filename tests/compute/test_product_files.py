# SPDX-License-Identifier: BSD-3-Clause
"""CASU images, confidence maps and catalogues written directly (casuvo.imaging.casu) are
the files astropy's HDU classes and writeto make: same cards, same bytes of data, and
checksums that astropy verifies."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from casuvo.imaging import casu
from casuvo.surveys.instruments import instrument


def _tables(rng: np.random.Generator) -> list[casu.CatalogueTable]:
    tables = []
    for k, n in enumerate((0, 1, 37, 500), start=1):
        t = Table()
        t["Sequence_number"] = np.arange(1, n + 1, dtype=np.int32)
        t["X_coordinate"] = rng.uniform(1, 512, n).astype(np.float32)
        t["Aper_flux_3"] = rng.normal(100, 50, n).astype(np.float32)
        t["Aper_flux_3"][:1] = np.nan
        t["Error_bit_flag"] = rng.integers(0, 5, n).astype(np.int16)
        t["RA"] = rng.uniform(0, 360, n)
        t["sourceID"] = rng.integers(0, 2**62, n)
        keywords = {"MAGZPT": 23.8042, "NUMZPT": np.int64(199), "TINY": -1.234e-11,
                    "LONGFLT": 123456789.123456789, "PSF_FWHM": (1.252, "[arcsec] -1: too few"),
                    "QUOTE": "it's", "FLAG": True, "EMPTY": ""}
        tables.append(casu.CatalogueTable(f"DET{k}.CHIP1", t, keywords))
    return tables


def _meta() -> casu.ProductMeta:
    inst = instrument("vista")
    return casu.ProductMeta(
        inst=inst, filt=inst.filter("J"), obj="vvv_disc", ra=266.4, dec=-29.0,
        mjd_obs=60440.1, mjd_end=60440.2, exptime=10.0, texptime=20.0, ncombine=2,
        obs_ids=[7], prog_id="179.B-2002(A)", obstech="IMAGE,JITTER",
        prodcatg="SCIENCE.MEFIMAGE", provenance=["a.fits"], airmass=1.1, dit=5.0, ndit=2,
        njitter=2, noffsets=1, obstatus="Completed", qc={"SEEING": 2.5})


def _same_files(direct: Path, reference: Path, n_hdus: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a wrong checksum is a warning on reading
        with fits.open(direct, checksum=True) as a, fits.open(reference, checksum=True) as b:
            a.verify("exception")
            assert len(a) == len(b) == n_hdus
            for x, y in zip(a, b, strict=True):
                assert x.verify_checksum() == 1
                skip = ("CHECKSUM", "DATASUM", "DATE")
                assert ([c.image for c in x.header.cards if c.keyword not in skip]
                        == [c.image for c in y.header.cards if c.keyword not in skip])
                assert x.header["DATASUM"] == y.header["DATASUM"]
                if x.data is not None:
                    assert x.data.tobytes() == y.data.tobytes()


def test_direct_image_and_confidence_map_are_astropys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    detectors = []
    for k in (1, 2, 3):
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        wcs.wcs.crval, wcs.wcs.crpix = [266.4 + k * 0.1, -29.0], [64.5, 30.5]
        wcs.wcs.cd = [[-9.4e-5, 1e-7], [2e-7, 9.4e-5]]
        data = rng.normal(0, 5, (60, 128)).astype(np.float32)
        data[3, 4] = np.nan
        conf = rng.integers(0, 130, (60, 128)).astype(np.int16)
        keywords = {"MAGZPT": 23.8, "PSF_FWHM": (1.25, "[arcsec] -1: too few stars"),
                    "NUMZPT": np.int64(12), "APCOR3": 0.2732}
        detectors.append(casu.DetectorProduct(f"DET{k}.CHIP1", data, conf, wcs, keywords))
    for name in ("direct", "astropy"):
        if name == "astropy":
            monkeypatch.setattr(casu, "_image_bytes", lambda *args: None)
        (tmp_path / name).mkdir()
        casu.write_image(tmp_path / name / "st.fit", tmp_path / name / "st_conf.fit", _meta(),
                         detectors)
    for file in ("st.fit", "st_conf.fit"):
        _same_files(tmp_path / "direct" / file, tmp_path / "astropy" / file, 4)
    with fits.open(tmp_path / "direct" / "st_conf.fit") as hdul:
        assert hdul[2].data.dtype == np.dtype(">i2") and hdul[0].header["EXTEND"] is True


def test_direct_catalogue_is_astropys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _tables(np.random.default_rng(5))
    direct, astropy_path = tmp_path / "direct.fits", tmp_path / "astropy.fits"
    casu.write_catalogue(direct, _meta(), "img.fit", tables)
    monkeypatch.setattr(casu, "_bintable_bytes", lambda *args: None)  # astropy's way
    casu.write_catalogue(astropy_path, _meta(), "img.fit", tables)
    _same_files(direct, astropy_path, 5)
    with fits.open(direct) as a:
        assert a[3].header["TUNIT2"] == "pix" and a[3].header["QUOTE"] == "it's"
        got = Table.read(a[4])
        assert np.array_equal(got["sourceID"], tables[3].table["sourceID"])


def test_a_table_that_is_not_plain_takes_astropys_path(tmp_path: Path) -> None:
    tables = _tables(np.random.default_rng(6))
    tables[2].table["Name"] = ["x"] * len(tables[2].table)  # text: astropy's encoding
    path = tmp_path / "cat.fits"
    casu.write_catalogue(path, _meta(), "img.fit", tables)
    with fits.open(path, checksum=True) as hdul:
        assert all(h.verify_checksum() == 1 for h in hdul)
        assert list(hdul[3].data["Name"]) == ["x"] * 37


def test_card_formats_as_astropy() -> None:
    for key, value, comment in (("A", 1.0, ""), ("B", -0.0001234, "c"), ("C", 1e300, ""),
                                ("D", np.float32(0.1), ""), ("E", 12, "n"), ("F", False, ""),
                                ("G", "a'b", "x" * 45), ("HIERARCH ESO INS FILT1 NAME", "J", ""),
                                ("H", "y" * 100, "")):
        assert casu.card(key, value, comment) == fits.Card(key, value, comment).image
