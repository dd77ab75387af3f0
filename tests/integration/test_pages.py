# SPDX-License-Identifier: BSD-3-Clause
"""The image archive's web pages, driven in a real browser (Debian's headless Chromium).

The search page must list exactly the images SIA 2.0 finds at a position,
with previews that really load and QC values equal to the database's; an
image's page must show its FITS header and QC, and its cutout form, submitted
in the browser, must return a FITS cutout of that image; a collection's
overview must count what the database holds.  A screenshot of each page goes
to ``/tmp/shots`` for a person to look at.
"""

from __future__ import annotations

import io
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pyvo
import requests
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from casuvo.config import Settings
from tests.conftest import log_in_browser

pytestmark = pytest.mark.integration

warnings.filterwarnings("ignore", category=FITSFixedWarning)

SURVEYS = ("vista", "vst")
SHOTS = Path("/tmp/shots")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: decimals the search and image pages round each QC column to
QC_DECIMALS = {"obsfwhm": 2, "ellipticity": 3, "skynoise": 2, "magzpt": 3, "abmaglim": 2}
#: half-size of the search box / radius of the SIA 2.0 circle (deg): a point, in effect
SEARCH_SIZE = 2e-5


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def driver(downloads: Path) -> Iterator[object]:
    """One headless Chromium for the whole session (it takes seconds to start)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1700", "--hide-scrollbars"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    log_in_browser(browser)
    browser.execute_cdp_cmd("Page.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(downloads)})
    browser.set_page_load_timeout(120)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()


def _wait(driver: object, condition: str, timeout: float = 60) -> object:
    """Wait until the JavaScript expression ``condition`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({condition});")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.2)


def _screenshot(driver: object, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(1400, 1700)


def _assert_rounded(shown: str, value: float | None, decimals: int) -> None:
    """``shown`` is ``value`` rounded to ``decimals`` (a dash where there is no value)."""
    if value is None or np.isnan(value):
        assert shown == "–"
    else:
        assert abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-9, (shown, value)


def _known_image(settings: Settings, survey: str) -> tuple[str, float, float]:
    """(accref, ra, dec) of the centre of a pawprint detector of ``survey``."""
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(
            f"SELECT accref, centeralpha, centerdelta FROM {survey}.images"
            " WHERE imagetype = 'pawprint' ORDER BY accref LIMIT 1 OFFSET 3").fetchone()


def _sia2_accrefs(endpoints: dict, survey: str, ra: float, dec: float) -> set[str]:
    service = pyvo.dal.SIA2Service(endpoints["sia"][survey], check_baseurl=False)
    result = service.search(pos=(ra, dec, SEARCH_SIZE), maxrec=1000)
    return {str(did).split("~?", 1)[1] for did in result["obs_publisher_did"]}


def _search(driver: object, endpoints: dict, survey: str, position: str) -> None:
    driver.get(endpoints["pages"][f"{survey}.search"])
    field = driver.find_element("id", "genForm-hPOS")
    field.clear()
    field.send_keys(position)
    size = driver.find_element("id", "genForm-hSIZE")
    size.clear()
    size.send_keys(f"{2 * SEARCH_SIZE:g}")
    driver.find_element("id", "genForm-action-submit").click()
    _wait(driver, "document.querySelector('#qf-result, .field.error, div.message')")


_RESULT_ROWS = """
return Array.from(document.querySelectorAll('table.results tbody tr.data')).map(tr => {
  const link = tr.querySelector('a.imagelink');
  const img = tr.querySelector('img.thumb');
  const qc = {};
  tr.querySelectorAll('[data-col]').forEach(e => { qc[e.dataset.col] = e.textContent; });
  return {accref: link.dataset.accref, filename: link.dataset.filename,
          extnum: link.dataset.extnum, href: link.href,
          thumb: img ? {src: img.src, complete: img.complete, width: img.naturalWidth,
                        height: img.naturalHeight} : null,
          did: (tr.querySelector('a.dllink') || {dataset: {}}).dataset.did, qc: qc};
});
"""


@pytest.mark.parametrize("survey", SURVEYS)
def test_search_page_lists_what_sia2_finds(survey: str, driver, endpoints: dict,
                                           settings: Settings) -> None:
    accref, ra, dec = _known_image(settings, survey)
    truth = _sia2_accrefs(endpoints, survey, ra, dec)
    assert accref in truth
    _search(driver, endpoints, survey, f"{ra:.7f},{dec:.7f}")
    _wait(driver, "Array.from(document.querySelectorAll('img.thumb')).every(i => i.complete)")
    rows = driver.execute_script(_RESULT_ROWS)
    assert {r["accref"] for r in rows} == truth
    assert len(rows) == len(truth)
    matched = driver.find_element("id", "matched").text
    assert int(matched) == len(truth)
    # the file and extension shown are the ones SIA 2.0 names
    assert {(r["filename"], int(r["extnum"])) for r in rows} == {
        (a.rsplit("/", 2)[1], int(a.rsplit("/", 1)[1])) for a in truth}
    assert all(r["did"].endswith("~?" + r["accref"]) for r in rows)
    # thumbnails really loaded, at the size of the preview PNG on disk
    for r in rows:
        assert r["thumb"]["complete"] and r["thumb"]["width"] > 0, r
        rel, ext = r["accref"].rsplit("/", 1)
        product = settings.data_dir / rel
        png = product.parent / "previews" / f"{product.name[:-4]}_{ext}.png"
        with Image.open(png) as im:
            assert (r["thumb"]["width"], r["thumb"]["height"]) == im.size
        assert r["href"] == endpoints["pages"][f"{survey}.image"] + "/" + r["accref"]
    # QC shown equals the database's, to the page's rounding
    with psycopg.connect(settings.dsn) as conn:
        db = {row[0]: row[1:] for row in conn.execute(
            f"SELECT accref, {', '.join(QC_DECIMALS)}, qcstatus FROM {survey}.images"
            " WHERE accref = ANY(%s)", (sorted(truth),))}
    for r in rows:
        values = dict(zip([*QC_DECIMALS, "qcstatus"], db[r["accref"]], strict=True))
        assert r["qc"]["qcstatus"] == values["qcstatus"]
        for column, decimals in QC_DECIMALS.items():
            _assert_rounded(r["qc"][column], values[column], decimals)
    _screenshot(driver, f"search-{survey}")


@pytest.mark.parametrize(("position", "text"), [
    ("194.3;-64.75;7", "is not a position"),
    ("194.3,-95", "Dec within"),
])
def test_search_page_bad_position(position: str, text: str, driver, endpoints: dict) -> None:
    _search(driver, endpoints, "vista", position)
    message = driver.find_element("css selector", ".field.error, div.message").text
    assert text in message
    source = driver.page_source
    assert "Traceback" not in source and "table class=\"results\"" not in source
    _screenshot(driver, "search-error")
    # what DaCHS's form answers over HTTP: the form again, with the message, never a 500
    r = requests.get(endpoints["pages"]["vista.search"],
                     params={"__nevow_form__": "genForm", "hPOS": position, "hSIZE": "0.1"},
                     timeout=60)
    assert r.status_code < 500 and text in r.text and "Traceback" not in r.text


def _header_values(driver: object) -> dict[str, str]:
    return driver.execute_script("""
      const out = {};
      document.querySelectorAll('#header-summary tr[data-key]').forEach(tr => {
        out[tr.dataset.key] = tr.querySelector('td.value').textContent; });
      return out;""")


@pytest.mark.parametrize("survey", SURVEYS)
def test_image_page(survey: str, driver, endpoints: dict, settings: Settings,
                    downloads: Path) -> None:
    accref, ra, dec = _known_image(settings, survey)
    _search(driver, endpoints, survey, f"{ra:.7f},{dec:.7f}")
    driver.find_element("css selector", f"a.imagelink[data-accref='{accref}']").click()
    _wait(driver, "document.querySelector('#header-summary')")
    assert driver.current_url == endpoints["pages"][f"{survey}.image"] + "/" + accref
    rel, ext = accref.rsplit("/", 1)
    product = settings.data_dir / rel
    with fits.open(product) as hdul:
        header, primary = hdul[int(ext)].header, hdul[0].header
        full = hdul[int(ext)].data.copy()
    shown = _header_values(driver)
    for key in ("MAGZPT", "SEEING", "ABMAGLIM", "SKYNOISE", "MJD-OBS"):
        value = header.get(key, primary.get(key))
        assert abs(float(shown[key]) - float(value)) <= 1e-5 * max(1.0, abs(float(value))), key
    for key in ("EXTNAME", "OBJECT", "FILTER"):
        assert shown[key] == str(header.get(key, primary.get(key))).strip()
    assert int(shown["NAXIS1"]) == header["NAXIS1"] and int(shown["NAXIS2"]) == header["NAXIS2"]
    # QC panel equals the database row
    qc = driver.execute_script("""
      const out = {};
      document.querySelectorAll('#qc [data-col] span[data-col]').forEach(e => {
        out[e.dataset.col] = e.textContent; });
      return out;""")
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(f"SELECT {', '.join(QC_DECIMALS)}, qcstatus, obs_publisher_did"
                           f" FROM {survey}.images WHERE accref = %s", (accref,)).fetchone()
    values = dict(zip([*QC_DECIMALS, "qcstatus", "did"], row, strict=True))
    assert qc["qcstatus"] == values["qcstatus"]
    for column, decimals in QC_DECIMALS.items():
        _assert_rounded(qc[column], values[column], decimals)
    assert driver.find_element("id", "pubdid").text == values["did"]
    # the preview loaded at the PNG's size
    preview = driver.execute_script(
        "const i = document.getElementById('preview-image');"
        " return [i.complete, i.naturalWidth, i.naturalHeight];")
    with Image.open(product.parent / "previews" / f"{product.name[:-4]}_{ext}.png") as im:
        assert preview == [True, *im.size]
    # links: every kind is there, and the confidence map and catalogue are FITS files
    links = driver.execute_script("""
      return Array.from(document.querySelectorAll('#links li')).map(li => ({
        local: li.dataset.local, semantics: li.dataset.semantics,
        href: li.querySelector('a').href}));""")
    local = {link["local"] for link in links}
    assert {"datalink", "product-file", "confidence-map", "source-catalogue",
            "provenance"} <= local
    assert {"#this", "#preview"} <= {link["semantics"] for link in links}
    for kind in ("confidence-map", "source-catalogue"):
        href = next(link["href"] for link in links if link["local"] == kind)
        r = requests.get(href, timeout=60)
        assert r.status_code == 200 and r.content[:6] == b"SIMPLE", kind
    dl = next(link["href"] for link in links if link["local"] == "datalink")
    r = requests.get(dl, timeout=60)
    assert r.status_code == 200 and b"<VOTABLE" in r.content
    assert b"#cutout" in r.content and values["did"].encode() in r.content
    _screenshot(driver, f"image-{survey}")

    # the cutout form, submitted in the browser, downloads a FITS cutout of this image
    for old in downloads.iterdir():
        old.unlink()
    radius = 8 / 3600
    circle = driver.find_element("id", "cutout-circle")
    circle.clear()
    circle.send_keys(f"{ra:.7f} {dec:.7f} {radius:.7f}")
    assert driver.find_element("id", "cutout-form").get_attribute("action") == \
        endpoints["soda"][survey]
    driver.find_element("id", "cutout-submit").click()
    deadline = time.monotonic() + 60
    while not [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]:
        assert time.monotonic() < deadline, "no cutout downloaded"
        time.sleep(0.2)
    (path,) = [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]
    with fits.open(io.BytesIO(path.read_bytes())) as cut:
        assert len(cut) == 2
        data, cut_header = cut[1].data, cut[1].header
    ny, nx = data.shape
    x0 = round(header["CRPIX1"] - cut_header["CRPIX1"])
    y0 = round(header["CRPIX2"] - cut_header["CRPIX2"])
    np.testing.assert_array_equal(data, full[y0:y0 + ny, x0:x0 + nx])
    # a 16" wide circle is that many pixels across, within the rounding of its edges
    scale = float(np.mean(proj_plane_pixel_scales(WCS(header)))) * 3600
    assert abs(nx - 16 / scale) < 3 and abs(ny - 16 / scale) < 3


def test_image_page_bad_input(driver, endpoints: dict, settings: Settings) -> None:
    page = endpoints["pages"]["vista.image"] + "/products/vista/20990101/nothing_st.fit/1"
    r = requests.get(page, timeout=60)
    assert r.status_code == 404 and "Traceback" not in r.text
    driver.get(page)
    assert "nothing_st.fit" in driver.find_element("tag name", "body").text
    # a cutout radius out of range, submitted from the page: SODA's error, HTTP 400
    accref, ra, dec = _known_image(settings, "vista")
    driver.get(endpoints["pages"]["vista.image"] + "/" + accref)
    circle = driver.find_element("id", "cutout-circle")
    circle.clear()
    circle.send_keys(f"{ra:.6f} {dec:.6f} -1")
    driver.find_element("id", "cutout-submit").click()
    # the image page itself says "radius": wait for the SODA answer's address too
    _wait(driver, "location.search.includes('ID=') && document.body"
                  " && document.body.innerText.includes('radius')")
    assert "Traceback" not in driver.page_source
    query = urllib.parse.urlparse(driver.current_url).query
    r = requests.get(endpoints["soda"]["vista"] + "?" + query, timeout=60)
    assert r.status_code == 400 and "radius" in r.text


@pytest.mark.parametrize("survey", SURVEYS)
def test_overview_counts(survey: str, driver, endpoints: dict, settings: Settings) -> None:
    driver.get(endpoints["pages"][f"{survey}.overview"])
    _wait(driver, "document.querySelector('#per-band')")
    page = driver.execute_script("""
      const stat = {};
      document.querySelectorAll('.stat[data-stat]').forEach(e => {
        stat[e.dataset.stat] = +e.querySelector('.value').textContent; });
      const table = (id, key) => {
        const out = {};
        document.querySelectorAll('#' + id + ' tbody tr').forEach(tr => {
          const c = {};
          tr.querySelectorAll('[data-count]').forEach(td => {
            c[td.dataset.count] = +td.textContent; });
          out[tr.dataset[key]] = c; });
        return out; };
      const services = {};
      document.querySelectorAll('[data-service] a').forEach(a => {
        services[a.parentElement.dataset.service] = a.href; });
      return {stat: stat, band: table('per-band', 'band'), night: table('per-night', 'night'),
              field: table('per-field', 'field'), services: services};""")
    qc = ("count(*), count(*) FILTER (WHERE qcstatus = 'pass'),"
          " count(*) FILTER (WHERE qcstatus = 'fail')")
    with psycopg.connect(settings.dsn) as conn:
        total, npass, nfail, nfiles, ntiles = conn.execute(
            f"SELECT {qc}, count(DISTINCT filename), count(*) FILTER (WHERE imagetype = 'tile')"
            f" FROM {survey}.images").fetchone()
        grouped = {key: {str(r[0]): {"images": r[1], "pass": r[2], "fail": r[3]}
                         for r in conn.execute(f"SELECT {col}, {qc} FROM {survey}.images"
                                               " GROUP BY 1")}
                   for key, col in (("band", "filtername"), ("night", "nightobs"),
                                    ("field", "object"))}
    assert total > 0
    assert page["stat"]["images"] == total and page["stat"]["files"] == nfiles
    assert page["stat"]["pass"] == npass and page["stat"]["fail"] == nfail
    assert page["stat"]["tile"] == ntiles and page["stat"]["pawprint"] == total - ntiles
    for key in ("band", "night", "field"):
        assert page[key] == grouped[key], key
    assert page["services"]["sia2"] == endpoints["sia"][survey]
    assert page["services"]["search"] == endpoints["pages"][f"{survey}.search"]
    assert page["services"]["moc"] == endpoints["moc"][survey]
    assert page["services"]["tap"] == endpoints["tap"]
    # the links lead somewhere: SIA 2.0 answers, the search page is the form
    r = requests.get(page["services"]["sia2"], params={"POS": "CIRCLE 0 0 0.01"}, timeout=60)
    assert r.status_code == 200 and b"VOTABLE" in r.content
    _screenshot(driver, f"overview-{survey}")
