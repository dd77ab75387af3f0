# SPDX-License-Identifier: BSD-3-Clause
"""Rapid-mode candidates: a new exposure's detections against a reference epoch.

**Why catalogues, not image subtraction.**  The reference of a VISTA or VST
exposure is the tile of an earlier night in the same band: a mosaic resampled
from six pawprints (VISTA) or three dithers (VST), with another seeing, another
depth and another pixel grid than a single jittered exposure.  Difference
imaging would need the exposure resampled onto the tile and the PSFs matched
(Alard–Lupton), costly and fragile on the crowded disc field, and still
measured afterwards.  Both epochs already carry calibrated aperture photometry
(CASU's, the same apertures), so the comparison is done on the catalogues: it
costs milliseconds, is exact where sources are resolved, and its failure modes
(blends split or merged by the seeing) are handled by isolation cuts.  Image
subtraction is what the deeper bulge fields would want; the comparison here
is the one the CASU/VVV rapid pipeline's first stage makes.

**Rules** (all parameters in :class:`AlertParams`):

* Epochs are put on one scale: the median magnitude difference of matched,
  well-measured point sources is removed (the exposure's zero point is from
  Gaia, the tile's too, but the residual between them is not zero).
* A *limit* per epoch: the magnitude at S/N 5 (detections with a magnitude
  error near 1.0857/5).
* **new**: a well-measured point source of the exposure with no reference
  source within ``radius_arcsec`` and none within ``isolation_arcsec`` that is
  not ``depth_margin_mag`` fainter (a blend could have moved it), brighter than
  the reference limit by ``depth_margin_mag`` (it would have been seen), inside
  the reference's coverage (its confidence map).
* **brightening / fading**: a source in both epochs (within ``radius_arcsec``,
  isolated in both) whose magnitude changed by at least ``min_delta_mag`` and
  ``sigma`` times the larger of the combined error (with a calibration floor)
  and the empirical scatter of all compared sources at that magnitude;
  **fading** also when a well-measured reference point source brighter than
  the exposure's limit by the margin is not detected at all while inside the
  exposure's detectors (``mag`` is then NaN: an upper limit).
* **moving**: a *new* source with a vanished reference source within
  ``moving_arcsec`` (both are then one moving candidate).

Well-measured: classified stellar, borderline stellar or non-stellar (−1, −2,
+1: CASU's classifier calls some bright unsaturated stars non-stellar; a change
of brightness needs the same aperture on both epochs, not a point source) —
and for a *new* or *vanished* source stellar or borderline stellar only —, no
bad pixels in the aperture (Error_bit_flag 0), full confidence (Av_conf ≥ 80),
ellipticity ≤ 0.5, peak below 90 % of saturation, S/N ≥ ``min_snr`` (20: 5σ
for a 0.3 mag change; ``new_snr`` = 5 for a new source: a single 4-s VISTA
exposure sees the demo's transient, Ks 16.7, at S/N 6–8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from casuvo.catalogue.framesets import read_tile_columns, read_tile_frame
from casuvo.catalogue.measurements import aperture_magnitude

__all__ = ["KINDS", "AlertParams", "Coverage", "Epoch", "compare", "detection_magnitudes",
           "detections_epoch", "forced_magnitudes", "sky_like", "tile_epoch"]

#: Candidate classes, as the alerts table and the VOEvents name them.
KINDS = ("new", "brightening", "fading", "moving")
_ARCSEC = np.pi / 180.0 / 3600.0
_SNR5_ERR = 2.5 / np.log(10.0) / 5.0


@dataclass(frozen=True)
class AlertParams:
    """Thresholds of the comparison (see the module notes)."""

    radius_arcsec: float = 1.0
    isolation_arcsec: float = 2.5
    min_snr: float = 20.0
    """S/N of a measurement compared for a change of brightness."""
    new_snr: float = 5.0
    """S/N of a *new* source: the detection limit; being brighter than the reference's
    limit by ``depth_margin_mag`` is what makes it new, not its S/N."""
    sigma: float = 5.0
    min_delta_mag: float = 0.3
    floor_mag: float = 0.03
    depth_margin_mag: float = 1.0
    moving_arcsec: float = 10.0


class Coverage:
    """Where an epoch could have seen a source: images (WCS + a good-pixel mask).

    ``images``: (WCS, boolean mask of usable pixels) pairs; a position is
    covered if it falls on a usable pixel ``margin`` pixels or more from an
    edge of any of them.
    """

    def __init__(self, images: list[tuple[WCS, np.ndarray]], margin: int = 10) -> None:
        self.images = images
        self.margin = margin

    def __call__(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        inside = np.zeros(np.size(ra), dtype=bool)
        for wcs, good in self.images:
            x, y = wcs.all_world2pix(np.asarray(ra), np.asarray(dec), 0)
            ny, nx = good.shape
            m = self.margin
            ok = (x >= m) & (y >= m) & (x < nx - m) & (y < ny - m)
            ix = np.clip(np.round(x).astype(int), 0, nx - 1)
            iy = np.clip(np.round(y).astype(int), 0, ny - 1)
            inside |= ok & good[iy, ix]
        return inside


@dataclass(frozen=True)
class Epoch:
    """One epoch's calibrated sources in one band, and where it could see."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    err: np.ndarray
    good: np.ndarray
    """Well measured (see the module notes), S/N aside."""
    point: np.ndarray
    """Classified stellar or borderline stellar (−1, −2)."""
    mjd: float
    band: str
    coverage: Coverage
    name: str

    @property
    def limit(self) -> float:
        """Magnitude at S/N 5: the median of detections with errors near 0.217 mag."""
        near = np.abs(self.err - _SNR5_ERR) < 0.03
        if near.sum() >= 5:
            return float(np.nanmedian(self.mag[near]))
        faint = self.err < _SNR5_ERR
        return float(np.nanmax(self.mag[faint])) if faint.any() else float("nan")


#: Largest ellipticity of a measurement compared (a star crossed by a trail or a bad
#: column is elongated, and its flux is not its own).
MAX_ELLIPTICITY = 0.5


def _good(cls: np.ndarray, bits: np.ndarray, conf: np.ndarray, peak: np.ndarray,
          saturate: np.ndarray, err: np.ndarray, ell: np.ndarray) -> np.ndarray:
    return (np.isin(cls, (-1, -2, 1)) & (bits == 0) & (conf >= 80.0)
            & (peak < 0.9 * saturate) & np.isfinite(err) & (ell <= MAX_ELLIPTICITY))


def _snr_at_least(err: np.ndarray, snr: float) -> np.ndarray:
    return np.isfinite(err) & (err <= 2.5 / np.log(10.0) / snr)


def detection_magnitudes(path: Path) -> tuple[Table, np.ndarray, np.ndarray]:
    """An exposure's detections file (``reduce_exposure(detections=True)``): the table,
    and the calibrated aperture-3 magnitudes and errors of its rows."""
    table = Table.read(path, hdu=1)
    mag, err = aperture_magnitude(table["Aper_flux_3"], table["Aper_flux_3_err"],
                                  np.asarray(table["MAGZPT"]), np.asarray(table["EXPTIME"]),
                                  np.asarray(table["APCOR3"]), np.asarray(table["EXTINCT"]),
                                  np.asarray(table["AIRMASS"]))
    return table, mag, err


def detections_epoch(path: Path, red_path: Path, params: AlertParams) -> Epoch:
    """An exposure's detections file and its reduced image (the detectors' WCS: the
    coverage)."""
    table, mag, err = detection_magnitudes(path)
    good = _good(np.asarray(table["Classification"]), np.asarray(table["Error_bit_flag"]),
                 np.asarray(table["Av_conf"]), np.asarray(table["Peak_height"]),
                 np.asarray(table["SATURATE"]), err, np.asarray(table["Ellipticity"]))
    images = []
    with fits.open(red_path) as hdul:
        for hdu in hdul[1:]:
            wcs = WCS(hdu.header)
            images.append((wcs, np.ones((hdu.header["NAXIS2"], hdu.header["NAXIS1"]), bool)))
    return Epoch(np.asarray(table["RA"], float), np.asarray(table["DEC"], float), mag, err,
                 good, np.isin(np.asarray(table["Classification"]), (-1, -2)),
                 float(table.meta["MJD-OBS"]), str(table.meta["FILTER"]),
                 Coverage(images), Path(path).name)


def tile_epoch(path: Path, params: AlertParams) -> Epoch:
    """A tile catalogue (``*_st_tl_cat.fits``) and its confidence map (the coverage)."""
    frame = read_tile_frame(path)
    cols = read_tile_columns(path)
    mag, err = aperture_magnitude(cols["Aper_flux_3"], cols["Aper_flux_3_err"], frame.magzpt,
                                  frame.exptime, frame.apcor3, frame.extinct, frame.airmass)
    n = mag.size
    good = _good(cols["Classification"], cols["Error_bit_flag"], cols["Av_conf"],
                 cols["Peak_height"], np.full(n, frame.saturate), err, cols["Ellipticity"])
    conf_path = path.with_name(path.name.replace("_tl_cat.fits", "_tl_conf.fit"))
    images = []
    with fits.open(conf_path) as hdul:
        for hdu in hdul[1:] if len(hdul) > 1 else hdul:
            if hdu.data is None:
                continue
            conf = np.asarray(hdu.data, dtype=np.float32)
            level = np.median(conf[conf > 0]) if (conf > 0).any() else 1.0
            images.append((WCS(hdu.header), conf >= 0.5 * level))
    return Epoch(np.asarray(cols["RA"], float), np.asarray(cols["DEC"], float), mag, err,
                 good, np.isin(cols["Classification"], (-1, -2)), frame.mjd, frame.filter,
                 Coverage(images), path.name)


def _xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)


def _chord(arcsec: float) -> float:
    return 2.0 * np.sin(arcsec * _ARCSEC / 2.0)


def _nearest(tree: cKDTree, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(separation in arcsec, index) of each row's nearest neighbour in ``tree``."""
    if tree.n == 0:
        return np.full(len(xyz), np.inf), np.zeros(len(xyz), dtype=int)
    dist, idx = tree.query(xyz, k=1)
    return 2.0 * np.arcsin(np.minimum(dist / 2.0, 1.0)) / _ARCSEC, idx


def _second(tree: cKDTree, xyz: np.ndarray) -> np.ndarray:
    """Separation (arcsec) of each row's second-nearest neighbour in ``tree`` (itself first)."""
    if tree.n < 2:
        return np.full(len(xyz), np.inf)
    dist, _ = tree.query(xyz, k=2)
    return 2.0 * np.arcsin(np.minimum(dist[:, 1] / 2.0, 1.0)) / _ARCSEC


#: Sources per magnitude bin of the empirical scatter.
SCATTER_BIN = 50


def _empirical_scatter(mag: np.ndarray, delta: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """The robust scatter (1.4826 MAD) of the epoch differences of the compared sources,
    as a function of magnitude, at each row's magnitude.

    Most sources are constant, so this is what a constant source's difference
    looks like at that magnitude: photon noise, and what the formal errors leave
    out (flat-field residuals, the aperture on another seeing, faint neighbours).
    Bins of :data:`SCATTER_BIN` sources, interpolated; zero with too few sources.
    """
    m, d = mag[sample], delta[sample]
    if m.size < 2 * SCATTER_BIN:
        return np.zeros(mag.size)
    order = np.argsort(m)
    m, d = m[order], d[order]
    edges = np.arange(0, m.size - SCATTER_BIN + 1, SCATTER_BIN)
    centres = np.array([np.median(m[i:i + SCATTER_BIN]) for i in edges])
    scatter = np.array([1.4826 * np.median(np.abs(d[i:i + SCATTER_BIN]
                                                   - np.median(d[i:i + SCATTER_BIN])))
                        for i in edges])
    scatter = np.maximum.accumulate(scatter)        # never smaller for fainter sources
    return np.interp(np.nan_to_num(mag, nan=centres[-1]), centres, scatter)


def compare(new: Epoch, ref: Epoch, params: AlertParams | None = None) -> tuple[Table, dict]:
    """Candidates (one row each: kind, position, magnitudes, change, significance) and
    a summary (offset removed, limits, counts) of ``new`` against ``ref``."""
    params = params or AlertParams()
    if new.band != ref.band:
        raise ValueError(f"{new.name} is in {new.band}, the reference {ref.name} in {ref.band}")
    xyz_n, xyz_r = _xyz(new.ra, new.dec), _xyz(ref.ra, ref.dec)
    tree_n, tree_r = cKDTree(xyz_n), cKDTree(xyz_r)
    sep_nr, idx_nr = _nearest(tree_r, xyz_n)          # each new source's nearest reference
    sep_rn, idx_rn = _nearest(tree_n, xyz_r)
    alone_n = _second(tree_n, xyz_n) > params.isolation_arcsec
    alone_r = _second(tree_r, xyz_r) > params.isolation_arcsec
    in_ref = ref.coverage(new.ra, new.dec)
    in_new = new.coverage(ref.ra, ref.dec)

    matched = (sep_nr <= params.radius_arcsec) & (idx_rn[idx_nr] == np.arange(new.ra.size))
    snr_n, snr_r = (_snr_at_least(new.err, params.min_snr),
                    _snr_at_least(ref.err, params.min_snr))
    both = (matched & new.good & snr_n & ref.good[idx_nr] & snr_r[idx_nr] & alone_n
            & alone_r[idx_nr])
    delta = new.mag - ref.mag[idx_nr]
    offset = float(np.nanmedian(delta[both])) if both.sum() >= 10 else 0.0
    delta = delta - offset
    sigma = np.maximum(np.sqrt(new.err ** 2 + ref.err[idx_nr] ** 2 + params.floor_mag ** 2),
                       _empirical_scatter(new.mag, delta, both))
    significance = delta / sigma
    changed = both & (np.abs(delta) >= params.min_delta_mag) & (
        np.abs(significance) >= params.sigma)

    new_limit, ref_limit = new.limit, ref.limit
    is_new = (new.good & new.point & _snr_at_least(new.err, params.new_snr) & alone_n & in_ref
              & (sep_nr > params.radius_arcsec)
              & (new.mag - offset < ref_limit - params.depth_margin_mag))
    for i in np.flatnonzero(is_new):
        # a reference source near it that is not much fainter may be the same one, shifted
        # by a blend; a far fainter one (the crowded disc's background) explains nothing
        near = tree_r.query_ball_point(xyz_n[i], _chord(params.isolation_arcsec))
        if near and np.nanmin(ref.mag[near]) < new.mag[i] - offset + params.depth_margin_mag:
            is_new[i] = False
    vanished = (ref.good & ref.point & snr_r & alone_r & in_new & (sep_rn > params.isolation_arcsec)
                & (ref.mag + offset < new_limit - params.depth_margin_mag))

    rows: list[dict] = []
    v_rows = np.flatnonzero(vanished)
    moved_from: dict[int, int] = {}
    if v_rows.size:
        tree_v = cKDTree(xyz_r[v_rows])
        for i in np.flatnonzero(is_new):
            d, k = tree_v.query(xyz_n[i], k=1)
            if 2 * np.arcsin(min(d / 2, 1.0)) / _ARCSEC <= params.moving_arcsec:
                moved_from[int(i)] = int(v_rows[k])
    moved = set(moved_from.values())

    def row(kind: str, ra: float, dec: float, mag: float, err: float, ref_mag: float,
            ref_err: float, dmag: float, sig: float) -> dict:
        return {"kind": kind, "ra": ra, "dec": dec, "mag": mag, "mag_err": err,
                "ref_mag": ref_mag, "ref_mag_err": ref_err, "delta_mag": dmag,
                "significance": sig}

    for i in np.flatnonzero(is_new):
        j = moved_from.get(int(i))
        if j is None:
            rows.append(row("new", new.ra[i], new.dec[i], new.mag[i] - offset, new.err[i],
                            np.nan, np.nan, ref_limit - (new.mag[i] - offset),
                            np.inf))
        else:
            rows.append(row("moving", new.ra[i], new.dec[i], new.mag[i] - offset, new.err[i],
                            ref.mag[j], ref.err[j], new.mag[i] - offset - ref.mag[j], np.nan))
    for i in np.flatnonzero(changed):
        j = idx_nr[i]
        rows.append(row("brightening" if delta[i] < 0 else "fading", new.ra[i], new.dec[i],
                        new.mag[i] - offset, new.err[i], ref.mag[j], ref.err[j], delta[i],
                        significance[i]))
    for j in v_rows:
        if int(j) in moved:
            continue
        rows.append(row("fading", ref.ra[j], ref.dec[j], np.nan, np.nan, ref.mag[j],
                        ref.err[j], new_limit - (ref.mag[j] + offset), -np.inf))
    names = ["kind", "ra", "dec", "mag", "mag_err", "ref_mag", "ref_mag_err", "delta_mag",
             "significance"]
    table = Table(rows=[[r[n] for n in names] for r in rows], names=names,
                  dtype=["U11", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8"]) if rows \
        else Table(names=names, dtype=["U11", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8"])
    summary = {"offset_mag": offset, "new_limit": new_limit, "ref_limit": ref_limit,
               "compared": int(both.sum()), "new_sources": int(new.ra.size),
               "reference": ref.name, "counts": {k: int((table["kind"] == k).sum())
                                                  for k in KINDS}}
    return table, summary


#: The annulus around a candidate that must look like sky (arcsec), and how much like.
SKY_ANNULUS_ARCSEC = (3.0, 8.0)
SKY_NOISE_RATIO = (0.7, 1.3)
SKY_MEDIAN_SIGMA = 0.3


def sky_like(image: Path, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Whether the sky-subtracted ``image`` around each position looks like plain sky.

    In the annulus :data:`SKY_ANNULUS_ARCSEC` (pixels above 5σ, other sources,
    left out) the robust σ must be within :data:`SKY_NOISE_RATIO` of the
    image's noise (``SKYNOISE``, else the image's own) and the median within
    :data:`SKY_MEDIAN_SIGMA` σ of zero.  Not so on extended emission (the PN
    field's knots, resolved by one seeing and not the other), in a bright
    star's halo or on its masked spikes: where two catalogues differ without
    any source changing.  Positions off the image count as sky-like (the
    coverage decides about them).
    """
    from astropy.wcs.utils import proj_plane_pixel_scales

    ra, dec = np.atleast_1d(ra).astype(float), np.atleast_1d(dec).astype(float)
    ok = np.ones(ra.size, dtype=bool)
    r1, r2 = SKY_ANNULUS_ARCSEC
    with fits.open(image) as hdul:
        for hdu in hdul:
            if hdu.data is None or hdu.data.ndim != 2:
                continue
            wcs = WCS(hdu.header)
            data = np.asarray(hdu.data, dtype=np.float64)
            noise = float(hdu.header.get("SKYNOISE", np.nan))
            if not (np.isfinite(noise) and noise > 0):
                sample = data[::5, ::5]
                sample = sample[np.isfinite(sample)]
                noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
            scale = float(proj_plane_pixel_scales(wcs)[0]) * 3600.0
            x, y = wcs.all_world2pix(ra, dec, 0)
            ny, nx = data.shape
            half = int(r2 / scale) + 1
            for k in np.flatnonzero((x >= 0) & (y >= 0) & (x < nx) & (y < ny)):
                x0, y0 = int(round(float(x[k]))), int(round(float(y[k])))
                rows = slice(max(0, y0 - half), min(ny, y0 + half + 1))
                cols = slice(max(0, x0 - half), min(nx, x0 + half + 1))
                cut = data[rows, cols]
                yy, xx = np.mgrid[rows, cols]
                rr = np.hypot(xx - x[k], yy - y[k]) * scale
                values = cut[(rr >= r1) & (rr <= r2) & np.isfinite(cut)]
                values = values[values < 5 * noise]
                if values.size < 20:
                    ok[k] = False
                    continue
                median = float(np.median(values))
                sigma = 1.4826 * float(np.median(np.abs(values - median)))
                ok[k] = (SKY_NOISE_RATIO[0] <= sigma / noise <= SKY_NOISE_RATIO[1]
                         and abs(median) <= SKY_MEDIAN_SIGMA * noise)
    return ok


def forced_magnitudes(image: Path, ra: np.ndarray, dec: np.ndarray,
                      radius_arcsec: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Aperture photometry (photutils) at given positions on a calibrated, sky-subtracted
    exposure (``<raw>_red.fits``: MAGZPT, APCOR3, EXPTIME, EXTINCT, AIRMASS, SKYNOISE per
    detector); (magnitude, error), NaN magnitude where the flux is not positive or the
    position is off the detectors or on blanked pixels.

    What confirms a *fading* candidate whose source the exposure did not detect:
    if the pixels still hold its flux, the detection failed, not the source.
    """
    from astropy.wcs.utils import proj_plane_pixel_scales
    from photutils.aperture import CircularAperture, aperture_photometry

    ra, dec = np.atleast_1d(ra).astype(float), np.atleast_1d(dec).astype(float)
    mag = np.full(ra.size, np.nan)
    err = np.full(ra.size, np.nan)
    with fits.open(image) as hdul:
        for hdu in hdul[1:]:
            if hdu.data is None:
                continue
            h = hdu.header
            wcs = WCS(h)
            x, y = wcs.all_world2pix(ra, dec, 0)
            ny, nx = hdu.data.shape
            on = np.flatnonzero((x >= 0) & (y >= 0) & (x < nx) & (y < ny))
            if on.size == 0:
                continue
            r = radius_arcsec / (float(proj_plane_pixel_scales(wcs)[0]) * 3600.0)
            data = np.asarray(hdu.data, dtype=np.float64)
            apertures = CircularAperture(np.column_stack([x[on], y[on]]), r=r)
            phot = aperture_photometry(data, apertures, mask=~np.isfinite(data))
            flux = np.asarray(phot["aperture_sum"], dtype=np.float64)
            blank = np.array([np.isnan(a.to_mask(method="center").get_values(data)).any()
                              for a in apertures])
            flux_err = float(h["SKYNOISE"]) * np.sqrt(np.pi * r * r)
            m, e = aperture_magnitude(flux, np.full(flux.size, flux_err), float(h["MAGZPT"]),
                                      float(h["EXPTIME"]), float(h["APCOR3"]),
                                      float(h["EXTINCT"]), float(h["AIRMASS"]))
            mag[on] = np.where(blank, np.nan, m)
            err[on] = np.where(blank, np.nan, e)
    return mag, err
