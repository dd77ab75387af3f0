# SPDX-License-Identifier: BSD-3-Clause
"""The spectroscopic archives with real clients: SSA (pyvo), SDM, SODA BAND, DataLink.

Expected values never come from the services or from casuvo's spectrum
reader: positions and identifiers from the pipeline's index tables (read
with astropy), fluxes from the product files (every float array of every
HDU, read with astropy), images at a position from their own WCS
(tests/integration/corpus/_dal.py), the Gaia row from the simulated
catalogue.
"""

from __future__ import annotations

import io
import subprocess
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvo
import requests
from astropy.io import fits, votable
from astropy.table import Table

from casuvo.config import Settings
from tests.integration.corpus import _dal as dal

pytestmark = pytest.mark.integration

#: a search radius (degrees) no spectrum lies within this distance of (edge slack)
EDGE = 1e-6


def _collections(endpoints: dict) -> list[str]:
    return sorted(endpoints.get("ssa", {}))


@pytest.fixture(scope="module")
def ssa(endpoints: dict) -> dict[str, str]:
    assert endpoints.get("ssa"), "casuvo endpoints lists no SSA service"
    return endpoints["ssa"]


def _index(settings: Settings, collection: str) -> Table:
    path = settings.data_dir / "products" / collection / "index" / "spectra.fits"
    return Table.read(path, format="fits", character_as_bytes=False)


def _votable(content: bytes) -> Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return votable.parse(io.BytesIO(content)).get_first_table().to_table()


def _accref(did: str) -> str:
    return urllib.parse.unquote(did.split("?", 1)[1])


def _sample(settings: Settings, collection: str) -> tuple[float, float, float, set[str]]:
    """(ra, dec, radius, files of the spectra within radius) around a spectrum of the index."""
    index = _index(settings, collection)
    assert len(index), f"{collection}: no spectra in the index"
    ra0, dec0 = float(index["ra"][0]), float(index["dec"][0])
    distance = dal.angular_distance(np.asarray(index["ra"], float),
                                    np.asarray(index["dec"], float), ra0, dec0)
    # a radius holding several spectra, halfway between two spectra's distances
    ordered = np.unique(np.round(distance, 9))
    k = min(len(ordered) - 1, 4)
    radius = float((ordered[k - 1] + ordered[k]) / 2) if k > 0 else 0.01
    assert np.all(np.abs(distance - radius) > EDGE)
    files = {str(f).strip() for f, d in zip(index["file"], distance, strict=True) if d < radius}
    return ra0, dec0, radius, files


def _spectrum(settings: Settings, collection: str) -> tuple[str, str, dict]:
    """(pubDID, accref, index row) of the first spectrum of the index."""
    row = _index(settings, collection)[0]
    accref = str(row["file"]).strip()
    (did,) = dal.sql(f"SELECT obs_publisher_did FROM {collection}.spectra WHERE accref = %s",
                     (accref,))[0]
    return did, accref, {k: row[k] for k in row.colnames}


def _file_arrays(path: Path) -> Iterator[np.ndarray]:
    """Every 1-D float array of a FITS file: image rows, table cells and columns.

    WEAVE L1 keeps ``<ARM>_DATA`` uncalibrated beside ``<ARM>_SENSFUNC``
    (formats-spectra.md): its flux is their product, which is offered too.
    """
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        for hdu in hdul:
            if hdu.data is None:
                continue
            if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                for name in hdu.columns.names:
                    column = np.asarray(hdu.data[name])
                    if column.dtype.kind != "f":
                        continue
                    if column.ndim == 1:
                        yield column.astype(float)
                    else:
                        yield from (cell.astype(float).ravel() for cell in column)
            elif np.asarray(hdu.data).dtype.kind == "f":
                data = np.asarray(hdu.data, float)
                rows = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data[None]
                yield from rows
                sensfunc = hdu.name.replace("_DATA", "_SENSFUNC")
                if hdu.name.endswith("_DATA") and sensfunc in names:
                    yield from rows * np.asarray(hdul[sensfunc].data, float)


def _is_in_file(values: np.ndarray, path: Path) -> bool:
    """``values`` is one array of the file, or arrays of it joined end to end (arms)."""
    arrays = [a for a in _file_arrays(path) if a.size]
    position = 0
    while position < values.size:
        for array in arrays:
            part = values[position:position + array.size]
            if part.size == array.size and np.allclose(part, array, rtol=1e-6, atol=0,
                                                       equal_nan=True):
                position += array.size
                break
        else:
            return False
    return True


# ---------------------------------------------------------------- SSA

def test_endpoints_list_ssa_soda_datalink(endpoints: dict, registry) -> None:
    spectroscopic = sorted(s.collection for s in registry.of_kind("spectroscopy"))
    assert spectroscopic, "no spectroscopic survey in the registry"
    assert _collections(endpoints) == spectroscopic
    for collection in spectroscopic:
        assert endpoints["soda"][collection].endswith(f"/{collection}/q/sdl/dlget")
        assert endpoints["datalink"][collection].endswith(f"/{collection}/q/sdl/dlmeta")


def test_pyvo_ssa_finds_exactly_the_spectra_there(ssa: dict, settings: Settings) -> None:
    for collection, url in sorted(ssa.items()):
        ra, dec, radius, files = _sample(settings, collection)
        assert len(files) >= 2, "the sample cone holds one spectrum: the check has no teeth"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # SSA 1.1: SIZE is the cone's diameter (DaCHS alone read it as the radius)
            result = pyvo.dal.SSAService(url).search(pos=(ra, dec), diameter=2 * radius)
        got = {_accref(str(r["ssa_pubDID"])) for r in result}
        assert got == files, (collection, sorted(got ^ files)[:4])
        assert {r["ssa_collection"] for r in result} == {result[0]["ssa_collection"]}


def test_sdm_flux_equals_the_product_file(ssa: dict, settings: Settings) -> None:
    for collection, url in sorted(ssa.items()):
        did, accref, row = _spectrum(settings, collection)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = pyvo.dal.SSAService(url).search(pos=(float(row["ra"]), float(row["dec"])),
                                                     diameter=1e-4)
        (record,) = [r for r in result if r["ssa_pubDID"] == did]
        answer = requests.get(record.getdataurl(), timeout=60)
        assert answer.status_code == 200, answer.text[:300]
        spectrum = _votable(answer.content)
        assert spectrum["spectral"].unit == "Angstrom"
        assert len(spectrum) > 100
        flux = np.asarray(spectrum["flux"].filled(np.nan), float)
        assert _is_in_file(flux, settings.data_dir / accref), (collection, accref)
        em_min, em_max = float(row["em_min"]), float(row["em_max"])
        wave = np.asarray(spectrum["spectral"], float) * 1e-10
        assert em_min * 0.999 <= wave.min() and wave.max() <= em_max * 1.001


def test_soda_band_cuts_the_same_values(endpoints: dict, settings: Settings) -> None:
    for collection in _collections(endpoints):
        did, _, _ = _spectrum(settings, collection)
        url = endpoints["soda"][collection]
        whole = _votable(requests.get(url, params={"ID": did}, timeout=60).content)
        wave = np.asarray(whole["spectral"], float) * 1e-10
        low, high = np.quantile(wave, [0.3, 0.5])
        answer = requests.get(url, params={"ID": did, "BAND": f"{low!r} {high!r}"},
                              timeout=60)
        assert answer.status_code == 200, answer.text[:300]
        cut = _votable(answer.content)
        inside = (wave >= low) & (wave <= high)
        assert 0 < len(cut) == inside.sum() < len(whole)
        assert np.array_equal(np.asarray(cut["spectral"], float) * 1e-10, wave[inside])
        for column in ("flux", "flux_error"):
            assert np.array_equal(np.asarray(cut[column].filled(np.nan), float),
                                  np.asarray(whole[column].filled(np.nan), float)[inside],
                                  equal_nan=True)


def test_soda_formats(endpoints: dict, settings: Settings) -> None:
    collection = _collections(endpoints)[0]
    did, _, _ = _spectrum(settings, collection)
    url = endpoints["soda"][collection]
    png = requests.get(url, params={"ID": did, "FORMAT": "image/png"}, timeout=60)
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    table = requests.get(url, params={"ID": did, "FORMAT": "application/fits"}, timeout=60)
    assert table.status_code == 200
    with fits.open(io.BytesIO(table.content)) as hdul:
        assert len(hdul[1].data) > 100


@pytest.mark.parametrize(("params", "name"), [
    ({"POS": "abc"}, "POS"),
    ({"POS": "10,95"}, "POS"),
    ({"POS": "10,-20", "SIZE": "-1"}, "SIZE"),
    ({"POS": "10,-20", "SIZE": "nan"}, "SIZE"),
    ({"BAND": "6e-7/5e-7"}, "BAND"),
    ({"FORMAT": "image/nothing"}, "FORMAT"),
])
def test_ssa_bad_input_is_a_dali_error(ssa: dict, params: dict, name: str) -> None:
    for url in ssa.values():
        answer = requests.get(url, params={"REQUEST": "queryData", **params}, timeout=60)
        assert answer.status_code == 400, answer.text[:300]
        assert '<INFO name="QUERY_STATUS" value="ERROR">' in answer.text
        assert name in answer.text and "Traceback" not in answer.text


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"BAND": "6e-7 5e-7"}, 400, "BAND"),
    ({"BAND": "1e-9 2e-9"}, 400, "BAND"),
    ({"BAND": "5e-7"}, 400, "BAND"),
    ({"FORMAT": "image/nothing"}, 400, "FORMAT"),
    ({"ID": "ivo://casuvo.example.org/~?products/none/nothere.fits"}, 404, "NotFoundFault"),
])
def test_soda_bad_input_is_a_soda_error(endpoints: dict, settings: Settings, params: dict,
                                        status: int, text: str) -> None:
    for collection in _collections(endpoints):
        did, _, _ = _spectrum(settings, collection)
        answer = requests.get(endpoints["soda"][collection], params={"ID": did, **params},
                              timeout=60)
        assert answer.status_code == status, answer.text[:300]
        assert answer.headers["content-type"].startswith("text/plain")
        assert text in answer.text and "Traceback" not in answer.text


def test_votlint_accepts_ssa_and_sdm(ssa: dict, settings: Settings, tmp_path: Path) -> None:
    collection, url = sorted(ssa.items())[0]
    ra, dec, radius, _ = _sample(settings, collection)
    did, _, _ = _spectrum(settings, collection)
    documents = {
        "ssa": requests.get(url, params={"REQUEST": "queryData", "POS": f"{ra},{dec}",
                                         "SIZE": str(2 * radius)}, timeout=60).content,
        "sdm": requests.get(settings.server_url.rstrip("/") + f"/{collection}/q/sdl/dlget",
                            params={"ID": did}, timeout=60).content,
    }
    for name, content in documents.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(content)
        proc = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                              text=True, timeout=120)
        errors = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if line.startswith("ERROR")]
        assert not errors, f"votlint on {name}:\n" + "\n".join(errors[:20])


# ---------------------------------------------------------------- DataLink

def _links(url: str, did: str) -> list[dict]:
    answer = requests.get(url, params={"ID": did}, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return [dict(zip(row.colnames, (dal._plain(row[c]) for c in row.colnames), strict=True))
            for row in _votable(answer.content)]


def test_datalink_of_a_spectrum(endpoints: dict, settings: Settings,
                                gaia_catalogue: Table) -> None:
    for collection in _collections(endpoints):
        did, accref, row = _spectrum(settings, collection)
        links = _links(endpoints["datalink"][collection], did)
        assert {r["error_message"] or None for r in links} == {None}
        semantics = {r["semantics"] for r in links}
        assert {"#this", "#preview", "#cutout", "#progenitor"} <= semantics, semantics
        # one #this is the survey's own file, byte for byte
        own = [r for r in links if r["semantics"] == "#this"
               and "survey-product" in urllib.parse.unquote(r["access_url"])]
        assert len(own) == 1
        assert requests.get(own[0]["access_url"], timeout=60).content == (
            settings.data_dir / accref).read_bytes()
        progenitors = {urllib.parse.unquote(r["access_url"].split("/getproduct/", 1)[1])
                       for r in links if r["semantics"] == "#progenitor"}
        assert progenitors == set(str(row["progenitors"]).split())
        source_id = int(row["source_id"])
        (gaia,) = [r for r in links if r["local_semantics"] == "gaia-source"]
        source = _votable(requests.get(gaia["access_url"], timeout=60).content)
        assert list(source["source_id"]) == [source_id]
        truth = gaia_catalogue[gaia_catalogue["source_id"] == source_id]
        assert len(truth) == 1
        assert dal.angular_distance(np.asarray(truth["ra"], float),
                                    np.asarray(truth["dec"], float),
                                    float(row["ra"]), float(row["dec"]))[0] < 1 / 3600


def test_datalink_lists_the_vista_images_at_a_4most_spectrum(endpoints: dict,
                                                             settings: Settings) -> None:
    assert "fourmost" in _collections(endpoints)
    index = _index(settings, "fourmost")
    sample = None
    for row in index:
        expected = dal.expected_images("vista", float(row["ra"]), float(row["dec"]), 1e-5)
        if expected["in"]:
            sample = row, expected
            break
    assert sample, "no 4MOST spectrum lies on a VISTA image"
    row, expected = sample
    accref = str(row["file"]).strip()
    (did,) = dal.sql("SELECT obs_publisher_did FROM fourmost.spectra WHERE accref = %s",
                     (accref,))[0]
    links = _links(endpoints["datalink"]["fourmost"], did)
    images = {urllib.parse.parse_qs(urllib.parse.urlsplit(r["access_url"]).query)["ID"][0]
              for r in links if r["local_semantics"] == "image-at-position"
              and "/vista/" in r["access_url"]}
    dal.assert_images(images, expected)
    # and the image's DataLink lists the spectrum back
    tile = sorted(images)[0]
    back = _links(endpoints["datalink"]["vista"], tile)
    spectra = {urllib.parse.parse_qs(urllib.parse.urlsplit(r["access_url"]).query)["ID"][0]
               for r in back if r["local_semantics"] == "spectrum-at-position"}
    assert did in spectra


def test_obscore_holds_spectra_ob_products_and_raw(endpoints: dict,
                                                   settings: Settings) -> None:
    for collection in _collections(endpoints):
        counts = dict(dal.sql(
            "SELECT calib_level, count(*) FROM ivoa.obscore WHERE obs_id IN ("
            f" SELECT accref FROM {collection}.spectra UNION ALL"
            f" SELECT accref FROM {collection}.ob_products UNION ALL"
            f" SELECT accref FROM {collection}.raw) GROUP BY calib_level"))
        index = settings.data_dir / "products" / collection / "index"
        raws = len(Table.read(index / "raw.fits"))
        spectra = len(Table.read(index / "spectra.fits"))
        assert counts.get(0, 0) == raws
        assert counts.get(2, 0) + counts.get(3, 0) >= spectra


def test_gaia_source_datalink_lists_its_spectra(endpoints: dict, settings: Settings) -> None:
    """The DataLink of a Gaia source (announced on gaia.sources in TAP) lists its spectra."""
    collection = _collections(endpoints)[0]
    did, _, row = _spectrum(settings, collection)
    source_id = int(row["source_id"])
    expected = set()
    for other in _collections(endpoints):
        index = _index(settings, other)
        files = {str(f).strip() for f, s in zip(index["file"], index["source_id"], strict=True)
                 if not np.ma.is_masked(s) and int(s) == source_id}
        expected |= {r[0] for r in dal.sql(
            f"SELECT obs_publisher_did FROM {other}.spectra WHERE accref = ANY(%s)",
            (sorted(files),))}
    assert did in expected
    links = _links(endpoints["base"].rstrip("/") + "/gaia/q/dl/dlmeta", str(source_id))
    got = {urllib.parse.parse_qs(urllib.parse.urlsplit(r["access_url"]).query)["ID"][0]
           for r in links if r["local_semantics"] == "spectrum-at-position"}
    assert got == expected
    unknown = _links(endpoints["base"].rstrip("/") + "/gaia/q/dl/dlmeta", "12345")
    assert all((r["error_message"] or "").startswith("NotFoundFault") for r in unknown)
