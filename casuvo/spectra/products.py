# SPDX-License-Identifier: BSD-3-Clause
"""What the spectroscopic pipeline hands to a survey's product writers.

The pipeline reduces an OB into an :class:`OBData` (per arm: the stacked,
sky-subtracted, flux-calibrated spectra of every fibre, their sky-unsubtracted
twins and the sensitivity function, all on the arm's observed-frame grid;
per fibre: identity, QC and velocity) and each object into an
:class:`ObjectData` (its epochs, each arm resampled to the heliocentric
frame, and the stack of them).  A survey's format module writes them:

- ``write_ob(ob: OBData, out_dir: Path) -> list[Path]``: the per-OB product
  file(s), the first being the OB's ``product_file``;
- ``write_object(obj: ObjectData, out_dir: Path) -> Path``: the per-object
  product (read back by ``read_object(path) -> Spectrum``).

:mod:`casuvo.spectra.ges` has them for Gaia-ESO; WEAVE and 4MOST have theirs
in :mod:`casuvo.spectra.weave` and :mod:`casuvo.spectra.fourmost`.  Errors
here are always sigma; the writers convert to their own convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ArmData", "Epoch", "OBData", "ObjectData"]


@dataclass
class ArmData:
    """One arm of an OB (rows = fibres in ``OBData.fibres`` order) or of an object (1D)."""

    arm: str
    wave: np.ndarray
    """Vacuum Å (observed frame for an OB, heliocentric for an object)."""
    flux: np.ndarray
    sigma: np.ndarray
    flux_noss: np.ndarray
    """Flux before sky subtraction."""
    sigma_noss: np.ndarray
    sensfunc: np.ndarray
    """Counts s⁻¹ pixel⁻¹ per flux unit (flux = counts / (sensfunc × exptime))."""
    resolution: float


@dataclass
class OBData:
    """A reduced OB: keywords, arms, and one row per fibre."""

    survey: str
    ob: dict[str, Any]
    """The OB's row of the OB database plus what the exposures say (``mjd_obs``,
    ``mjd_end``, ``exptime``, ``airmass``, ``seeing``, ``raw_files``, ``mode``,
    ``setting``, ``resolution``, ``instrument``, ``telescope``...)."""
    arms: list[ArmData]
    fibres: dict[str, np.ndarray]
    """Columns: ``fibre``, ``target_name``, ``target_id``, ``obj_type`` (OBJ/SKY),
    ``ra``, ``dec``, ``mag_g``, ``source_id`` (−1 for sky), ``fibre_status``
    (OK/DEAD), ``snr``, ``rv``, ``rv_error`` (heliocentric km/s), ``helio_cor``,
    ``rv_template``, ``ccf_peak``, ``chi2_dof``, ``teff``, ``logg``, ``feh``
    (of the best template), ``sky_scale``."""
    qc: dict[str, Any] = field(default_factory=dict)
    flux_unit: str = "1e-17 erg/(s cm2 Angstrom)"


@dataclass
class Epoch:
    """One OB's observation of an object."""

    ob_id: int
    fibre: int
    product_file: str
    """The per-OB product it came from (relative to the data root)."""
    mjd_obs: float
    mjd_end: float
    exptime: float
    airmass: float
    seeing: float
    snr: float
    rv: float
    rv_error: float
    helio_cor: float
    arms: list[ArmData]
    """Heliocentric frame, on the arm's nominal grid."""


@dataclass
class ObjectData:
    """An object's spectrum in one mode: its epochs and their stack (heliocentric)."""

    survey: str
    spectrum_id: str
    target_name: str
    target_id: str
    source_id: int
    ra: float
    dec: float
    mag_g: float
    mode: str
    setting: str
    epochs: list[Epoch]
    arms: list[ArmData]
    """The stack of the epochs."""
    snr: float
    rv: float
    rv_error: float
    rv_template: str
    keywords: dict[str, Any] = field(default_factory=dict)
    flux_unit: str = "1e-17 erg/(s cm2 Angstrom)"
