# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic archives' web pages, driven in a real browser (Debian's headless Chromium).

The OB progress monitor must list exactly the observing blocks SQL finds for
each filter; an OB's page must count the fibres ``<c>.targets`` holds and
link to spectra that really download; the object search must find by name
(CNAME, Gaia source_id) and by position exactly the spectra SQL (or, for the
position, a distance computed here) finds, with plots that load; the
processing page must show each run of the ledger with the ledger's counts;
bad parameters get a 400 page naming them.  A screenshot of each page goes
to ``/tmp/shots``.
"""

from __future__ import annotations

import datetime
import io
import math
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io import votable
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import Select

from casuvo.config import Settings
from casuvo.spectra.read import read_spectrum
from casuvo.surveys.registry import Registry, load_registry
from tests.conftest import log_in_browser

pytestmark = pytest.mark.integration

SHOTS = Path("/tmp/shots")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PORTAL = "portal/q"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One headless Chromium for the module (it takes seconds to start)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1700", "--hide-scrollbars"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    log_in_browser(browser)
    browser.set_page_load_timeout(120)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def spectro(registry: Registry, settings: Settings) -> dict[str, str]:
    """{survey key: collection} of the spectroscopic surveys with published spectra."""
    out = {}
    with psycopg.connect(settings.dsn) as conn:
        for survey in registry.of_kind("spectroscopy"):
            tables = [f"{survey.collection}.{t}" for t in ("obs_blocks", "targets", "spectra")]
            if all(conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] for t in tables) \
                    and conn.execute(f"SELECT count(*) FROM {tables[2]}").fetchone()[0]:
                out[survey.key] = survey.collection
    assert out, "no spectroscopic collection is published (`casuvo demo` makes them)"
    return out


def _inputs(settings: Settings) -> Path:
    """The DaCHS inputs root, to which the tables' file paths are relative."""
    return settings.dachs_root / "inputs"


def _url(endpoints: dict, page: str, **params: Any) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{endpoints['base']}{PORTAL}/{page}/volatile" + (f"?{query}" if query else "")


def _sql(settings: Settings, query: str, args: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(query, args).fetchall()


def _wait(driver: Any, condition: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({condition});")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.1)


def _screenshot(driver: Any, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(1400, 1700)


def _no_traceback(source: str) -> None:
    assert "Traceback" not in source and "Internal Error" not in source
    assert "/work/" not in source and "site-packages" not in source


def _parse_sexagesimal(text: str) -> tuple[float, float]:
    ra_text, dec_text = text.split()
    h, m, s = (float(x) for x in ra_text.split(":"))
    d, dm, ds = (abs(float(x)) for x in dec_text.split(":"))
    sign = -1 if dec_text.startswith("-") else 1
    return 15 * (h + m / 60 + s / 3600), sign * (d + dm / 60 + ds / 3600)


def _assert_position(shown: str, ra: float, dec: float) -> None:
    """``shown`` (hh:mm:ss.ss ±dd:mm:ss.s) is (ra, dec) to its rounding."""
    sra, sdec = _parse_sexagesimal(shown)
    assert abs((sra - ra + 180) % 360 - 180) * math.cos(math.radians(dec)) * 3600 < 0.08, shown
    assert abs(sdec - dec) * 3600 < 0.06, shown


# ---------------------------------------------------------------- home

def test_home_quick_links(driver: Any, endpoints: dict, spectro: dict[str, str],
                          settings: Settings) -> None:
    driver.get(_url(endpoints, "home"))
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('#quick-links li')).map(li =>"
        " [li.dataset.quick, li.querySelector('a').href]);")
    assert {k for k, _ in links} == {"monitor", "objects", "processing", "help", "formats"}
    for key, href in links:
        r = requests.get(href, timeout=60)
        assert r.status_code == 200, key
    counts = driver.execute_script("""
      const out = {};
      document.querySelectorAll('#survey-summary tr[data-survey]').forEach(tr => {
        out[tr.dataset.survey] = Object.fromEntries(Array.from(
          tr.querySelectorAll('[data-count]')).map(e => [e.dataset.count, e.textContent])); });
      return out;""")
    for key, c in spectro.items():
        n_obs, = _sql(settings, f"SELECT count(*) FROM {c}.obs_blocks")[0]
        n_spectra, = _sql(settings, f"SELECT count(*) FROM {c}.spectra")[0]
        assert counts[key]["obs"] == str(n_obs) and counts[key]["spectra"] == str(n_spectra)
        ssa = driver.find_element("css selector", f"tr[data-survey='{key}'] a[data-service=ssa]")
        r = requests.get(ssa.get_attribute("href"), timeout=60)
        assert r.status_code == 200 and b"<VOTABLE" in r.content[:1000]
    _screenshot(driver, "spectro-home")


# ---------------------------------------------------------------- the OB monitor

_MONITOR_ROWS = """
return Array.from(document.querySelectorAll('#monitor tbody tr.data')).map(tr => {
  const cols = {};
  tr.querySelectorAll('td[data-col]').forEach(td => { cols[td.dataset.col] = td.dataset.value; });
  return {survey: tr.dataset.survey, ob: tr.dataset.ob, href: tr.querySelector('a.oblink').href,
          cols: cols};
});
"""


def _monitor_truth(settings: Settings, spectro: dict[str, str], filt: dict[str, Any]
                   ) -> set[tuple[str, int]]:
    truth = set()
    for key, c in spectro.items():
        if filt.get("survey") not in (None, key):
            continue
        where = [f"{k} = %({k})s" for k in ("field", "night", "status", "mode") if k in filt]
        truth |= {(key, ob) for ob, in _sql(
            settings, f"SELECT ob_id FROM {c}.obs_blocks"
            + (" WHERE " + " AND ".join(where) if where else ""), filt)}
    return truth


def test_monitor_lists_what_sql_finds(driver: Any, endpoints: dict, spectro: dict[str, str],
                                      settings: Settings) -> None:
    key, c = next(iter(spectro.items()))
    field, night, status, mode = _sql(
        settings, f"SELECT field, night, status, mode FROM {c}.obs_blocks"
        " ORDER BY ob_id LIMIT 1")[0]
    filters: list[dict[str, Any]] = [
        {}, {"survey": key}, {"field": field}, {"night": night}, {"status": status},
        {"mode": mode}, {"survey": key, "status": status, "mode": mode},
        {"status": "scheduled"}, {"status": "aborted"}]
    for filt in filters:
        driver.get(_url(endpoints, "monitor", **filt))
        rows = driver.execute_script(_MONITOR_ROWS)
        truth = _monitor_truth(settings, spectro, filt)
        assert {(r["survey"], int(r["ob"])) for r in rows} == truth, filt
        assert len(rows) == len(truth)
        assert int(driver.find_element("id", "matched").text) == len(truth)
    # the talk's columns equal the table's
    driver.get(_url(endpoints, "monitor", survey=key))
    rows = driver.execute_script(_MONITOR_ROWS)
    columns = ("night", "ob_name", "proc_template", "obs_template", "made", "n_targets",
               "srv1", "author", "trimester", "status")
    db = {r[0]: r[1:] for r in _sql(settings,
                                    f"SELECT ob_id, {', '.join(columns)} FROM {c}.obs_blocks")}
    for r in rows:
        for column, value in zip(columns, db[int(r["ob"])], strict=True):
            assert r["cols"][column] == ("" if value is None else str(value)), column
    headings = [th.text for th in driver.find_elements("css selector", "#monitor thead th")]
    assert headings[1:] == ["OB id", "Night", "OB name", "PROCTEMP", "OBSTEMP",
                            "Made (binning)", "Targets", "SRV1", "SRV2", "SRV3", "Author",
                            "Trimester", "Status"]
    # the filter form, used in the browser, gives the same page as the URL
    Select(driver.find_element("id", "f-status")).select_by_value(status)
    driver.find_element("id", "monitor-submit").click()
    _wait(driver, "document.location.search.includes('status=')")
    rows = driver.execute_script(_MONITOR_ROWS)
    assert {(r["survey"], int(r["ob"])) for r in rows} == _monitor_truth(
        settings, spectro, {"survey": key, "status": status})
    _screenshot(driver, "spectro-monitor")


# ---------------------------------------------------------------- one OB

def test_ob_page_counts_and_spectra(driver: Any, endpoints: dict, spectro: dict[str, str],
                                    settings: Settings) -> None:
    for key, c in spectro.items():
        ob_id, ra, dec, exptime, airmass, setting = _sql(
            settings, f"SELECT o.ob_id, o.ra, o.dec, o.exptime, o.airmass, o.setting"
            f" FROM {c}.obs_blocks o JOIN {c}.targets t USING (ob_id)"
            f" GROUP BY o.ob_id ORDER BY count(*) FILTER (WHERE t.fibre_status <> 'OK') DESC,"
            f" o.ob_id LIMIT 1")[0]
        # from the monitor to the OB's page, as a person would
        driver.get(_url(endpoints, "monitor", survey=key))
        driver.find_element("css selector", f"tr[data-ob='{ob_id}'] a.oblink").click()
        _wait(driver, "document.querySelector('#targets')")
        counts = driver.execute_script(
            "return Object.fromEntries(Array.from(document.querySelectorAll("
            "'#ob-setup [data-count]')).map(e => [e.dataset.count, e.textContent]));")
        objects, dead, sky = _sql(
            settings, f"SELECT count(*) FILTER (WHERE obj_type = 'OBJ'),"
            f" count(*) FILTER (WHERE obj_type = 'OBJ' AND fibre_status <> 'OK'),"
            f" count(*) FILTER (WHERE obj_type = 'SKY') FROM {c}.targets WHERE ob_id = %s",
            (ob_id,))[0]
        assert (int(counts["objects"]), int(counts["objects_dead"]), int(counts["sky"])) == (
            objects, dead, sky)
        _assert_position(driver.find_element("id", "coords").text, ra, dec)
        summary = driver.execute_script(
            "return Object.fromEntries(Array.from(document.querySelectorAll("
            "'#ob-summary tr[data-col], #ob-setup tr[data-col]')).map(tr =>"
            " [tr.dataset.col, tr.querySelector('td').textContent]));")
        assert int(summary["ob_id"]) == ob_id and summary["setting"] == setting
        assert abs(float(summary["exptime"]) - exptime) <= 0.05
        assert abs(float(summary["airmass"]) - airmass) <= 0.005
        targets = driver.execute_script("""
          return Array.from(document.querySelectorAll('#targets tbody tr.data')).map(tr => ({
            fibre: tr.dataset.fibre, spectrum: tr.dataset.spectrum,
            coords: tr.querySelector('[data-col=coords]').textContent,
            href: (tr.querySelector('a.spectrum') || {}).href || null}));""")
        db = {f: (sid or "", r, d) for f, sid, r, d in _sql(
            settings, f"SELECT fibre, spectrum_id, ra, dec FROM {c}.targets WHERE ob_id = %s",
            (ob_id,))}
        assert {int(t["fibre"]) for t in targets} == set(db)
        for t in targets:
            spectrum_id, tra, tdec = db[int(t["fibre"])]
            assert t["spectrum"] == spectrum_id
            _assert_position(t["coords"], tra, tdec)
            assert (t["href"] is not None) == bool(spectrum_id)
        # every spectrum link resolves to the spectrum (SDM VOTable, FITS) and its DataLink
        linked = [t for t in targets if t["href"]]
        assert linked
        file_of = {sid: f for sid, f in _sql(
            settings, f"SELECT spectrum_id, file FROM {c}.spectra WHERE spectrum_id = ANY(%s)",
            ([t["spectrum"] for t in linked],))}
        for t in linked[:2]:
            r = requests.get(t["href"], timeout=60)
            assert r.status_code == 200 and b"<VOTABLE" in r.content[:500], t
            table = votable.parse_single_table(io.BytesIO(r.content)).to_table()
            expected = read_spectrum(_inputs(settings) / file_of[t["spectrum"]])
            assert len(table) == len(expected.flux) > 0, t
            row = driver.find_element("css selector", f"tr[data-spectrum='{t['spectrum']}']")
            fits_href = row.find_element("css selector", "a.fits").get_attribute("href")
            r = requests.get(fits_href, timeout=60)
            assert r.status_code == 200 and r.content[:6] == b"SIMPLE", t
            dl = row.find_element("css selector", "a.dllink")
            r = requests.get(dl.get_attribute("href"), timeout=60)
            assert r.status_code == 200 and dl.get_attribute("data-did").encode() in r.content
        # the OB's own product file
        href = driver.find_element("id", "ob-file").get_attribute("href")
        r = requests.get(href, timeout=60)
        assert r.status_code == 200 and r.content[:6] == b"SIMPLE"
        _screenshot(driver, f"spectro-ob-{key}")


# ---------------------------------------------------------------- objects

_OBJECT_ROWS = """
return Array.from(document.querySelectorAll('#objects tbody tr.data')).map(tr =>
  [tr.dataset.survey, tr.dataset.spectrum]);
"""


def _plots_loaded(driver: Any) -> list[list[Any]]:
    _wait(driver, "Array.from(document.querySelectorAll('img.spectrum-plot'))"
                  ".every(i => i.complete)")
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('img.spectrum-plot')).map(i =>"
        " [i.dataset.spectrum, i.naturalWidth, i.naturalHeight, i.src]);")


def _search_objects(driver: Any, endpoints: dict, **fields: str) -> list[tuple[str, str]]:
    driver.get(_url(endpoints, "objects"))
    for name, value in fields.items():
        box = driver.find_element("id", f"o-{name}")
        box.clear()
        box.send_keys(value)
    driver.find_element("id", "objects-submit").click()
    _wait(driver, "document.querySelector('#objects')")
    return {tuple(r) for r in driver.execute_script(_OBJECT_ROWS)}


def test_object_search(driver: Any, endpoints: dict, spectro: dict[str, str],
                       settings: Settings) -> None:
    key, c = next(iter(spectro.items()))
    name, source_id, ra, dec = _sql(
        settings, f"SELECT target_name, source_id, ra, dec FROM {c}.spectra"
        " ORDER BY spectrum_id LIMIT 1 OFFSET 2")[0]

    def by(where: str, args: tuple) -> set[tuple[str, str]]:
        return {(k, sid) for k, col in spectro.items() for sid, in _sql(
            settings, f"SELECT spectrum_id FROM {col}.spectra WHERE {where}", args)}

    # by CNAME and by Gaia source_id
    found = _search_objects(driver, endpoints, name=name)
    assert found == by("upper(target_name) = upper(%s)", (name,)) and found
    plots = _plots_loaded(driver)
    assert plots and all(width > 0 and height > 0 for _, width, height, _ in plots)
    _screenshot(driver, "spectro-objects-name")
    found = _search_objects(driver, endpoints, name=str(source_id))
    assert found == by("upper(target_name) = %s OR source_id = %s", (str(source_id), source_id))
    # by position: the distance computed here, over every spectrum
    radius = 120.0
    found = _search_objects(driver, endpoints, pos=f"{ra:.6f},{dec:.6f}", radius=f"{radius:g}")
    truth = set()
    for k, col in spectro.items():
        rows = _sql(settings, f"SELECT spectrum_id, ra, dec FROM {col}.spectra")
        ids = np.array([r[0] for r in rows])
        r_ra, r_dec = (np.radians(np.array([r[i] for r in rows], dtype=float)) for i in (1, 2))
        cos = (np.sin(r_dec) * math.sin(math.radians(dec)) + np.cos(r_dec)
               * math.cos(math.radians(dec)) * np.cos(r_ra - math.radians(ra)))
        sep = np.degrees(np.arccos(np.clip(cos, -1, 1))) * 3600
        assert not np.any(np.abs(sep - radius) < 1e-3), "a spectrum on the circle's edge"
        truth |= {(k, str(s)) for s in ids[sep <= radius]}
    assert found == truth and len(truth) > 1
    plots = _plots_loaded(driver)
    assert plots and all(width > 0 for _, width, _, _ in plots)
    # the plot is a PNG of the spectrum
    r = requests.get(plots[0][3], timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.size == (plots[0][1], plots[0][2])
    _screenshot(driver, "spectro-objects-position")


# ---------------------------------------------------------------- processing status

def test_processing_page_shows_the_ledger(driver: Any, endpoints: dict,
                                          settings: Settings) -> None:
    driver.get(_url(endpoints, "processing"))
    rows = driver.execute_script("""
      return Array.from(document.querySelectorAll('#runs tbody tr.data')).map(tr => {
        const c = {run: tr.dataset.run, key: tr.dataset.pipeline};
        tr.querySelectorAll('td[data-col]').forEach(td => { c[td.dataset.col] = td.textContent; });
        tr.querySelectorAll('[data-count]').forEach(e => { c[e.dataset.count] = e.textContent; });
        return c; });""")
    ledger = {r[0]: r[1:] for r in _sql(settings, """
        SELECT r.run_id, r.pipeline,
          count(p.id) FILTER (WHERE p.status = 'ok'),
          count(p.id) FILTER (WHERE p.status = 'failed'),
          count(p.id) FILTER (WHERE p.status = 'resumed'),
          count(p.id) FILTER (WHERE p.qc->>'qcstatus' = 'pass' OR (p.qc->>'qcstatus' IS NULL
                                                                AND p.qc->>'status' = 'pass')),
          coalesce(r.n_ok || ' / ' || r.n_failed || ' / ' || r.n_resumed, '–')
        FROM ledger.runs r LEFT JOIN ledger.products p USING (run_id) GROUP BY r.run_id""")}
    assert {r["run"] for r in rows} == set(ledger) and len(rows) == len(ledger)
    for r in rows:
        pipeline, ok, failed, resumed, qc_pass, reported = ledger[r["run"]]
        assert r["key"] == pipeline
        assert (int(r["n_ok"]), int(r["n_failed"]), int(r["n_resumed"]), int(r["qc_pass"])) == (
            ok, failed, resumed, qc_pass), r
        assert r["reported"] == reported
    n_failures = _sql(settings, "SELECT count(*) FROM ledger.products WHERE status = 'failed'")
    shown = len(driver.find_elements("css selector", "#failures tr.failure"))
    assert shown == min(n_failures[0][0], 200)
    # a run's record (log, or the summary beside its products) is linked and is that run's
    logs = driver.execute_script(
        "return Array.from(document.querySelectorAll('#runs a.loglink')).map(a =>"
        " [a.closest('tr').dataset.run, a.href]);")
    assert logs
    for run_id, href in logs[:2]:
        r = requests.get(href, timeout=60)
        assert r.status_code == 200 and run_id in r.text
    _screenshot(driver, "spectro-processing")
    # one pipeline
    pipeline = rows[0]["key"]
    driver.get(_url(endpoints, "processing", pipeline=pipeline))
    shown = {e.get_attribute("data-pipeline") for e in
             driver.find_elements("css selector", "#runs tbody tr.data")}
    assert shown == {pipeline}


def test_processing_page_shows_a_failure(driver: Any, endpoints: dict, spectro: dict[str, str],
                                         settings: Settings) -> None:
    """A failed product, recorded through the ledger's own functions, is listed with its
    message (as text: markup in it is not markup), and its run counts it."""
    from casuvo.storage import ledger

    key = next(iter(spectro))
    run_id = f"pagetest{uuid.uuid4().hex[:8]}"
    message = "raw/ges/x.fits: truncated <b>at</b> byte 2880 & more"
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.record_run_start(conn, run_id, key, "local", {})
        try:
            ledger.record_product(conn, ledger.ProductEntry(
                run_id, key, "x.fits", "ob", [], {"raw/ges/x.fits": None}, {}, None, None,
                "failed", message))
            ledger.record_run_end(conn, run_id, "completed with failures", 0, 1, 0)
            driver.get(_url(endpoints, "processing", pipeline=key))
            row = driver.find_element("css selector", f"#runs tr[data-run='{run_id}']")
            assert row.find_element("css selector", "[data-col=n_failed]").text == "1"
            assert row.find_element("css selector", "[data-col=n_inputs]").text == "1"
            failure = driver.find_element("css selector", f"#failures tr[data-run='{run_id}']")
            assert failure.find_element("css selector", "td.message").text == message
            _screenshot(driver, "spectro-processing-failure")
        finally:
            conn.execute("DELETE FROM ledger.products WHERE run_id = %s", (run_id,))
            conn.execute("DELETE FROM ledger.runs WHERE run_id = %s", (run_id,))


def test_help_page_names_each_survey(driver: Any, endpoints: dict, registry: Registry) -> None:
    driver.get(_url(endpoints, "help"))
    sections = {e.get_attribute("data-survey") for e in
                driver.find_elements("css selector", "#formats ~ section[data-survey]")}
    assert sections == {s.key for s in registry.of_kind("spectroscopy")}
    _screenshot(driver, "spectro-help")


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize(("page", "params", "status", "text"), [
    ("monitor", {"status": "finished"}, 400, "status"),
    ("monitor", {"mode": "XX"}, 400, "mode"),
    ("monitor", {"night": "2016-09-03"}, 400, "night"),
    ("monitor", {"survey": "nosuch"}, 400, "survey"),
    ("ob", {"survey": "nosuch", "ob_id": "1"}, 400, "survey"),
    ("ob", {"ob_id": "1"}, 400, "survey"),
    ("objects", {"pos": "232.0;-50.7;3"}, 400, "pos"),
    ("objects", {"pos": "232.0,-95"}, 400, "pos"),
    ("objects", {"pos": "232.0,-50.7", "radius": "-3"}, 400, "radius"),
    ("objects", {"name": "x", "pos": "1,2"}, 400, "pos"),
    ("processing", {"pipeline": "nosuch"}, 400, "pipeline"),
    ("raw", {"kind": "cube"}, 400, "kind"),
    ("raw", {"night": "20240230"}, 400, "night"),
    ("raw", {"collection": "nosuch"}, 400, "collection"),
    ("raw", {"pos": "194.3,-64.75", "radius": "7"}, 400, "radius"),
    ("help", {"x": "1"}, 400, "x"),
])
def test_bad_parameters_are_4xx(page: str, params: dict, status: int, text: str,
                                endpoints: dict) -> None:
    r = requests.get(_url(endpoints, page), params=params, timeout=60)
    assert r.status_code == status, r.text[:500]
    assert f"Field {text}:" in r.text
    _no_traceback(r.text)


@pytest.mark.parametrize(("service", "params", "text"), [
    ("plot", {"survey": "nosuch", "spectrum_id": "x"}, "Field survey:"),
    ("plot", {"survey": "ges"}, "Field spectrum_id:"),
    ("plot", {"survey": "ges", "spectrum_id": "nosuch"}, "No spectrum 'nosuch'"),
    ("log", {"run_id": "../../etc/passwd"}, "No log of run"),
])
def test_plot_and_log_errors_are_dali_errors(service: str, params: dict, text: str,
                                             endpoints: dict) -> None:
    r = requests.get(f"{endpoints['base']}{PORTAL}/{service}/api", params=params, timeout=60)
    assert r.status_code == 400
    assert 'name="QUERY_STATUS" value="ERROR"' in r.text and text in r.text
    _no_traceback(r.text)


def test_unknown_ob_is_404(driver: Any, endpoints: dict, spectro: dict[str, str]) -> None:
    key = next(iter(spectro))
    r = requests.get(_url(endpoints, "ob", survey=key, ob_id=9), timeout=60)
    assert r.status_code == 404 and "No OB 9" in r.text
    _no_traceback(r.text)
    driver.get(_url(endpoints, "monitor", status="finished"))
    assert "status must be one of" in driver.page_source
    _screenshot(driver, "spectro-monitor-error")


# ---------------------------------------------------------------- raw data

def _raw_truth(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every raw science exposure on disk, not from ObsCore: the imaging frames whose
    own header says DPR CATG = SCIENCE (calibrations have no sky position and are
    not in ObsCore), and every spectroscopic raw file the pipelines' index lists."""
    from astropy.io import fits
    from astropy.table import Table

    truth: dict[str, dict[str, Any]] = {}
    for survey in load_registry(settings).of_kind("spectroscopy"):
        index = settings.data_dir / "products" / survey.collection / "index" / "raw.fits"
        for row in Table.read(index):
            truth[str(row["file"]).strip()] = {"kind": "spectrum", "mjd": float(row["mjd_obs"])}
    for path in sorted((settings.data_dir / "raw").glob("v*/2*/*.fits")):
        header = fits.getheader(path)
        if header.get("HIERARCH ESO DPR CATG") == "SCIENCE":
            truth[str(path.relative_to(settings.data_dir))] = {
                "kind": "image", "mjd": float(header["MJD-OBS"])}
    return truth


def test_raw_data_page_lists_every_raw_exposure(driver: Any, endpoints: dict,
                                                settings: Settings) -> None:
    """The talk's "query for raw data": every raw exposure, imaging and spectroscopic."""
    truth = _raw_truth(settings)
    assert {t["kind"] for t in truth.values()} == {"image", "spectrum"}

    def shown(**params: Any) -> dict[str, float]:
        driver.get(_url(endpoints, "raw", **params))
        _no_traceback(driver.page_source)
        rows = driver.execute_script("""
          return Array.from(document.querySelectorAll('#raw tbody tr.data')).map(tr =>
            [tr.dataset.obsId, tr.querySelector('td[data-col=t_min]').dataset.value]);""")
        assert int(driver.find_element("id", "matched").text) == len(rows)
        return {obs_id: float(mjd) for obs_id, mjd in rows}

    everything = shown()
    assert set(everything) == set(truth)
    for obs_id, mjd in everything.items():
        assert abs(mjd - truth[obs_id]["mjd"]) < 1e-6, obs_id
    _screenshot(driver, "spectro-raw")
    spectra = shown(kind="spectrum")
    assert set(spectra) == {k for k, t in truth.items() if t["kind"] == "spectrum"}
    # a night: the exposures whose start falls between that evening's and the next noon
    night = min(truth.values(), key=lambda t: t["mjd"])["mjd"]
    evening = datetime.date(1858, 11, 17) + datetime.timedelta(days=int(night - 0.5))
    in_night = shown(night=evening.strftime("%Y%m%d"))
    start = (evening - datetime.date(1858, 11, 17)).days + 0.5
    assert set(in_night) == {k for k, t in truth.items() if start <= t["mjd"] <= start + 1}
    assert in_night
    # each file link downloads that file
    link = driver.find_elements("css selector", "#raw a.rawfile")[0]
    obs_id = link.find_element("xpath", "./ancestor::tr").get_attribute("data-obs-id")
    answer = requests.get(link.get_attribute("href"), timeout=60)
    assert answer.status_code == 200
    assert answer.content == (settings.data_dir / obs_id).read_bytes()
    # the page says its ADQL, and TAP answers it with the same rows
    adql = driver.find_element("id", "raw-adql").text
    assert "calib_level = 0" in adql
    tap = pyvo.dal.TAPService(endpoints["tap"]).run_sync(adql, maxrec=100_000).to_table()
    assert {str(x) for x in tap["obs_id"]} == set(in_night)
