# SPDX-License-Identifier: BSD-3-Clause
"""WEAVE and 4MOST files: layouts by HDU index and name, keywords, round trips, the
inverse-variance ↔ sigma conversion, the arms' join, and damaged files named.

Runs in the service environment (numpy < 2, astropy 5), where the services read the
products; the values compared are built here from small arrays, not from the writers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from casuvo.spectra import fourmost, weave
from casuvo.spectra.fitsread import ProductFileError
from casuvo.spectra.grid import Grid

# -- WEAVE -----------------------------------------------------------------------------

NSPEC = 4


def _weave_header(run: int) -> dict:
    return {"RUN": run, "OBTITLE": "ngc6791_LR_01", "CAT-NAME": "./ngc6791_LR_01.xml",
            "OBID": 4001, "OBSTART": 60494.01, "PROGTEMP": weave.progtemp_code("LR", 2, binning=8),
            "OBSTEMP": "DACEB", "MJD-OBS": 60494.02, "EXPTIME": 1200.0, "AIRMASS": 1.12,
            "SEEINGB": 0.9, "SEEINGE": 1.1, "RA": 290.22, "DEC": 37.77}


def _fibres() -> dict:
    return {"FIBREID": np.array([11, 12, 13, 14]),
            "CNAME": [weave.weave_cname(290.2 + 0.01 * i, 37.77) for i in range(NSPEC)],
            "TARGUSE": ["T", "T", "S", "T"], "STATUS": ["A", "A", "A", "D"],
            "TARGRA": 290.2 + 0.01 * np.arange(NSPEC), "TARGDEC": np.full(NSPEC, 37.77),
            "TARGID": ["2051", "2052", "", "2054"], "SNR": np.array([20.0, 8.0, 0.0, 0.0])}


def _arm(arm: str, seed: int) -> weave.ArmSpectra:
    grid = weave.arm_grid("LR", arm, binning=8)
    rng = np.random.default_rng(seed)
    data = rng.normal(50.0, 2.0, (NSPEC, grid.naxis1)).astype(np.float32)
    ivar = np.full((NSPEC, grid.naxis1), 0.25, dtype=np.float32)
    ivar[1, :5] = 0.0
    sens = np.linspace(0.5, 1.5, grid.naxis1).astype(np.float32)
    return weave.ArmSpectra(grid, data, ivar, data + 10.0, ivar * 0.5, sens)


def test_weave_names_and_cname() -> None:
    assert weave.raw_name(1002081) == "r1002081.fit"
    assert weave.single_name(1002081) == "single_1002081.fit"
    assert weave.stack_name([1002083, 1002081, 1002085]) == "stack_1002081.fit"
    # 19:20:48.00 +37:46:12.0 from 290.2 deg, 37.77 deg
    assert weave.weave_cname(290.2, 37.77) == "WVE_19204800+3746120"
    assert weave.object_name("WVE_19204800+3746120") == "WVE_19204800+3746120.fit"
    assert weave.parse_progtemp("21381.1") == ("HR", False, 1, 8)


def test_weave_l1_layout_keywords_round_trip(tmp_path: Path) -> None:
    spectra = _arm("RED", 1)
    path = weave.write_l1(tmp_path, weave.L1File("RED", _weave_header(1002081), spectra,
                                                 _fibres()))
    assert path.name == "single_1002081.fit"
    with fits.open(path, checksum=True) as hdul:
        names = ["PRIMARY", "RED_DATA", "RED_IVAR", "RED_DATA_NOSS", "RED_IVAR_NOSS",
                 "RED_SENSFUNC", "FIBTABLE"]
        assert [h.name for h in hdul] == names
        for index, name in enumerate(names):
            assert hdul[index] is hdul[name]
        primary = hdul[0].header
        assert (primary["CAMERA"], primary["VPH"], primary["RUN"]) == ("WEAVERED", 1, 1002081)
        assert (primary["OBID"], primary["CAT-NAME"], primary["OBSTEMP"]) == \
            (4001, "./ngc6791_LR_01.xml", "DACEB")
        assert primary["PROGTEMP"] == "12381.1"
        data = hdul[1].header
        assert data["CRVAL1"] == 5790.0 and data["CD1_1"] == pytest.approx(0.48 * 8)
        assert data["NAXIS1"] == int((9590 - 5790) // (0.48 * 8)) + 1
        assert data["NAXIS2"] == NSPEC
        np.testing.assert_array_equal(hdul["RED_IVAR"].data, spectra.ivar)
        table = hdul["FIBTABLE"].data
        assert list(table["NSPEC"]) == [1, 2, 3, 4]
        assert [c for c in table.columns.names[:6]] == ["FIBREID", "NSPEC", "TARGSRVY",
                                                       "TARGPROG", "TARGCAT", "CNAME"]
        assert "DATASUM" in hdul[1].header
    back = weave.read_l1(path)
    assert back.kind == "single" and back.arm == "RED" and back.runs == (1002081,)
    np.testing.assert_array_equal(back.spectra.data, spectra.data)
    np.testing.assert_array_equal(back.spectra.sensfunc, spectra.sensfunc)
    assert list(back.fibtable["CNAME"]) == _fibres()["CNAME"]
    assert back.fibtable["TARGUSE"][2] == "S"


def test_weave_stack_provenance_and_raw(tmp_path: Path) -> None:
    stack = weave.L1File("BLUE", _weave_header(1002085), _arm("BLUE", 2), _fibres(),
                         runs=(1002085, 1002083), kind="stack")
    path = weave.write_l1(tmp_path, stack)
    assert path.name == "stack_1002083.fit"
    with fits.open(path) as hdul:
        assert hdul[0].header["RUNS001"] == 1002083 and hdul[0].header["RUNS002"] == 1002085
        assert hdul[0].header["RUN"] == 1002083 and hdul[0].header["CAMERA"] == "WEAVEBLUE"
        assert hdul[1].header["PROV001"] == "single_1002083.fit"
        assert hdul[1].name == "BLUE_DATA" and hdul[5].name == "BLUE_SENSFUNC"
    assert weave.read_l1(path).runs == (1002083, 1002085)
    grid = weave.arm_grid("LR", "BLUE", binning=8)
    counts = np.arange(NSPEC * grid.naxis1, dtype=np.float32).reshape(NSPEC, -1)
    raw = weave.write_raw(tmp_path, weave.RawFile("BLUE", _weave_header(1002083), grid,
                                                  counts, _fibres()))
    assert raw.name == "r1002083.fit"
    with fits.open(raw) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "COUNTS", "FIBTABLE", "GUIDINFO",
                                          "METINFO"]
    back = weave.read_raw(raw)
    np.testing.assert_array_equal(back.counts, counts)
    assert back.guidinfo["SEEING"][1] == pytest.approx(1.1)


def test_weave_object_ivar_to_sigma_and_join(tmp_path: Path) -> None:
    red, blue = _arm("RED", 3), _arm("BLUE", 4)
    stacks = [weave.L1File(arm, _weave_header(1002081), spectra, _fibres(),
                           runs=(1002081, 1002082), kind="stack")
              for arm, spectra in (("BLUE", blue), ("RED", red))]
    cname = _fibres()["CNAME"][1]
    obj = weave.object_from_stacks(stacks, cname)
    path = weave.write_object_file(tmp_path, obj)
    assert path.name == f"{cname}.fit"
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == [
            "PRIMARY", "RED_DATA", "RED_IVAR", "RED_DATA_NOSS", "RED_IVAR_NOSS",
            "RED_SENSFUNC", "BLUE_DATA", "BLUE_IVAR", "BLUE_DATA_NOSS", "BLUE_IVAR_NOSS",
            "BLUE_SENSFUNC", "FIBTABLE"]
        assert hdul["RED_DATA"].data.shape == (1, red.grid.naxis1)
        assert len(hdul["FIBTABLE"].data) == 1 and hdul["FIBTABLE"].data["CNAME"][0] == cname
        assert hdul[0].header["PROV001"] == "stack_1002081.fit"
    spectrum = weave.read_object(path)
    assert spectrum.flux_unit == weave.FLUX_UNIT
    split = 0.5 * (5790.0 + blue.grid.last)
    assert np.all(np.diff(spectrum.wave) > 0)
    nblue = int(np.sum(blue.grid.wave < split))
    nred = int(np.sum(red.grid.wave >= split))
    assert len(spectrum) == nblue + nred
    # blue part: flux = DATA × SENSFUNC, sigma = SENSFUNC / sqrt(IVAR), zero IVAR → NaN
    expected = blue.data[1, :nblue].astype(float) * blue.sensfunc[:nblue]
    np.testing.assert_allclose(spectrum.flux[:nblue], expected, rtol=1e-6)
    assert np.all(np.isnan(spectrum.sigma[:5]))
    np.testing.assert_allclose(spectrum.sigma[5:nblue], blue.sensfunc[5:nblue] / 0.5,
                               rtol=1e-6)
    red_first = int(np.argmax(red.grid.wave >= split))
    np.testing.assert_allclose(spectrum.flux[nblue], red.data[1, red_first] *
                               red.sensfunc[red_first], rtol=1e-6)
    assert spectrum.meta["CNAME"] == cname and spectrum.meta["TARGID"] == "2052"


@pytest.mark.parametrize("cut", [100, 3000, 20000])
def test_weave_truncated_file_is_named(tmp_path: Path, cut: int) -> None:
    path = weave.write_l1(tmp_path, weave.L1File("RED", _weave_header(1002081),
                                                 _arm("RED", 5), _fibres()))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - cut])
    with pytest.raises(ProductFileError, match="single_1002081.fit"):
        weave.read_l1(path)


def test_weave_damaged_byte_and_wrong_order_are_named(tmp_path: Path) -> None:
    path = weave.write_l1(tmp_path, weave.L1File("RED", _weave_header(1002081),
                                                 _arm("RED", 6), _fibres()))
    with fits.open(path) as hdul:
        swapped = fits.HDUList([hdul[0], hdul[2], hdul[1], *hdul[3:]])
        swapped.writeto(tmp_path / "single_1002082.fit", checksum=True)
    data = bytearray(path.read_bytes())
    data[2880 * 3 + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ProductFileError, match="single_1002081.fit.*(damaged|checksum)"):
        weave.read_l1(path)
    with pytest.raises(ProductFileError, match="single_1002082.fit.*L1 order"):
        weave.read_l1(tmp_path / "single_1002082.fit")


def test_weave_writer_refuses_bad_input(tmp_path: Path) -> None:
    header = _weave_header(1002081)
    del header["OBSTEMP"]
    with pytest.raises(ValueError, match="OBSTEMP"):
        weave.write_l1(tmp_path, weave.L1File("RED", header, _arm("RED", 7), _fibres()))
    with pytest.raises(ValueError, match="FIBTABLE has no column SOURCE_ID"):
        weave.write_l1(tmp_path, weave.L1File("RED", _weave_header(1), _arm("RED", 7),
                                              {**_fibres(), "SOURCE_ID": np.zeros(NSPEC)}))


# -- 4MOST -----------------------------------------------------------------------------

NFIB = 5
#: Per-arm grids at 1 Å; LB/LG overlap 5300–5540, LG/LR 6900–7200.
ARM_GRIDS = {"LB": Grid.spanning(3700.0, 5540.0, 1.0), "LG": Grid.spanning(5300.0, 7200.0, 1.0),
             "LR": Grid.spanning(6900.0, 9500.0, 1.0)}
ARM_LEVEL = {"LB": 10.0, "LG": 20.0, "LR": 30.0}
ARM_ERR = {"LB": 1.0, "LG": 2.0, "LR": 3.0}


def _qmost_header() -> dict:
    return {"OBID": 77001, "RUN": 3000101, "MJD-OBS": 60411.10, "EXPTIME": 2400.0,
            "DATE-OBS": "2024-04-11T02:24:00.000",
            "NCOMBINE": 2, "RA": 262.5, "DEC": -33.25, "PROG_ID": "1115.B-0001(A)",
            "AIRMASS": 1.05}


def _fibinfo() -> dict:
    return {"FIB_ID": np.array([101, 102, 103, 104, 105]),
            "CNAME": [fourmost.qmost_cname(262.5 + 0.01 * i, -33.25) for i in range(NFIB)],
            "TRG_UID": np.arange(1, NFIB + 1), "TRG_RA": 262.5 + 0.01 * np.arange(NFIB),
            "TRG_DEC": np.full(NFIB, -33.25), "FIB_USE": np.array([1, 1, 3, 1, 1]),
            "FIB_ST": np.array([2, 2, 2, 0, 2]), "SNR": np.array([12.0, 30.0, 0.0, 50.0, 5.0]),
            "TRG_CTID": np.array([4071, 4072, 0, 4074, 4075])}


def _ob_arm(arm: str) -> fourmost.OBArmFile:
    grid = ARM_GRIDS[arm]
    shape = (NFIB, grid.naxis1)
    flux = np.full(shape, ARM_LEVEL[arm], dtype=np.float32)
    err = np.full(shape, ARM_ERR[arm], dtype=np.float32)
    return fourmost.OBArmFile(arm, _qmost_header(), grid, flux, err, flux + 5.0, err * 2.0,
                              np.zeros(shape, dtype=np.int32), _fibinfo())


def test_fourmost_names_and_night() -> None:
    assert fourmost.qmost_cname(262.5, -33.25) == "QMOST17300000-3315000"
    # MJD 60411.10 = 2024-04-11 02:24 UTC, i.e. the night starting on 2024-04-10 at Paranal
    assert fourmost.night_of(60411.10) == 20240410
    assert fourmost.NELEM == 23201 and fourmost.JOINED.last == 9500.0
    assert fourmost.ob_file_name(_qmost_header(), "LB") == \
        "qmost_17300000-3315000_20240410_3000101_LB1.fits"


def test_fourmost_ob_file_and_snr_keywords(tmp_path: Path) -> None:
    ob = _ob_arm("LG")
    path = fourmost.write_ob_arm(tmp_path, ob)
    assert fourmost.identify(path) == "ob"
    with fits.open(path, checksum=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "FLUX", "ERR_FLUX", "QUAL", "FLUX_NOSS",
                                          "ERR_FLUX_NOSS", "FIBINFO"]
        primary = hdul[0].header
        # object fibres allocated: FIB_ID 101 (12), 102 (30), 105 (5); 104 disabled, 103 sky
        assert (primary["MINSNR"], primary["SPCMINSN"], primary["FIBMINSN"]) == (5.0, 5, 105)
        assert (primary["MAXSNR"], primary["SPCMAXSN"], primary["FIBMAXSN"]) == (30.0, 2, 102)
        assert primary["MEDSNR"] == 12.0
        assert primary["INSTRUME"] == "QMOST" and primary["TELESCOP"] == "ESO-VISTA"
        assert hdul["FLUX"].header["CRVAL1"] == 5300.0
    back = fourmost.read_ob_arm(path)
    assert back.arm == "LG"
    np.testing.assert_array_equal(back.flux, ob.flux)
    assert list(back.fibinfo["CNAME"]) == _fibinfo()["CNAME"]


def test_fourmost_target_join_keywords_and_sigma(tmp_path: Path) -> None:
    arms = [_ob_arm(a) for a in ("LR", "LB", "LG")]
    targets = fourmost.targets_from_ob(arms, extra={"RELEASE": "DEMO"})
    assert [t.extension["FIB_ID"] for t in targets] == [101, 102, 105]
    target = targets[1]
    path = fourmost.write_target(tmp_path, target)
    assert path.name == "qmost_17300240-3315000_20240410_0077001.fits"
    with fits.open(path, checksum=True) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "PHASE3SPECTRUM"]
        p = hdul[0].header
        assert (p["PRODCATG"], p["ORIGIN"], p["TELESCOP"], p["INSTRUME"]) == \
            ("SCIENCE.SPECTRUM", "ESO-PARANAL", "ESO-VISTA", "QMOST")
        assert (p["OBID1"], p["NCOMBINE"], p["PROG_ID"], p["SPECSYS"]) == \
            (77001, 2, "1115.B-0001(A)", "HELIOCEN")
        assert [p["PROV1"], p["PROV2"], p["PROV3"]] == [
            f"qmost_17300000-3315000_20240410_3000101_{a}1.fits" for a in ("LB", "LG", "LR")]
        assert "CHECKSUM" in p and "DATASUM" in hdul[1].header
        t = hdul[1].header
        assert t["NELEM"] == 23201 and t["VOCLASS"] == "SPECTRUM V2.0"
        assert t["CNAME"] == "QMOST17300240-3315000" and t["TRG_UID"] == 2
        assert t["MINSNR"] == 5.0 and t["FIBMAXSN"] == 102 and t["MEDSNR"] == 12.0
        assert [t[f"TTYPE{n}"] for n in range(1, 7)] == [
            "WAVE", "FLUX", "ERR_FLUX", "QUAL", "FLUX_NOSS", "ERR_FLUX_NOSS"]
        assert t["TUCD4"] == "meta.code.qual" and "uncalib" not in t["TUCD2"]
        assert (t["OBJECT"], t["RA"], t["DEC"]) == (p["OBJECT"], p["RA"], p["DEC"])
        assert p["FLUXERR"] == -2 and p["FLUXCAL"] == "ABSOLUTE" and "BUNIT" not in t
        assert t["TUTYP3"] == "spec:Data.FluxAxis.Accuracy.StatError"
        assert t["TFORM1"] == "23201E" and t["TFORM4"] == "23201J" and t["TNULL4"] == -1
        assert (t["TDMIN1"], t["TDMAX1"]) == (3700.0, 9500.0)
        row = hdul[1].data[0]
        assert len(hdul[1].data) == 1
    wave = 3700.0 + 0.25 * np.arange(23201)
    w = {a: 1.0 / ARM_ERR[a] ** 2 for a in ARM_ERR}
    in_b, in_g, in_r = wave <= 5540, (wave >= 5300) & (wave <= 7200), wave >= 6900
    weight = w["LB"] * in_b + w["LG"] * in_g + w["LR"] * in_r
    flux = (w["LB"] * 10 * in_b + w["LG"] * 20 * in_g + w["LR"] * 30 * in_r) / weight
    np.testing.assert_allclose(row["WAVE"], wave, rtol=0, atol=1e-3)
    np.testing.assert_allclose(row["FLUX"], flux, rtol=1e-6)
    np.testing.assert_allclose(row["ERR_FLUX"], 1 / np.sqrt(weight), rtol=1e-6)
    assert not row["QUAL"].any()
    spectrum = fourmost.read_object(path)
    np.testing.assert_allclose(spectrum.sigma, 1 / np.sqrt(weight), rtol=1e-6)
    assert spectrum.meta["CNAME"] == "QMOST17300240-3315000"
    assert spectrum.meta["RELEASE"] == "DEMO"


def test_fourmost_gap_is_flagged_and_truncation_named(tmp_path: Path) -> None:
    arms = [_ob_arm("LB"), _ob_arm("LR")]          # no green arm: 5540–6900 Å uncovered
    target = fourmost.targets_from_ob(arms)[0]
    path = fourmost.write_target(tmp_path, target)
    spectrum = fourmost.read_object(path)
    gap = (spectrum.wave > 5540.1) & (spectrum.wave < 6899.9)
    assert np.all(np.isnan(spectrum.sigma[gap])) and np.all(np.isfinite(spectrum.sigma[~gap]))
    assert np.all(fourmost.read_target(path).qual[gap] == 1)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 2880 * 3])
    with pytest.raises(ProductFileError, match=path.name):
        fourmost.read_object(path)
    raw = fourmost.write_raw(tmp_path, fourmost.RawFile(
        "LB", _qmost_header(), ARM_GRIDS["LB"],
        np.ones((NFIB, ARM_GRIDS["LB"].naxis1), np.float32), _fibinfo()))
    assert raw.name == "QMOST.2024-04-11T02:24:00.000_LB.fits"
    assert fourmost.identify(raw) == "raw"
    assert fourmost.read_raw(raw).counts.shape == (NFIB, ARM_GRIDS["LB"].naxis1)
    raw.write_bytes(raw.read_bytes()[:5000])
    with pytest.raises(ProductFileError, match=raw.name):
        fourmost.validate(raw)


def test_raw_hdus_add_the_survey_keywords_and_keep_the_pipeline_hdus() -> None:
    def hdus() -> list:
        primary = fits.PrimaryHDU()
        primary.header.update({"MJD-OBS": 60494.02, "EXPTIME": 1200.0, "RUN": 1002081,
                               "DATE-OBS": "2024-07-03T00:28:48.000"})
        return [primary, fits.ImageHDU(np.ones((2, 3), np.float32), name="COUNTS"),
                fits.ImageHDU(np.ones((2, 3), np.float32), name="VARIANCE"),
                fits.BinTableHDU.from_columns([fits.Column("FIBRE", "J", array=[1, 2])],
                                              name="FIBINFO")]
    ob = {"ob_id": 4001001, "ob_name": "WEAVE_NGC6791_HR_F1P1", "mode": "HR",
          "mjd_obs": 60494.0, "seeing": 0.8}
    out = weave.raw_hdus(hdus(), ob, "BLUE")
    assert [h.name for h in out] == ["PRIMARY", "COUNTS", "VARIANCE", "FIBINFO", "GUIDINFO",
                                     "METINFO"]
    h = out[0].header
    assert (h["CAMERA"], h["VPH"], h["OBTITLE"], h["CAT-NAME"]) == (
        "WEAVEBLUE", 2, "WEAVE_NGC6791_HR_F1P1", "./WEAVE_NGC6791_HR_F1P1.xml")
    assert (h["OBSTART"], h["SEEINGB"], h["SEEINGE"]) == (60494.0, 0.8, 0.8)
    np.testing.assert_allclose(out[4].data["MJD"], [60494.02, 60494.02 + 1200 / 86400])
    out = fourmost.raw_hdus(hdus(), {**ob, "ob_name": "4MOST_VVV_DISC_LRS"}, "LG")
    assert [h.name for h in out] == ["PRIMARY", "COUNTS", "VARIANCE", "FIBINFO"]
    h = out[0].header
    assert h["ARCFILE"] == "QMOST.2024-07-03T00:28:48.000_LG.fits"
    assert (h["HIERARCH ESO OBS ID"], h["HIERARCH ESO DPR TECH"]) == (4001001, "MOS")
