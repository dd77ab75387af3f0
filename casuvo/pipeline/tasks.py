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
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from casuvo.imaging import casu, combine, photcal, qc
from casuvo.imaging.astrometry import (
    AstrometryError,
    AstrometryResult,
    DetectorStars,
    solve_mosaic,
)
from casuvo.imaging.calib import (
    MasterCalibration,
    combine_darks,
    combine_flats,
    confidence_map,
    image_median,
)
from casuvo.imaging.detector import (
    Calibrated,
    ExposureInfo,
    astrometric_stars,
    calibrate,
    calibrate_detector,
    measure,
)
from casuvo.imaging.photcal import PhotometryError
from casuvo.imaging.reduce import Background, mask_spikes, reduce_detector, subtract_sky
from casuvo.imaging.reference import Reference, load_gaia
from casuvo.pipeline.config import PipelineConfig
from casuvo.pipeline.rawindex import RawFile
from casuvo.storage.files import write_fits, write_json
from casuvo.surveys.instruments import Filter, Instrument

__all__ = ["Failed", "ProcessingError", "ProductResult", "make_masters", "make_stack",
           "make_tile", "reduce_exposure", "tile_pieces"]

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


@dataclass(frozen=True)
class _Extension:
    """One image extension of a raw or reduced exposure file."""

    name: str
    data: np.ndarray
    header: fits.Header


@dataclass(frozen=True)
class _Measured:
    """One detector (or a tile) after sky subtraction and source measurement, before its
    astrometric and photometric calibration."""

    name: str
    sky: np.ndarray
    """Sky-subtracted image (ADU)."""
    conf: np.ndarray
    """Confidence map of the image."""
    background: Background
    info: ExposureInfo
    catalogue: Table
    """The sources measured on ``sky`` (pixel coordinates, not yet calibrated)."""
    wcs: WCS
    """The header WCS the astrometric solution starts from."""


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
    write_json(_marker(Path(result.files[0])), asdict(result), default=float)
    return result


def _guard(what: str, inputs: Sequence[str], fn, *args):
    try:
        return fn(*args)
    except (ProcessingError, AstrometryError, PhotometryError, OSError, ValueError,
            KeyError) as exc:
        message = str(exc)
        if not any(Path(i).name in message for i in inputs) and what not in message:
            message = f"{what}: {message}"
        return Failed(what, tuple(inputs), message)


def _detectors(path: Path) -> list[_Extension]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            # mapped, then copied once into native float32 (reading whole and then
            # converting copied every detector twice); scaled integers cannot be mapped
            scaled = any(k in fits.getheader(path, 1) for k in ("BZERO", "BSCALE", "BLANK"))
            with fits.open(path, memmap=not scaled) as hdul:
                return [_Extension(h.header.get("EXTNAME", f"EXT{i}"),
                                   np.asarray(h.data, np.float32) if scaled
                                   else h.data.astype(np.float32), h.header.copy())
                        for i, h in enumerate(hdul[1:], start=1) if h.data is not None]
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
    darks_k = [combine_darks([frame[k].data for frame in dark_frames])
               for k in range(len(dark_frames[0]))]
    # Each twilight frame's level over the whole mosaic keeps chip-to-chip gains.
    levels = [float(np.median([image_median(d.data - darks_k[k]) for k, d in enumerate(frame)]))
              for frame in flat_frames]
    flats_k = [combine_flats([frame[k].data for frame in flat_frames], darks_k[k], levels)
               for k in range(len(darks_k))]
    norm = float(np.median([image_median(f) for f in flats_k]))
    cals = []
    for k, ext in enumerate(dark_frames[0]):
        flat = flats_k[k] / norm
        conf = confidence_map(flat, darks_k[k])
        cals.append(MasterCalibration(darks_k[k], flat, conf))
        for hdus, data in ((dark_hdus, darks_k[k]), (flat_hdus, flat), (conf_hdus, conf)):
            hdus.append(fits.ImageHDU(data, name=ext.name))
    files = []
    for hdus, fname in ((flat_hdus, first.name), (dark_hdus, f"dark_{night}_{band}.fit"),
                        (conf_hdus, f"{band}_conf_{night}.fit")):
        path = out / fname
        write_fits(fits.HDUList(hdus), path)
        files.append(str(path))
    _remember_masters(files, cals)
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


def _stars(inst: Instrument, m: _Measured) -> DetectorStars:
    """The astrometric stars of detector ``DETn.CHIP1`` with its place in the focal plane."""
    match = re.match(r"DET(\d+)", m.name)
    if not match:
        raise ProcessingError(f"extension {m.name!r}: cannot tell which detector it is")
    x, y = astrometric_stars(m.catalogue)
    return DetectorStars(x, y, m.wcs, inst.layout[int(match.group(1)) - 1])


def _mask_spikes(sky: np.ndarray, cat) -> None:
    """Blank hot pixels and cosmic-ray spikes (sharp class-0 detections) in place, so
    that stacks and tiles take those pixels from the other exposures."""
    spikes = (cat["Classification"] == 0) & (cat["FWHM"] < 1.5)
    ny, nx = sky.shape
    for x, y in zip(cat["X_coordinate"][spikes], cat["Y_coordinate"][spikes], strict=True):
        ix, iy = int(round(x)) - 1, int(round(y)) - 1
        sky[max(iy - 1, 0):min(iy + 2, ny), max(ix - 1, 0):min(ix + 2, nx)] = np.nan


def _calibrate_all(measured: Sequence[_Measured],
                   solutions: Sequence[AstrometryResult | None], ref: Reference, filt: Filter,
                   cfg: PipelineConfig) -> list[Calibrated | str]:
    """Calibrate every detector of a camera image; a detector with too few calibration
    stars takes the median zero point of the others.  Failures come back as messages."""
    out: list[Calibrated | str | None] = []
    for m, sol in zip(measured, solutions, strict=True):
        try:
            # The mosaic solution places every detector, even one without stars.
            if sol is None:
                raise AstrometryError("no astrometric solution")
            out.append(calibrate(m.sky, m.catalogue, sol, m.background, ref, filt, m.info,
                                 cfg.detection))
        except PhotometryError:
            out.append(None)
        except AstrometryError as exc:
            out.append(str(exc))
    zps = [c.zp for c in out if not isinstance(c, str | None)]
    if not zps:
        return [c if isinstance(c, str) else "no detector has calibration stars" for c in out]
    camera = photcal.ZeroPoint(float(np.median([z.magzpt for z in zps])),
                               float(np.median([z.magzrr for z in zps])), 0)
    good = [c for c in out if not isinstance(c, str | None)]
    apcor = {k: float(np.nanmedian([c.apcor[k] for c in good])) for k in good[0].apcor}
    seeings = [(c.qc.seeing_arcsec, c.qc.ellipticity) for c in good
               if np.isfinite(c.qc.seeing_arcsec)]
    seeing = (float(np.median([s for s, _ in seeings])),
              float(np.median([e for _, e in seeings]))) if seeings else \
        qc.camera_seeing([(m.sky, c.catalogue, c.stars) for m, c in zip(measured, out,
                                                                        strict=True)
                          if not isinstance(c, str | None)], measured[0].info.pixel_scale)
    # One zero point for the whole camera (the flats keep the detectors' relative
    # gains), as CASU's MAGZPT: the median over detectors, robust to a sparse one.
    camera = photcal.ZeroPoint(camera.magzpt, float(1.2533 * np.std(
        [z.magzpt for z in zps]) / np.sqrt(len(zps))) if len(zps) > 1 else camera.magzrr,
        int(sum(z.n_stars for z in zps)))
    final: list[Calibrated | str] = []
    for first, m, sol in zip(out, measured, solutions, strict=True):
        if isinstance(first, str) or sol is None:  # no solution: a message already
            final.append(first if isinstance(first, str) else "no astrometric solution")
            continue
        final.append(calibrate(m.sky, m.catalogue, sol, m.background, ref, filt, m.info,
                               cfg.detection, zero=camera, camera_apcor=apcor,
                               camera_seeing=seeing))
    return final


#: The master calibrations this process made or read last, by their files' paths,
#: sizes and modification times: every exposure of a night and band uses the same
#: masters, and reading them back (3 × 16 full-size detectors, big-endian) cost as
#: much as calibrating one detector.  One entry: a worker goes through a night's
#: exposures band by band.
_recent_masters: dict[tuple, list[MasterCalibration]] = {}


def _masters_key(files: Sequence[str]) -> tuple:
    return tuple((f, (st := Path(f).stat()).st_size, st.st_mtime_ns) for f in files)


def _remember_masters(files: Sequence[str], cals: list[MasterCalibration]) -> None:
    _recent_masters.clear()
    _recent_masters[_masters_key(files)] = cals


def _load_masters(masters: ProductResult) -> list[MasterCalibration]:
    key = _masters_key(masters.files)
    if (cals := _recent_masters.get(key)) is not None:
        return cals
    flat_path, dark_path, conf_path = (Path(f) for f in masters.files)
    with fits.open(flat_path) as f, fits.open(dark_path) as d, fits.open(conf_path) as c:
        # native byte order: arithmetic on big-endian arrays is several times slower
        cals = [MasterCalibration(d[i].data.astype(np.float32),
                                  f[i].data.astype(np.float32),
                                  c[i].data.astype(np.int16)) for i in range(1, len(f))]
    _remember_masters(masters.files, cals)
    return cals


# ------------------------------------------------------------------- exposures

#: Columns of an exposure's detections file (rapid mode), with the calibration per row.
DETECTION_COLUMNS = ("RA", "DEC", "X_coordinate", "Y_coordinate", "Aper_flux_3",
                     "Aper_flux_3_err", "Classification", "Error_bit_flag", "Av_conf",
                     "Peak_height", "Ellipticity")


def _write_detections(path: Path, raw: RawFile, filt: Filter,
                      calibrated: Sequence[tuple[str, Calibrated, float]]) -> None:
    """The calibrated detections of an exposure, every detector in one table.

    Each row carries what turns its flux into a magnitude (MAGZPT, APCOR3,
    EXPTIME, EXTINCT, AIRMASS: :func:`casuvo.catalogue.measurements.aperture_magnitude`)
    and the detector it is on, so the comparison with a reference needs no header.
    """
    parts = []
    for name, res, saturation in calibrated:
        cat = res.catalogue
        part = Table({c: np.asarray(cat[c]) for c in DETECTION_COLUMNS})
        n = len(part)
        part["detector"] = np.full(n, name)
        part["MAGZPT"] = np.full(n, res.zp.magzpt)
        part["APCOR3"] = np.full(n, res.apcor["APCOR3"])
        part["EXPTIME"] = np.full(n, raw.exptime)
        part["EXTINCT"] = np.full(n, filt.extinction)
        part["AIRMASS"] = np.full(n, raw.airmass)
        part["SATURATE"] = np.full(n, saturation)
        parts.append(part)
    table = vstack(parts) if parts else Table()
    table.meta.update({"FILTER": raw.band, "MJD-OBS": raw.mjd, "RAWFILE": raw.path.name})
    hdu = fits.table_to_hdu(table)
    hdu.name = "DETECTIONS"
    write_fits(fits.HDUList([fits.PrimaryHDU(), hdu]), path)


def _exposure_impl(cfg: PipelineConfig, inst: Instrument, raw: RawFile, masters: ProductResult,
                   gaia_files: Sequence[Path], work: Path, detections: bool = False
                   ) -> ProductResult:
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
    for ext, cal in zip(dets, cals, strict=True):
        if ext.data.shape != cal.conf.shape:
            raise ProcessingError(
                f"{raw.path.name}: detector {ext.name} is {ext.data.shape[1]}×"
                f"{ext.data.shape[0]} pixels, its masters {cal.conf.shape[1]}×"
                f"{cal.conf.shape[0]}")
    radius = 1.2 * max(np.hypot(*inst.detector_size_arcsec) / 2 + np.hypot(x, y)
                       for x, y in inst.layout) / 3600
    ref = load_gaia(gaia_files, raw.ra, raw.dec, radius, raw.mjd, cfg.g_max)
    if len(ref) == 0:
        raise ProcessingError(f"{raw.path.name}: no Gaia reference stars around "
                              f"({raw.ra:.4f}, {raw.dec:.4f})")
    info = ExposureInfo(raw.band, raw.exptime, raw.airmass, raw.mjd, inst.pixel_scale,
                        inst.saturation)
    measured = []
    for ext, cal in zip(dets, cals, strict=True):
        sky, bkg = subtract_sky(reduce_detector(ext.data, cal), cfg.background_mesh(inst))
        mask_spikes(sky, bkg.noise)
        det_info = replace(info, saturation=float(ext.header.get("SATURATE", inst.saturation)))
        # an exposure's catalogue is internal: apertures 1–7 (to the "total" one) suffice
        cat = measure(sky, cal.conf, bkg, det_info, cfg.detection, n_apertures=7)
        wcs = WCS(ext.header)
        wcs.pixel_shape = (sky.shape[1], sky.shape[0])
        measured.append(_Measured(ext.name, sky, cal.conf, bkg, det_info, cat, wcs))
    try:
        solutions = solve_mosaic([_stars(inst, m) for m in measured], ref,
                                 (raw.ra, raw.dec), inst.pixel_scale, cfg.search_arcsec)
    except AstrometryError as exc:
        raise ProcessingError(f"{raw.path.name}: astrometric calibration failed ({exc})"
                              ) from exc
    hdus = [fits.PrimaryHDU()]
    det_qc, problems, good = [], [], []
    calibrated = _calibrate_all(measured, solutions, ref, filt, cfg)
    for m, res in zip(measured, calibrated, strict=True):
        _mask_spikes(m.sky, m.catalogue)
        if isinstance(res, str):
            problems.append(f"{m.name}: {res}")
            continue
        good.append((m.name, res, m.info.saturation))
        h = res.wcs.to_header(relax=True)
        h.update({"MAGZPT": res.zp.magzpt, "MAGZRR": res.zp.magzrr,
                  "SKYLEVEL": m.background.level, "SKYNOISE": m.background.noise,
                  "EXPTIME": raw.exptime, "SATURATE": m.info.saturation,
                  "EXTINCT": filt.extinction, "AIRMASS": raw.airmass,
                  "DETNAME": m.name, **res.apcor})
        hdus.append(fits.ImageHDU(m.sky, header=h, name=m.name))
        det_qc.append(res.qc)
    if len(det_qc) < max(1, len(dets) // 2):
        raise ProcessingError(f"{raw.path.name}: calibration failed on {len(problems)} of "
                              f"{len(dets)} detectors: {'; '.join(problems[:3])}")
    meta = {"problems": problems, "night": raw.night, "band": raw.band}
    if detections:
        cat_path = work / f"{raw.path.stem}_det.fits"
        _write_detections(cat_path, raw, filt, good)
        meta["detections"] = str(cat_path)
    write_fits(fits.HDUList(hdus), out, checksum=False)
    summary = qc.combine(det_qc, raw.band, cfg.thresholds)
    return _finish(ProductResult(
        "exposure", out.name, (str(out), masters.files[2]), (str(raw.path),),
        qc=summary.as_dict(), meta=meta, seconds=time.perf_counter() - t0))


def reduce_exposure(cfg: PipelineConfig, inst: Instrument, raw: RawFile,
                    masters: ProductResult | Failed, gaia_files: Sequence[Path],
                    work: Path, *, detections: bool = False) -> ProductResult | Failed:
    """Calibrate one science exposure (all detectors) and solve its WCS and zero points.

    ``detections``: also write its calibrated detections (``<raw>_det.fits``, named
    in the result's ``meta``), which rapid mode compares with a reference.
    """
    if isinstance(masters, Failed):
        return Failed(raw.path.name, (str(raw.path),),
                      f"{raw.path.name}: no calibration ({masters.message})")
    return _guard(raw.path.name, [str(raw.path)], _exposure_impl, cfg, inst, raw, masters,
                  gaia_files, work, detections)


# ---------------------------------------------------------------- stacks/tiles

@dataclass(frozen=True)
class GroupInfo:
    """What a stack or tile product needs to know about its raw exposures."""

    night: str
    run: int
    band: str
    obj: str
    obs_id: int
    prog_id: str
    raws: tuple[RawFile, ...]

    @property
    def mean_airmass(self) -> float:
        return float(np.mean([r.airmass for r in self.raws]))


def _read_red(path: Path) -> list[_Extension]:
    with fits.open(path, memmap=False) as hdul:
        return [_Extension(h.name, np.asarray(h.data, np.float32), h.header.copy())
                for h in hdul[1:]]


def _meta(cfg: PipelineConfig, inst: Instrument, group: GroupInfo, ra: float, dec: float,
          exptime: float, prodcatg: str, provenance: Sequence[str],
          qcd: qc.ImageQC, noffsets: int) -> casu.ProductMeta:
    raws = group.raws
    return casu.ProductMeta(
        inst=inst, filt=inst.filter(group.band), obj=group.obj, ra=ra, dec=dec,
        mjd_obs=min(r.mjd for r in raws),
        mjd_end=max(r.mjd + r.exptime / 86400 for r in raws), exptime=exptime,
        texptime=float(sum(r.exptime for r in raws)), ncombine=len(raws),
        obs_ids=[r.obs_id for r in raws], prog_id=group.prog_id or cfg.prog_id,
        obstech=cfg.obstech, prodcatg=prodcatg, provenance=provenance,
        airmass=group.mean_airmass, dit=raws[0].dit, ndit=raws[0].ndit,
        njitter=len({r.jitter for r in raws}), noffsets=noffsets,
        obstatus="Completed",
        qc={"SEEING": (_header_value(qcd.seeing_arcsec / inst.pixel_scale, 3),
                       "[pixel] FWHM, -1: too few stars"),
            "ELLIPTIC": _header_value(qcd.ellipticity, 4), "MAGZPT": round(qcd.magzpt, 4),
            "MAGZRR": round(qcd.magzrr, 4), "QCSTATUS": qcd.qcstatus,
            "QCFLAGS": ",".join(qcd.qcflags)})


def _header_value(value: float, digits: int) -> float:
    """A measure for a FITS header, which cannot hold NaN: -1 where it could not be made."""
    return round(float(value), digits) if np.isfinite(value) else -1.0


def _detector_keywords(cal: Calibrated, bkg: Background, filt: Filter, inst: Instrument,
                       exptime: float, rcore: float) -> dict:
    depth_ab = cal.qc.depth + filt.ab_minus_vega
    return {
        "EXPTIME": exptime, "MAGZPT": round(cal.zp.magzpt, 4),
        "MAGZRR": round(cal.zp.magzrr, 4), "NUMZPT": cal.zp.n_stars,
        "EXTINCT": filt.extinction, "PHOTZP": round(cal.zp.magzpt + 2.5 * np.log10(exptime), 4),
        "PHOTSYS": "VEGA", "ABMAGLIM": round(depth_ab, 3),
        "ABMAGSAT": round(cal.zp.magzpt - 2.5 * np.log10(inst.saturation / exptime)
                          + filt.ab_minus_vega + 1.0, 3),
        "PSF_FWHM": (_header_value(cal.qc.seeing_arcsec, 3), "[arcsec] -1: too few stars"),
        "SEEING": (_header_value(cal.qc.seeing_arcsec / inst.pixel_scale, 3), "[pixel]"),
        "ELLIPTIC": _header_value(cal.qc.ellipticity, 4), "SKYLEVEL": round(bkg.level, 3),
        "SKYNOISE": round(bkg.noise, 3),
        "STDCRMS": (_header_value(cal.astrometry.rms_arcsec, 4),
                    "[arcsec] WCS fit RMS, -1: no stars"),
        "NUMBRMS": cal.astrometry.n_stars, "RCORE": round(rcore / inst.pixel_scale, 3),
        "SATURATE": inst.saturation, "GAIN": inst.gain,
        **{k: round(v, 4) for k, v in cal.apcor.items()},
    }


def _calibrate_products(cfg: PipelineConfig, inst: Instrument, group: GroupInfo,
                        images: Sequence[tuple[str, combine.Combined]], exptime: float,
                        gaia_files: Sequence[Path], ra: float, dec: float, radius: float,
                        depth: int) -> tuple[list[casu.DetectorProduct],
                                             list[casu.CatalogueTable], list[qc.DetectorQC]]:
    """Measure and calibrate the images of a stack or tile.

    ``depth`` is how many exposures a pixel sums (the jitters of a stack; for a
    tile, the exposures of one of its stacks): the images keep the level of that
    sum, so a star saturates at ``depth`` × the detector's saturation — counting
    every exposure of a tile would let saturated stars into the seeing and
    aperture corrections."""
    filt = inst.filter(group.band)
    ref = load_gaia(gaia_files, ra, dec, radius, float(np.mean([r.mjd for r in group.raws])),
                    cfg.g_max)
    info = ExposureInfo(group.band, exptime, group.mean_airmass, group.raws[0].mjd,
                        inst.pixel_scale, inst.saturation * depth)
    products, tables, qcs = [], [], []
    measured = []
    for name, comb in images:
        sky, bkg = subtract_sky(comb.data, cfg.background_mesh(inst))
        cat = measure(sky, comb.conf, bkg, info, cfg.detection)
        wcs = comb.wcs
        wcs.pixel_shape = (sky.shape[1], sky.shape[0])
        measured.append(_Measured(name, sky, comb.conf, bkg, info, cat, wcs))
    calibrated: list[tuple[_Measured, Calibrated]]
    if len(measured) == 1:  # a tile: one image, its own solution
        m = measured[0]
        calibrated = [(m, calibrate_detector(m.sky, m.conf, m.background, m.wcs, ref, filt,
                                             info, cfg.detection, m.catalogue))]
    else:
        sols = solve_mosaic([_stars(inst, m) for m in measured], ref,
                            (ra, dec), inst.pixel_scale, cfg.search_arcsec)
        cals = _calibrate_all(measured, sols, ref, filt, cfg)
        bad = [f"{m.name}: {c}" for m, c in zip(measured, cals, strict=True)
               if isinstance(c, str)]
        if bad:
            raise ProcessingError(f"{group.obj} {group.band}: {'; '.join(bad)}")
        calibrated = [(m, c) for m, c in zip(measured, cals, strict=True)
                      if not isinstance(c, str)]
    for m, cal in calibrated:
        keywords = _detector_keywords(cal, m.background, filt, inst, exptime,
                                      cfg.detection.rcore_arcsec)
        products.append(casu.DetectorProduct(m.name, m.sky, m.conf, cal.wcs, keywords))
        tables.append(casu.CatalogueTable(m.name, cal.catalogue, keywords))
        qcs.append(cal.qc)
    return products, tables, qcs


def _write_files(inst: Instrument, group: GroupInfo, path: Path, code: str,
                 meta: casu.ProductMeta, products: Sequence[casu.DetectorProduct],
                 tables: Sequence[casu.CatalogueTable]) -> tuple[str, str, str]:
    """Write a stack's or tile's image ``path``, its confidence map and its catalogue.

    ``code`` is the product's name code (``st``, ``tl``); the companions are named
    ``<code>_conf`` and ``<code>_cat``.  Returns the three paths, image first.
    """
    conf_path = path.with_name(casu.product_name(inst, group.night, group.run, f"{code}_conf"))
    cat_path = path.with_name(casu.product_name(inst, group.night, group.run, f"{code}_cat"))
    casu.write_image(path, conf_path, meta, products)
    casu.write_catalogue(cat_path, meta, path.name, tables)
    return str(path), str(conf_path), str(cat_path)


def _stack_impl(cfg: PipelineConfig, inst: Instrument, group: GroupInfo,
                exposures: Sequence[ProductResult], gaia_files: Sequence[Path],
                out: Path) -> ProductResult:
    t0 = time.perf_counter()
    name = casu.product_name(inst, group.night, group.run, "st")
    path = out / name
    if done := _done(path):
        return done
    reds = [_read_red(Path(e.files[0])) for e in exposures]
    with fits.open(exposures[0].files[1]) as conf_hdul:
        confs = {h.name: np.asarray(h.data) for h in conf_hdul[1:]}
    texp = float(sum(r.exptime for r in group.raws))
    images = []
    for first_ext in reds[0]:
        inputs = [combine.Input(e.data, confs[e.name], WCS(e.header), float(e.header["MAGZPT"]),
                                float(e.header["EXPTIME"]))
                  for red in reds for e in red if e.name == first_ext.name]
        images.append((first_ext.name, combine.stack(inputs)))
    radius = 1.2 * max(np.hypot(*inst.detector_size_arcsec) / 2 + np.hypot(x, y)
                       for x, y in inst.layout) / 3600
    raw0 = group.raws[0]
    products, tables, qcs = _calibrate_products(cfg, inst, group, images, texp, gaia_files,
                                                raw0.ra, raw0.dec, radius, len(group.raws))
    summary = qc.combine(qcs, group.band, cfg.thresholds)
    meta = _meta(cfg, inst, group, raw0.ra, raw0.dec, texp, "SCIENCE.MEFIMAGE",
                 [r.path.name for r in group.raws], summary, 1)
    return _finish(ProductResult(
        "stack", path.name, _write_files(inst, group, path, "st", meta, products, tables),
        tuple(str(r.path) for r in group.raws), qc=summary.as_dict(),
        meta={"night": group.night, "band": group.band, "object": group.obj,
              "obs_id": group.obs_id, "ra": raw0.ra, "dec": raw0.dec, "exptime": texp,
              "n_detectors": len(products)},
        seconds=time.perf_counter() - t0))


def make_stack(cfg: PipelineConfig, inst: Instrument, group: GroupInfo,
               exposures: Sequence[ProductResult | Failed], gaia_files: Sequence[Path],
               out: Path) -> ProductResult | Failed:
    """A stacked pawprint (all detectors) from the calibrated exposures that succeeded."""
    good = [e for e in exposures if isinstance(e, ProductResult)]
    raws = tuple(r for r, e in zip(group.raws, exposures, strict=True)
                 if isinstance(e, ProductResult))
    what = casu.product_name(inst, group.night, group.run, "st")
    if not good:
        return Failed(what, tuple(str(r.path) for r in group.raws),
                      f"{what}: every input exposure failed: "
                      + "; ".join(e.message for e in exposures if isinstance(e, Failed)))
    group = replace(group, raws=raws)
    return _guard(what, [str(r.path) for r in raws], _stack_impl, cfg, inst, group, good,
                  gaia_files, out)


def _tile_exptime(stacks: Sequence[ProductResult]) -> float:
    return float(np.median([s.meta["exptime"] for s in stacks]))


def _stack_inputs(stack: ProductResult, exptime: float) -> list[combine.Input]:
    """The detectors of a stacked pawprint as inputs of its tile."""
    with fits.open(stack.files[0]) as img, fits.open(stack.files[1]) as conf:
        return [combine.Input(np.asarray(hi.data, np.float32), np.asarray(hc.data),
                              WCS(hi.header), float(hi.header["MAGZPT"]), exptime)
                for hi, hc in zip(img[1:], conf[1:], strict=True)]


def _tile_grid(stacks: Sequence[ProductResult]) -> combine.TileGrid:
    """The tile's grid from the headers of its stacks' detectors (no pixels read)."""
    geometry = []
    for s in stacks:
        with fits.open(s.files[0]) as img:
            geometry += [((h.header["NAXIS2"], h.header["NAXIS1"]), WCS(h.header),
                          float(h.header["MAGZPT"])) for h in img[1:]]
    return combine.tile_grid(geometry)


def _pieces_impl(inst: Instrument, group: GroupInfo, stacks: Sequence[ProductResult],
                 index: int, out: Path) -> list[combine.Piece | None] | None:
    if _done(out / casu.product_name(inst, group.night, group.run, "tl")):
        return None  # the tile is made: it resumes without its pieces
    grid = _tile_grid(stacks)
    exptime = _tile_exptime(stacks)
    return [combine.resample_piece(i, grid, exptime)
            for i in _stack_inputs(stacks[index], exptime)]


def tile_pieces(inst: Instrument, group: GroupInfo,
                stacks: Sequence[ProductResult | Failed], index: int,
                out: Path) -> list[combine.Piece | None] | Failed | None:
    """Stack ``index`` of a tile resampled onto the tile's grid: the tile's resampling,
    one task per stack, so that it spreads over the workers instead of running
    alone at the end of a night (it was half of the tile's time).

    None where the stack failed or the tile is made already; :func:`make_tile`
    resamples itself whatever comes to it as None or Failed.
    """
    good = [s for s in stacks if isinstance(s, ProductResult)]
    if not isinstance(stacks[index], ProductResult):
        return None
    what = casu.product_name(inst, group.night, group.run, "tl")
    return _guard(what, [s.files[0] for s in good], _pieces_impl, inst, group, good,
                  good.index(stacks[index]), out)


def _tile_impl(cfg: PipelineConfig, inst: Instrument, group: GroupInfo,
               stacks: Sequence[ProductResult], gaia_files: Sequence[Path],
               out: Path, pieces: Sequence[list[combine.Piece | None] | None]) -> ProductResult:
    t0 = time.perf_counter()
    path = out / casu.product_name(inst, group.night, group.run, "tl")
    if done := _done(path):
        return done
    exptime = _tile_exptime(stacks)
    grid = _tile_grid(stacks)
    resampled: list[combine.Piece | None] = []
    for s, part in zip(stacks, pieces, strict=True):
        if part is None:  # not resampled apart: here, as the others were
            part = [combine.resample_piece(i, grid, exptime) for i in _stack_inputs(s, exptime)]
        resampled += part
    tile = combine.coadd(resampled, grid)
    centre = tile.wcs.pixel_to_world((tile.data.shape[1] - 1) / 2, (tile.data.shape[0] - 1) / 2)
    radius = np.hypot(*tile.data.shape) * inst.pixel_scale / 3600 / 2 * 1.1
    products, tables, qcs = _calibrate_products(
        cfg, inst, group, [("TILE", tile)], exptime, gaia_files, centre.ra.deg,
        centre.dec.deg, radius, max(1, round(len(group.raws) / len(stacks))))
    summary = qc.combine(qcs, group.band, cfg.thresholds)
    meta = _meta(cfg, inst, group, centre.ra.deg, centre.dec.deg, exptime, "SCIENCE.IMAGE",
                 [Path(s.files[0]).name for s in stacks], summary, len(stacks))
    return _finish(ProductResult(
        "tile", path.name, _write_files(inst, group, path, "tl", meta, products, tables),
        tuple(s.files[0] for s in stacks), qc=summary.as_dict(),
        meta={"night": group.night, "band": group.band, "object": group.obj,
              "obs_id": group.obs_id, "ra": centre.ra.deg, "dec": centre.dec.deg,
              "exptime": exptime, "shape": list(tile.data.shape)},
        seconds=time.perf_counter() - t0))


def make_tile(cfg: PipelineConfig, inst: Instrument, group: GroupInfo,
              stacks: Sequence[ProductResult | Failed], gaia_files: Sequence[Path],
              out: Path,
              pieces: Sequence[list[combine.Piece | None] | Failed | None] | None = None
              ) -> ProductResult | Failed:
    """The tile of an OB: the mosaic of its stacked pawprints that succeeded.

    ``pieces`` (one per stack, from :func:`tile_pieces`) are stacks resampled
    already; the tile resamples any stack without them itself.
    """
    pieces = pieces or [None] * len(stacks)
    good = [(s, p if isinstance(p, list) else None)
            for s, p in zip(stacks, pieces, strict=True) if isinstance(s, ProductResult)]
    what = casu.product_name(inst, group.night, group.run, "tl")
    if not good:
        return Failed(what, (), f"{what}: no stacked pawprint to tile")
    return _guard(what, [s.files[0] for s, _ in good], _tile_impl, cfg, inst, group,
                  [s for s, _ in good], gaia_files, out, [p for _, p in good])
