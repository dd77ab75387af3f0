# SPDX-License-Identifier: BSD-3-Clause
"""The survey registry: its content, its errors, and a third survey added by a config file.

The values written out below are the ones the code held in its own tables
before the registry (bandmerge.SURVEY_BANDS/COLOURS/SURVEY_CODE,
neighbourtable.EPOCH_COLUMNS, endpoints.SERVICES/HIPS_BANDS, coverage.REGIME,
pages._COLLECTION_LABELS, client.KNOWN_ARCHIVES); the registry must give the
same.  The third survey is a copy of VST's config file under another name,
schema and code, in a directory named by ``CASUVO_SURVEY_DIRS``: every piece of
code that lists surveys picks it up with no code change.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from casuvo.archive.coverage import image_collections
from casuvo.archive.endpoints import endpoints, services
from casuvo.archive.hips import hips_specs
from casuvo.catalogue.bandmerge import merge_survey
from casuvo.catalogue.framesets import TILE_COLUMNS
from casuvo.catalogue.mergedtable import (
    column_names,
    frame_set_id,
    merged_path,
    source_ids,
    write_merged,
)
from casuvo.catalogue.neighbourtable import mean_epoch
from casuvo.cli import ingest, pipeline, xmatch
from casuvo.client import Archive
from casuvo.config import Settings
from casuvo.dachs.stack import archives
from casuvo.surveys.registry import RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]
VST_CONFIG = ROOT / "pipelines" / "vst" / "config.toml"
GES_CONFIG = ROOT / "pipelines" / "ges" / "config.toml"
#: the spectroscopic surveys of docs/spectroscopy.md
SPECTRO = ("fourmost", "ges", "weave")

#: What the code listed per survey before the registry.
BEFORE = {
    "vista": {
        "collection": "vista", "label": "VISTA", "name": "VVV", "camera": "vista",
        "prog_id": "179.B-2002(A)", "regime": "Infrared", "code": 1, "sources": True,
        "bands": (("J", "j"), ("H", "h"), ("Ks", "ks")),
        "colours": (("j", "h"), ("h", "ks")),
        "epoch_columns": ("jmjd", "hmjd", "ksmjd"),
        "hips_bands": ("J", "H", "Ks"),
        "wavelengths": (1252.0, 1645.0, 2147.0),
    },
    "vst": {
        "collection": "vst", "label": "VST", "name": "VPHAS+", "camera": "vst",
        "prog_id": "177.D-3023(A)", "regime": "Optical", "code": 2, "sources": True,
        "bands": (("u", "u"), ("g", "g"), ("r", "r"), ("Halpha", "ha"), ("i", "i")),
        "colours": (("u", "g"), ("g", "r"), ("r", "i"), ("r", "ha")),
        "epoch_columns": ("umjd", "gmjd", "rmjd", "hamjd", "imjd"),
        "hips_bands": ("u", "g", "r", "i", "Halpha"),
        "wavelengths": (355.0, 475.0, 625.0, 658.8, 763.0),
    },
}

#: endpoints.SERVICES before the registry, verbatim.
SERVICES_BEFORE = {
    "scs": {"gaia.sources": "gaia/q/cone/scs.xml",
            "vista.sources": "vista/q/cone/scs.xml",
            "vst.sources": "vst/q/cone/scs.xml"},
    "form": {"gaia.sources": "gaia/q/cone/form",
             "vista.sources": "vista/q/cone/form",
             "vst.sources": "vst/q/cone/form",
             "vista.images": "vista/q/sia1/form",
             "vst.images": "vst/q/sia1/form"},
    "sia": {"vista": "vista/q/sia2/siap2.xml", "vst": "vst/q/sia2/siap2.xml"},
    "sia1": {"vista": "vista/q/sia1/siap.xml", "vst": "vst/q/sia1/siap.xml"},
    "soda": {"vista": "vista/q/dl/dlget", "vst": "vst/q/dl/dlget"},
    "datalink": {"vista": "vista/q/dl/dlmeta", "vst": "vst/q/dl/dlmeta"},
    "pages": {"vista.overview": "vista/q/overview/volatile", "vista.search": "vista/q/sia1/form",
              "vista.image": "vista/q/image/qp", "vst.overview": "vst/q/overview/volatile",
              "vst.search": "vst/q/sia1/form", "vst.image": "vst/q/image/qp"},
    "hips": {"vista.J": "coverage/q/hips/static/vista/J",
             "vista.H": "coverage/q/hips/static/vista/H",
             "vista.Ks": "coverage/q/hips/static/vista/Ks",
             "vst.u": "coverage/q/hips/static/vst/u", "vst.g": "coverage/q/hips/static/vst/g",
             "vst.r": "coverage/q/hips/static/vst/r", "vst.i": "coverage/q/hips/static/vst/i",
             "vst.Halpha": "coverage/q/hips/static/vst/Halpha"},
    "moc": {"vista": "coverage/q/moc/static/vista.moc.fits",
            "vst": "coverage/q/moc/static/vst.moc.fits"},
}


def _settings(tmp_path: Path, *survey_dirs: Path) -> Settings:
    env = {"CASUVO_HOME": str(ROOT), "CASUVO_VAR": str(tmp_path / "var")}
    if survey_dirs:
        env["CASUVO_SURVEY_DIRS"] = os.pathsep.join(map(str, survey_dirs))
    return Settings.from_env(env)


def _write_survey(parent: Path, key: str, text: str) -> Path:
    path = parent / key / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _variant(text: str, **survey: str) -> str:
    """VST's config text with ``[survey]`` keys replaced (TOML values, verbatim)."""
    for key, value in survey.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    return text


# ---------------------------------------------------------------- the demo's surveys

def test_registry_holds_what_the_code_listed(tmp_path: Path) -> None:
    registry = load_registry(_settings(tmp_path))
    # the imaging surveys are what the code listed; the spectroscopic ones sit beside them
    assert registry.keys("imaging") == ("vista", "vst")
    assert registry.keys("spectroscopy") == SPECTRO
    assert registry.keys() == tuple(sorted(("vista", "vst", *SPECTRO)))
    for key, want in BEFORE.items():
        survey = registry[key]
        assert (survey.collection, survey.label, survey.name, survey.camera, survey.prog_id,
                survey.regime, survey.code, survey.sources) == (
            want["collection"], want["label"], want["name"], want["camera"], want["prog_id"],
            want["regime"], want["code"], want["sources"])
        assert tuple((b.filter, b.prefix) for b in survey.bands) == want["bands"]
        assert tuple(b.wavelength_nm for b in survey.bands) == want["wavelengths"]
        assert survey.colours == want["colours"]
        assert survey.epoch_columns == want["epoch_columns"]
        assert survey.hips_bands == want["hips_bands"]
        assert survey.source == ROOT / "pipelines" / key / "config.toml"
        assert registry.by_collection(want["collection"]) is survey


def _imaging_only(found: dict, spectroscopic: set[str]) -> dict:
    """The services of ``found`` without the spectroscopic archives' (``ssa``, their
    SODA and DataLink, the web archive's ``spectra.*`` pages, the processing status, the raw
    data and "my data" pages)."""
    def theirs(key: str) -> bool:
        return (key in spectroscopic or key.startswith("spectra.")
                or (bool(spectroscopic) and key in ("processing", "raw", "mydata")))

    return {protocol: {k: v for k, v in paths.items() if not theirs(k)}
            for protocol, paths in found.items() if isinstance(paths, dict) and protocol != "ssa"}


def test_services_and_endpoints_are_unchanged(tmp_path: Path) -> None:
    """The imaging services are what they were; the spectroscopic ones come after them."""
    settings = _settings(tmp_path)
    registry = load_registry(settings)
    spectroscopic = {s.collection for s in registry.of_kind("spectroscopy")}
    found = services(registry)
    assert _imaging_only(found, spectroscopic) == SERVICES_BEFORE
    if spectroscopic:
        assert found["ssa"] == {c: f"{c}/q/ssa/ssap.xml" for c in sorted(spectroscopic)}
        for protocol, renderer in (("soda", "dlget"), ("datalink", "dlmeta")):
            assert list(found[protocol])[:2] == ["vista", "vst"]
            assert {k: v for k, v in found[protocol].items() if k in spectroscopic} == {
                c: f"{c}/q/sdl/{renderer}" for c in spectroscopic}
    urls = endpoints(settings)
    assert list(urls) == ["base", "tap", "examples", "tables", "hipslist", *SERVICES_BEFORE,
                          *(["ssa"] if spectroscopic else [])]
    assert urls["sia"] == {"vista": "http://localhost:8080/vista/q/sia2/siap2.xml",
                           "vst": "http://localhost:8080/vst/q/sia2/siap2.xml"}
    for protocol, paths in _imaging_only(urls, spectroscopic).items():
        if protocol in SERVICES_BEFORE:
            assert list(paths) == list(SERVICES_BEFORE[protocol])   # the order --json prints


def test_every_survey_list_is_the_registry(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert image_collections(settings) == ("vista", "vst")
    assert archives(settings) == ("vista", "vst")
    assert pipeline.surveys(settings) == ("vista", "vst")
    assert ingest.source_surveys(settings) == ("vista", "vst")
    assert xmatch.surveys(settings) == ("vista", "vst")


# ---------------------------------------------------------------- bad config files

@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace('regime = "Optical"\n', ""), r"\[survey\] has no 'regime'"),
    (lambda t: t.replace('filter = "i"\nprefix = "i"', 'filter = "Ks"\nprefix = "ks"'),
     r"band 'Ks' is not a filter of the camera"),
    (lambda t: t.replace('["r", "ha"]', '["r", "z"]'),
     r"\[merge\] colour \['r', 'z'\] is not a pair of band prefixes"),
    (lambda t: t.replace('bands = ["u", "g", "r", "i", "Halpha"]', 'bands = ["u", "Z"]'),
     r"\[hips\] bands \['Z'\] are not survey bands"),
    (lambda t: _variant(t, code="16"), r"\[survey\] code must be in 1..15, not 16"),
    (lambda t: _variant(t, code='"two"'), r"\[survey\] code must be an integer"),
    (lambda t: _variant(t, kind='"radio"'), r"\[survey\] kind must be one of"),
    (lambda t: _variant(t, sources='"yes"'), r"\[survey\] sources must be true or false"),
    (lambda t: t.replace('filter = "g"\nprefix = "g"', 'filter = "g"\nprefix = "u"'),
     r"\[\[bands\]\] names a filter or prefix twice"),
    (lambda t: t + "[broken\n", r"cannot read survey config"),
])
def test_a_bad_config_file_is_an_error_naming_it(tmp_path: Path, change, message) -> None:
    path = _write_survey(tmp_path / "surveys", "vphas2",
                         change(_variant(VST_CONFIG.read_text(), collection='"vphas2"',
                                         code="3")))
    with pytest.raises(RegistryError, match=message) as excinfo:
        load_registry(_settings(tmp_path, tmp_path / "surveys"))
    assert str(excinfo.value).startswith(f"{path}: ")


@pytest.mark.parametrize(("survey", "what", "value"), [
    ({"collection": '"vphas2"'}, "code", "2"),           # VST's code
    ({"code": "3"}, "collection", "'vst'"),               # VST's collection
])
def test_a_duplicate_code_or_collection_is_an_error_naming_both_files(
        tmp_path: Path, survey: dict, what: str, value: str) -> None:
    path = _write_survey(tmp_path / "surveys", "vphas2",
                         _variant(VST_CONFIG.read_text(), **survey))
    with pytest.raises(RegistryError) as excinfo:
        load_registry(_settings(tmp_path, tmp_path / "surveys"))
    assert str(excinfo.value) == (f"{path}: survey {what} {value} is already used by "
                                  f"{VST_CONFIG}")


def test_a_code_is_unique_within_a_kind_only(tmp_path: Path) -> None:
    """Codes number an imaging survey's source tables (sourceID chunks, frameSetIDs) and a
    spectroscopic survey's OB and target ids, each in its own schema: an imaging survey
    may share GES's code 3, a second spectroscopic survey may not."""
    _write_survey(tmp_path / "imaging", "vphas2", _variant(
        VST_CONFIG.read_text(), collection='"vphas2"', code="3"))
    registry = load_registry(_settings(tmp_path, tmp_path / "imaging"))
    assert registry["vphas2"].code == registry["ges"].code == 3
    path = _write_survey(tmp_path / "spectro", "ges2", _variant(
        GES_CONFIG.read_text(encoding="utf-8"), collection='"ges2"'))
    with pytest.raises(RegistryError) as excinfo:
        load_registry(_settings(tmp_path, tmp_path / "spectro"))
    assert str(excinfo.value) == f"{path}: survey code 3 is already used by {GES_CONFIG}"


def test_an_unknown_survey_names_the_known_ones(tmp_path: Path) -> None:
    registry = load_registry(_settings(tmp_path))
    with pytest.raises(RegistryError, match=r"unknown survey 'vphas2' "
                       r"\(known: fourmost, ges, vista, vst, weave\)"):
        registry["vphas2"]


# ---------------------------------------------------------------- a third survey

@pytest.fixture
def third(tmp_path: Path) -> Settings:
    """Settings whose registry has ``vphas2``: VST's config under another schema and code."""
    _write_survey(tmp_path / "surveys", "vphas2", _variant(
        VST_CONFIG.read_text(), collection='"vphas2"', code="3", label='"VPHAS2"'))
    return _settings(tmp_path, tmp_path / "surveys")


def test_third_survey_is_in_the_registry(third: Settings) -> None:
    registry = load_registry(third)
    assert registry.keys("imaging") == ("vista", "vst", "vphas2")
    assert registry.keys() == (*sorted(("vista", "vst", *SPECTRO)), "vphas2")
    vphas2 = registry["vphas2"]
    assert (vphas2.collection, vphas2.label, vphas2.code, vphas2.regime) == (
        "vphas2", "VPHAS2", 3, "Optical")
    assert image_collections(third) == archives(third) == ("vista", "vst", "vphas2")
    assert pipeline.surveys(third) == ("vista", "vst", "vphas2")
    assert ingest.source_surveys(third) == xmatch.surveys(third) == ("vista", "vst", "vphas2")


def test_third_survey_endpoints(third: Settings) -> None:
    urls = endpoints(third)
    base = "http://localhost:8080"
    assert urls["sia"]["vphas2"] == f"{base}/vphas2/q/sia2/siap2.xml"
    assert urls["sia1"]["vphas2"] == f"{base}/vphas2/q/sia1/siap.xml"
    assert urls["soda"]["vphas2"] == f"{base}/vphas2/q/dl/dlget"
    assert urls["datalink"]["vphas2"] == f"{base}/vphas2/q/dl/dlmeta"
    assert urls["scs"]["vphas2.sources"] == f"{base}/vphas2/q/cone/scs.xml"
    assert urls["form"]["vphas2.sources"] == f"{base}/vphas2/q/cone/form"
    assert urls["form"]["vphas2.images"] == f"{base}/vphas2/q/sia1/form"
    assert {k: v for k, v in urls["pages"].items() if k.startswith("vphas2.")} == {
        "vphas2.overview": f"{base}/vphas2/q/overview/volatile",
        "vphas2.search": f"{base}/vphas2/q/sia1/form",
        "vphas2.image": f"{base}/vphas2/q/image/qp"}
    assert {k: v for k, v in urls["hips"].items() if k.startswith("vphas2.")} == {
        f"vphas2.{b}": f"{base}/coverage/q/hips/static/vphas2/{b}"
        for b in ("u", "g", "r", "i", "Halpha")}
    assert urls["moc"]["vphas2"] == f"{base}/coverage/q/moc/static/vphas2.moc.fits"
    # and the demo's surveys are as they were (the spectroscopic archives come after them)
    spectroscopic = {s.collection for s in load_registry(third).of_kind("spectroscopy")}
    for protocol, paths in _imaging_only(urls, spectroscopic).items():
        if protocol not in SERVICES_BEFORE:
            continue
        assert {k: v for k, v in paths.items() if not k.startswith("vphas2")} == {
            k: f"{base}/{v}" for k, v in SERVICES_BEFORE[protocol].items()}


def _tile_catalogue(path: Path, field: str, band: str, ra: np.ndarray, dec: np.ndarray
                    ) -> None:
    """A CASU tile catalogue with what the band merge reads (fluxes of 1000 ADU)."""
    n = len(ra)
    cols = {"RA": ra, "DEC": dec, "Aper_flux_3": np.full(n, 1000.0),
            "Aper_flux_3_err": np.full(n, 10.0), "Aper_flux_4": np.full(n, 1200.0),
            "Aper_flux_4_err": np.full(n, 12.0), "Classification": np.full(n, -1.0),
            "Ellipticity": np.full(n, 0.05), "Error_bit_flag": np.zeros(n),
            "Av_conf": np.full(n, 100.0), "Peak_height": np.full(n, 500.0)}
    assert set(cols) == set(TILE_COLUMNS)
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format="D", array=v) for k, v in cols.items()])
    table.header.update({"PSF_FWHM": 0.9, "ABMAGLIM": 21.0, "MAGZPT": 25.0, "EXPTIME": 10.0,
                         "APCOR3": 0.1, "APCOR4": 0.05, "EXTINCT": 0.1, "SATURATE": 60000.0})
    primary = fits.PrimaryHDU()
    primary.header.update({"OBJECT": field, "FILTER": band, "MJD-OBS": 60441.25,
                           "AMSTART": 1.2, "QCSTATUS": "pass", "OBSTATUS": "Completed"})
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(path, checksum=True)


def test_third_survey_band_merge(third: Settings) -> None:
    vphas2 = load_registry(third)["vphas2"]
    names = column_names(vphas2)
    assert names == column_names(load_registry(third)["vst"])   # same bands and colours
    for name in ("uAperMag3", "haAperMag3Err", "imjd", "umgPnt", "gmrPnt", "rmiPnt",
                 "rmhaPnt"):
        assert name in names
    assert frame_set_id(vphas2, "pn") == 3 * 2**32 + zlib.crc32(b"pn")
    ids = source_ids(np.array([10.0]), np.array([-60.0]), vphas2, "pn")
    assert (int(ids[0]) % 2**35) >> 23 == (3 << 8) | (zlib.crc32(b"pn") & 0xFF)

    # the merge finds the new survey's tiles and merges them into its table
    products = third.data_dir / "products"
    ra, dec = np.array([10.0, 10.01]), np.array([-60.0, -60.0])
    _tile_catalogue(products / "vphas2" / "20240511" / "o20240511_00001_st_tl_cat.fits",
                    "pn", "u", ra, dec)
    _tile_catalogue(products / "vphas2" / "20240511" / "o20240511_00002_st_tl_cat.fits",
                    "pn", "Halpha", ra + 0.1 / 3600, dec)
    table, frames = merge_survey(vphas2, products)
    assert len(table) == 2 and [f.filter for f in frames] == ["u", "Halpha"]
    out = merged_path(products, "vphas2")
    assert out == products / "vphas2" / "merged" / "vphas2_sources.fits"
    write_merged(table, frames, vphas2, out)
    header = fits.getheader(out, 0)
    assert [header["SURVEY"], header["FILTER1"], header["FILTER4"]] == [
        "vphas2", "u", "Halpha"]
    table = fits.getdata(out, 1)
    assert list(table.columns.names) == names
    assert set(table["frameSetID"]) == {frame_set_id(vphas2, "pn")}
    assert np.isfinite(table["uAperMag3"]).all() and np.isfinite(table["haAperMag3"]).all()
    assert np.isnan(table["gAperMag3"]).all() and np.isnan(table["umgPnt"]).all()


def test_third_survey_coverage(third: Settings) -> None:
    assert "vphas2" in image_collections(third)
    night = third.data_dir / "products" / "vphas2" / "20240511"
    night.mkdir(parents=True)
    for i, band in enumerate(("Halpha", "u"), start=1):
        path = night / f"o20240511_{i:05d}_st_tl.fit"
        fits.PrimaryHDU(header=fits.Header({"FILTER": band, "MJD-OBS": 60441.25 + i,
                                            "MJD-END": 60441.26 + i})).writeto(path)
        path.with_name(path.name + ".done.json").write_text(json.dumps({}))
    specs = hips_specs(third, "vphas2")
    assert [s.band for s in specs] == ["u", "Halpha"]      # the camera's filter order
    for spec in specs:
        assert spec.properties["obs_regime"] == "Optical"
        assert spec.properties["obs_collection"] == "casuvo vphas2"
        assert spec.title == f"casuvo VPHAS+ OMEGACAM {spec.band}"
        assert spec.creator_did.endswith(f"/vphas2/hips/{spec.band}")


def test_third_survey_neighbour_table_epochs(third: Settings) -> None:
    vphas2 = load_registry(third)["vphas2"]
    columns = {"umjd": np.array([60000.0, np.nan]), "gmjd": np.array([60002.0, np.nan]),
               "rmjd": np.array([np.nan, 60010.0]), "hamjd": np.array([60004.0, np.nan]),
               "imjd": np.array([np.nan, np.nan])}
    assert mean_epoch(vphas2, columns).tolist() == [60002.0, 60010.0]
    with pytest.raises(KeyError, match="jmjd"):     # VISTA's columns are not these
        mean_epoch(load_registry(third)["vista"], columns)


def test_third_survey_client_needs_no_request() -> None:
    """Archive("vphas2") is made without asking anything (nothing listens on port 9)."""
    archive = Archive("vphas2", "http://localhost:9")
    assert (archive.table, archive.tap_url) == ("vphas2.images", "http://localhost:9/tap")
