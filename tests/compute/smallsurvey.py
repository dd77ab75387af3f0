# SPDX-License-Identifier: BSD-3-Clause
"""A small survey to run the VST pipeline on (one OB of the demo: NGC 6791 in g, three
dithered exposures, their biases and flats), and the check that what it made equals
the demo run's products.  Used by the pipeline-run and cluster tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits

from casuvo.config import Settings
from casuvo.pipeline.rawindex import index_raw
from casuvo.surveys.instruments import instrument

__all__ = ["VST_CONFIG", "assert_same_products_as_demo", "small_survey"]


#: The VST pipeline's configuration (the small-survey tests run it).
VST_CONFIG = Path(__file__).parents[2] / "pipelines" / "vst" / "config.toml"


@pytest.fixture()
def small_survey(settings: Settings, tmp_path: Path):
    """A CASUVO_VAR-like tree with the raws of one OB, and the Gaia catalogue linked in.

    The runs record into the demo's ledger (the same database the tests read); what
    they record is removed afterwards, so the published ``vst.processing`` keeps
    describing the demo's products only, however often the suite runs.
    """
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        before = {r for (r,) in conn.execute("SELECT run_id FROM ledger.runs")}
    filters = {f.eso_name: f.name for f in instrument("vst").filters.values()}
    index = index_raw((settings.data_dir / "raw" / "vst").rglob("*.fits"), filters)
    science = [f for f in index.science() if f.obj == "ngc6791" and f.band == "g"]
    obs = science[0].obs_id
    science = [f for f in science if f.obs_id == obs]
    night = science[0].night
    calib = index.calibrations(night, "bias") + [
        f for f in index.calibrations(night, "flat") if f.band == "g"]
    raw = tmp_path / "data" / "raw" / "vst" / night
    raw.mkdir(parents=True)
    for f in [*science, *calib]:
        shutil.copy(f.path, raw / f.path.name)
    (tmp_path / "data" / "gaia").symlink_to(settings.data_dir / "gaia")
    yield tmp_path
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        new = [r for (r,) in conn.execute("SELECT run_id FROM ledger.runs")
               if r not in before]
        conn.execute("DELETE FROM ledger.products WHERE run_id = ANY(%s)", (new,))
        conn.execute("DELETE FROM ledger.runs WHERE run_id = ANY(%s)", (new,))


def assert_same_products_as_demo(products: Path, settings: Settings) -> None:
    """The stacks and tiles under ``products`` equal the demo run's (found by their
    start time, as run numbers count the files of a night): pixels and zero points."""
    reference = {}
    for ref in (settings.data_dir / "products" / "vst").rglob("*_st*.fit"):
        head = fits.getheader(ref, 0)
        reference[(ref.name.split("_", 2)[-1], head["MJD-OBS"])] = ref
    made = sorted(p for p in products.rglob("*_st*.fit") if "_conf" not in p.name)
    assert made
    for path in made:
        ref = reference[(path.name.split("_", 2)[-1], fits.getheader(path, 0)["MJD-OBS"])]
        with fits.open(path) as a, fits.open(ref) as b:
            assert len(a) == len(b)
            for ha, hb in zip(a[1:], b[1:], strict=True):
                assert np.allclose(ha.data, hb.data, equal_nan=True), path.name
                assert ha.header["MAGZPT"] == hb.header["MAGZPT"]
