# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures of the compute-environment tests: the demo survey's products and their truth.

These tests run in ``var/venv-compute`` (numpy 2, astropy 8, sep, reproject)
on what ``make demo`` produced: raw exposures and truth under
``var/data/raw`` and ``var/data/truth``, pipeline products under
``var/data/products``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import erfa
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import FITSFixedWarning

from casuvo.config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def products_dir(settings: Settings) -> Path:
    path = settings.data_dir / "products"
    assert path.is_dir(), "no pipeline products: `make test` runs `casuvo demo` first"
    return path


def product_files(products_dir: Path, survey: str, kind: str) -> list[Path]:
    """Stacks (``_st.fit``) or tiles (``_st_tl.fit``) of a survey, sorted by name."""
    pattern = {"stack": "*_st.fit", "tile": "*_st_tl.fit"}[kind]
    return sorted((products_dir / survey).glob(f"2*/{pattern}"))


def truth_files(settings: Settings, product: Path) -> list[Path]:
    """The truth files of the raw exposures behind a stack (its PROVn keywords)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        header = fits.getheader(product, 0)
    raws = [header[k] for k in header if k.startswith("PROV")]
    return [settings.data_dir / "truth" / "imaging" / (Path(r).stem + ".truth.fits")
            for r in raws]


def jyear(mjd: np.ndarray | float) -> np.ndarray:
    """Julian epoch of an MJD, by astropy (the reference for casuvo's own conversion)."""
    return np.asarray(Time(np.asarray(mjd, dtype=float), format="mjd", scale="tt").jyear)


def moved_by_astropy(ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
                     ref_epoch: np.ndarray | float, epoch: np.ndarray | float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees moved from ``ref_epoch`` to ``epoch`` (Julian years) by astropy.

    ``SkyCoord.apply_space_motion`` is the reference the tests hold casuvo's
    own propagation (casuvo.xmatch.motion) to, so they never compute expected
    values with the code under test.  Sources without a proper motion (NaN,
    Gaia's 2-parameter solutions) or without an epoch stay where they are, as
    casuvo documents.  No distance is given: ERFA then takes the stars as very
    far, and says so in a warning that is expected.  Only in the compute
    environment: Debian's pyerfa 2.0.0.1 (the service environment) misplaces
    about one star in ten by up to 0.2 mas this way; pyerfa 2.0.1 agrees with
    the linear formula to 1 nano-arcsecond.
    """
    ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    pmra, pmdec = np.asarray(pmra, dtype=float), np.asarray(pmdec, dtype=float)
    ref = np.broadcast_to(np.asarray(ref_epoch, dtype=float), ra.shape)
    to = np.broadcast_to(np.asarray(epoch, dtype=float), ra.shape)
    still = ~(np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(ref) & np.isfinite(to))
    start = SkyCoord(ra * u.deg, dec * u.deg,
                     pm_ra_cosdec=np.where(still, 0.0, pmra) * u.mas / u.yr,
                     pm_dec=np.where(still, 0.0, pmdec) * u.mas / u.yr,
                     obstime=Time(np.where(still, 2016.0, ref), format="jyear", scale="tt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        moved = start.apply_space_motion(
            new_obstime=Time(np.where(still, 2016.0, to), format="jyear", scale="tt"))
    return moved.ra.deg, moved.dec.deg


@pytest.fixture(scope="module")
def sky(tmp_path_factory) -> dict:
    """The cross-match tests' synthetic sky: A.fits, B.fits and the truth
    (:func:`tests.compute.xmatchsky.build_sky`)."""
    from tests.compute.xmatchsky import build_sky

    return build_sky(tmp_path_factory.mktemp("xmatch_sky"))


@pytest.fixture(scope="module")
def client():
    """One in-process Dask cluster for a module (a process cluster takes seconds)."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


# the small survey and the process cluster of the pipeline-run and cluster tests
from tests.compute.daskcluster import process_cluster  # noqa: E402, F401
from tests.compute.smallsurvey import small_survey  # noqa: E402, F401
