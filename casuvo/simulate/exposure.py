# SPDX-License-Identifier: BSD-3-Clause
"""One raw VIRCAM or OmegaCAM exposure of the simulated sky, and its truth.

The image is built the way the camera builds it, so that a pipeline has to do
the real work to undo it: the sky is selected around the true optical axis
(:mod:`~casuvo.simulate.optics`), rendered onto each detector
(:mod:`~casuvo.simulate.rendering`), multiplied by the flat field, given
dark current and read out with noise, bias and saturation
(:mod:`~casuvo.simulate.detectors`), and written with the cameras' headers
(:mod:`~casuvo.simulate.headers`); the truth (:mod:`~casuvo.simulate.truth`)
records what each detector really saw.  Detectors are made one at a time, so
a full-size camera needs one detector in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from astropy.io import fits
from astropy.table import Table

from casuvo.simulate.detectors import (
    bias_level,
    dark_current_map,
    flat_field,
    read_out,
    saturation_level,
)
from casuvo.simulate.headers import detector_header, primary_header
from casuvo.simulate.optics import (
    field_edge_arcsec,
    nominal_wcs_cards,
    tangent_wcs,
    true_axis,
    true_wcs_cards,
    wcs_from_cards,
)
from casuvo.simulate.pointing import Pointing, sky_level_adu, zeropoint_true
from casuvo.simulate.rendering import MAX_STAMP_HALF, WING_NOISE, MoffatPSF, render_detector
from casuvo.simulate.skymodel import mag_at, propagate
from casuvo.simulate.truth import DetectorTruth, ExposureTruth, exposure_truth
from casuvo.surveys.instruments import Instrument

__all__ = ["iter_exposure", "simulate_exposure"]


def _select(sky: Table, ra: float, dec: float, radius_deg: float) -> np.ndarray:
    """Indices of sky rows within a box of ``radius_deg`` about (ra, dec) (cheap pre-cut)."""
    sra = np.asarray(sky["ra"], dtype=np.float64)
    sdec = np.asarray(sky["dec"], dtype=np.float64)
    cosd = max(math.cos(math.radians(min(abs(dec) + radius_deg, 89.9))), 1e-3)
    dra = (sra - ra + 180.0) % 360.0 - 180.0
    return np.flatnonzero((np.abs(sdec - dec) <= radius_deg)
                          & (np.abs(dra) * cosd <= radius_deg))


def iter_exposure(inst: Instrument, sky: Table, pointing: Pointing, rng: np.random.Generator
                  ) -> Iterator[tuple[fits.ImageHDU, DetectorTruth]]:
    """Detector by detector (one in memory at a time): the raw image HDU and its truth."""
    band = pointing.band
    if band is None:
        raise ValueError("a science exposure needs a band")
    zp = zeropoint_true(inst, pointing)
    sky_adu = sky_level_adu(inst, pointing)
    s = inst.pixel_scale
    psf = MoffatPSF.make(pointing.seeing_arcsec, pointing.ellipticity, pointing.psf_pa_deg, s)
    kernel = psf.kernel()
    noise = math.sqrt(sky_adu * inst.gain + pointing.ndit * inst.read_noise**2) / inst.gain
    t_ra, t_dec = true_axis(pointing)
    margin = MAX_STAMP_HALF * s + 10.0
    reach = (field_edge_arcsec(inst) + margin) / 3600.0
    # Nebula rows reach further than their centre.
    near = _select(sky, t_ra, t_dec, reach + 0.05)
    sub = sky[near]
    ra, dec = propagate(sub, pointing.mjd_mid)
    mag = mag_at(sub, band, pointing.mjd_mid)
    live = np.isfinite(mag)
    sub, ra, dec, mag = sub[live], ra[live], dec[live], mag[live]
    fp = tangent_wcs(t_ra, t_dec).wcs_world2pix(np.column_stack([ra, dec]), 0)
    kinds = np.asarray(sub["kind"]).astype(str)
    flux = pointing.exptime * 10 ** (-0.4 * (mag - zp))
    extended = (kinds == "pn_nebula")
    reach_x = np.where(extended, 1.2 * np.asarray(sub["r_eff_arcsec"], np.float64), 0.0)
    for chip in range(1, inst.n_detectors + 1):
        x_k, y_k = inst.layout[chip - 1]
        hx, hy = inst.nx * s / 2 + margin, inst.ny * s / 2 + margin
        pick = np.flatnonzero((np.abs(fp[:, 0] - x_k) <= hx + reach_x)
                              & (np.abs(fp[:, 1] - y_k) <= hy + reach_x))
        cards = true_wcs_cards(inst, pointing, chip)
        wcs = wcs_from_cards(cards, inst)
        image = np.zeros((inst.ny, inst.nx), dtype=np.float64)
        truth = render_detector(image, inst, wcs, sub[pick], ra[pick], dec[pick], mag[pick],
                                 flux[pick], kinds[pick], psf, kernel, WING_NOISE * noise,
                                 sky_adu, chip, pointing.ndit)
        electrons = inst.gain * flat_field(inst, chip) * (image + sky_adu)
        del image
        electrons += dark_current_map(inst, chip) * pointing.exptime
        data = read_out(inst, chip, electrons, pointing.ndit, rng)
        del electrons
        header = detector_header(inst, chip, nominal_wcs_cards(inst, pointing, chip),
                                 pointing.ndit)
        det = DetectorTruth(chip=chip, wcs=wcs, sources=truth, bias_adu=bias_level(inst, chip),
                            sky_adu=sky_adu, dark_adu=inst.dark_current * pointing.exptime
                            / inst.gain, saturate=saturation_level(inst, pointing.ndit),
                            wcs_cards=cards)
        yield fits.ImageHDU(data=data, header=header), det


def simulate_exposure(inst: Instrument, sky: Table, pointing: Pointing,
                      rng: np.random.Generator) -> tuple[fits.HDUList, ExposureTruth]:
    """The raw MEF (primary + one image extension per detector) and its truth."""
    primary = fits.PrimaryHDU(header=primary_header(inst, pointing))
    truth = exposure_truth(inst, pointing)
    hdus: list[fits.ImageHDU] = []
    for hdu, det in iter_exposure(inst, sky, pointing, rng):
        hdus.append(hdu)
        truth.detectors.append(det)
    return fits.HDUList([primary, *hdus]), truth
