# SPDX-License-Identifier: BSD-3-Clause
"""Rapid mode against the simulator's truth: the transient, the variables, the constant stars.

The demo's second night is copied, exposure by exposure in order, into a fresh
raw area (as the telescope would write it) and scanned once
(:func:`casuvo.jobs.rapid.scan`) with the demo's masters and tiles.  Expected
values come from the truth files (each exposure's simulated magnitudes), not
from the code under test: the transient (one per transient field, on for the
second night) must be alerted, every variable whose true magnitude changed by
0.5 mag or more between the reference night and the exposure, and bright enough
to be measured at S/N 20, must be flagged in every exposure that has it, and no
other source may be alerted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import voeventparse as vp
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table, vstack

from casuvo.catalogue.voevents import AlertContext
from casuvo.jobs.rapid import scan
from casuvo.pipeline.config import load_config
from casuvo.pipeline.rawindex import RawFile, read_raw
from casuvo.surveys.instruments import instrument
from casuvo.surveys.registry import load_registry

#: (survey, field, band) of the demo's transient fields, compared night 2 against night 1.
CASES = (("vista", "vvv_disc", "Ks"), ("vst", "vphas_pn", "r"))
NIGHT1, NIGHT2 = "20240510", "20240524"
MATCH_ARCSEC = 1.0


def _raws(settings, survey: str, night: str, field: str, band: str) -> list[RawFile]:
    cfg = load_config(load_registry(settings)[survey].source)
    filters = {f.eso_name: f.name for f in instrument(cfg.instrument).filters.values()}
    found = [read_raw(p, filters) for p in sorted((settings.data_dir / "raw" / survey / night)
                                                  .glob("*.fits"))]
    return sorted((r for r in found if isinstance(r, RawFile) and r.kind == "science"
                   and r.obj == field and r.band == band), key=lambda r: r.mjd)


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def rapid_run(request, settings, tmp_path_factory) -> dict:
    survey, field, band = request.param
    entry = load_registry(settings)[survey]
    cfg = load_config(entry.source)
    tmp = tmp_path_factory.mktemp(f"rapid-{survey}")
    raw_area = tmp / "raw"
    for night in (NIGHT1, NIGHT2):          # land in order: night 1, then night 2's
        (raw_area / night).mkdir(parents=True)
        for raw in _raws(settings, survey, night, field, band):
            shutil.copy(raw.path, raw_area / night / raw.path.name)
    data = settings.data_dir
    out = tmp / "alerts"
    done = scan(cfg, raw_area, data / "products" / survey, data / "gaia", out,
                AlertContext("casuvo.example.org", survey, "test"),
                extended=data / "catalogues" / "pn_catalogue.fits", access=entry.access)
    return {"survey": survey, "field": field, "band": band, "out": out, "done": done,
            "raws": _raws(settings, survey, NIGHT2, field, band)}


def _alerts(run: dict) -> Table:
    parts = []
    for path in sorted((run["out"] / NIGHT2).glob("*/alerts.fits")):
        table = Table.read(path, hdu=1)
        if len(table):
            table["exposure"] = path.parent.name
            parts.append(table)
    return vstack(parts, metadata_conflicts="silent") if parts else Table()


def _sky(settings, field: str) -> Table:
    return Table.read(settings.data_dir / "truth" / f"sky_{field}.fits", hdu=1)


def _frame_truth(settings, raw_name: str) -> dict[int, float]:
    """sky_id → simulated magnitude of every source on a detector of the exposure."""
    path = settings.data_dir / "truth" / "imaging" / (Path(raw_name).stem + ".truth.fits")
    out: dict[int, float] = {}
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            if hdu.data is None:
                continue
            on = hdu.data["on_chip"]
            out.update(zip(hdu.data["sky_id"][on].tolist(), hdu.data["mag"][on].tolist(),
                           strict=True))
    return out


def test_first_epoch_has_no_reference_and_no_alert(rapid_run: dict) -> None:
    first = [d for d in rapid_run["done"] if d["night"] == NIGHT1]
    assert first and all(d["reference"] is None and d["n_alerts"] == 0 for d in first)


def test_transient_alerted_on_night_two_with_a_valid_voevent(rapid_run, settings) -> None:
    sky = _sky(settings, rapid_run["field"])
    truth = sky[sky["kind"] == "transient"]
    assert len(truth) == 1
    alerts = _alerts(rapid_run)
    here = SkyCoord(alerts["ra"], alerts["dec"], unit="deg")
    sep = here.separation(SkyCoord(truth["ra"][0], truth["dec"][0], unit="deg")).arcsec
    hits = alerts[sep < MATCH_ARCSEC]
    assert len(hits) >= 1 and set(hits["kind"]) == {"new"}
    print(f"{rapid_run['survey']}: transient alerted in {len(hits)} exposure(s), "
          f"{sep.min():.2f}″ from its true position")
    # its VOEvent: schema-valid, the same position and the exposure's start time
    exposure = hits["exposure"][0]
    packets = sorted((rapid_run["out"] / NIGHT2 / exposure / "voevents").glob("*.xml"))
    found = False
    for path in packets:
        with open(path, "rb") as f:
            event = vp.load(f)
        assert vp.valid_as_v2_0(event), path
        params = vp.get_toplevel_params(event)
        position = vp.get_event_position(event)
        if params["class"]["value"] == "new" and SkyCoord(position.ra, position.dec,
                                                          unit="deg").separation(
                SkyCoord(truth["ra"][0], truth["dec"][0], unit="deg")).arcsec < MATCH_ARCSEC:
            raw = next(r for r in rapid_run["raws"] if r.path.stem == exposure)
            when = vp.get_event_time_as_utc(event)
            from astropy.time import Time
            assert abs(Time(when).mjd - raw.mjd) * 86400 < 1.0
            assert event.attrib["ivorn"].startswith(f"ivo://casuvo.example.org/"
                                                    f"{rapid_run['survey']}/alerts#")
            found = True
    assert found


def _expected_variables(run: dict, settings, done: dict, raw: RawFile) -> set[int]:
    """Variables that changed by ≥ 0.5 mag since the reference night, measurable at S/N 20."""
    sky = _sky(settings, run["field"])
    variables = set(sky["sky_id"][sky["kind"] == "variable"].tolist())
    reference: dict[int, list[float]] = {}
    for ref_raw in _raws(settings, run["survey"], NIGHT1, run["field"], run["band"]):
        for sid, mag in _frame_truth(settings, ref_raw.path.name).items():
            reference.setdefault(sid, []).append(mag)
    now = _frame_truth(settings, raw.path.name)
    limit = done["new_limit"]       # S/N 5; S/N 20 is 1.5 mag brighter
    return {sid for sid in variables if sid in now and sid in reference
            and abs(now[sid] - np.mean(reference[sid])) >= 0.5 and now[sid] < limit - 1.5}


def test_variables_flagged_and_constant_stars_not(rapid_run, settings) -> None:
    sky = _sky(settings, rapid_run["field"])
    sky_pos = SkyCoord(sky["ra"], sky["dec"], unit="deg")
    expected_total = flagged_total = false_total = 0
    per_exposure = []
    for raw in rapid_run["raws"]:
        done = json.loads((rapid_run["out"] / NIGHT2 / raw.path.stem / "done.json")
                          .read_text())
        alerts = Table.read(rapid_run["out"] / NIGHT2 / raw.path.stem / "alerts.fits", hdu=1)
        kinds = np.array([], dtype=str)
        ids = np.array([], dtype=np.int64)
        if len(alerts):
            idx, sep, _ = SkyCoord(alerts["ra"], alerts["dec"], unit="deg"
                                   ).match_to_catalog_sky(sky_pos)
            kinds = np.where(sep.arcsec < MATCH_ARCSEC, sky["kind"][idx], "none")
            ids = np.asarray(sky["sky_id"][idx])
        expected = _expected_variables(rapid_run, settings, done, raw)
        flagged = set(ids[kinds == "variable"].tolist())
        false = int(np.sum(~np.isin(kinds, ["variable", "transient"])))
        assert expected <= flagged, (raw.path.name, expected - flagged)
        expected_total += len(expected)
        flagged_total += len(flagged)
        false_total += false
        per_exposure.append(false)
    print(f"{rapid_run['survey']}: {flagged_total} variable flags ({expected_total} "
          f"expected by the truth), false alerts per exposure {per_exposure} "
          f"(rate {false_total / len(per_exposure):.2f})")
    assert false_total == 0
    if rapid_run["survey"] == "vista":
        assert expected_total >= 4           # the disc field's variables do get tested


def test_latency_and_release_recorded(rapid_run) -> None:
    second = [d for d in rapid_run["done"] if d["night"] == NIGHT2]
    assert len(second) == len(rapid_run["raws"])
    for d in second:
        assert 0 < d["seconds"] < d["latency_seconds"] < 600
        assert d["pipeline_seconds"] and d["pipeline_seconds"] > d["seconds"]
    first = second[0]
    print(f"{rapid_run['survey']}: first exposure alerted {first['latency_seconds']:.1f} s "
          f"after it landed ({first['seconds']:.1f} s of processing); the full pipeline "
          f"spent {first['pipeline_seconds']:.0f} s on the products of the same exposure; "
          f"median processing {np.median([d['seconds'] for d in second]):.1f} s")
    rows = Table.read(rapid_run["out"] / NIGHT2 / rapid_run["raws"][-1].path.stem
                      / "alerts_table.fits", hdu=1)
    if len(rows):
        assert set(rows["owner_group"]) == {load_group(rapid_run)}


def load_group(run: dict) -> str:
    return {"vista": "vvv", "vst": "vphas"}[run["survey"]]


def test_bad_raw_files_are_named_and_nothing_is_redone(settings, tmp_path) -> None:
    """A truncated file and one without OBJECT are named and skipped (and the truncated
    one read once it is whole); an exposure that cannot be processed (detectors of
    another size than the masters') gets ``failed.json`` and is not tried again until it changes;
    the good exposure beside them is processed once."""
    survey, field, band = CASES[1]
    entry = load_registry(settings)[survey]
    cfg = load_config(entry.source)
    good = _raws(settings, survey, NIGHT2, field, band)[0].path
    night = tmp_path / "raw" / NIGHT2
    night.mkdir(parents=True)
    shutil.copy(good, night / good.name)
    data = good.read_bytes()
    (night / "truncated.fits").write_bytes(data[: len(data) // 3])
    with fits.open(good) as hdul:
        del hdul[0].header["OBJECT"]
        hdul.writeto(night / "noobject.fits")
        hdul[0].header["OBJECT"] = field
        for hdu in hdul[1:]:
            hdu.data = hdu.data[:100, :100].copy()
        hdul.writeto(night / "cropped.fits")
    out = tmp_path / "alerts"
    products = settings.data_dir / "products" / survey

    def run(reported: set | None = None) -> dict[str, str]:
        done = scan(cfg, tmp_path / "raw", products, settings.data_dir / "gaia", out,
                    AlertContext("casuvo.example.org", survey, "test"), access=entry.access,
                    reported=reported)
        return {d["exposure"]: d.get("error", "ok") for d in done}

    reported: set = set()
    first = run(reported)
    assert first[good.name] == "ok"
    assert "truncated.fits: unreadable or truncated FITS" in first["truncated.fits"]
    assert first["noobject.fits"] == "noobject.fits: missing header keyword(s) OBJECT"
    assert first["cropped.fits"].startswith("cropped.fits: detector ")
    assert "is 100×100 pixels, its masters 256×512" in first["cropped.fits"]
    assert len(first) == 4
    assert (out / NIGHT2 / "cropped" / "failed.json").is_file()
    assert {p.name for p in (out / NIGHT2).iterdir()} == {good.stem, "cropped"}
    print(f"bad raw files: {first}")
    # the next scan of the same watch: nothing new to say, nothing redone
    assert run(reported) == {}
    # the truncated file lands whole (a copy of the good exposure): read and processed
    (night / "truncated.fits").write_bytes(data)
    assert run(reported) == {"truncated.fits": "ok"}
