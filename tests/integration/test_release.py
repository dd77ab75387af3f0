# SPDX-License-Identifier: BSD-3-Clause
"""ESO Phase 3 releases: ``casuvo release build`` / ``validate`` against the running archive.

Three demo releases are built the way an operator would, with ADQL over
ObsCore: a public one (a VISTA tile and its source list, the VST products of
the second night, 4MOST and Gaia-ESO spectra; VISTA's still-proprietary
second night asked for and not released), the VPHAS+ team's NGC 6791 release
(proprietary tiles and the band-merged catalogue as a SCIENCE.CATALOG), and
the WEAVE team's spectra.  Expected values come from the archive's own files
(read with astropy), the simulator's raw frames, the ledger and TAP — not from
the release code.  Deliberately broken copies (missing PRODCATG, wrong ASSON1,
a corrupted file, a dangling PROV) must be caught with named errors.
"""

from __future__ import annotations

import datetime
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS

PUBLIC, VPHAS, WEAVE = "TEST_DEMO_DR1", "TEST_VPHAS_NGC6791", "TEST_WEAVE_DR1"
VISTA_TILE = "v20240510_00010_st_tl.fit"
PUBLIC_QUERIES = (
    # the VISTA J tile of the first night and its source list
    "SELECT access_url FROM ivoa.obscore WHERE obs_collection = 'VVV' AND calib_level = 3"
    " AND obs_id LIKE '%v20240510_00010_st_tl%'",
    # the VST products (stacks, tile, source lists) of the second night
    "SELECT access_url FROM ivoa.obscore WHERE obs_collection = 'VPHAS+' AND calib_level >= 2"
    " AND obs_id LIKE '%o20240524_%'",
    "SELECT TOP 3 access_url FROM ivoa.obscore WHERE obs_collection = '4MOST'"
    " AND calib_level = 3 ORDER BY obs_id",
    "SELECT TOP 3 access_url FROM ivoa.obscore WHERE obs_collection = 'Gaia-ESO'"
    " AND calib_level = 3 ORDER BY obs_id",
    # VISTA's second night is proprietary to VVV until 2099: not in a public release
    "SELECT access_url FROM ivoa.obscore WHERE obs_collection = 'VVV' AND calib_level = 3"
    " AND obs_id LIKE '%v20240524_%'",
)
VPHAS_QUERY = ("SELECT access_url FROM ivoa.obscore WHERE obs_collection = 'VPHAS+'"
               " AND calib_level = 3 AND target_name = 'ngc6791'")
WEAVE_QUERY = ("SELECT TOP 3 access_url FROM ivoa.obscore WHERE obs_collection = 'WEAVE'"
               " AND calib_level = 3 ORDER BY obs_id")


def _run(casuvo_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(casuvo_bin), "release", *args], capture_output=True, text=True,
                          check=False, timeout=900)


def _build(casuvo_bin: Path, name: str, out: Path, queries: tuple[str, ...],
           *extra: str) -> dict:
    args = ["build", name, "--out", str(out), "--no-validate", *extra]
    for q in queries:
        args += ["--query", q]
    done = _run(casuvo_bin, *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def releases(casuvo_bin: Path, settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The three demo releases: name → (directory, build summary, manifest)."""
    root = tmp_path_factory.mktemp("releases")
    built = {
        PUBLIC: _build(casuvo_bin, PUBLIC, root / PUBLIC, PUBLIC_QUERIES),
        VPHAS: _build(casuvo_bin, VPHAS, root / VPHAS, (VPHAS_QUERY,), "--group", "vphas",
                      "--catalogue", "vst"),
        WEAVE: _build(casuvo_bin, WEAVE, root / WEAVE, (WEAVE_QUERY,), "--group", "weave"),
    }
    out = {name: (root / name, summary, json.loads((root / name / "manifest.json").read_text()))
           for name, summary in built.items()}
    yield out
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM ledger.releases WHERE name LIKE 'TEST\\_%'")


def _open(path: Path) -> fits.HDUList:
    return fits.open(path, memmap=False)


def _archive_file(settings, entry: dict) -> Path:
    return settings.data_dir / entry["source"]


def test_releases_build_and_validate_with_no_problem(releases: dict, casuvo_bin: Path) -> None:
    for name, (directory, summary, manifest) in releases.items():
        assert "problems" not in summary   # validated here, once
        done = _run(casuvo_bin, "validate", str(directory))
        assert done.returncode == 0, done.stdout[-3000:]
        assert done.stdout.strip().endswith("0 problem(s)")
        on_disk = sorted(p.name for p in directory.glob("*.fit*"))
        assert on_disk == sorted(manifest["files"]), name
    counts = releases[PUBLIC][1]["counts"]
    # two tiles (VISTA J, VST r of night 2), 4MOST and GES spectra, 3 of each
    assert counts["SCIENCE.IMAGE"] == 2
    assert counts["SCIENCE.SPECTRUM"] == 6
    assert counts["ANCILLARY.WEIGHTMAP"] == counts["SCIENCE.IMAGE"] + counts["SCIENCE.MEFIMAGE"]
    assert releases[VPHAS][1]["counts"]["SCIENCE.CATALOG"] == 1
    assert releases[WEAVE][1]["counts"] == {"SCIENCE.SPECTRUM": 3}


def test_tiles_bring_their_pawprints_and_maps(releases: dict, settings) -> None:
    """The closure, computed from the archive's own tile files: every PROVi stack and
    every ASSON1 confidence map is in the release."""
    directory, _, manifest = releases[PUBLIC]
    tiles = [n for n, f in manifest["files"].items() if f["prodcatg"] == "SCIENCE.IMAGE"]
    expected = set()
    for tile in tiles:
        header = fits.getheader(_archive_file(settings, manifest["files"][tile]), 0)
        stacks = [header[k] for k in header if k.startswith("PROV")]
        expected |= set(stacks) | {header["ASSON1"]}
        for stack in stacks:
            path = next(settings.data_dir.glob(f"products/*/*/{stack}"))
            expected.add(fits.getval(path, "ASSON1"))
    assert expected <= set(manifest["files"])
    assert len(expected) >= 2 * 6


def test_public_release_holds_public_products_only(releases: dict, settings) -> None:
    today = datetime.date.today()
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT accref, embargo FROM dc.products").fetchall())

    def embargo(accref: str) -> datetime.date | None:
        return rows.get(accref, rows.get(accref + "/1"))

    public = releases[PUBLIC][2]["files"]
    assert not any("v20240524" in name for name in public)
    for name, entry in public.items():
        if entry["accref"]:
            day = embargo(entry["accref"])
            assert day is None or day <= today, name
    # the team's release holds products still proprietary to it
    team = releases[VPHAS][2]["files"]
    assert any((embargo(e["accref"]) or today) > today for e in team.values() if e["accref"])


def test_rebuild_gives_identical_files(releases: dict, casuvo_bin: Path,
                                       tmp_path: Path) -> None:
    """The team's release (every image category and the catalogue), rebuilt."""
    directory, _, manifest = releases[VPHAS]
    again = _build(casuvo_bin, VPHAS, tmp_path / "again", (VPHAS_QUERY,), "--group", "vphas",
                   "--catalogue", "vst")
    assert again["files"] == len(manifest["files"])
    names = sorted(manifest["files"])
    match, mismatch, errors = filecmp.cmpfiles(directory, tmp_path / "again", names,
                                               shallow=False)
    assert (mismatch, errors) == ([], [])
    assert len(match) == len(names)


def _wcs_matrix(header: fits.Header) -> np.ndarray:
    return WCS(header).pixel_scale_matrix


def test_golden_headers_images(releases: dict, settings) -> None:
    directory, _, manifest = releases[PUBLIC]
    files = manifest["files"]
    # the VISTA tile: a simple image, the archive's pixels, CD matrix = its WCS
    tile = directory / VISTA_TILE
    source = _archive_file(settings, files[VISTA_TILE])
    with _open(tile) as out, _open(source) as src:
        assert len(out) == 1
        h = out[0].header
        assert (h["PRODCATG"], h["ORIGIN"], h["TELESCOP"], h["INSTRUME"], h["FILTER"]) == (
            "SCIENCE.IMAGE", "ESO-PARANAL", "ESO-VISTA", "VIRCAM", "J")
        assert h["PRODLVL"] == 3
        assert np.array_equal(out[0].data, src[1].data, equal_nan=True)
        assert not any(k.startswith(("PC1_", "PC2_", "CDELT")) for k in h)
        assert np.allclose([[h["CD1_1"], h["CD1_2"]], [h["CD2_1"], h["CD2_2"]]],
                           _wcs_matrix(src[1].header), rtol=0, atol=1e-12)
        assert h["ASSON1"] == VISTA_TILE.replace(".fit", "_conf.fit")
        stacks = [h[f"PROV{i}"] for i in range(1, 7)]
        assert stacks == [src[0].header[f"PROV{i}"] for i in range(1, 7)]
        for key in ("PHOTZP", "PHOTSYS", "ABMAGLIM", "ABMAGSAT", "PSF_FWHM", "ELLIPTIC"):
            assert h[key] == src[1].header[key], key
        assert h["ABMAGLIM"] > h["ABMAGSAT"] and h["PSF_FWHM"] > 0
        assert out[0].verify_checksum() == 1 and out[0].verify_datasum() == 1
    # a pawprint stack: the raw frames it combines, from the raw files themselves
    stack = directory / stacks[0]
    with _open(stack) as out:
        h = out[0].header
        assert h["PRODCATG"] == "SCIENCE.MEFIMAGE" and h["PRODLVL"] == 2
        raws = [h[k] for k in h if k.startswith("PROV")]
        assert h["NCOMBINE"] == len(raws) == 2
        raw_headers = [fits.getheader(next(settings.data_dir.glob(f"raw/vista/*/{r}")))
                       for r in raws]
        assert h["MJD-OBS"] == pytest.approx(min(r["MJD-OBS"] for r in raw_headers), abs=1e-8)
        assert {r["ESO OBS ID"] for r in raw_headers} == {h["OBID1"]}
        assert {r["ESO OBS PROG ID"] for r in raw_headers} == {h["PROG_ID"]}
        assert len(out) == 17
        for ext in out[1:]:
            assert "CD1_1" in ext.header and "PC1_1" not in ext.header
            assert ext.header["PSF_FWHM"] > 0
            assert ext.verify_checksum() == 1
        assert manifest["external"][raws[0]]["sha256"] == hashlib.sha256(
            next(settings.data_dir.glob(f"raw/vista/*/{raws[0]}")).read_bytes()).hexdigest()
    # its confidence map: same grid, extension by extension
    with _open(directory / h["ASSON1"]) as conf, _open(stack) as img:
        assert conf[0].header["PRODCATG"] == "ANCILLARY.WEIGHTMAP"
        for a, b in zip(img[1:], conf[1:], strict=True):
            assert a.data.shape == b.data.shape
            assert a.header["CRVAL1"] == b.header["CRVAL1"]
    # the tile's source list: provenance is its image alone, keywords once per table
    cat = VISTA_TILE.replace(".fit", "_cat.fits")
    with _open(directory / cat) as out, _open(_archive_file(settings, files[cat])) as src:
        assert out[0].header["PRODCATG"] == "SCIENCE.SRCTBL"
        assert [k for k in out[0].header if k.startswith("PROV")] == ["PROV1"]
        assert out[0].header["PROV1"] == VISTA_TILE
        assert len(out[1].data) == len(src[1].data)
        keys = [c.keyword for c in out[1].header.cards]
        assert keys.count("PHOTSYS") == 1


def test_golden_header_catalogue(releases: dict, settings) -> None:
    """The NGC 6791 frame set as a SCIENCE.CATALOG: its rows are exactly the
    archive's vst.sources rows of that frame set (counted in SQL)."""
    directory, _, manifest = releases[VPHAS]
    name = next(n for n, f in manifest["files"].items() if f["prodcatg"] == "SCIENCE.CATALOG")
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        frame_set = conn.execute(
            "SELECT framesetid FROM casuvo.framesets WHERE catname LIKE 'o20240510_00034%'"
        ).fetchone()[0]
        ids = {r[0] for r in conn.execute(
            "SELECT sourceid FROM vst.sources WHERE framesetid = %s", (frame_set,))}
    with _open(directory / name) as out:
        h, t = out[0].header, out[1].header
        assert (h["FILTER"], h["FILTER1"], h["FILTER2"]) == ("MULTI", "g", "r")
        assert "FILTER3" not in h and h["MAGLIM1"] > 20
        assert t["EXTNAME"] == "PHASE3CATALOG"
        assert set(out[1].data["sourceID"].tolist()) == ids
        assert h["NROWS"] == len(ids)
        ucds = [t[f"TUCD{i}"] for i in range(1, t["TFIELDS"] + 1)]
        assert ucds.count("meta.id;meta.main") == 1
        assert all(t[f"TCOMM{i}"] for i in range(1, t["TFIELDS"] + 1))
        assert sorted(h[k] for k in h if k.startswith("PROV")) == sorted(
            f for f in manifest["files"] if f.endswith("_tl_cat.fits"))
        assert set(np.unique(out[1].data["frameSetID"])) == {frame_set}


def test_golden_header_spectra(releases: dict, settings) -> None:
    """4MOST spectra are the product's own PHASE3SPECTRUM arrays; GES ones the CASU
    1-D image's, its wavelengths from its linear WCS (CRVAL1, CD1_1, CRPIX1)."""
    directory, _, manifest = releases[PUBLIC]
    files = manifest["files"]
    spectra = [n for n, f in files.items() if f["prodcatg"] == "SCIENCE.SPECTRUM"]
    assert {n.startswith("qmost_") for n in spectra} == {True, False}
    for name in spectra:
        entry = files[name]
        with _open(directory / name) as out, _open(_archive_file(settings, entry)) as src:
            h, t, row = out[0].header, out[1].header, out[1].data[0]
            assert len(out[1].data) == 1 and t["NELEM"] == len(row["WAVE"])
            assert (t["TUTYP1"], t["TUTYP2"], t["TUTYP3"]) == (
                "Spectrum.Data.SpectralAxis.Value", "Spectrum.Data.FluxAxis.Value",
                "Spectrum.Data.FluxAxis.Accuracy.StatError")
            assert t["VOCLASS"] == "SPECTRUM V1.0" and "BUNIT" not in h
            if name.startswith("qmost_"):
                wave = src["PHASE3SPECTRUM"].data["WAVE"][0]
                flux = src["PHASE3SPECTRUM"].data["FLUX"][0]
                assert (h["TELESCOP"], h["INSTRUME"]) == ("ESO-VISTA", "QMOST")
            else:
                p = src[0].header   # the FITS linear WCS of the CASU 1-D image
                pixel = np.arange(1, p["NAXIS1"] + 1)
                wave = p["CRVAL1"] + p["CD1_1"] * (pixel - p["CRPIX1"])
                flux = src[0].data
                assert h["INSTRUME"] == "GIRAFFE" and h["ORIGIN"] == "ESO-PARANAL"
            assert np.allclose(row["WAVE"], wave, rtol=0, atol=1e-6)
            good = np.isfinite(flux)
            assert np.allclose(row["FLUX"][good], flux[good], rtol=1e-6)
            assert h["WAVELMIN"] == pytest.approx(wave[0] / 10)
            assert t["TELAPSE"] == pytest.approx((h["MJD-END"] - h["MJD-OBS"]) * 86400)
            assert h["RA"] == pytest.approx(entry["ra"], abs=1e-7)
            assert h["SPEC_RES"] > 1000


def _broken_copy(src: Path, dst: Path, victim: str) -> Path:
    """A copy of the release (hard links) with its own copy of ``victim`` to break."""
    dst.mkdir()
    for path in src.iterdir():
        os.link(path, dst / path.name)
    (dst / victim).unlink()
    shutil.copyfile(src / victim, dst / victim)
    return dst / victim


def _rewrite(path: Path, change) -> None:
    with fits.open(path, mode="update") as hdul:
        change(hdul[0].header)
        for hdu in hdul:
            hdu.add_checksum()


@pytest.mark.parametrize("breakage", ["no-prodcatg", "wrong-asson", "corrupted",
                                      "dangling-prov"])
def test_broken_products_are_named(releases: dict, casuvo_bin: Path, tmp_path: Path,
                                   breakage: str) -> None:
    directory, _, manifest = releases[VPHAS]
    stacks = sorted(n for n, f in manifest["files"].items()
                    if f["prodcatg"] == "SCIENCE.MEFIMAGE")
    victim = stacks[0]
    path = _broken_copy(directory, tmp_path / "broken", victim)
    if breakage == "no-prodcatg":
        _rewrite(path, lambda h: h.remove("PRODCATG"))
        expected = [f"{victim}[0] PRODCATG: mandatory keyword missing"]
    elif breakage == "wrong-asson":
        other = fits.getval(directory / stacks[1], "ASSON1")
        _rewrite(path, lambda h: h.set("ASSON1", other))
        expected = [f"{victim} ASSON1: {other} image 1"]
    elif breakage == "corrupted":
        with fits.open(path) as hdul:
            offset = hdul[1].fileinfo()["datLoc"] + 1000
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(b"\x7f\x7f\x7f\x7f")
        expected = [f"{victim}[1] DATASUM: does not match", f"{victim}: checksum or size"]
    else:
        _rewrite(path, lambda h: h.set("PROV2", "OMEGACAM.2099-01-01T00:00:00.000.fits"))
        expected = [f"{victim}[0] PROV2: OMEGACAM.2099-01-01T00:00:00.000.fits is neither"]
    done = _run(casuvo_bin, "validate", str(path.parent))
    assert done.returncode == 1
    for text in expected:
        assert text in done.stdout, done.stdout[-2000:]
    # only the broken file is blamed
    blamed = {line.split("[")[0].split(" ")[0].rstrip(":") for line in
              done.stdout.splitlines()[:-1]}
    assert blamed == {victim}, done.stdout[-2000:]


def test_releases_in_tap_for_whom_they_are(releases: dict, endpoints: dict) -> None:
    tap = endpoints["tap"] + "/sync"
    query = ("SELECT r.name, r.n_files, COUNT(*) AS n FROM releases.releases AS r"
             " JOIN releases.products AS p ON p.release = r.name"
             " WHERE r.name LIKE 'TEST%' GROUP BY r.name, r.n_files")

    def ask(auth: tuple[str, str] | None) -> dict[str, tuple[int, int]]:
        with requests.Session() as session:
            session.auth = auth
            answer = session.get(tap, params={"REQUEST": "doQuery", "LANG": "ADQL",
                                              "FORMAT": "csv", "QUERY": query}, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        lines = answer.text.strip().splitlines()[1:]
        return {n: (int(a), int(b)) for n, a, b in (line.split(",") for line in lines)}

    def page(auth: tuple[str, str] | None) -> set[str]:
        """The releases the release page lists."""
        with requests.Session() as session:
            session.auth = auth
            answer = session.get(endpoints["base"] + "releases/q/list/form",
                                 params={"__nevow_form__": "genForm"}, timeout=60)
        assert answer.status_code == 200
        return {name for name in releases if f">{name}<" in answer.text}

    member = ask(("survey-team", "demo-team-pw"))
    assert member == {name: (len(m["files"]),) * 2 for name, (_, _, m) in releases.items()}
    assert set(ask(None)) == page(None) == {PUBLIC}
    assert set(ask(("vvv-member", "demo-vvv-pw"))) == {PUBLIC}
    assert page(("survey-team", "demo-team-pw")) == set(releases)


def test_datalink_links_product_to_its_release(releases: dict, endpoints: dict) -> None:
    did = f"ivo://casuvo.example.org/~?products/vista/20240510/{VISTA_TILE}/1"
    import pyvo

    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(
        endpoints["base"].rstrip("/") + "/vista/q/dl/dlmeta?ID=" + requests.utils.quote(did))
    rows = [r for r in links if r["local_semantics"] == "release"
            and PUBLIC in r["description"]]
    assert [r["semantics"] for r in rows] == ["#documentation"]
    answer = requests.get(rows[0]["access_url"], params={"FORMAT": "csv"}, timeout=60)
    names = {line.split(",")[1] for line in answer.text.strip().splitlines()[1:]}
    assert names == set(releases[PUBLIC][2]["files"])


def test_released_tile_traces_back_to_raw_exposures(releases: dict, endpoints: dict,
                                                     settings) -> None:
    """Tile → its processing record (TAP) → the stacks → their records → the raw
    exposures with SHA-256, equal to the raw files' own; the release's manifest names
    the runs."""
    tap = endpoints["tap"] + "/sync"

    def record(product: str) -> dict:
        answer = requests.get(tap, params={
            "REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "json",
            "QUERY": f"SELECT run_id, inputs FROM vista.processing WHERE product = '{product}'"
                     " AND status = 'ok' ORDER BY finished DESC"}, timeout=60)
        assert answer.status_code == 200
        run_id, inputs = answer.json()["data"][0]
        return {"run": run_id, "inputs": json.loads(inputs)}

    manifest = releases[PUBLIC][2]
    tile = record(VISTA_TILE)
    assert manifest["archive_state"]["product_runs"][VISTA_TILE] == tile["run"]
    stacks = sorted(Path(p).name for p in tile["inputs"])
    assert stacks == sorted(fits.getval(Path(releases[PUBLIC][0]) / VISTA_TILE, f"PROV{i}")
                            for i in range(1, 7))
    raws = {}
    for stack in stacks:
        raws.update(record(stack)["inputs"])
    assert len(raws) == 12
    for path, sha in raws.items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
        assert manifest["external"][Path(path).name]["sha256"] == sha


@pytest.mark.parametrize("args, message", [
    (["build", "lower_case", "--query", "SELECT access_url FROM ivoa.obscore"],
     "release name 'lower_case'"),
    (["build", "TEST_BAD", "--query", "SELECT obs_id FROM ivoa.obscore"],
     "must return a column naming products"),
    (["build", "TEST_BAD", "--query", "SELEC access_url FROM ivoa.obscore"],
     "ADQL query not understood"),
    (["build", "TEST_BAD", "--query",
      "SELECT access_url FROM ivoa.obscore WHERE obs_collection = 'nothing'"],
     "selects no product"),
    (["build", "TEST_BAD", "--catalogue", "gaia", "--query",
      "SELECT access_url FROM ivoa.obscore"], "not a survey with a merged catalogue"),
    (["build", "TEST_BAD"], "give --query"),
])
def test_bad_builds_are_refused_and_record_nothing(casuvo_bin: Path, settings, tmp_path: Path,
                                                   args: list[str], message: str) -> None:
    done = _run(casuvo_bin, *args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert message in done.stderr
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ledger.releases WHERE name = 'TEST_BAD'"
                            ).fetchone()[0] == 0


def test_validate_without_a_release(casuvo_bin: Path, tmp_path: Path) -> None:
    done = _run(casuvo_bin, "validate", str(tmp_path))
    assert done.returncode == 1
    assert "no manifest" in done.stdout
