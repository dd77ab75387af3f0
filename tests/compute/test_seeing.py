# SPDX-License-Identifier: BSD-3-Clause
"""Seeing QC against the simulator's truth, and tiles that keep their stacks' seeing.

The truth is the PSF FWHM each raw exposure was simulated with (``SEEING`` of
its truth file).  A stack's detectors must each measure it within 20 % — in
the planetary-nebula field too, where the nebula's knots used to be measured
as stars — and a tile's FWHM must be within 0.05″ of the median of its stacks'
detectors (resampling must not blur).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import FITSFixedWarning

from tests.compute.conftest import product_files, truth_files

warnings.filterwarnings("ignore", category=FITSFixedWarning)


def _true_seeing(settings, stack) -> float:
    """Mean true FWHM (arcsec) of the exposures behind a stack."""
    return float(np.mean([fits.getheader(f, 0)["SEEING"] for f in truth_files(settings, stack)]))


def _detector_fwhm(product) -> np.ndarray:
    with fits.open(product) as hdul:
        return np.array([h.header["PSF_FWHM"] for h in hdul[1:]], float)


@pytest.mark.parametrize("survey", ["vista", "vst"])
def test_every_detector_measures_the_true_seeing_within_20_percent(settings, products_dir,
                                                                  survey) -> None:
    stacks = product_files(products_dir, survey, "stack")
    assert len(stacks) == 24
    worst = []
    for stack in stacks:
        ratio = _detector_fwhm(stack) / _true_seeing(settings, stack)
        assert len(ratio) == 32 if survey == "vst" else len(ratio) == 16
        worst.append((float(np.max(np.abs(ratio - 1))), stack.name))
    bad = [w for w in worst if not w[0] <= 0.20]
    assert not bad, f"detectors off the true seeing by more than 20 %: {sorted(bad)[-5:]}"


@pytest.mark.parametrize("survey", ["vista", "vst"])
def test_tiles_keep_the_seeing_of_their_stacks(products_dir, survey) -> None:
    tiles = product_files(products_dir, survey, "tile")
    assert len(tiles) == {"vista": 4, "vst": 8}[survey]
    for tile in tiles:
        header = fits.getheader(tile, 0)
        stacks = [tile.parent / header[k] for k in header if k.startswith("PROV")]
        stacks_fwhm = float(np.median(np.concatenate([_detector_fwhm(s) for s in stacks])))
        tile_fwhm = float(_detector_fwhm(tile)[0])
        assert abs(tile_fwhm - stacks_fwhm) <= 0.05, (tile.name, tile_fwhm, stacks_fwhm)
        assert header["QCSTATUS"] == "pass", (tile.name, header["QCFLAGS"])
