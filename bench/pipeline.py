# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: the imaging pipeline, each part against a baseline measured in the same run.

1. One full-size VIRCAM exposure (16 × 2048²) simulated, then reduced end to end
   (masters, ISR, sky, detection + 13 apertures, astrometry and zero point per
   detector) — seconds per exposure and per detector.
2. Source detection and photometry of one calibrated full-size detector: casuvo
   (sep, 13 apertures) against SExtractor (``source-extractor``, same threshold,
   minimum area and apertures) on the same image.
3. The Dask pipeline on the demo's second VISTA night with 1 and with 2 workers.
Run in the compute environment: ``var/venv-compute/bin/python bench/pipeline.py``;
``--json PATH`` writes the figures, with issue 12's goals, for ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from casuvo.config import Settings
from casuvo.imaging.detect import APERTURE_FACTORS, DetectionParams, detect_sources
from casuvo.imaging.reduce import reduce_detector, subtract_sky
from casuvo.pipeline import tasks
from casuvo.pipeline.config import load_config
from casuvo.pipeline.rawindex import index_raw
from casuvo.pipeline.runner import run_pipeline
from casuvo.simulate.calibration import Calibration, simulate_calibration
from casuvo.simulate.exposure import simulate_exposure
from casuvo.simulate.fields import field_by_name
from casuvo.simulate.pointing import Pointing
from casuvo.simulate.skymodel import ALL_BANDS, build_sky
from casuvo.surveys.instruments import instrument

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import figure, write_json  # bench/report.py: standard library only

MJD = 60441.1
#: Issue 12's goals: detection + photometry ÷ SExtractor, exposure ÷ 16 SExtractor runs,
#: Dask speed-up from 1 to 2 workers.
DETECT_GOAL, EXPOSURE_GOAL, DASK_GOAL = 1.2, 3.0, 1.8


def full_size_exposure(settings: Settings, work: Path) -> tuple[float, float, Path]:
    """Simulate and reduce one full-size Ks exposure; (simulate s, reduce s, reduced)."""
    inst = instrument("vista")
    field = field_by_name("vvv_disc")
    truth = Table.read(settings.data_dir / "truth" / f"gaia_{field.name}_truth.fits", hdu=1)
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    sky = build_sky(field, truth, 1, ALL_BANDS, (MJD - 1, MJD + 30))
    raw = work / "raw"
    raw.mkdir()
    point = Pointing(field=field.name, ra=field.ra, dec=field.dec, band="Ks", mjd_obs=MJD,
                     dit=2.0, ndit=2, airmass=1.3, seeing_arcsec=0.9, ellipticity=0.05,
                     pointing_error_arcsec=(2.0, -1.5), obs_id=1, object=field.name)
    hdul, _ = simulate_exposure(inst, sky, point, rng)
    hdul.writeto(raw / "VCAM.bench.science.fits")
    for i in range(3):
        for cal in (Calibration("DARK", MJD - 0.3 + i * 0.001, dit=2.0, ndit=2),
                    Calibration("FLAT,TWILIGHT", MJD - 0.2 + i * 0.001, dit=2.0, ndit=1,
                                band="Ks", level_adu=15000.0)):
            h, _ = simulate_calibration(inst, cal, rng)
            h.writeto(raw / f"VCAM.bench.{cal.kind.split(',')[0].lower()}{i}.fits")
    t_sim = time.perf_counter() - t
    cfg = load_config(settings.home / "pipelines" / "vista" / "config.toml")
    index = index_raw(raw.glob("*.fits"), {f.eso_name: f.name for f in inst.filters.values()})
    sci = index.science()[0]
    t = time.perf_counter()
    masters = tasks.make_masters(inst, sci.night, "Ks", index.calibrations(sci.night, "dark"),
                                 index.calibrations(sci.night, "flat"), work / "calib")
    result = tasks.reduce_exposure(cfg, inst, sci, masters,
                                   sorted((settings.data_dir / "gaia").glob("gaia_*.fits")),
                                   work / "red")
    t_red = time.perf_counter() - t
    if isinstance(result, tasks.Failed):
        raise SystemExit(f"full-size reduction failed: {result.message}")
    return t_sim, t_red, raw / "VCAM.bench.science.fits"


def detection_vs_sextractor(raw: Path, calib: Path, work: Path) -> tuple[float, float, int,
                                                                             int]:
    """casuvo detect_sources vs source-extractor on detector 1 after ISR and sky."""
    from casuvo.imaging.calib import MasterCalibration

    with fits.open(raw) as r, fits.open(next(calib.glob("Ks_flat_*.fit"))) as f, \
            fits.open(next(calib.glob("dark_*.fit"))) as d, \
            fits.open(next(calib.glob("Ks_conf_*.fit"))) as c:
        cal = MasterCalibration(d[1].data, f[1].data, c[1].data)
        sky, bkg = subtract_sky(reduce_detector(r[1].data, cal))
        saturate = r[1].header["SATURATE"]
    image = work / "detector1.fits"
    fits.writeto(image, np.nan_to_num(sky), overwrite=True)
    t = time.perf_counter()
    cat = detect_sources(sky, bkg.noise, 0.339, saturate, cal.conf, DetectionParams())
    t_casuvo = time.perf_counter() - t
    rcore = 1.0 / 0.339
    diameters = ",".join(f"{2 * f * rcore:.3f}" for f in APERTURE_FACTORS)
    (work / "default.param").write_text(
        "NUMBER\nX_IMAGE\nY_IMAGE\nFLUX_ISO\nFLUX_APER(13)\nFLUXERR_APER(13)\nELLIPTICITY\n"
        "THETA_IMAGE\nFLUX_RADIUS\nKRON_RADIUS\nFWHM_IMAGE\nFLAGS\n")
    (work / "default.conv").write_text("CONV NORM\n1 2 1\n2 4 2\n1 2 1\n")
    cmd = ["source-extractor", str(image), "-CATALOG_NAME", str(work / "sex.cat"),
           "-CATALOG_TYPE", "FITS_LDAC", "-PARAMETERS_NAME", str(work / "default.param"),
           "-FILTER_NAME", str(work / "default.conv"), "-DETECT_THRESH", "1.5",
           "-ANALYSIS_THRESH", "1.5", "-DETECT_MINAREA", "5", "-PHOT_APERTURES", diameters,
           "-BACK_TYPE", "MANUAL", "-BACK_VALUE", "0.0", "-SATUR_LEVEL", str(saturate),
           "-PIXEL_SCALE", "0.339", "-SEEING_FWHM", "0.9", "-VERBOSE_TYPE", "QUIET",
           "-CHECKIMAGE_TYPE", "NONE", "-NTHREADS", "1"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=work)
    t_sex = time.perf_counter() - t
    with fits.open(work / "sex.cat") as hdul:
        n_sex = len(hdul[2].data)
    return t_casuvo, t_sex, len(cat), n_sex


def dask_workers(settings: Settings, work: Path) -> dict[int, float]:
    """The demo's second VISTA night with 1 and 2 local workers, into fresh product trees."""
    cfg = load_config(settings.home / "pipelines" / "vista" / "config.toml")
    raw = settings.data_dir / "raw" / "vista"
    night = sorted(p.name for p in raw.iterdir() if p.is_dir())[-1]
    times = {}
    for n in (1, 2):
        out = work / f"products_{n}"
        t = time.perf_counter()
        summary = run_pipeline(cfg, raw, settings.data_dir / "gaia", out, dsn=None,
                               night=night, workers=n, progress=False)
        times[n] = time.perf_counter() - t
        assert summary.failed == 0 and summary.ok > 0, summary
        shutil.rmtree(out)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write the figures for bench/report.py")
    args = parser.parse_args()
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(dir=settings.var) as tmp:
        work = Path(tmp)
        t_sim, t_red, raw = full_size_exposure(settings, work)
        print(f"full-size VIRCAM Ks exposure (16 × 2048²): simulate {t_sim:.1f} s, "
              f"reduce end to end {t_red:.1f} s ({t_red / 16:.2f} s per detector)")
        t_c, t_s, n_c, n_s = detection_vs_sextractor(raw, work / "calib", work)
        print(f"detection + 13 apertures on one calibrated 2048² detector: casuvo/sep "
              f"{t_c:.2f} s ({n_c} sources), SExtractor {t_s:.2f} s ({n_s} sources); "
              f"ratio casuvo/SExtractor {t_c / t_s:.2f}")
        times = dask_workers(settings, work)
        print(f"Dask, VISTA night 2 of the demo: 1 worker {times[1]:.1f} s, 2 workers "
              f"{times[2]:.1f} s; speed-up {times[1] / times[2]:.2f}")
    if args.json:
        sex = "SExtractor, same image and parameters, 1 thread"
        detect, exposure, speedup = t_c / t_s, t_red / (16 * t_s), times[1] / times[2]
        write_json(args.json, "pipeline", [
            figure("detection + 13 apertures, one 2048² detector (s; ratio = ÷ baseline)",
                   t_c, "s", baseline=sex, baseline_value=t_s, ratio=detect,
                   goal=f"≤ {DETECT_GOAL:g}× SExtractor", met=detect <= DETECT_GOAL),
            figure("whole VIRCAM exposure (16 × 2048²) reduced on one core (s; "
                   "ratio = ÷ baseline)", t_red, "s",
                   baseline="16 × SExtractor's per-detector time", baseline_value=16 * t_s,
                   ratio=exposure, goal=f"≤ {EXPOSURE_GOAL:g}× 16 SExtractor runs",
                   met=exposure <= EXPOSURE_GOAL),
            figure("Dask pipeline, demo VISTA night 2, 2 workers (s; ratio = speed-up)",
                   times[2], "s", baseline="same, 1 worker", baseline_value=times[1],
                   ratio=speedup, goal=f"≥ {DASK_GOAL:g}× speed-up", met=speedup >= DASK_GOAL),
        ], sources={"casuvo": n_c, "sextractor": n_s}, simulate_s=t_sim)


if __name__ == "__main__":
    main()
