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

import pytest
from astropy.io import fits
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
