# SPDX-License-Identifier: BSD-3-Clause
"""Faults on the compute side: a cross-match killed half-way, a full disk under a pipeline.

- A cross-match of the demo's VST sources with the Gaia catalogue of the same
  fields, run as a job (``python -m casuvo.jobs``, its own Dask cluster), is killed
  with SIGKILL once some partitions are finished: the rerun computes only the
  others, and its pairs are exactly those astropy finds (an independent count),
  none lost, none twice.
- The VST pipeline resumes one OB whose masters, exposures and stacks are done
  (the demo's, copied) on a file system without room for the tile (a tmpfs
  mounted for the test): the tile fails with an error that names its file and
  says that the device is full; no half-written file is left, nothing is
  published or recorded as made; with space added the rerun makes the tile only,
  keeping what was finished.  A temporary file left by a writer killed mid-write
  is removed by the next run.
(The pipeline killed with SIGKILL: tests/compute/test_pipeline_runs.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import psycopg
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.io import fits
from astropy.table import Table

from casuvo.archive.imagemeta import image_files
from casuvo.config import Settings
from casuvo.jobs import CatalogueColumns, JobResult, XmatchJob
from casuvo.pipeline.config import load_config
from casuvo.pipeline.rawindex import index_raw
from casuvo.pipeline.runner import run_pipeline
from casuvo.storage.files import checksum
from casuvo.surveys.instruments import instrument
from tests.compute.smallsurvey import VST_CONFIG as CONFIG

RADIUS = 2.0  # arcsec

pytestmark = pytest.mark.long


# ---------------------------------------------------------------- cross-match killed

def test_killed_xmatch_resumes_without_redoing_partitions(settings: Settings,
                                                          tmp_path: Path) -> None:
    a_path = settings.data_dir / "products" / "vst" / "merged" / "vst_sources.fits"
    b_path = settings.data_dir / "gaia" / "gaia_vphas_pn.fits"
    out = tmp_path / "xmatch"
    job = XmatchJob(CatalogueColumns(a_path, id="sourceID"),
                    CatalogueColumns(b_path, id="source_id"), RADIUS, out, order=11,
                    workers=1, progress=False).to_json()
    cmd = [sys.executable, "-m", "casuvo.jobs"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    proc.stdin.write(job)
    proc.stdin.close()
    parts = out / "parts"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if parts.is_dir() and sum(1 for _ in parts.glob("*.done")) >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the cross-match finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in parts.glob("*.done")}
    stamps = {name: (parts / f"{name}.parquet").stat().st_mtime_ns for name in finished}
    assert not (out / "pairs.parquet").exists()

    rerun = subprocess.run(cmd, input=job, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = JobResult.from_json(rerun.stdout).summary
    assert summary["resumed"] >= len(finished)
    assert summary["computed"] + summary["resumed"] == summary["partitions"]
    assert summary["computed"] > 0, "the kill came after the last partition"
    recomputed = {c["name"] for c in summary["costs"] if c["computed"]}
    assert not recomputed & finished
    assert all((parts / f"{n}.parquet").stat().st_mtime_ns == t for n, t in stamps.items())

    # Every pair astropy finds, each once.
    a, b = Table.read(a_path), Table.read(b_path)
    ia, ib, _, _ = search_around_sky(SkyCoord(a["ra"], a["dec"], unit="deg"),
                                     SkyCoord(b["ra"], b["dec"], unit="deg"),
                                     RADIUS * u.arcsec)
    pairs = pq.read_table(out / "pairs.parquet")
    got = list(zip(pairs.column("a_row").to_pylist(), pairs.column("b_row").to_pylist(),
                   strict=True))
    assert len(got) == len(set(got)) == summary["n_pairs"]
    assert set(got) == set(zip(ia.tolist(), ib.tolist(), strict=True))
    assert len(got) > 1000


# ---------------------------------------------------------------- full disk



@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs (unmounted afterwards)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m", "casuvo-faults", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _complete(path: Path) -> bool:
    """A FITS file that opens and whose every HDU's data can be read."""
    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                _ = hdu.data
        return True
    except (OSError, ValueError, TypeError):
        return False


def _seed_finished(settings: Settings, raws: list[Path], out: Path) -> int:
    """Copy the demo's finished masters, exposures and stacks of ``raws`` into ``out``, as
    a run that stopped before its tile would have left them; returns the bytes copied.

    Product paths in the completion markers are moved to ``out`` (the rest of each
    path, below the survey's product directory, is kept), and stacks take the run
    numbers of ``raws`` (CASU run numbers count the exposures of a night).
    """
    filters = {f.eso_name: f.name for f in instrument("vst").filters.values()}
    runs = {f.path.name: f.run for f in index_raw(raws, filters).science()}
    demo = settings.data_dir / "products" / "vst"
    night, names = raws[0].parent.name, {r.name for r in raws}
    stacks = [m for m in (demo / night).glob("*_st.fit.done.json")
              if {Path(i).name for i in json.loads(m.read_text())["inputs"]} <= names]
    science = {Path(i).stem for m in stacks for i in json.loads(m.read_text())["inputs"]}
    band = json.loads(stacks[0].read_text())["meta"]["band"]
    markers = [*stacks, *(demo / "work" / night / f"{stem}_red.fits.done.json"
                          for stem in science),
               demo / "calib" / night / f"{band}_flat_{night}.fit.done.json"]
    copied = 0
    for marker in markers:
        record = json.loads(marker.read_text())
        relative = [f.split("/products/vst/", 1)[1] for f in record["files"]]
        renamed = relative
        if record["kind"] == "stack":
            (source,) = (Path(i).name for i in record["inputs"])
            old = record["name"][:-len("_st.fit")]
            new = f"{old.rsplit('_', 1)[0]}_{runs[source]:05d}"
            renamed = [rel.replace(old, new) for rel in relative]
            record["name"] = record["name"].replace(old, new)
        for rel, new_rel in zip(relative, renamed, strict=True):
            (out / new_rel).parent.mkdir(parents=True, exist_ok=True)
            if not (out / new_rel).exists():
                shutil.copyfile(demo / rel, out / new_rel)
                copied += (out / new_rel).stat().st_size
        record["files"] = [str(out / rel) for rel in renamed]
        (out / f"{renamed[0]}.done.json").write_text(json.dumps(record))
    return copied


def test_full_disk_fails_by_name_and_a_rerun_with_space_completes(
        small_survey: Path, small_disk: Path, settings: Settings) -> None:
    cfg = load_config(CONFIG)
    raw, gaia = small_survey / "data" / "raw" / "vst", small_survey / "data" / "gaia"
    out = small_disk / "products"
    copied = _seed_finished(settings, sorted(raw.rglob("*.fits")), out)
    # Room for the markers, not for the tile.
    subprocess.run(["mount", "-o", f"remount,size={copied // 1024 + 4096}k", str(small_disk)],
                   check=True)
    done_before = {p: checksum(p) for p in out.rglob("*.done.json")}
    # What a writer killed mid-write an hour ago left (removed by the next run).
    stale = next(out.glob("2*/")) / ".o_st_tl.fit.killed.part"
    stale.write_bytes(b"half a file")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    full = run_pipeline(cfg, raw, gaia, out, dsn=settings.dsn, workers=1, progress=False)
    assert full.failed == 1 and full.resumed == 3
    # The failure names the file that could not be written, and why.
    (message,) = full.failures
    assert "no space left on device" in message and str(out) in message, message
    assert "_st_tl" in message
    # Nothing half-written: no temporary files (not even the killed writer's), no tile
    # published or recorded as made.
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".part")]
    assert all(_complete(p) for p in files if p.suffix in (".fit", ".fits"))
    assert sorted(f.path.name for f in image_files(out)) == sorted(
        p.name[:-len(".done.json")] for p in out.glob("2*/*_st.fit.done.json"))
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        recorded = conn.execute("SELECT product, status, message FROM ledger.products"
                                " WHERE run_id = %s AND status <> 'resumed'",
                                (full.run_id,)).fetchall()
    assert [(status, msg) for _, status, msg in recorded] == [("failed", message)]

    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    rerun = run_pipeline(cfg, raw, gaia, out, dsn=settings.dsn, workers=1, progress=False)
    assert rerun.failed == 0 and rerun.ok == 1 and rerun.resumed == 3, rerun.failures
    (tile,) = [p for p in rerun.products if p.endswith("_st_tl.fit")]
    # Finished work was kept, not redone; the tile is complete and published.
    assert all(checksum(p) == digest for p, digest in done_before.items())
    record = json.loads(next(out.rglob(f"{tile}.done.json")).read_text())
    assert len(record["files"]) == 3 and all(_complete(Path(f)) for f in record["files"])
    assert tile in {f.path.name for f in image_files(out)}
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
