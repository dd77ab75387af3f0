# SPDX-License-Identifier: BSD-3-Clause
"""The pure functions of the band merge (service environment: numpy 1.26, astropy 5.3)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from casuvo.catalogue import framesets as fs
from casuvo.catalogue import measurements as ms
from casuvo.catalogue import mergedtable as mt
from casuvo.catalogue import pairing
from casuvo.config import Settings
from casuvo.sky.healpix import healpix_from_source_id, lonlat_to_nested
from casuvo.storage.ingest.fitstable import read_columns
from casuvo.surveys.registry import load_registry

ARCSEC = 1 / 3600
#: the checkout's own surveys (pipelines/*/config.toml)
SURVEYS = load_registry(Settings.from_env({}))


def _frame(name: str, filt: str, seeing: float, *, depth: float = 20.0, mjd: float = 60441.0,
           qc: str = "pass", field: str = "f1") -> fs.TileFrame:
    return fs.TileFrame(path=Path(name), field=field, filter=filt, mjd=mjd, psf_fwhm=seeing,
                        depth=depth, qcstatus=qc, obstatus="Completed", magzpt=24.0,
                        exptime=10.0, apcor3=0.1, apcor4=0.05, extinct=0.1, airmass=1.2,
                        saturate=33000.0)


def test_aperture_magnitude_follows_the_casu_formula() -> None:
    mag, err = ms.aperture_magnitude(np.array([1000.0, 0.0, -5.0]), np.array([10.0, 1, 1]),
                                     magzpt=24.0, exptime=10.0, apcor=0.1, extinct=0.1,
                                     airmass=1.5)
    assert mag[0] == pytest.approx(24.0 - 2.5 * np.log10(100.0) - 0.1 - 0.05)
    assert err[0] == pytest.approx(2.5 / np.log(10) * 0.01)
    assert np.isnan(mag[1:]).all() and np.isnan(err[1:]).all()


def test_pp_err_bits() -> None:
    bits = ms.pp_err_bits(np.array([0, 3, 0, 0]), np.array([100.0, 100.0, 50.0, 100.0]),
                          np.array([-1, -1, -1, -9]), np.array([10.0, 10.0, 10.0, 10.0]),
                          saturate=33000.0)
    assert bits.tolist() == [0, 64, 128, 65536]
    near = ms.pp_err_bits(np.array([0]), np.array([100.0]), np.array([-1]),
                          np.array([31000.0]), saturate=33000.0)
    assert near.tolist() == [65536]


def test_tangent_offsets_point_east_and_north() -> None:
    xi, eta = pairing.tangent_offsets(np.array([10.0 + ARCSEC / np.cos(np.radians(-60)), 10.0]),
                                 np.array([-60.0, -60.0 + ARCSEC]), np.array([10.0, 10.0]),
                                 np.array([-60.0, -60.0]))
    # (a small circle of constant dec bends north by ~xi² tan(dec) / 2: 4 µas here)
    assert xi == pytest.approx([1.0, 0.0], abs=1e-5)
    assert eta == pytest.approx([0.0, 1.0], abs=1e-5)


def test_merge_pairs_within_one_arcsec_and_averages() -> None:
    # Band 1: A, B.  Band 2: A' 0.3" from A, C 1.5" from B (too far), D far away.
    ra0, dec0 = 150.0, 2.0
    b1 = (np.array([ra0, ra0 + 20 * ARCSEC]), np.array([dec0, dec0]))
    b2 = (np.array([ra0, ra0 + 20 * ARCSEC, ra0 + 60 * ARCSEC]),
          np.array([dec0 + 0.3 * ARCSEC, dec0 + 1.5 * ARCSEC, dec0]))
    members, ra, dec = pairing.merge_positions([b1, b2])
    assert members.tolist() == [[0, 0], [1, -1], [-1, 1], [-1, 2]]
    assert ra[0] == pytest.approx(ra0) and dec[0] == pytest.approx(dec0 + 0.15 * ARCSEC)
    assert dec[1] == pytest.approx(dec0) and dec[2] == pytest.approx(dec0 + 1.5 * ARCSEC)


def test_merge_is_one_to_one_and_second_nearest_pairs() -> None:
    # Two band-1 sources 0.8" apart; band 2 has one detection close to each but
    # both nearer to the first source: the second round pairs the leftover.
    ra0, dec0 = 30.0, -30.0
    b1 = (np.array([ra0, ra0]), np.array([dec0, dec0 + 0.8 * ARCSEC]))
    b2 = (np.array([ra0, ra0]), np.array([dec0 + 0.1 * ARCSEC, dec0 + 0.35 * ARCSEC]))
    members, _, _ = pairing.merge_positions([b1, b2])
    assert len(members) == 2
    assert sorted(members[:, 1].tolist()) == [0, 1]
    assert members[0, 1] == 0


def test_merge_handles_empty_bands_and_ra_wrap() -> None:
    b1 = (np.array([359.9999 + 0.0]), np.array([0.0]))
    b2 = (np.array([0.00002]), np.array([0.0]))
    members, ra, _ = pairing.merge_positions([(np.empty(0), np.empty(0)), b1, b2])
    assert members.tolist() == [[-1, 0, 0]]
    assert min(ra[0], 360 - ra[0]) < 1e-4
    none, _, _ = pairing.merge_positions([(np.empty(0), np.empty(0))])
    assert none.shape == (0, 1)


def test_merged_class_follows_the_vsa_rule() -> None:
    n = ms.CLASS_NULL
    classes = np.array([[-1, n, n], [-1, -1, 1], [1, 1, n], [-2, n, n], [0, 0, -1],
                        [-1, -9, -1], [-9, n, n], [-1, 1, n]])
    cls, p = ms.merged_class(classes)
    assert cls.tolist() == [-1, -1, 1, -2, 0, -9, -9, -2]
    assert np.allclose(np.nansum(p[:, :3], axis=1)[:6], 1.0)
    assert p[:, 3].tolist() == [0, 0, 0, 0, 0, 1, 1, 0]
    assert np.isnan(p[6, :3]).all()


def test_frame_set_selection_prefers_qc_pass_then_seeing() -> None:
    bands = SURVEYS["vista"].bands
    frames = [_frame("ks_bad_seeing", "Ks", 1.1), _frame("ks_good", "Ks", 0.8, mjd=60455.0),
              _frame("ks_failed", "Ks", 0.6, qc="fail"), _frame("j", "J", 1.0),
              _frame("y", "Y", 0.7), _frame("h_other_field", "H", 0.9, field="f2")]
    sets = fs.select_frame_sets(frames, bands)
    assert {f: {b: fr.path.name for b, fr in s.items()} for f, s in sets.items()} == {
        "f1": {"ks": "ks_good", "j": "j"}, "f2": {"h": "h_other_field"}}
    tie = fs.select_frame_sets([_frame("shallow", "J", 0.8, depth=19.0),
                                _frame("deep", "J", 0.8, depth=20.5)], bands)
    assert tie["f1"]["j"].path.name == "deep"


def test_source_ids_encode_healpix_and_are_stable_and_unique() -> None:
    rng = np.random.default_rng(1)
    ra = 194.3 + rng.uniform(-0.01, 0.01, 500)
    dec = -64.75 + rng.uniform(-0.01, 0.01, 500)
    ids = mt.source_ids(ra, dec, SURVEYS["vista"], "vvv_disc")
    assert len(np.unique(ids)) == len(ids)
    assert (healpix_from_source_id(ids) == lonlat_to_nested(ra, dec, 12)).all()
    perm = rng.permutation(len(ra))
    assert (mt.source_ids(ra[perm], dec[perm], SURVEYS["vista"], "vvv_disc")
            == ids[perm]).all()
    other = mt.source_ids(ra, dec, SURVEYS["vst"], "vvv_disc")
    assert not set(ids.tolist()) & set(other.tolist())


def test_frame_set_id() -> None:
    assert mt.frame_set_id(SURVEYS["vst"], "ngc6791") == 2 * 2**32 + zlib.crc32(b"ngc6791")


def test_column_names_match_survey_bands() -> None:
    names = mt.column_names(SURVEYS["vst"])
    assert names[:4] == ["sourceID", "frameSetID", "ra", "dec"]
    for col in ("uAperMag3", "haAperMag3Err", "ippErrBits", "rmhaPnt", "umgPnt", "gmrPnt",
                "rmiPnt", "mergedClass"):
        assert col in names
    assert len(names) == len(set(n.lower() for n in names))
    assert "ksAperMag3Err" in mt.column_names(SURVEYS["vista"])


def test_written_table_reads_back_with_nulls_for_the_ingest(tmp_path: Path) -> None:
    """write_merged's file through the ingest reader: case-insensitive names, TNULL → NULL."""
    table = Table()
    table["sourceID"] = np.array([1, 2], dtype=np.int64)
    cols = mt.band_columns({"AperMag3": np.array([15.0, 0.0]),
                             "Class": np.array([-1, 0], dtype=np.int16),
                             "ppErrBits": np.array([64, 0], dtype=np.int32)},
                            np.array([True, False]), 2)
    for suffix, col in cols.items():
        table["j" + suffix] = col
    path = tmp_path / "merged.fits"
    mt.write_merged(table, [_frame("t.fits", "J", 1.0)], SURVEYS["vista"], path)
    got = read_columns(path, ["sourceid", "japermag3", "jclass", "jpperrbits", "jxi"])
    assert got["sourceid"].tolist() == [1, 2]
    assert got["japermag3"][0] == np.float32(15.0) and np.isnan(got["japermag3"][1])
    assert np.ma.getmaskarray(got["jclass"]).tolist() == [False, True]
    assert np.ma.getmaskarray(got["jpperrbits"]).tolist() == [False, True]
    assert int(got["jpperrbits"][0]) == 64
    assert np.isnan(got["jxi"]).all()
    assert not list(tmp_path.glob(".*tmp"))
