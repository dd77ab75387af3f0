# SPDX-License-Identifier: BSD-3-Clause
"""The units of work of an imaging pipeline, as run on Dask workers.

Each task reads files, calls :mod:`casuvo.imaging`, writes its products
atomically and returns a small picklable result.  A task whose products and
completion marker (``<first product>.done.json``) already exist returns the
recorded result without redoing anything: that is how an interrupted run
resumes.  Problems with an input raise :class:`ProcessingError` naming the
file; the driver records them and carries on with the rest.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.imaging import casu, combine, qc
from casuvo.imaging.astrometry import AstrometryError
from casuvo.imaging.calib import MasterCalibration, combine_darks, combine_flats, confidence_map
from casuvo.imaging.detector import ExposureInfo, calibrate_detector
from casuvo.imaging.photcal import PhotometryError
from casuvo.imaging.reduce import reduce_detector, subtract_sky
from casuvo.imaging.reference import load_gaia
from casuvo.instruments import Instrument
from casuvo.pipeline.config import PipelineConfig
from casuvo.pipeline.rawindex import RawFile

__all__ = ["Failed", "ProcessingError", "ProductResult", "make_masters", "make_stack",
           "make_tile", "reduce_exposure"]

warnings.filterwarnings("ignore", category=FITSFixedWarning)


class ProcessingError(RuntimeError):
    """A product could not be made; the message names the input and the problem."""


@dataclass(frozen=True)
class Failed:
    """A task's failure, returned (not raised) so dependent tasks can go on without it."""

    what: str
    inputs: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class ProductResult:
    """What a task made: files, inputs, QC, keywords, time."""

    kind: str
    """'masters', 'exposure', 'stack' or 'tile'."""
    name: str
    files: tuple[str, ...]
    inputs: tuple[str, ...]
    qc: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    seconds: float = 0.0
    resumed: bool = False


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".done.json")


def _done(first: Path) -> ProductResult | None:
    marker = _marker(first)
    if first.exists() and marker.exists():
        data = json.loads(marker.read_text())
        data["files"], data["inputs"] = tuple(data["files"]), tuple(data["inputs"])
        return ProductResult(**{**data, "resumed": True})
    return None


def _finish(result: ProductResult) -> ProductResult:
    marker = _marker(Path(result.files[0]))
    tmp = marker.with_name("." + marker.name + ".tmp")
    tmp.write_text(json.dumps(asdict(result), default=float))
    os.replace(tmp, marker)
    return result


def _guard(what: str, inputs: Sequence[str], fn, *args):  # noqa: ANN001, ANN202
    try:
        return fn(*args)
    except (ProcessingError, AstrometryError, PhotometryError, OSError, ValueError,
            KeyError) as exc:
        return Failed(what, tuple(inputs), str(exc))


def _detectors(path: Path) -> list[tuple[str, np.ndarray, fits.Header]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            with fits.open(path, memmap=False) as hdul:
                return [(h.header.get("EXTNAME", f"EXT{i}"), np.asarray(h.data, np.float32),
                         h.header.copy()) for i, h in enumerate(hdul[1:], start=1)
                        if h.data is not None]
        except Exception as exc:
            raise ProcessingError(f"{path.name}: unreadable or truncated FITS ({exc})") from exc


# --------------------------------------------------------------------- masters

def _masters_impl(inst: Instrument, night: str, band: str, darks: Sequence[RawFile],
                  flats: Sequence[RawFile], out: Path) -> ProductResult:
    t0 = time.perf_counter()
    first = out / f"{band}_flat_{night}.fit"
    if done := _done(first):
        return done
    if not darks:
        raise ProcessingError(f"night {night}: no dark or bias frames")
    if not flats:
        raise ProcessingError(f"night {night}: no twilight flats in {band}")
    dark_frames = [_detectors(d.path) for d in darks]
    flat_frames = [_detectors(f.path) for f in flats]
    dark_hdus, flat_hdus, conf_hdus = [fits.PrimaryHDU()], [fits.PrimaryHDU()], \
        [fits.PrimaryHDU()]
    for k, (name, _, _) in enumerate(dark_frames[0]):
        dark = combine_darks([frame[k][1] for frame in dark_frames])
        flat = combine_flats([frame[k][1] for frame in flat_frames], dark)
        conf = confidence_map(flat, dark)
        for hdus, data in ((dark_hdus, dark), (flat_hdus, flat), (conf_hdus, conf)):
            hdus.append(fits.ImageHDU(data, name=name))
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for hdus, fname in ((flat_hdus, first.name), (dark_hdus, f"dark_{night}_{band}.fit"),
                        (conf_hdus, f"{band}_conf_{night}.fit")):
        path = out / fname
        tmp = path.with_name("." + path.name + ".tmp")
        fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
        os.replace(tmp, path)
        files.append(str(path))
    return _finish(ProductResult(
        "masters", first.name, tuple(files),
        tuple(str(f.path) for f in (*darks, *flats)),
        meta={"night": night, "band": band, "instrument": inst.name},
        seconds=time.perf_counter() - t0))


def make_masters(inst: Instrument, night: str, band: str, darks: Sequence[RawFile],
                 flats: Sequence[RawFile], out: Path) -> ProductResult | Failed:
    """Master dark (or bias), flat and confidence map for one night and band."""
    return _guard(f"masters {night} {band}", [str(f.path) for f in (*darks, *flats)],
                  _masters_impl, inst, night, band, darks, flats, out)


def _load_masters(masters: ProductResult) -> list[MasterCalibration]:
    flat_path, dark_path, conf_path = (Path(f) for f in masters.files)
    with fits.open(flat_path) as f, fits.open(dark_path) as d, fits.open(conf_path) as c:
        return [MasterCalibration(np.asarray(d[i].data), np.asarray(f[i].data),
                                  np.asarray(c[i].data)) for i in range(1, len(f))]


# ------------------------------------------------------------------- exposures

def _exposure_impl(cfg: PipelineConfig, inst: Instrument, raw: RawFile, masters: ProductResult,
                   gaia_files: Sequence[Path], work: Path) -> ProductResult:
    t0 = time.perf_counter()
    out = work / f"{raw.path.stem}_red.fits"
    if done := _done(out):
        return done
    filt = inst.filter(raw.band)
    cals = _load_masters(masters)
    dets = _detectors(raw.path)
    if len(dets) != len(cals):
        raise ProcessingError(f"{raw.path.name}: {len(dets)} detectors, masters have "
                              f"{len(cals)}")
    radius = 1.2 * max(np.hypot(*inst.detector_size_arcsec) / 2 + np.hypot(x, y)
                       for x, y in inst.layout) / 3600
    ref = load_gaia(gaia_files, raw.ra, raw.dec, radius, raw.mjd, cfg.g_max)
    if len(ref) == 0:
        raise ProcessingError(f"{raw.path.name}: no Gaia reference stars around "
                              f"({raw.ra:.4f}, {raw.dec:.4f})")
    info = ExposureInfo(raw.band, raw.exptime, raw.airmass, raw.mjd, inst.pixel_scale,
                        inst.saturation)
    hdus = [fits.PrimaryHDU()]
    det_qc, problems = [], []
    for (name, data, header), cal in zip(dets, cals, strict=True):
        sky, bkg = subtract_sky(reduce_detector(data, cal))
        try:
            res = calibrate_detector(sky, cal.conf, bkg, WCS(header), ref, filt, info,
                                     cfg.detection)
        except (AstrometryError, PhotometryError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        h = res.wcs.to_header(relax=True)
        h.update({"MAGZPT": res.zp.magzpt, "MAGZRR": res.zp.magzrr,
                  "SKYLEVEL": bkg.level, "SKYNOISE": bkg.noise, "EXPTIME": raw.exptime,
                  "DETNAME": name, **res.apcor})
        hdus.append(fits.ImageHDU(sky, header=h, name=name))
        det_qc.append(res.qc)
    if len(det_qc) < max(1, len(dets) // 2):
        raise ProcessingError(f"{raw.path.name}: calibration failed on {len(problems)} of "
                              f"{len(dets)} detectors: {'; '.join(problems[:3])}")
    tmp = out.with_name("." + out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, out)
    summary = qc.combine(det_qc, raw.band, cfg.thresholds)
    return _finish(ProductResult(
        "exposure", out.name, (str(out), masters.files[2]), (str(raw.path),),
        qc=summary.as_dict(),
        meta={"problems": problems, "night": raw.night, "band": raw.band},
        seconds=time.perf_counter() - t0))


def reduce_exposure(cfg: PipelineConfig, inst: Instrument, raw: RawFile,
                    masters: ProductResult | Failed, gaia_files: Sequence[Path],
                    work: Path) -> ProductResult | Failed:
    """Calibrate one science exposure (all detectors) and solve its WCS and zero points."""
    if isinstance(masters, Failed):
        return Failed(raw.path.name, (str(raw.path),),
                      f"{raw.path.name}: no calibration ({masters.message})")
    return _guard(raw.path.name, [str(raw.path)], _exposure_impl, cfg, inst, raw, masters,
                  gaia_files, work)
