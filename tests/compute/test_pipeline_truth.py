# SPDX-License-Identifier: BSD-3-Clause
"""The imaging pipelines checked against the simulator's truth (demo survey products)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import psycopg
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning
from scipy.spatial import cKDTree

from casuvo.simulate.truth import read_truth
from tests.compute.conftest import product_files, truth_files

warnings.filterwarnings("ignore", category=FITSFixedWarning)

POINT_KINDS = ("star", "faint_star", "variable", "pn_central_star", "transient")


def _stellar_bright(cat: Table | fits.FITS_rec, saturate: float) -> np.ndarray:
    snr = cat["Aper_flux_3"] / np.maximum(cat["Aper_flux_3_err"], 1e-9)
    return ((cat["Classification"] == -1) & (snr > 100) & (cat["Error_bit_flag"] == 0)
            & (cat["Peak_height"] < 0.4 * saturate) & (cat["Ellipticity"] < 0.3))


def _isolated_truth(src: Table, radius_arcsec: float, dmag: float) -> np.ndarray:
    """Point sources with no truth neighbour within radius brighter than mag + dmag."""
    c = SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg)
    xyz = np.column_stack([c.cartesian.x, c.cartesian.y, c.cartesian.z])
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(np.radians(radius_arcsec / 3600))
    mag = np.asarray(src["mag"], float)
    bad = np.zeros(len(src), bool)
    for i, j in pairs:
        if mag[j] < mag[i] + dmag:
            bad[i] = True
        if mag[i] < mag[j] + dmag:
            bad[j] = True
    return ~bad & np.isin(np.asarray(src["kind"]), POINT_KINDS)


def _nebulae(settings, field: str) -> SkyCoord | None:
    """Positions of extended nebulae in a field's sky model (they bias centroids)."""
    sky = Table.read(settings.data_dir / "truth" / f"sky_{field}.fits", hdu=1,
                     character_as_bytes=False)
    neb = sky[np.asarray(sky["kind"]) == "pn_nebula"]
    return SkyCoord(np.asarray(neb["ra"]) * u.deg, np.asarray(neb["dec"]) * u.deg) \
        if len(neb) else None


def _residuals(settings, stack) -> tuple[np.ndarray, int]:
    head, dets = read_truth(str(truth_files(settings, stack)[0]))
    nebulae = _nebulae(settings, head["FIELD"])
    cat_hdul = fits.open(str(stack).replace("_st.fit", "_st_cat.fits"))
    seps = []
    for hdu in cat_hdul[1:]:
        if hdu.name not in dets:
            continue
        _, src = dets[hdu.name]
        src = src[_isolated_truth(src, 3.0, 4.0)]
        if nebulae is not None:  # stars seen through a bright nebula's shell
            near = SkyCoord(np.asarray(src["ra"]) * u.deg,
                            np.asarray(src["dec"]) * u.deg).separation(
                nebulae[0]).arcsec < 100
            src = src[~near]
        cat = hdu.data[_stellar_bright(hdu.data, hdu.header["SATURATE"])]
        if len(cat) == 0 or len(src) == 0:
            continue
        det = SkyCoord(cat["RA"] * u.deg, cat["DEC"] * u.deg)
        idx, sep, _ = det.match_to_catalog_sky(SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg))
        seps.append(sep.arcsec[sep.arcsec < 0.5])
    return np.concatenate(seps), len(cat_hdul) - 1


@pytest.mark.parametrize("survey", ["vista", "vst"])
def test_astrometry_of_bright_stars_is_better_than_0_1_arcsec(settings, products_dir,
                                                             survey) -> None:
    stacks = product_files(products_dir, survey, "stack")[:3]
    assert stacks
    for stack in stacks:
        sep, _ = _residuals(settings, stack)
        rms = float(np.sqrt(np.mean(sep**2)))
        print(f"{stack.name}: {len(sep)} bright isolated stars, RMS {rms * 1000:.0f} mas")
        assert len(sep) > 30
        assert rms < 0.1


@pytest.mark.parametrize("survey", ["vista", "vst"])
def test_zero_points_match_truth_within_0_03_mag(settings, products_dir, survey) -> None:
    for stack in product_files(products_dir, survey, "stack"):
        truths = [fits.getheader(t, 0) for t in truth_files(settings, stack)]
        with fits.open(stack) as hdul:
            ext = hdul[1].header["EXTINCT"]
            true_zp = np.mean([h["ZPTRUE"] + ext * (h["AIRMASS"] - 1) for h in truths])
            zps = np.array([h.header["MAGZPT"] for h in hdul[1:]])
        err = zps - true_zp
        print(f"{stack.name}: MAGZPT {np.median(zps):.3f} true {true_zp:.3f} "
              f"median error {np.median(err):+.4f} max |error| {np.abs(err).max():.4f}")
        assert abs(np.median(err)) < 0.03
        assert np.abs(err).max() < 0.05


def _completeness(settings, stack) -> tuple[float, float, float, float]:
    """(completeness at the 5σ limit, at limit − 1.5, spurious fraction, limit)."""
    head, dets = read_truth(str(truth_files(settings, stack)[0]))
    qc = json.loads((stack.parent / (stack.name + ".done.json")).read_text())["qc"]
    limit = qc["depth"]
    found_lim, total_lim, found_bright, total_bright, spurious, detected = 0, 0, 0, 0, 0, 0
    with fits.open(str(stack).replace("_st.fit", "_st_cat.fits")) as cat_hdul:
        for hdu in cat_hdul[1:]:
            if hdu.name not in dets:
                continue
            _, src = dets[hdu.name]
            src = src[np.asarray(src["on_chip"], bool)] if "on_chip" in src.colnames else src
            cat = hdu.data
            h = hdu.header
            mag = h["MAGZPT"] - 2.5 * np.log10(np.maximum(cat["Aper_flux_3"], 1e-9)
                                                / h["EXPTIME"]) - h["APCOR3"]
            tc = SkyCoord(src["ra"] * u.deg, src["dec"] * u.deg)
            dc = SkyCoord(cat["RA"] * u.deg, cat["DEC"] * u.deg)
            _, sep_t, _ = tc.match_to_catalog_sky(dc)
            tmag = np.asarray(src["mag"], float)
            at_lim = np.abs(tmag - limit) < 0.25
            bright = np.abs(tmag - (limit - 1.5)) < 0.25
            found_lim += int((sep_t.arcsec[at_lim] < 1.0).sum())
            total_lim += int(at_lim.sum())
            found_bright += int((sep_t.arcsec[bright] < 1.0).sum())
            total_bright += int(bright.sum())
            _, sep_d, _ = dc.match_to_catalog_sky(tc)
            sel = (mag < limit) & (cat["Classification"] != 0)
            spurious += int((sep_d.arcsec[sel] > 1.0).sum())
            detected += int(sel.sum())
    return (found_lim / max(total_lim, 1), found_bright / max(total_bright, 1),
            spurious / max(detected, 1), limit)


@pytest.mark.parametrize("survey", ["vista", "vst"])
def test_completeness_and_spurious_rate_at_the_5_sigma_limit(settings, products_dir,
                                                              survey) -> None:
    # A field without extended nebulosity, whose structure a point-source limit ignores.
    stack = next(s for s in product_files(products_dir, survey, "stack")
                 if fits.getheader(s, 0)["OBJECT"] != "vphas_pn")
    comp, comp_bright, spurious, limit = _completeness(settings, stack)
    print(f"{stack.name}: 5σ limit {limit:.2f}: completeness {comp:.1%} at the limit, "
          f"{comp_bright:.1%} 1.5 mag brighter; spurious {spurious:.2%}")
    # Measured on the demo (see the issue notes): 1.5 mag above the limit the
    # catalogues are complete; at the nominal 5σ aperture limit completeness drops
    # fast (the limit is computed from the sky noise alone, before source
    # confusion), and most "spurious" detections brighter than the limit are
    # deblended fragments of bright stars.
    assert comp_bright > 0.85
    assert 0.05 < comp < comp_bright
    assert spurious < 0.25


def _tile_catalogue_near(products_dir, survey: str, night: str, band: str,
                         ra: float, dec: float) -> float:
    """Separation (arcsec) of the nearest detection to (ra, dec) in that night's band tiles."""
    best = None
    for tile in product_files(products_dir, survey, "tile"):
        if tile.parent.name != night:
            continue
        with fits.open(str(tile).replace("_st_tl.fit", "_st_tl_cat.fits")) as hdul:
            if hdul[0].header["FILTER"] != band:
                continue
            cat = hdul[1].data
        sep = SkyCoord(cat["RA"] * u.deg, cat["DEC"] * u.deg).separation(
            SkyCoord(ra * u.deg, dec * u.deg)).arcsec
        best = float(sep.min()) if best is None else min(best, float(sep.min()))
    assert best is not None, f"no {survey} {band} tile with a catalogue on {night}"
    return best


def test_transient_is_detected_only_when_it_shines(settings, products_dir) -> None:
    sky = Table.read(settings.data_dir / "truth" / "sky_vvv_disc.fits", hdu=1,
                     character_as_bytes=False)
    tr = sky[np.asarray(sky["kind"]) == "transient"]
    assert len(tr) == 1
    nights = sorted(p.name for p in (products_dir / "vista").glob("2*"))
    before = _tile_catalogue_near(products_dir, "vista", nights[0], "Ks", tr["ra"][0],
                                  tr["dec"][0])
    during = _tile_catalogue_near(products_dir, "vista", nights[-1], "Ks", tr["ra"][0],
                                  tr["dec"][0])
    print(f"transient: nearest detection {before:.2f}″ on {nights[0]}, "
          f"{during:.2f}″ on {nights[-1]}")
    assert during < 0.3
    assert before > 1.0


def _surface_brightness(tile, ra: float, dec: float, radius_arcsec: float) -> tuple[float,
                                                                                    float]:
    """Mean surface brightness (mag/arcsec²) within a radius, and its significance."""
    with fits.open(tile) as hdul:
        h = hdul[1].header
        data = hdul[1].data
        wcs = WCS(h)
    x, y = wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
    yy, xx = np.indices(data.shape)
    scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))) * 3600
    inside = np.hypot(xx - x, yy - y) < radius_arcsec / scale
    values = data[inside & np.isfinite(data)]
    per_pix = float(np.median(values))
    sb = h["MAGZPT"] - 2.5 * np.log10(max(per_pix, 1e-9) / h["EXPTIME"] / scale**2)
    return sb, per_pix / h["SKYNOISE"]


def test_planetary_nebula_is_visible_in_halpha(settings, products_dir) -> None:
    sky = Table.read(settings.data_dir / "truth" / "sky_vphas_pn.fits", hdu=1,
                     character_as_bytes=False)
    pn = sky[np.asarray(sky["kind"]) == "pn_nebula"][0]
    tiles = {fits.getheader(t, 0)["FILTER"]: t for t in product_files(products_dir, "vst",
                                                                         "tile")
             if fits.getheader(t, 0)["OBJECT"] == "vphas_pn"}
    sb_ha, snr_ha = _surface_brightness(tiles["Halpha"], pn["ra"], pn["dec"], 30.0)
    sb_r, snr_r = _surface_brightness(tiles["r"], pn["ra"], pn["dec"], 30.0)
    print(f"NGC 5189 within 30″: Hα {sb_ha:.2f} mag/arcsec² ({snr_ha:.1f}σ per pixel), "
          f"r {sb_r:.2f} mag/arcsec² ({snr_r:.1f}σ)")
    assert snr_ha > 3.0
    assert sb_r - sb_ha > 1.5


def test_ledger_lists_every_product_with_qc(settings, products_dir) -> None:
    on_disk = {p.name for s in ("vista", "vst") for k in ("stack", "tile")
               for p in product_files(products_dir, s, k)}
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (product) product, qc FROM ledger.products"
            " WHERE kind IN ('stack', 'tile') AND status <> 'failed'"
            " ORDER BY product, finished DESC").fetchall()
    recorded = {name: qc for name, qc in rows}
    assert on_disk <= set(recorded)
    for name in on_disk:
        assert {"seeing_arcsec", "magzpt", "depth", "qcstatus"} <= set(recorded[name])
