# SPDX-License-Identifier: BSD-3-Clause
"""The imaging simulator: photometry, astrometry, headers, determinism, transient, nebula.

Miniature cameras (detector scale 0.1) and a small synthetic Gaia truth keep each test
to a few seconds; the truth the simulator writes is what the checks compare with.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from casuvo.simulate.calibration import Calibration, simulate_calibration
from casuvo.simulate.detectors import _defects, bias_level, dark_current_map, flat_field
from casuvo.simulate.exposure import simulate_exposure
from casuvo.simulate.fields import Field, field_by_name
from casuvo.simulate.optics import DISTORTION_EDGE_ARCSEC, field_edge_arcsec, true_wcs
from casuvo.simulate.pointing import Pointing
from casuvo.simulate.skymodel import (
    ALL_BANDS,
    PN_PEAK_SB,
    build_sky,
    mag_at,
    propagate,
)
from casuvo.simulate.survey import (
    DEMO_DETECTOR_SCALE,
    DEMO_PLAN,
    Block,
    SurveyManifest,
    SurveyPlan,
    plan_frames,
    write_survey,
)
from casuvo.simulate.truth import read_truth
from casuvo.surveys.instruments import Instrument, instrument

DETECTOR_SCALE = 0.1
SEED = 4242


def synthetic_truth(field: Field, n: int = 1500, seed: int = 7) -> Table:
    """A small Gaia truth table obeying the simulate_gaia contract."""
    rng = np.random.default_rng(seed)
    half = field.size_deg / 2 - 0.001
    ra, dec = field.from_tangent(rng.uniform(-half, half, n), rng.uniform(-half, half, n))
    g = 12.0 + np.log10(1 + rng.random(n) * (10 ** (0.35 * 8.5) - 1)) / 0.35
    return Table({"source_id": np.arange(n, dtype=np.int64) + 10**15, "ra_true": ra,
                  "dec_true": dec, "parallax_true": rng.uniform(0.1, 2.0, n),
                  "pmra_true": rng.normal(0, 5, n), "pmdec_true": rng.normal(0, 5, n),
                  "radial_velocity_true": rng.normal(0, 30, n), "g_true": g,
                  "bp_rp_true": rng.normal(1.2, 0.4, n), "is_member": np.zeros(n, bool),
                  "field": np.full(n, field.name)})


@pytest.fixture(scope="module")
def frames() -> list:
    return plan_frames(DEMO_PLAN, SEED, DEMO_DETECTOR_SCALE)


def _epochs(frames: list, field: str) -> tuple[float, float]:
    p = [f.pointing for f in frames if f.pointing is not None and f.pointing.field == field]
    return min(x.mjd_obs for x in p), max(x.mjd_obs + x.exptime / 86400 for x in p)


def _night_mjd(frames: list, field: str, night: int) -> float:
    return next(f.pointing.mjd_obs for f in frames if f.pointing is not None
                and f.pointing.field == field and f.night == DEMO_PLAN.nights[night])


@pytest.fixture(scope="module")
def sky_pn(frames: list) -> Table:
    f = field_by_name("vphas_pn")
    return build_sky(f, synthetic_truth(f), SEED, ALL_BANDS, _epochs(frames, f.name),
                     region=[(f.ra, f.dec, 0.08)])


@pytest.fixture(scope="module")
def sky_vvv(frames: list) -> Table:
    f = field_by_name("vvv_disc")
    return build_sky(f, synthetic_truth(f, seed=8), SEED, ALL_BANDS, _epochs(frames, f.name),
                     region=[(f.ra, f.dec, 0.08)])


def one_star(ra: float, dec: float, band: str, mag: float) -> Table:
    """A sky with a single star (no proper motion) in ``band``."""
    cols = {"sky_id": [1], "kind": ["star"], "ra": [ra], "dec": [dec], "pmra": [0.0],
            "pmdec": [0.0], "r_eff_arcsec": [0.0], "axis_ratio": [1.0], "pa_deg": [0.0],
            "var_amp": [0.0], "var_period_d": [np.nan], "var_phase": [np.nan],
            "t_on_mjd": [np.nan], "t_off_mjd": [np.nan], "in_gaia": [True]}
    cols.update({f"mag_{b}": [mag if b == band else np.nan] for b in ALL_BANDS})
    return Table(cols)


def bad_pixel_mask(inst: Instrument, chip: int) -> np.ndarray:
    """True where detector ``chip`` has a dead or hot pixel or a bad column segment."""
    d = _defects(inst, chip)
    mask = np.zeros((inst.ny, inst.nx), dtype=bool)
    mask.ravel()[d.dead] = True
    mask.ravel()[d.hot] = True
    mask[d.dead_col[1]:, d.dead_col[0]] = True
    mask[d.hot_col[1]:, d.hot_col[0]] = True
    return mask


def _pointing(field: Field, band: str, **kw: object) -> Pointing:
    args: dict = {"field": field.name, "ra": field.ra, "dec": field.dec, "band": band,
                  "mjd_obs": 60441.1, "dit": 20.0, "ndit": 1, "airmass": 1.2,
                  "seeing_arcsec": 0.8, "ellipticity": 0.06, "psf_pa_deg": 40.0}
    args.update(kw)
    return Pointing(**args)


def _calibrate(inst, hdul: fits.HDUList, truth, chip: int, p: Pointing) -> np.ndarray:
    """(raw − bias − dark) / flat − sky with the true detector calibration."""
    raw = hdul[chip].data.astype(np.float64)
    dark = dark_current_map(inst, chip) * p.exptime / inst.gain
    return (raw - bias_level(inst, chip) - dark) / flat_field(inst, chip) - truth.sky_level


@pytest.mark.parametrize(("camera", "band", "dit", "ndit"),
                         [("vst", "r", 30.0, 1), ("vista", "Ks", 2.0, 2)])
def test_star_flux_after_calibration(camera: str, band: str, dit: float, ndit: int) -> None:
    inst = instrument(camera, DETECTOR_SCALE)
    f = field_by_name("ngc6791")
    p = _pointing(f, band, dit=dit, ndit=ndit, zp_offset=0.03)
    chip = 1
    bpm = bad_pixel_mask(inst, chip)
    box = 20
    # A clean spot away from the edges and the bad pixels.
    x0, y0 = next((x + 0.3, y + 0.6) for y in range(40, inst.ny - 40, 7)
                  for x in range(40, inst.nx - 40, 7)
                  if not bpm[y - box:y + box + 1, x - box:x + box + 1].any())
    ra, dec = true_wcs(inst, p, chip).all_pix2world([[x0, y0]], 0)[0]
    mag = 16.0 if camera == "vst" else 13.0
    hdul, truth = simulate_exposure(inst, one_star(ra, dec, band, mag), p,
                                    np.random.default_rng(3))
    row = truth.detectors[chip - 1].sources
    assert len(row) == 1
    assert abs(row["x"][0] - x0) < 1e-3 and abs(row["y"][0] - y0) < 1e-3
    filt = inst.filter(band)
    zp = filt.zeropoint - filt.extinction * (p.mean_airmass - 1) + p.zp_offset
    expected = p.exptime * 10 ** (-0.4 * (mag - zp))
    assert row["flux_adu"][0] == pytest.approx(expected, rel=1e-9)
    assert not row["saturated"][0]
    img = _calibrate(inst, hdul, truth, chip, p)
    ix, iy = round(x0), round(y0)
    cut = img[iy - box:iy + box + 1, ix - box:ix + box + 1]
    measured = cut.sum()
    sigma = math.sqrt((expected + cut.size * truth.sky_level) / inst.gain
                      + cut.size * ndit * (inst.read_noise / inst.gain) ** 2)
    assert abs(measured - expected) < 5 * sigma + 0.003 * expected
    # The background around the star is flat and zero once calibrated.
    background = np.median(img[~bpm])
    assert abs(background) < 0.05 * math.sqrt(truth.sky_level / inst.gain + 1)


def test_true_wcs_differs_from_header_by_the_pointing_error() -> None:
    inst = instrument("vista", DETECTOR_SCALE)
    f = field_by_name("vvv_disc")
    err = (5.0, -3.0)
    p = _pointing(f, "J", dit=6.0, pointing_error_arcsec=err)
    hdul, truth = simulate_exposure(inst, one_star(f.ra, f.dec, "J", 30.0), p,
                                    np.random.default_rng(1))
    edge = field_edge_arcsec(inst)
    cosd = math.cos(math.radians(f.dec))
    for chip in range(1, inst.n_detectors + 1):
        nominal = WCS(hdul[chip].header)
        true = truth.detectors[chip - 1].wcs
        centre = [[(inst.nx - 1) / 2, (inst.ny - 1) / 2]]
        (ra_n, de_n), = nominal.all_pix2world(centre, 0)
        (ra_t, de_t), = true.all_pix2world(centre, 0)
        east = (ra_t - ra_n) * cosd * 3600
        north = (de_t - de_n) * 3600
        x_k, y_k = inst.layout[chip - 1]
        dist = DISTORTION_EDGE_ARCSEC * (math.hypot(x_k, y_k) / edge) ** 3
        assert math.hypot(east - err[0], north - err[1]) <= dist + 0.02
    # Round trip through the truth file keeps the TAN-SIP mapping.
    hdr = fits.Header(truth.detectors[0].wcs_cards)
    assert hdr["CTYPE1"] == "RA---TAN-SIP"
    grid = np.array([[0.0, 0.0], [inst.nx - 1.0, inst.ny - 1.0], [10.0, 99.0]])
    assert np.allclose(WCS(hdr).all_pix2world(grid, 0),
                       truth.detectors[0].wcs.all_pix2world(grid, 0), atol=1e-10, rtol=0)
    # The true radial distortion reaches DISTORTION_EDGE_ARCSEC at the far corner.
    p0 = _pointing(f, "J", dit=6.0)
    far = max(range(inst.n_detectors), key=lambda k: math.hypot(*inst.layout[k]))
    x_k, y_k = inst.layout[far]
    corner = [[-0.5 if x_k > 0 else inst.nx - 0.5, inst.ny - 0.5 if y_k > 0 else -0.5]]
    (ra1, de1), = true_wcs(inst, p0, far + 1).all_pix2world(corner, 0)
    hdul0, _ = simulate_exposure(inst, one_star(f.ra, f.dec, "J", 30.0), p0,
                                 np.random.default_rng(1))
    (ra2, de2), = WCS(hdul0[far + 1].header).all_pix2world(corner, 0)
    shift = math.hypot((ra1 - ra2) * cosd, de1 - de2) * 3600
    assert shift == pytest.approx(DISTORTION_EDGE_ARCSEC, rel=0.05)


def test_headers_carry_the_eso_keywords(frames: list, sky_vvv: Table) -> None:
    inst = instrument("vista", DETECTOR_SCALE)
    f = next(fr for fr in frames if fr.kind == "science" and fr.telescope == "vista")
    p = f.pointing
    hdul, _ = simulate_exposure(inst, sky_vvv, p, np.random.default_rng(2))
    h = hdul[0].header
    assert h["NAXIS"] == 0 and len(hdul) == 1 + inst.n_detectors
    assert (h["ORIGIN"], h["TELESCOP"], h["INSTRUME"]) == ("ESO-PARANAL", "ESO-VISTA", "VIRCAM")
    assert h["RADESYS"] == "ICRS" and h["EQUINOX"] == 2000.0
    assert h["EXPTIME"] == h["ESO DET DIT"] * h["ESO DET NDIT"]
    assert h["MJD-OBS"] == pytest.approx(p.mjd_obs, abs=1e-8)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", h["DATE-OBS"])
    assert (h["ESO DPR CATG"], h["ESO DPR TYPE"], h["ESO DPR TECH"]) == (
        "SCIENCE", "OBJECT", "IMAGE,JITTER")
    for key in ("ESO OBS ID", "ESO OBS NAME", "ESO OBS PROG ID", "ESO TPL ID", "ESO TPL NEXP",
                "ESO TPL EXPNO", "ESO INS FILT1 NAME", "ESO TEL AIRM START",
                "ESO TEL AIRM END", "ESO TEL AMBI FWHM START", "CASUTILE", "CASUJITR",
                "OBJECT", "RA", "DEC", "ARCFILE"):
        assert key in h, key
    assert h["ESO INS FILT1 NAME"] == inst.filter(p.band).eso_name
    assert 1 <= h["CASUTILE"] <= 6 and h["ESO TPL NEXP"] == 12
    assert 1.0 <= h["ESO TEL AIRM START"] <= 1.6
    assert h["ARCFILE"] == f.raw_name
    assert re.fullmatch(r"VCAM\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\.fits", f.raw_name)
    e = hdul[5].header
    assert e["EXTNAME"] == "DET5.CHIP1" and e["ESO DET CHIP NO"] == 5
    assert (e["NAXIS1"], e["NAXIS2"]) == (inst.nx, inst.ny)
    for key in ("GAIN", "READNOIS", "SATURATE", "ESO DET CHIP ID", "CD1_1", "CD2_2", "CRVAL1",
                "CRPIX1"):
        assert key in e, key
    assert e["CTYPE1"] == "RA---TAN" and e["CRPIX1"] == (inst.nx + 1) / 2
    assert e["CD1_1"] == pytest.approx(-inst.pixel_scale / 3600)
    vst = instrument("vst", DETECTOR_SCALE)
    hdul2, _ = simulate_exposure(vst, sky_vvv, _pointing(field_by_name("vvv_disc"), "g"),
                                 np.random.default_rng(2))
    assert hdul2[0].header["ESO DPR TECH"] == "IMAGE,DITHER"
    assert hdul2[1].data.dtype == np.uint16 and hdul2[1].header["EXTNAME"] == "DET1.CHIP1"


def test_determinism(frames: list, sky_pn: Table) -> None:
    f = field_by_name("vphas_pn")
    again = build_sky(f, synthetic_truth(f), SEED, ALL_BANDS, _epochs(frames, f.name),
                      region=[(f.ra, f.dec, 0.08)])
    assert len(again) == len(sky_pn)
    for name in ("sky_id", "ra", "dec", "mag_r", "mag_Ks", "kind"):
        assert np.array_equal(np.asarray(again[name]), np.asarray(sky_pn[name]))
    inst = instrument("vst", DETECTOR_SCALE)
    p = _pointing(f, "r")
    a, ta = simulate_exposure(inst, sky_pn, p, np.random.default_rng(11))
    b, tb = simulate_exposure(inst, sky_pn, p, np.random.default_rng(11))
    c, _ = simulate_exposure(inst, sky_pn, p, np.random.default_rng(12))
    assert all(np.array_equal(x.data, y.data) for x, y in zip(a[1:], b[1:], strict=True))
    assert not np.array_equal(a[3].data, c[3].data)
    assert np.array_equal(ta.detectors[3].sources["sky_id"], tb.detectors[3].sources["sky_id"])
    other = build_sky(f, synthetic_truth(f), SEED + 1, ALL_BANDS, _epochs(frames, f.name),
                      region=[(f.ra, f.dec, 0.08)])
    assert len(other) != len(sky_pn) or not np.array_equal(other["ra"], sky_pn["ra"])
    # A smaller region gives exactly the part of the larger sky inside it.
    small = build_sky(f, synthetic_truth(f), SEED, ALL_BANDS, _epochs(frames, f.name),
                      region=[(f.ra, f.dec, 0.02)])
    assert len(small) < len(sky_pn)
    big = {int(i): k for k, i in enumerate(sky_pn["sky_id"])}
    rows = [big[int(i)] for i in small["sky_id"]]
    assert np.array_equal(np.asarray(sky_pn["ra"])[rows], np.asarray(small["ra"]))
    assert np.array_equal(np.asarray(sky_pn["mag_J"])[rows], np.asarray(small["mag_J"]))
    assert len(set(sky_pn["sky_id"])) == len(sky_pn)


@pytest.mark.parametrize("name", ["vvv_disc", "vphas_pn"])
def test_transient_absent_night1_present_night2(name: str, frames: list, sky_vvv: Table,
                                                sky_pn: Table) -> None:
    sky = sky_vvv if name == "vvv_disc" else sky_pn
    trans = sky[sky["kind"] == "transient"]
    assert len(trans) == 1
    camera, band = ("vista", "Ks") if name == "vvv_disc" else ("vst", "r")
    t1, t2 = _night_mjd(frames, name, 0), _night_mjd(frames, name, 1)
    assert np.isnan(mag_at(trans, band, t1)[0])
    assert 15.5 < mag_at(trans, band, t2)[0] < 17.5
    inst = instrument(camera, DETECTOR_SCALE)
    (ra,), (dec,) = propagate(trans, t2)
    chip = 1
    seen = []
    for mjd in (t1, t2):
        # Point so that the transient falls near the centre of detector 1.
        x_k, y_k = inst.layout[chip - 1]
        f = Field("_", ra, dec, 1.0, "")
        pra, pdec = f.from_tangent(-x_k / 3600, -y_k / 3600)
        p = _pointing(field_by_name(name), band, ra=float(pra), dec=float(pdec), mjd_obs=mjd,
                      dit=10.0)
        _, truth = simulate_exposure(inst, sky, p, np.random.default_rng(5))
        ids = set(truth.detectors[chip - 1].sources["sky_id"])
        seen.append(int(trans["sky_id"][0]) in ids)
    assert seen == [False, True]


def test_planetary_nebula_bright_in_halpha(sky_pn: Table) -> None:
    pn = sky_pn[np.isin(sky_pn["kind"], ["pn_nebula", "pn_central_star"])]
    assert sorted(pn["kind"]) == ["pn_central_star", "pn_nebula"]
    star = pn[pn["kind"] == "pn_central_star"][0]
    assert bool(star["in_gaia"])
    assert star["mag_u"] - star["mag_g"] == pytest.approx(-0.4, abs=0.1)
    assert all(PN_PEAK_SB[b] - PN_PEAK_SB["Halpha"] >= 3.0 for b in ALL_BANDS if b != "Halpha")
    neb = pn[pn["kind"] == "pn_nebula"][0]
    inst = instrument("vst", DEMO_DETECTOR_SCALE["vst"])
    f = field_by_name("vphas_pn")
    sb = {}
    for band in ("Halpha", "r"):
        p = _pointing(f, band, ra=float(neb["ra"]), dec=float(neb["dec"]), dit=60.0)
        hdul, truth = simulate_exposure(inst, pn, p, np.random.default_rng(9))
        values = []
        for det in truth.detectors:
            if "pn_nebula" not in set(det.sources["kind"]):
                continue
            img = _calibrate(inst, hdul, truth, det.chip, p)
            ny, nx = img.shape
            yy, xx = np.mgrid[0:ny, 0:nx]
            world = det.wcs.all_pix2world(np.column_stack([xx.ravel(), yy.ravel()]), 0)
            cosd = math.cos(math.radians(float(neb["dec"])))
            de = (world[:, 0] - float(neb["ra"])) * cosd * 3600
            dn = (world[:, 1] - float(neb["dec"])) * 3600
            pa = math.radians(float(neb["pa_deg"]))
            a = float(neb["r_eff_arcsec"])
            b = a * float(neb["axis_ratio"])
            rho = np.hypot((de * math.sin(pa) + dn * math.cos(pa)) / a,
                           (de * math.cos(pa) - dn * math.sin(pa)) / b)
            shell = (rho > 0.72) & (rho < 0.88) & ~bad_pixel_mask(inst, det.chip).ravel()
            values.append(img.ravel()[shell])
        counts = np.median(np.concatenate(values))
        sb[band] = truth.zp_true - 2.5 * math.log10(counts / p.exptime / inst.pixel_scale**2)
    print(sb)
    assert sb["r"] - sb["Halpha"] > 2.5
    assert 16.3 < sb["Halpha"] < 18.0


def test_calibration_frames() -> None:
    inst = instrument("vista", DETECTOR_SCALE)
    flat = Calibration("FLAT,TWILIGHT", 60440.93, dit=2.0, ndit=2, band="Ks", level_adu=20000.0)
    hdul, truth = simulate_calibration(inst, flat, np.random.default_rng(4))
    h = hdul[0].header
    assert (h["ESO DPR CATG"], h["ESO DPR TYPE"]) == ("CALIB", "FLAT,TWILIGHT")
    assert truth["TWILEVEL"] == 20000.0
    chip = 7
    dark = dark_current_map(inst, chip) * flat.exptime / inst.gain
    ratio = (hdul[chip].data - dark) / 20000.0 / flat_field(inst, chip)
    good = ~bad_pixel_mask(inst, chip)
    assert np.median(ratio[good]) == pytest.approx(1.0, abs=0.002)
    dk = Calibration("DARK", 60441.44, dit=2.0, ndit=2)
    dh, _ = simulate_calibration(inst, dk, np.random.default_rng(4))
    assert dh[0].header["ESO DPR TYPE"] == "DARK" and dh[0].header["ESO INS FILT1 NAME"] == "NONE"
    hot = dark_current_map(inst, chip) > 100
    assert dh[chip].data[hot].mean() > 10 * abs(np.median(dh[chip].data))
    vst = instrument("vst", DETECTOR_SCALE)
    bh, _ = simulate_calibration(vst, Calibration("BIAS", 60440.85), np.random.default_rng(4))
    assert bh[0].header["ESO DPR TYPE"] == "BIAS"
    assert np.median(bh[3].data) == pytest.approx(bias_level(vst, 3), abs=1.0)


def test_write_survey_small_is_resumable(tmp_path: Path) -> None:
    plan = SurveyPlan(
        nights=DEMO_PLAN.nights,
        blocks=(Block("vst", "ngc6791", 0, "r", 20.0, 1, "T", "60.A-9999(A)",
                      "2024-05-11T08:20:05.902"),
                Block("vst", "ngc6791", 1, "g", 20.0, 1, "T", "60.A-9999(A)",
                      "2024-05-25T08:10:05.902")),
        n_calib=1)
    gaia = tmp_path / "gaia"
    (tmp_path / "truth").mkdir()
    ngc = field_by_name("ngc6791")
    synthetic_truth(ngc, 800).write(tmp_path / "truth" / "gaia_ngc6791_truth.fits")
    m = write_survey(tmp_path / "out", seed=SEED, detector_scale=0.05, gaia_dir=gaia,
                     plan=plan)
    kinds = sorted(e.kind for e in m.files)
    assert kinds == ["bias", "bias", "flat", "flat"] + ["science"] * 6
    assert len(m.written) == 10 and not m.skipped
    for e in m.files:
        raw = tmp_path / "out" / e.path
        assert raw.exists() and (tmp_path / "out" / e.truth).exists()
        assert re.fullmatch(r"raw/vst/202405(10|24)/OMEGACAM\.[-\dT:.]+\.fits", e.path)
    listed = SurveyManifest.read(tmp_path / "out" / "raw" / "manifest.json")
    assert [e.path for e in listed.files] == [e.path for e in m.files]
    sci = next(e for e in m.files if e.kind == "science")
    head, dets = read_truth(str(tmp_path / "out" / sci.truth))
    assert head["SEED"] == SEED and "ZPTRUE" in head and "PNTERR1" in head
    assert len(dets) == 32 and "CTYPE1" in fits.getheader(tmp_path / "out" / sci.truth, 1)
    before = {e.path: (tmp_path / "out" / e.path).stat().st_mtime_ns for e in m.files}
    again = write_survey(tmp_path / "out", seed=SEED, detector_scale=0.05, gaia_dir=gaia,
                     plan=plan)
    assert not again.written and len(again.skipped) == 10
    assert before == {e.path: (tmp_path / "out" / e.path).stat().st_mtime_ns
                      for e in again.files}
    assert (tmp_path / "out" / "truth" / "sky_ngc6791.fits").exists()
    # A frame lost midway is made again, byte for byte.
    raw = tmp_path / "out" / sci.path
    saved = raw.read_bytes(), (tmp_path / "out" / sci.truth).read_bytes()
    raw.unlink()
    third = write_survey(tmp_path / "out", seed=SEED, detector_scale=0.05, gaia_dir=gaia,
                     plan=plan)
    assert third.written == [sci.path]
    assert (raw.read_bytes(), (tmp_path / "out" / sci.truth).read_bytes()) == saved
    with fits.open(raw, checksum=True) as hdul:
        hdul.verify("exception")


def test_write_survey_in_worker_processes_writes_the_same_bytes(tmp_path: Path) -> None:
    """Frames written by two worker processes are the files one process writes."""
    plan = SurveyPlan(
        nights=DEMO_PLAN.nights[:1],
        blocks=(Block("vst", "ngc6791", 0, "r", 20.0, 1, "T", "60.A-9999(A)",
                      "2024-05-11T08:20:05.902"),),
        n_calib=1)
    (tmp_path / "truth").mkdir()
    synthetic_truth(field_by_name("ngc6791"), 300).write(
        tmp_path / "truth" / "gaia_ngc6791_truth.fits")
    one = write_survey(tmp_path / "one", seed=SEED, detector_scale=0.05,
                       gaia_dir=tmp_path / "gaia", plan=plan, workers=1)
    two = write_survey(tmp_path / "two", seed=SEED, detector_scale=0.05,
                       gaia_dir=tmp_path / "gaia", plan=plan, workers=2)
    assert one.written == two.written and len(one.written) == 5
    files = sorted(p.relative_to(tmp_path / "one")
                   for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) == 2 * 5 + 2  # raw and truth per frame, the sky model, the manifest
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_density_factor_multiplies_the_sources_the_simulator_renders(tmp_path: Path) -> None:
    """``casuvo simulate --scale`` (CASUVO_SCALE) reaches the imaging simulator as its density
    factor: with the same Gaia truth, the sky it observes holds that many times the
    galaxies, and the exposures see more sources; the detectors stay the same size."""
    plan = SurveyPlan(nights=DEMO_PLAN.nights[:1],
                      blocks=(Block("vst", "ngc6791", 0, "r", 20.0, 1, "T", "60.A-9999(A)",
                                    "2024-05-11T08:20:05.902"),),
                      n_calib=1)
    (tmp_path / "truth").mkdir()
    ngc = field_by_name("ngc6791")
    synthetic_truth(ngc, 800).write(tmp_path / "truth" / "gaia_ngc6791_truth.fits")
    counts = {}
    for factor in (1.0, 4.0):
        out = tmp_path / f"x{factor:g}"
        m = write_survey(out, seed=SEED, detector_scale=0.05, gaia_dir=tmp_path / "gaia",
                         plan=plan, density_factor=factor)
        sky = Table.read(out / m.sky["ngc6791"], character_as_bytes=False)
        kinds = np.asarray(sky["kind"])
        science = [e for e in m.files if e.kind == "science"]
        seen = sum(len(table) for e in science
                   for _, table in read_truth(str(out / e.truth))[1].values())
        raw = fits.getheader(out / science[0].path, 1)
        counts[factor] = ((kinds == "galaxy").sum(), (kinds == "star").sum(), seen,
                          (raw["NAXIS1"], raw["NAXIS2"]), sky.meta.get("DENSITY"))
    gal1, stars1, seen1, shape1, density1 = counts[1.0]
    gal4, stars4, seen4, shape4, density4 = counts[4.0]
    assert gal1 >= 10 and 2.5 < gal4 / gal1 < 7.0  # 4 × a Poisson count (12 here)
    assert stars4 == stars1 > 700  # the Gaia truth is the file's, made at its own density
    assert seen4 > seen1
    assert shape4 == shape1 == (102, 205)  # 0.05 × OmegaCAM's 2048 × 4096
    assert (density1, density4) == (None, 4.0)
    with pytest.raises(ValueError, match="density_factor"):
        write_survey(tmp_path / "bad", seed=SEED, gaia_dir=tmp_path / "gaia", plan=plan,
                     density_factor=0.0)
