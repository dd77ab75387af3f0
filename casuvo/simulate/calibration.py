# SPDX-License-Identifier: BSD-3-Clause
"""Raw calibration frames: VIRCAM darks, twilight flats of both cameras, OmegaCAM biases.

They are made from the same detector truth as the science frames
(:func:`~casuvo.simulate.detectors.flat_field`,
:func:`~casuvo.simulate.detectors.dark_current_map`,
:func:`~casuvo.simulate.detectors.bias_level`), so a pipeline that builds master
calibrations from them and applies them to the science frames recovers that
truth to within the noise:

* **DARK** (``DPR TYPE = 'DARK'``): dark current × DIT × NDIT (hot pixels and
  columns included), Poisson and read noise; taken with the DIT/NDIT of the
  science and flat frames they correct.
* **FLAT,TWILIGHT**: the flat-field response × a twilight level (ADU, falling
  from frame to frame as the sky darkens), plus dark and bias, with noise.
  The twilight sky here is uniform and free of stars.
* **BIAS** (OmegaCAM): the per-chip bias and read noise.

All have ``DPR CATG = 'CALIB'``, ``DPR TECH = 'IMAGE'`` and OBJECT equal to the
DPR TYPE; ``INS FILT1 NAME`` is 'NONE' for darks and biases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from casuvo.simulate.detectors import dark_current_map, flat_field, read_out
from casuvo.simulate.headers import detector_header, primary_header
from casuvo.simulate.optics import nominal_wcs_cards
from casuvo.simulate.pointing import Pointing
from casuvo.simulate.truth import truth_header
from casuvo.surveys.instruments import Instrument

__all__ = ["CALIBRATION_KINDS", "Calibration", "calibration_primary_header",
           "calibration_truth_header", "iter_calibration", "simulate_calibration"]

CALIBRATION_KINDS = ("DARK", "FLAT,TWILIGHT", "BIAS")
#: Template identifiers (plausible spellings of the cameras' calibration templates).
_TPL = {("VIRCAM", "DARK"): "VIRCAM_img_cal_darks",
        ("VIRCAM", "FLAT,TWILIGHT"): "VIRCAM_img_cal_twiflats",
        ("OMEGACAM", "BIAS"): "OMEGACAM_img_cal_bias",
        ("OMEGACAM", "FLAT,TWILIGHT"): "OMEGACAM_img_cal_skyflat",
        ("OMEGACAM", "DARK"): "OMEGACAM_img_cal_dark",
        ("VIRCAM", "BIAS"): "VIRCAM_img_cal_reset"}


@dataclass(frozen=True)
class Calibration:
    """One calibration exposure."""

    kind: str
    """'DARK', 'FLAT,TWILIGHT' or 'BIAS' (ESO DPR TYPE)."""
    mjd_obs: float
    dit: float = 0.0
    ndit: int = 1
    band: str | None = None
    """Band of a flat; None for darks and biases."""
    level_adu: float = 0.0
    """Twilight level of a flat (ADU per pixel before the flat-field response)."""
    ra: float = 0.0
    dec: float = 0.0
    obs_id: int = 0
    ob_name: str = ""
    tpl_expno: int = 1
    tpl_nexp: int = 1
    prog_id: str = "60.A-9999(A)"

    def __post_init__(self) -> None:
        if self.kind not in CALIBRATION_KINDS:
            raise ValueError(f"kind must be one of {CALIBRATION_KINDS}, not {self.kind!r}")
        if (self.kind == "FLAT,TWILIGHT") != (self.band is not None):
            raise ValueError("a flat needs a band; darks and biases have none")

    @property
    def exptime(self) -> float:
        return self.dit * self.ndit

    def pointing(self) -> Pointing:
        """The frame as a Pointing (for the shared header code)."""
        return Pointing(field="", ra=self.ra, dec=self.dec, band=self.band,
                        mjd_obs=self.mjd_obs, dit=self.dit, ndit=self.ndit, obs_id=self.obs_id,
                        ob_name=self.ob_name, tpl_expno=self.tpl_expno,
                        tpl_nexp=self.tpl_nexp, prog_id=self.prog_id, object=self.kind)


def _primary(inst: Instrument, cal: Calibration) -> fits.Header:
    return primary_header(inst, cal.pointing(), catg="CALIB", dpr_type=cal.kind, tech="IMAGE",
                          tpl_id=_TPL[inst.name, cal.kind])


def iter_calibration(inst: Instrument, cal: Calibration, rng: np.random.Generator
                     ) -> Iterator[fits.ImageHDU]:
    """The image extensions of ``cal``, one detector at a time."""
    pointing = cal.pointing()
    for chip in range(1, inst.n_detectors + 1):
        electrons = (dark_current_map(inst, chip).astype(np.float64) * cal.exptime
                     if cal.kind != "BIAS" else np.zeros((inst.ny, inst.nx)))
        if cal.kind == "FLAT,TWILIGHT":
            electrons += inst.gain * cal.level_adu * flat_field(inst, chip)
        data = read_out(inst, chip, electrons, cal.ndit, rng)
        header = detector_header(inst, chip, nominal_wcs_cards(inst, pointing, chip), cal.ndit)
        yield fits.ImageHDU(data=data, header=header)


def calibration_truth_header(inst: Instrument, cal: Calibration) -> fits.Header:
    """Truth keywords of a calibration frame (its detector truth comes from the functions of
    :mod:`casuvo.simulate.detectors`)."""
    h = truth_header(inst.name, ("CALTYPE", cal.kind), cal.band, cal.mjd_obs, cal.exptime)
    h["TWILEVEL"] = (cal.level_adu, "[ADU] twilight level before flat response")
    h["DARKCUR"] = (inst.dark_current, "[e-/s] dark current, hot pixels aside")
    return h


def simulate_calibration(inst: Instrument, cal: Calibration, rng: np.random.Generator
                         ) -> tuple[fits.HDUList, fits.Header]:
    """The raw calibration MEF and its truth keywords."""
    hdus = [fits.PrimaryHDU(header=_primary(inst, cal)), *iter_calibration(inst, cal, rng)]
    return fits.HDUList(hdus), calibration_truth_header(inst, cal)


def calibration_primary_header(inst: Instrument, cal: Calibration) -> fits.Header:
    """The raw primary header of ``cal`` (for writers that stream the extensions)."""
    return _primary(inst, cal)
