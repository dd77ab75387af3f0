# SPDX-License-Identifier: BSD-3-Clause
"""The demo's WEAVE and 4MOST products as their formats fix them.

Reads what the demo's simulate and pipelines steps wrote under
``var/data/{raw,products}/{weave,fourmost}`` and checks each product against the
index tables and the raw files (not against the writers): WEAVE stacks by HDU index
and name, their runs, FIBTABLE against the targets; per-object files against
``read_spectrum`` with DATA × SENSFUNC and SENSFUNC/√IVAR computed here; 4MOST per-OB
S/N keywords recomputed from the targets table, per-object PHASE3SPECTRUM layout,
provenance and checksums.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from casuvo.config import Settings
from casuvo.spectra.read import read_spectrum


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return Settings.from_env().data_dir


def _index(data_dir: Path, survey: str, name: str) -> Table:
    path = data_dir / "products" / survey / "index" / f"{name}.fits"
    assert path.is_file(), f"no {path}: the demo runs `casuvo pipeline run {survey}`"
    return Table(fits.getdata(path), masked=False)


def _open_checked(path: Path) -> fits.HDUList:
    """The file with its checksums verified (a failed one is an error here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fits.open(path, checksum=True, memmap=False)


def test_weave_stacks_layout_runs_and_fibres(data_dir: Path) -> None:
    obs = _index(data_dir, "weave", "obs_blocks")
    raw = _index(data_dir, "weave", "raw")
    targets = _index(data_dir, "weave", "targets")
    made = obs[np.char.str_len(np.asarray(obs["product_file"], dtype=str)) > 0]
    assert len(made) >= 2
    for ob in made:
        stacks = sorted((data_dir / str(ob["product_file"])).parent.glob("stack_*.fit"))
        ob_raws = raw[raw["ob_id"] == ob["ob_id"]]
        for arm in ("RED", "BLUE"):
            runs = sorted(int(re.search(r"r(\d{7})", str(f)).group(1))
                          for f in ob_raws["file"][ob_raws["arm"] == arm])
            path = data_dir / "products" / "weave" / str(ob["night"]) / f"stack_{runs[0]:07d}.fit"
            assert path in stacks, (path, stacks)
            with _open_checked(path) as hdul:
                names = ["PRIMARY", f"{arm}_DATA", f"{arm}_IVAR", f"{arm}_DATA_NOSS",
                         f"{arm}_IVAR_NOSS", f"{arm}_SENSFUNC", "FIBTABLE"]
                assert [h.name for h in hdul] == names
                p = hdul[0].header
                assert p["CAMERA"] == f"WEAVE{arm}" and p["OBID"] == ob["ob_id"]
                assert p["VPH"] == (1 if ob["mode"] == "LR" else 2)
                assert [p[k] for k in p if re.fullmatch(r"RUNS\d{3}", k)] == runs
                assert hdul[1].header["PROV001"] == f"single_{runs[0]:07d}.fit"
                fib = hdul["FIBTABLE"].data
                assert hdul[1].data.shape == (len(fib), hdul[1].header["NAXIS1"])
                mine = targets[targets["ob_id"] == ob["ob_id"]]
                by_fibre = {int(r["fibre"]): r for r in mine}
                assert sorted(by_fibre) == sorted(int(x) for x in fib["FIBREID"])
                for row in fib:
                    t = by_fibre[int(row["FIBREID"])]
                    assert row["CNAME"].strip() == t["target_name"]
                    assert row["CNAME"].startswith("WVE_")
                    assert (row["STATUS"] == "D") == (t["fibre_status"] == "DEAD")
                    assert row["TARGUSE"] == ("T" if t["obj_type"] == "OBJ" else "S")
                dead = fib["STATUS"] == "D"
                assert dead.any() and not hdul[f"{arm}_IVAR"].data[dead].any()
        with fits.open(data_dir / str(ob["product_file"])) as hdul:
            assert hdul[0].header["CAMERA"] == "WEAVERED"   # the red stack is product_file


def test_weave_objects_read_as_data_times_sensfunc(data_dir: Path) -> None:
    spectra = _index(data_dir, "weave", "spectra")
    assert len(spectra) >= 40
    for row in spectra[::7]:
        path = data_dir / str(row["file"])
        assert path.name == f"{row['target_name']}_{row['mode']}.fit"
        spectrum = read_spectrum(path)
        with _open_checked(path) as hdul:
            arms = [a for a in ("RED", "BLUE") if f"{a}_DATA" in hdul]
            assert [h.name for h in hdul] == ["PRIMARY"] + [
                f"{a}_{e}" for a in arms
                for e in ("DATA", "IVAR", "DATA_NOSS", "IVAR_NOSS", "SENSFUNC")] + ["FIBTABLE"]
            assert hdul[0].header["PROV001"] in str(row["progenitors"])
            assert hdul["FIBTABLE"].data["CNAME"][0] == row["target_name"]
            assert hdul[0].header["VRAD"] == pytest.approx(row["rv"], abs=1e-3)
            for arm in arms:
                h = hdul[f"{arm}_DATA"].header
                wave = h["CRVAL1"] + h["CD1_1"] * np.arange(h["NAXIS1"])
                sens = hdul[f"{arm}_SENSFUNC"].data.astype(float)
                flux = hdul[f"{arm}_DATA"].data[0] * sens
                ivar = hdul[f"{arm}_IVAR"].data[0].astype(float)
                pick = np.isin(spectrum.wave, wave)
                keep = np.isin(wave, spectrum.wave)
                assert pick.sum() == keep.sum() > 100
                np.testing.assert_allclose(spectrum.flux[pick], flux[keep], rtol=1e-5)
                good = ivar[keep] > 0
                np.testing.assert_allclose(spectrum.sigma[pick][good],
                                           sens[keep][good] / np.sqrt(ivar[keep][good]),
                                           rtol=1e-5)
                assert np.isnan(spectrum.sigma[pick][~good]).all()
        snr = np.nanmedian(spectrum.flux / spectrum.sigma)
        assert snr == pytest.approx(row["snr"], rel=0.35)


def test_fourmost_ob_files_snr_keywords(data_dir: Path) -> None:
    obs = _index(data_dir, "fourmost", "obs_blocks")
    targets = _index(data_dir, "fourmost", "targets")
    made = obs[np.char.str_len(np.asarray(obs["product_file"], dtype=str)) > 0]
    assert len(made) >= 2
    for ob in made:
        first = data_dir / str(ob["product_file"])
        assert first.name.endswith("_LB1.fits")
        mine = targets[(targets["ob_id"] == ob["ob_id"]) & (targets["obj_type"] == "OBJ")
                       & (targets["fibre_status"] == "OK")]
        snr = np.asarray(mine["snr"], dtype=float)
        for arm in ("LB", "LG", "LR"):
            path = first.with_name(first.name.replace("_LB1.fits", f"_{arm}1.fits"))
            with _open_checked(path) as hdul:
                assert [h.name for h in hdul] == ["PRIMARY", "FLUX", "ERR_FLUX", "QUAL",
                                                  "FLUX_NOSS", "ERR_FLUX_NOSS", "FIBINFO"]
                p = hdul[0].header
                assert p["OBID"] == ob["ob_id"] and p["INSTRUME"] == "QMOST"
                assert p["MINSNR"] == pytest.approx(snr.min(), abs=1e-3)
                assert p["MAXSNR"] == pytest.approx(snr.max(), abs=1e-3)
                assert p["MEDSNR"] == pytest.approx(np.median(snr), abs=1e-3)
                assert p["FIBMINSN"] == int(mine["fibre"][np.argmin(snr)])
                assert p["FIBMAXSN"] == int(mine["fibre"][np.argmax(snr)])
                fib = hdul["FIBINFO"].data
                assert p["SPCMAXSN"] == int(fib["NSPEC"][fib["FIB_ID"] == p["FIBMAXSN"]][0])
                assert hdul["FLUX"].data.shape == (len(fib), hdul["FLUX"].header["NAXIS1"])


def test_fourmost_objects_phase3_layout(data_dir: Path) -> None:
    spectra = _index(data_dir, "fourmost", "spectra")
    assert len(spectra) >= 40
    wave = 3700.0 + 0.25 * np.arange(23201)
    for row in spectra[::6]:
        path = data_dir / str(row["file"])
        with _open_checked(path) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "PHASE3SPECTRUM"]
            p, t = hdul[0].header, hdul[1].header
            assert (p["PRODCATG"], p["ORIGIN"], p["TELESCOP"], p["INSTRUME"]) == (
                "SCIENCE.SPECTRUM", "ESO-PARANAL", "ESO-VISTA", "QMOST")
            assert p[f"OBID{p['NCOMBINE']}"] == row["ob_id"]
            assert p["PROG_ID"] and p["SPECSYS"] == "HELIOCEN"
            for n in range(1, 3 * p["NCOMBINE"] + 1):
                prov = p[f"PROV{n}"]
                assert any((data_dir / "products" / "fourmost").glob(f"2*/{prov}")), prov
            assert t["NELEM"] == 23201 and t["CNAME"] == row["target_name"]
            assert t["CNAME"].startswith("QMOST") and len(t["CNAME"]) == 21
            assert {"MINSNR", "SPCMINSN", "FIBMINSN", "MAXSNR", "SPCMAXSN", "FIBMAXSN",
                    "MEDSNR", "TRG_UID", "FIB_ID"} <= set(t)
            for n in range(1, 7):
                assert t[f"TUTYP{n}"] and t[f"TUCD{n}"] and t[f"TCOMM{n}"]
            data = hdul[1].data
            assert len(data) == 1
            np.testing.assert_allclose(data["WAVE"][0], wave, atol=1e-3)
            assert t["TDMIN2"] == pytest.approx(np.nanmin(data["FLUX"][0]))
            spectrum = read_spectrum(path)
            np.testing.assert_array_equal(spectrum.flux, data["FLUX"][0].astype(float))
            good = data["QUAL"][0] == 0
            np.testing.assert_array_equal(spectrum.sigma[good], data["ERR_FLUX"][0][good])
            assert good.mean() > 0.99


def test_weave_singles_stack_to_the_stack(data_dir: Path) -> None:
    """The inverse-variance mean of an OB's singles is its stack (DATA and IVAR), and each
    single is one run: named after it, one exposure's time."""
    obs = _index(data_dir, "weave", "obs_blocks")
    made = obs[np.char.str_len(np.asarray(obs["product_file"], dtype=str)) > 0]
    for ob in made[:2]:
        night = data_dir / str(ob["product_file"])
        for stack_path in sorted(night.parent.glob("stack_*.fit")):
            with fits.open(stack_path) as stack:
                if stack[0].header["OBID"] != ob["ob_id"]:
                    continue
                arm = stack[1].name.split("_")[0]
                runs = [stack[0].header[k] for k in stack[0].header
                        if re.fullmatch(r"RUNS\d{3}", k)]
                w = np.zeros(stack[1].data.shape)
                wf = np.zeros(stack[1].data.shape)
                for run in runs:
                    with _open_checked(night.parent / f"single_{run:07d}.fit") as single:
                        assert single[0].header["RUN"] == run
                        assert single[1].name == f"{arm}_DATA"
                        assert single[0].header["EXPTIME"] == pytest.approx(
                            ob["exptime"] / ob["n_exposures"])
                        ivar = single[f"{arm}_IVAR"].data.astype(float)
                        w += ivar
                        wf += ivar * single[f"{arm}_DATA"].data
                good = w > 0
                np.testing.assert_allclose(stack[f"{arm}_IVAR"].data[good], w[good], rtol=1e-4)
                np.testing.assert_allclose(stack[f"{arm}_DATA"].data[good],
                                           wf[good] / w[good], rtol=1e-3, atol=1e-3)
