# SPDX-License-Identifier: BSD-3-Clause
"""The seeded Gaia DR3-like simulator (casuvo.simulate) and casuvo.sky.healpix."""

from __future__ import annotations

import os
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord
from astropy.io import fits
from astropy.table import Table
from cdshealpix import nested

from casuvo.simulate import simulate_demo
from casuvo.simulate.fields import (
    DEMO_FIELDS,
    NGC6791,
    PLANETARY_NEBULAE,
    Field,
    field_by_name,
    nebulae_in,
)
from casuvo.simulate.gaia import (
    CATALOGUE_COLUMNS,
    TRUTH_COLUMNS,
    expected_rows,
    simulate_gaia,
)
from casuvo.sky.healpix import (
    GAIA_SOURCE_ID_SHIFT,
    gaia_source_ids,
    healpix_from_source_id,
    lonlat_to_nested,
)
from casuvo.storage.ingest.fitstable import read_columns

SEED, SCALE = 7, 0.05
TWO_PARAMETER_NAN = ("parallax", "parallax_error", "parallax_over_error", "pm", "pmra",
                     "pmra_error", "pmdec", "pmdec_error")


@pytest.fixture(scope="module")
def sims() -> dict[str, tuple[Table, Table]]:
    return {f.name: simulate_gaia(f, SEED, SCALE) for f in DEMO_FIELDS}


def _same(a: Table, b: Table) -> bool:
    if a.colnames != b.colnames or len(a) != len(b):
        return False
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


# -- fields -------------------------------------------------------------------------------


def test_demo_fields() -> None:
    assert [f.name for f in DEMO_FIELDS] == ["vvv_disc", "vphas_pn", "ngc6791", "ges_1528"]
    ges = field_by_name("ges_1528")
    c = SkyCoord("15h28m03.5s", "-50d42m34s", frame="icrs")
    assert ges.ra == pytest.approx(c.ra.deg, abs=1e-9)
    assert ges.dec == pytest.approx(c.dec.deg, abs=1e-9)
    assert field_by_name("vphas_pn").ra == 203.3875
    with pytest.raises(ValueError, match="vvv_disc"):
        field_by_name("nowhere")
    assert len({f.key % 4096 for f in DEMO_FIELDS}) == len(DEMO_FIELDS)  # distinct chunks


def test_tangent_plane_round_trip() -> None:
    f = field_by_name("vvv_disc")
    xi = np.array([-0.4999, 0.0, 0.3, 0.4999])
    eta = np.array([0.4999, 0.0, -0.2, -0.4999])
    ra, dec = f.from_tangent(xi, eta)
    back = f.to_tangent(ra, dec)
    np.testing.assert_allclose(back, (xi, eta), atol=1e-12)
    assert f.contains(ra, dec).all()
    assert not f.contains(f.ra, f.dec + 0.51)


# -- healpix ------------------------------------------------------------------------------


def test_source_ids_count_within_pixel_and_chunk() -> None:
    ra = np.array([10.0, 10.0, 200.0, 10.0])
    dec = np.array([20.0, 20.0, -30.0, 20.0])
    hpx = lonlat_to_nested(ra, dec, 12)
    assert hpx.dtype == np.int64
    ids = gaia_source_ids(ra, dec, chunk=0)
    np.testing.assert_array_equal(ids % GAIA_SOURCE_ID_SHIFT, [0, 1, 0, 2])
    np.testing.assert_array_equal(healpix_from_source_id(ids), hpx)
    other = gaia_source_ids(ra, dec, chunk=5)
    assert not set(ids.tolist()) & set(other.tolist())
    np.testing.assert_array_equal(healpix_from_source_id(other), hpx)
    np.testing.assert_array_equal(healpix_from_source_id(ids, 5), hpx // 4**7)
    with pytest.raises(ValueError):
        gaia_source_ids(ra, dec, chunk=4096)
    with pytest.raises(ValueError):
        healpix_from_source_id(ids, 13)


def test_source_id_encodes_healpix12_and_is_unique(sims: dict) -> None:
    all_ids = []
    for cat, _ in sims.values():
        ids = np.asarray(cat["source_id"])
        hpx = nested.lonlat_to_healpix(Longitude(np.asarray(cat["ra"]), u.deg),
                                       Latitude(np.asarray(cat["dec"]), u.deg), 12)
        np.testing.assert_array_equal(ids // 2**35, hpx.astype(np.int64))
        np.testing.assert_array_equal(healpix_from_source_id(ids), hpx.astype(np.int64))
        assert (np.diff(ids) > 0).all(), "rows sorted by source_id"
        all_ids.append(ids)
    ids = np.concatenate(all_ids)
    assert len(np.unique(ids)) == len(ids)


def test_random_index_is_a_permutation_over_all_fields(sims: dict) -> None:
    idx = np.concatenate([np.asarray(cat["random_index"]) for cat, _ in sims.values()])
    np.testing.assert_array_equal(np.sort(idx), np.arange(len(idx)))


# -- determinism, columns -----------------------------------------------------------------


def test_same_seed_same_sky_other_seed_other_sky(sims: dict) -> None:
    f = field_by_name("ngc6791")
    cat, truth = simulate_gaia(f, SEED, SCALE)
    assert _same(cat, sims["ngc6791"][0]) and _same(truth, sims["ngc6791"][1])
    other, _ = simulate_gaia(f, SEED + 1, SCALE)
    assert not np.array_equal(np.asarray(other["ra"][:50]), np.asarray(cat["ra"][:50]))


def test_row_counts_and_scale(sims: dict) -> None:
    for f in DEMO_FIELDS:
        assert len(sims[f.name][0]) == len(sims[f.name][1]) == expected_rows(f, SCALE)
    f = field_by_name("ges_1528")
    assert expected_rows(f, 10 * SCALE) == pytest.approx(10 * expected_rows(f, SCALE), rel=1e-3)
    total = sum(expected_rows(f, 1.0) for f in DEMO_FIELDS)
    assert 200_000 <= total <= 400_000


def test_columns_dtypes_units(sims: dict) -> None:
    cat, truth = sims["vvv_disc"]
    assert cat.colnames == list(CATALOGUE_COLUMNS)
    assert truth.colnames == list(TRUTH_COLUMNS)
    for table, spec in ((cat, CATALOGUE_COLUMNS), (truth, TRUTH_COLUMNS)):
        for name, (dtype, unit) in spec.items():
            col = table[name]
            if dtype == "str":
                assert col.dtype.kind == "U", name
            else:
                assert col.dtype == np.dtype(dtype), name
            assert (col.unit is None) == (unit is None), name
            if unit:
                assert col.unit == u.Unit(unit), name
    assert cat["phot_g_mean_flux"].unit == u.electron / u.s
    assert set(np.unique(cat["phot_variable_flag"])) <= {"VARIABLE", "NOT_AVAILABLE"}
    assert (np.asarray(cat["ref_epoch"]) == 2016.0).all()
    assert set(np.unique(cat["astrometric_params_solved"])) == {3, 31}


def test_derived_coordinates_match_astropy(sims: dict) -> None:
    cat = sims["vphas_pn"][0][:100]
    c = SkyCoord(np.asarray(cat["ra"]) * u.deg, np.asarray(cat["dec"]) * u.deg)
    np.testing.assert_allclose(cat["l"], c.galactic.l.deg, atol=1e-9)
    np.testing.assert_allclose(cat["b"], c.galactic.b.deg, atol=1e-9)
    np.testing.assert_allclose(cat["ecl_lat"], c.barycentrictrueecliptic.lat.deg, atol=1e-9)
    assert np.all(np.abs(np.asarray(cat["b"]) + 3.45) < 1.0)


# -- the sky ------------------------------------------------------------------------------


def test_positions_inside_the_field(sims: dict) -> None:
    for f in DEMO_FIELDS:
        cat, truth = sims[f.name]
        assert f.contains(cat["ra"], cat["dec"]).all(), f.name
        assert f.contains(truth["ra_true"], truth["dec_true"]).all(), f.name
        xi, eta = f.to_tangent(cat["ra"], cat["dec"])
        assert np.abs(xi).max() > 0.45 and np.abs(eta).max() > 0.45  # fills the square


def test_densities_follow_galactic_latitude(sims: dict) -> None:
    def density(name: str) -> float:
        cat, truth = sims[name]
        f = field_by_name(name)
        return (~np.asarray(truth["is_member"])).sum() / (f.size_deg**2 * SCALE)

    disc, pn, ges, ngc = (density(n) for n in ("vvv_disc", "vphas_pn", "ges_1528", "ngc6791"))
    assert 8e4 < disc < 2e5 and 4e4 < pn < 2e5
    assert 2e4 < ges < 8e4 and 1e4 < ngc < 2.5e4
    assert disc > 5 * ngc and pn > 3 * ngc and ges > 2 * ngc


def test_catalogue_is_truth_plus_quoted_noise(sims: dict) -> None:
    cat, truth = sims["vvv_disc"]
    five = np.asarray(cat["astrometric_params_solved"]) == 31
    dra = ((np.asarray(cat["ra"]) - truth["ra_true"]) * 3.6e6
           * np.cos(np.radians(truth["dec_true"])) / cat["ra_error"])
    ddec = (np.asarray(cat["dec"]) - truth["dec_true"]) * 3.6e6 / cat["dec_error"]
    dplx = (cat["parallax"][five] - truth["parallax_true"][five]) / cat["parallax_error"][five]
    dpm = (cat["pmdec"][five] - truth["pmdec_true"][five]) / cat["pmdec_error"][five]
    for pull in (dra, ddec, dplx, dpm):
        assert abs(np.mean(pull)) < 0.05 and 0.95 < np.std(pull) < 1.05
    dg = np.asarray(cat["phot_g_mean_mag"]) - truth["g_true"]
    assert np.abs(dg).max() < 0.2
    # EDR3-like precision: ~0.04 mas at G = 15, ~0.5-0.8 mas at G = 20.
    g = np.asarray(cat["phot_g_mean_mag"])
    err = np.asarray(cat["parallax_error"])
    assert 0.025 < np.nanmedian(err[np.abs(g - 15) < 0.5]) < 0.06
    assert 0.4 < np.nanmedian(err[np.abs(g - 20) < 0.1]) < 1.0
    ruwe = np.asarray(cat["ruwe"])
    assert 0.95 < np.median(ruwe) < 1.05 and 0.01 < (ruwe > 1.4).mean() < 0.1


def test_two_parameter_solutions_have_nan_astrometry(sims: dict) -> None:
    for cat, _ in sims.values():
        two = np.asarray(cat["astrometric_params_solved"]) == 3
        assert 0.02 < two.mean() < 0.4
        assert two[np.asarray(cat["phot_g_mean_mag"]) > 20.5].all()
        for name in TWO_PARAMETER_NAN:
            col = np.asarray(cat[name])
            assert np.isnan(col[two]).all(), name
            assert np.isfinite(col[~two]).all(), name
        for name in ("ra", "dec", "ra_error", "dec_error", "ruwe", "phot_g_mean_mag",
                     "phot_g_mean_flux", "l", "b", "ra_dec_corr"):
            assert np.isfinite(np.asarray(cat[name])).all(), name


def test_bp_rp_missing_only_together_and_mostly_faint(sims: dict) -> None:
    cat = sims["ngc6791"][0]
    g = np.asarray(cat["phot_g_mean_mag"])
    missing = np.isnan(np.asarray(cat["bp_rp"]))
    for name in ("phot_bp_mean_mag", "phot_rp_mean_mag", "bp_g", "g_rp"):
        np.testing.assert_array_equal(np.isnan(np.asarray(cat[name])), missing)
    assert missing[g > 21].mean() > 0.5 and missing[g < 19].mean() < 0.02
    np.testing.assert_allclose(cat["bp_rp"][~missing],
                               (cat["phot_bp_mean_mag"] - cat["phot_rp_mean_mag"])[~missing],
                               atol=1e-5)


def test_colours_redden_towards_the_plane(sims: dict) -> None:
    def median_colour(name: str) -> float:
        cat, truth = sims[name]
        sel = (np.asarray(cat["phot_g_mean_mag"]) < 19) & ~np.asarray(truth["is_member"])
        return float(np.nanmedian(np.asarray(cat["bp_rp"])[sel]))

    assert median_colour("vvv_disc") > median_colour("ges_1528") > median_colour("ngc6791")


def test_radial_velocities_only_for_bright_stars(sims: dict) -> None:
    cat = sims["vvv_disc"][0]
    g = np.asarray(cat["phot_g_mean_mag"])
    has = np.isfinite(np.asarray(cat["radial_velocity"]))
    np.testing.assert_array_equal(np.isfinite(np.asarray(cat["radial_velocity_error"])), has)
    assert has.sum() > 10 and g[has].max() < 15.0
    assert has[g < 13].mean() > 0.8


def test_ngc6791_members_cluster_in_astrometry(sims: dict) -> None:
    cat, truth = sims["ngc6791"]
    member = np.asarray(truth["is_member"])
    assert member.sum() == round(NGC6791.members * SCALE)
    assert not any(np.asarray(t["is_member"]).any() for n, (_, t) in sims.items()
                   if n != "ngc6791")
    good = (np.asarray(cat["phot_g_mean_mag"]) < 18.5) & (cat["astrometric_params_solved"] == 31)
    m, f = good & member, good & ~member
    assert m.sum() > 15
    pmra, pmdec, plx = (np.asarray(cat[k]) for k in ("pmra", "pmdec", "parallax"))
    assert np.median(pmra[m]) == pytest.approx(-0.42, abs=0.1)
    assert np.median(pmdec[m]) == pytest.approx(-2.27, abs=0.1)
    assert np.median(plx[m]) == pytest.approx(0.22, abs=0.05)
    assert np.std(pmdec[m]) < 0.4 < 1.0 < np.std(pmdec[f])
    np.testing.assert_allclose(np.median(truth["radial_velocity_true"][member]), -47, atol=0.5)
    # concentrated: most members within 5′ of the centre
    sep = SkyCoord(np.asarray(truth["ra_true"])[member] * u.deg,
                   np.asarray(truth["dec_true"])[member] * u.deg
                   ).separation(SkyCoord(NGC6791.ra * u.deg, NGC6791.dec * u.deg)).arcmin
    assert np.median(sep) < 6 and sep.max() <= NGC6791.tidal_radius_arcmin + 1e-6
    # turnoff: the bluest members sit near G = 17.5, BP-RP = 1.1
    g_true, c_true = truth["g_true"][member], truth["bp_rp_true"][member]
    assert np.percentile(c_true, 2) == pytest.approx(1.1, abs=0.08)
    assert 16.5 < np.median(g_true[c_true < 1.15]) < 18.5


# -- files --------------------------------------------------------------------------------


def test_write_skip_and_rewrite(tmp_path: Path) -> None:
    f = field_by_name("ngc6791")
    (res,) = simulate_demo(tmp_path, seed=SEED, scale=0.02, fields=(f,))
    assert not res.skipped and res.rows == expected_rows(f, 0.02)
    assert res.catalogue == tmp_path / "gaia" / "gaia_ngc6791.fits"
    assert res.truth == tmp_path / "truth" / "gaia_ngc6791_truth.fits"
    with fits.open(res.catalogue, checksum=True) as hdul:
        assert len(hdul) == 2 and hdul[1].name == "GAIA_SOURCE"
        h = hdul[1].header
        assert (h["FIELD"], h["SEED"], h["SCALE"], h["REFEPOCH"]) == ("ngc6791", SEED, 0.02,
                                                                      2016.0)
        units = {h[f"TTYPE{i}"]: h.get(f"TUNIT{i}") for i in range(1, h["TFIELDS"] + 1)}
        assert units["ra"] == "deg" and units["phot_g_mean_flux"] == "electron/s"
        assert u.Unit(units["pmra"], format="fits") == u.mas / u.yr
        assert units["source_id"] is None
    cols = read_columns(res.catalogue, list(CATALOGUE_COLUMNS))
    cat, _ = simulate_gaia(f, SEED, 0.02)
    for name, arr in cols.items():
        want = np.asarray(cat[name])
        if want.dtype.kind == "U":
            assert arr.astype(str).tolist() == want.tolist()
        else:
            assert arr.dtype == want.dtype, name
            np.testing.assert_array_equal(arr, want, err_msg=name)
    truth = Table.read(res.truth, hdu="TRUTH", character_as_bytes=False)
    assert truth["is_member"].dtype == bool and set(truth["field"]) == {"ngc6791"}

    mtime = res.catalogue.stat().st_mtime_ns
    (again,) = simulate_demo(tmp_path, seed=SEED, scale=0.02, fields=(f,))
    assert again.skipped and again.rows == res.rows
    assert res.catalogue.stat().st_mtime_ns == mtime
    (other,) = simulate_demo(tmp_path, seed=SEED + 1, scale=0.02, fields=(f,))
    assert not other.skipped
    assert fits.getheader(other.catalogue, 1)["SEED"] == SEED + 1
    assert sorted(p.name for p in (tmp_path / "gaia").iterdir()) == ["gaia_ngc6791.fits"]


def test_failed_write_leaves_old_file_and_no_debris(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    f = Field("tiny", 10.0, 20.0, 0.2, "a small high-latitude test field")
    (res,) = simulate_demo(tmp_path, seed=SEED, scale=0.5, fields=(f,))
    before = res.catalogue.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        simulate_demo(tmp_path, seed=SEED + 1, scale=0.5, fields=(f,))
    assert res.catalogue.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "gaia").iterdir()) == ["gaia_tiny.fits"]
    assert sorted(p.name for p in (tmp_path / "truth").iterdir()) == ["gaia_tiny_truth.fits"]


def test_galactic_proper_motion_rotation_matches_astropy() -> None:
    from casuvo.simulate.gaia import _galactic_pm_to_icrs

    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, 500)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    pm_l, pm_b = rng.normal(0, 10, (2, 500))
    gal = SkyCoord(ra * u.deg, dec * u.deg).galactic
    ref = SkyCoord(l=gal.l, b=gal.b, pm_l_cosb=pm_l * u.mas / u.yr, pm_b=pm_b * u.mas / u.yr,
                   frame="galactic").icrs
    pmra, pmdec = _galactic_pm_to_icrs(ra, dec, pm_l, pm_b)
    np.testing.assert_allclose(pmra, ref.pm_ra_cosdec.to_value(u.mas / u.yr), atol=1e-9)
    np.testing.assert_allclose(pmdec, ref.pm_dec.to_value(u.mas / u.yr), atol=1e-9)


# -- planetary nebulae --------------------------------------------------------------------


def test_central_stars_leave_every_other_row_alone(sims: dict,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With and without the central stars, the other rows are bit for bit the same."""
    import casuvo.simulate.gaia as gaia_sim

    with_pn = {name: sims[name] for name in ("vphas_pn", "ges_1528")}
    monkeypatch.setattr(gaia_sim, "nebulae_in", lambda field: ())
    for name, (cat, truth) in with_pn.items():
        bare_cat, bare_truth = simulate_gaia(field_by_name(name), SEED, SCALE)
        assert len(cat) == len(bare_cat) + len(nebulae_in(field_by_name(name)))
        keep = np.isin(np.asarray(cat["source_id"]), np.asarray(bare_cat["source_id"]))
        assert _same(cat[keep], bare_cat) and _same(truth[keep], bare_truth)


def test_pn_catalogue_central_stars_are_gaia_sources_at_the_sky_model_position(
        tmp_path: Path) -> None:
    """The truth's central star of each nebula is a Gaia source where the sky model puts it."""
    from casuvo.simulate.nebulae import pn_catalogue_paths
    from casuvo.simulate.skymodel import ALL_BANDS, CENTRAL_STAR_MAGS, NGC5189, build_sky

    scale = 0.02
    simulate_demo(tmp_path, seed=SEED, scale=scale,
                  fields=[f for f in DEMO_FIELDS if nebulae_in(f)])
    cat_path, truth_path = pn_catalogue_paths(tmp_path)
    assert cat_path == tmp_path / "catalogues" / "pn_catalogue.fits"
    cat = Table.read(cat_path, hdu="PN_CATALOGUE", character_as_bytes=False)
    truth = Table.read(truth_path, hdu="TRUTH", character_as_bytes=False)
    assert list(cat["name"]) == list(truth["name"]) == [p.name for p in PLANETARY_NEBULAE]
    assert str(cat["png"][0]) == "PN G307.2-03.4"     # NGC 5189's real designation
    assert cat["maj_diam"][0] == 140.0 and cat["raj2000"].unit == u.deg
    for row, true, pn in zip(cat, truth, PLANETARY_NEBULAE, strict=True):
        # catalogue-like: a few arcsec off the true centre, within 5 sigma of the stated error
        off = SkyCoord(row["raj2000"] * u.deg, row["dej2000"] * u.deg).separation(
            SkyCoord(pn.ra * u.deg, pn.dec * u.deg)).arcsec
        assert off == pytest.approx(true["offset"], abs=1e-6)
        assert 0.05 < off < 5 * row["pos_err"]
        gaia = Table.read(tmp_path / "gaia" / f"gaia_{true['field']}.fits", hdu=1,
                          character_as_bytes=False)
        star = gaia[gaia["source_id"] == true["source_id"]]
        assert len(star) == 1
        star = star[0]
        sep = SkyCoord(star["ra"] * u.deg, star["dec"] * u.deg).separation(
            SkyCoord(pn.ra * u.deg, pn.dec * u.deg)).arcsec
        assert sep < 5 * 1e-3 * max(star["ra_error"], star["dec_error"])   # mas errors
        assert star["astrometric_params_solved"] == 31
        assert star["phot_g_mean_mag"] == pytest.approx(pn.g, abs=0.01)
        assert star["bp_rp"] == pytest.approx(pn.bp_rp, abs=0.05)
        assert abs(star["parallax"] - pn.parallax) < 5 * star["parallax_error"]
        assert abs(star["pmra"] - pn.pmra) < 5 * star["pmra_error"]
    # NGC 5189: the sky model finds its central star in Gaia (it relabels it, adds none)
    field = field_by_name("vphas_pn")
    gtruth = Table.read(tmp_path / "truth" / "gaia_vphas_pn_truth.fits", hdu=1,
                        character_as_bytes=False)
    sky = build_sky(field, gtruth, SEED, ALL_BANDS, (60441.0, 60455.0),
                    region=[(*NGC5189, 0.01)])
    cs = sky[sky["kind"] == "pn_central_star"]
    assert len(cs) == 1 and bool(cs["in_gaia"][0])
    assert int(cs["sky_id"][0]) == int(truth["source_id"][0])
    assert (float(cs["ra"][0]), float(cs["dec"][0])) == NGC5189
    assert (float(cs["pmra"][0]), float(cs["pmdec"][0])) == (-5.0, -2.0)
    assert float(cs["mag_Halpha"][0]) == pytest.approx(CENTRAL_STAR_MAGS["Halpha"])
    # ... and the central star takes no part in the field-star statistics
    bare = build_sky(field, gtruth[gtruth["source_id"] != truth["source_id"][0]], SEED,
                     ALL_BANDS, (60441.0, 60455.0), region=[(*NGC5189, 0.01)])
    for kind in ("faint_star", "galaxy", "variable"):
        a, b = sky[sky["kind"] == kind], bare[bare["kind"] == kind]
        assert len(a) == len(b) > 0 and _same(a, b), kind
    # rerun: the catalogue is up to date and left alone
    mtime = cat_path.stat().st_mtime_ns
    simulate_demo(tmp_path, seed=SEED, scale=scale,
                  fields=[f for f in DEMO_FIELDS if nebulae_in(f)])
    assert cat_path.stat().st_mtime_ns == mtime
