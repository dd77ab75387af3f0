# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic surveys after `casuvo demo`: RVs against the truth, formats, S/N, bad input.

Reads what the demo's simulate and pipelines steps wrote under
``var/data/{raw,truth,products}/<survey>`` (GES, WEAVE, 4MOST); the bad-input
test reduces one OB from a truncated copy of one of its raw files, in a
temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from casuvo.config import Settings
from casuvo.pipeline.spectro_tasks import OBFailed, OBResult, make_object, reduce_ob
from casuvo.spectra.read import read_spectrum
from casuvo.spectra.templates import stellar_flux
from casuvo.surveys.registry import load_registry

SURVEYS = ("ges", "weave", "fourmost")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return Settings.from_env().data_dir


def _index(data_dir: Path, survey: str, name: str) -> Table:
    path = data_dir / "products" / survey / "index" / f"{name}.fits"
    assert path.is_file(), f"no {path}: the demo runs `casuvo pipeline run {survey}`"
    return Table(fits.getdata(path), masked=False)


def _truth(data_dir: Path, survey: str) -> dict[str, float]:
    t = fits.getdata(data_dir / "truth" / survey / "targets_truth.fits")
    return {str(r["target_name"]): float(r["rv_true"]) for r in t}


def test_rvs_agree_with_truth_within_errors(data_dir: Path) -> None:
    """|rv − rv_true| < 3σ for ≥ 95 % of the spectra, and the pulls' spread is the errors'."""
    pulls = []
    for survey in SURVEYS:
        spectra = _index(data_dir, survey, "spectra")
        truth = _truth(data_dir, survey)
        ok = np.isfinite(spectra["rv"]) & (spectra["rv_error"] > 0)
        assert ok.mean() > 0.9, f"{survey}: only {ok.mean():.0%} of the spectra have an RV"
        rv_true = np.array([truth[str(n)] for n in spectra["target_name"][ok]])
        pulls.append((np.asarray(spectra["rv"][ok]) - rv_true)
                     / np.asarray(spectra["rv_error"][ok]))
    pull = np.concatenate(pulls)
    assert pull.size > 150
    assert np.mean(np.abs(pull) < 3) >= 0.95, np.sort(np.abs(pull))[-10:]
    assert 0.7 <= np.std(pull[np.abs(pull) < 10]) <= 1.5


def test_snr_follows_the_magnitude(data_dir: Path) -> None:
    """Brighter stars have higher S/N: the simulated photon noise is what the pipeline measures."""
    for survey in SURVEYS:
        t = _index(data_dir, survey, "targets")
        obj = (t["obj_type"] == "OBJ") & (t["fibre_status"] == "OK") & np.isfinite(t["snr"])
        g = np.asarray(t["mag_g"][obj])
        snr = np.asarray(t["snr"][obj])
        assert np.corrcoef(g, np.log(snr))[0, 1] < -0.7, survey
        # photon-limited bright end: S/N ∝ 10^(−0.2 G) within a factor of two
        bright = g < np.percentile(g, 30)
        slope = np.polyfit(g[bright], np.log10(snr[bright]), 1)[0]
        assert -0.35 < slope < -0.1, (survey, slope)


def test_dead_fibres_found(data_dir: Path) -> None:
    """The simulator's dead fibres are the pipeline's DEAD fibres (and no other)."""
    for survey in SURVEYS:
        t = _index(data_dir, survey, "targets")
        truth = fits.getdata(data_dir / "truth" / survey / "targets_truth.fits")
        dead_truth = {(int(r["ob_id"]), int(r["fibre"])) for r in truth if r["dead"]}
        processed = {int(o) for o in t["ob_id"][t["fibre_status"] == "DEAD"]}
        dead_found = {(int(r["ob_id"]), int(r["fibre"])) for r in t
                      if r["fibre_status"] == "DEAD"}
        assert dead_found == {d for d in dead_truth if d[0] in processed}, survey
        assert dead_found


def test_ob_statuses_and_index_columns(data_dir: Path) -> None:
    """Every planned OB is a row; statuses as planned and processed; contract columns there."""
    for survey in SURVEYS:
        ob = _index(data_dir, survey, "obs_blocks")
        for col in ("ob_id", "ob_name", "field", "night", "mjd_obs", "proc_template",
                    "obs_template", "mode", "binning", "made", "n_targets", "n_sky",
                    "n_unallocated", "srv1", "srv2", "srv3", "author", "trimester", "status",
                    "ra", "dec", "airmass", "seeing", "exptime", "n_exposures", "grating",
                    "setting", "resolution", "em_min", "em_max", "snr_median", "product_file",
                    "release_date"):
            assert col in ob.colnames, (survey, col)
        plan = fits.getdata(data_dir / "raw" / survey / "obs_blocks.fits")
        assert sorted(ob["ob_id"]) == sorted(plan["ob_id"])
        status = dict(zip(ob["ob_id"], ob["status"], strict=True))
        for row in plan:
            expected = {"scheduled": {"scheduled"}, "aborted": {"aborted"},
                        "partial": {"observed"},
                        "observed": {"completed", "processed"}}[row["planned"]]
            assert status[row["ob_id"]] in expected
        done = ob[np.isin(ob["status"], ["completed", "processed"])]
        assert all((data_dir / f).is_file() for f in done["product_file"])
        spectra = _index(data_dir, survey, "spectra")
        for col in ("spectrum_id", "obs_publisher_did", "target_name", "source_id", "ra",
                    "dec", "ob_id", "n_epochs", "mode", "setting", "fibre", "snr", "rv",
                    "rv_error", "rv_template", "em_min", "em_max", "resolving_power", "t_min",
                    "t_max", "exptime", "file", "progenitors", "file_size", "release_date"):
            assert col in spectra.colnames, (survey, col)
        raw = _index(data_dir, survey, "raw")
        assert all((data_dir / f).is_file() for f in raw["file"])


def test_ges_manyspec_format(data_dir: Path) -> None:
    """A GES manyspec: flux image rows = fibres, ERROR, Fibinfo, velclass, the §2.2 keywords."""
    ob = _index(data_dir, "ges", "obs_blocks")
    path = data_dir / next(f for f in ob["product_file"] if f)
    with fits.open(path) as h:
        assert [x.name for x in h] == ["PRIMARY", "ERROR", "FIBINFO", "VELCLASS"]
        p = h[0].header
        for key in ("NAXIS1", "NAXIS2", "DATE", "ORIGIN", "TELESCOP", "INSTRUME",
                    "HIERARCH ESO INS GRAT WLEN", "GES_TYPE", "GES_FLD", "OBJECT", "RA", "DEC",
                    "EQUINOX", "RADECSYS", "EXPTIME", "MJD-OBS", "MJD-END", "DATE-OBS", "UTC",
                    "LST", "PI-COI", "OBSERVER", "SKYSUB", "ORIGFILE", "ARCFILE", "CTYPE1",
                    "CRPIX1", "CRVAL1", "CUNIT1", "CD1_1", "CD2_2"):
            assert key in p, key
        assert p["INSTRUME"] == "GIRAFFE"
        assert p["RA"] == pytest.approx(ob["ra"][0] / 15.0)   # hours
        assert h[0].data.shape == h["ERROR"].data.shape == (p["NAXIS2"], p["NAXIS1"])
        fib = h["Fibinfo"]
        assert len(fib.data) == p["NAXIS2"]
        for key in ("ALLOCOBJ", "ALLOCSKY", "ALLOCGUI", "UNALLOBJ", "CENRA", "CENDEC", "PLATE"):
            assert key in fib.header
        assert fib.header["ALLOCOBJ"] + fib.header["ALLOCSKY"] == p["NAXIS2"]
        for col in ("NSPEC", "CNAME", "TYPE", "S_N", "HELIO_COR", "RV", "RV_ERR", "BEST_TMPL"):
            assert col in fib.columns.names
        assert set(h["velclass"].columns.names) >= {"SPCLASS", "VEL", "EVEL", "LOGTEFF"}


def test_ges_singlespec_read_back(data_dir: Path) -> None:
    """A singlespec has one INPUTINFO row per epoch; read_spectrum gives its arrays and σ."""
    spectra = _index(data_dir, "ges", "spectra")
    multi = spectra[spectra["n_epochs"] > 1]
    assert len(multi)
    row = multi[0]
    path = data_dir / row["file"]
    with fits.open(path) as h:
        assert [x.name for x in h] == ["PRIMARY", "ERROR", "INPUTINFO"]
        info = h["INPUTINFO"].data
        assert len(info) == row["n_epochs"]
        assert set(info["OBID"]) <= set(int(x) for x in _index(data_dir, "ges",
                                                                  "obs_blocks")["ob_id"])
        flux = h[0].data
    s = read_spectrum(path)
    assert np.array_equal(s.flux, flux.astype(float), equal_nan=True)
    assert s.wave[0] == pytest.approx(row["em_min"] * 1e10)
    assert s.meta["SPECSYS"] == "BARYCENT"
    assert s.snr == pytest.approx(row["snr"], rel=0.05)
    for prog in row["progenitors"].split():
        assert (data_dir / prog).is_file()


def test_read_spectrum_every_survey(data_dir: Path) -> None:
    """read_spectrum reads one per-object product of each survey, flux close to the template."""
    for survey in SURVEYS:
        spectra = _index(data_dir, survey, "spectra")
        best = spectra[np.argmax(spectra["snr"])]
        s = read_spectrum(data_dir / best["file"])
        good = np.isfinite(s.flux) & np.isfinite(s.sigma)
        assert good.mean() > 0.9
        assert np.all(s.sigma[good] > 0)
        assert s.wave.min() == pytest.approx(best["em_min"] * 1e10, abs=1.0)


def _ob_copy(data_dir: Path, root: Path) -> tuple[dict, list[Path], dict[str, Path]]:
    """The first observed GES OB: its plan row, copies of its raws under ``root``, and its
    sensitivity functions."""
    entry = load_registry()["ges"]
    plan = Table(fits.getdata(data_dir / "raw" / "ges" / "obs_blocks.fits"), masked=False)
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in
           zip(plan.colnames, plan[plan["planned"] == "observed"][0], strict=True)}
    raws = sorted(p for p in (data_dir / "raw" / "ges").glob(f"{row['night']}/*.fits")
                  if fits.getheader(p)["OBID"] == row["ob_id"])
    assert len(raws) == 2
    copies = []
    for p in raws:
        dest = root / "raw" / "ges" / str(row["night"]) / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
        copies.append(dest)
    mode = entry.spectrograph.mode(row["setting"])
    sens = {a.name: data_dir / "raw" / "ges" / "calib" / f"sensfunc_{mode.name}_{a.name}.fits"
            for a in mode.arms}
    return row, copies, sens


def test_objects_resume_until_their_epochs_change(data_dir: Path, tmp_path: Path) -> None:
    """A per-object product made from the same reduced epochs is not made again; a changed
    input of its OB (or a lost product file) makes it again."""
    entry = load_registry()["ges"]
    row, copies, sens = _ob_copy(data_dir, tmp_path)
    out = tmp_path / "products" / "ges"

    def reduce() -> OBResult:
        result = reduce_ob("ges", row, copies, sens, entry.spectrograph.site, tmp_path, out,
                           {}, entry.spectro.flux_unit, None)
        assert isinstance(result, OBResult)
        return result

    def obj(ob: OBResult):
        i = int(np.flatnonzero((ob.ob.fibres["obj_type"] == "OBJ")
                               & (ob.ob.fibres["fibre_status"] == "OK"))[0])
        return make_object("ges", "ges-x-" + row["setting"], row["setting"], "HR", [(ob, i)],
                           tmp_path, out, {"PROG_ID": entry.prog_id})

    ob = reduce()
    first = obj(ob)
    assert first is not None and not first.resumed
    path = tmp_path / first.file
    mtime = path.stat().st_mtime_ns
    again = obj(reduce())
    assert again.resumed and again.row == first.row and path.stat().st_mtime_ns == mtime
    path.unlink()
    assert not obj(reduce()).resumed and path.is_file()
    st = copies[0].stat()
    os.utime(copies[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    ob2 = reduce()
    assert not ob2.resumed and ob2.key != ob.key
    assert not obj(ob2).resumed


def test_truncated_input_is_named_and_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    """A truncated raw file fails its OB with the file's name; nothing of the OB is written."""
    entry = load_registry()["ges"]
    row, copies, sens = _ob_copy(data_dir, tmp_path)
    root = tmp_path
    data = copies[1].read_bytes()
    copies[1].write_bytes(data[: len(data) // 2])
    out = root / "products" / "ges"
    result = reduce_ob("ges", row, copies, sens, entry.spectrograph.site, root, out, {},
                       entry.spectro.flux_unit, None)
    assert isinstance(result, OBFailed)
    assert copies[1].name in result.message
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_templates_are_what_the_simulator_used(data_dir: Path) -> None:
    """The model evaluated independently matches a noiseless check: lines deepen with [Fe/H]."""
    w = np.linspace(5339.0, 5619.0, 3000)
    poor = stellar_flux(w, 5000, 4.5, -1.0, 19800)
    rich = stellar_flux(w, 5000, 4.5, 0.3, 19800)
    assert np.min(rich) < np.min(poor) < 1.0
