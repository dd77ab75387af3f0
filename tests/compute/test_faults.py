# SPDX-License-Identifier: BSD-3-Clause
"""Faults on the compute side: a cross-match killed half-way, a full disk under a pipeline.

- A cross-match of the demo's VST sources with the Gaia catalogue of the same
  fields, run as a job (``python -m casuvo.jobs``, its own Dask cluster), is killed
  with SIGKILL once some partitions are finished: the rerun computes only the
  others, and its pairs are exactly those astropy finds (an independent count),
  none lost, none twice.
- The VST pipeline writes the products of one OB into a 180 MB file system
  (a tmpfs mounted for the test): it stops with errors that name the product
  and say that the device is full; no half-written file is left, nothing is
  recorded as done that is not complete on disk; with space added the rerun
  completes, keeping what was finished.
(The pipeline killed with SIGKILL: tests/compute/test_pipeline_runs.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import numpy as np
import psycopg
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.io import fits
from astropy.table import Table

from casuvo.config import Settings
from casuvo.jobs import CatalogueColumns, JobResult, XmatchJob
from casuvo.pipeline.config import load_config
from casuvo.pipeline.runner import run_pipeline
from casuvo.storage.files import checksum
from tests.compute.test_pipeline_runs import small_survey  # noqa: F401 (a fixture)

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

CONFIG = Path(__file__).parents[2] / "pipelines" / "vst" / "config.toml"


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 180 MB tmpfs (unmounted afterwards)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=180m", "casuvo-faults", str(mount)],
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


def test_full_disk_fails_by_name_and_a_rerun_with_space_completes(
        small_survey: Path, small_disk: Path, settings: Settings) -> None:  # noqa: F811
    cfg = load_config(CONFIG)
    raw, gaia = small_survey / "data" / "raw" / "vst", small_survey / "data" / "gaia"
    out = small_disk / "products"
    full = run_pipeline(cfg, raw, gaia, out, dsn=settings.dsn, workers=2, progress=False)
    assert full.failed >= 1
    # Each failure names the file that could not be written and why (or the product
    # that lacks its inputs because of it).
    space = [m for m in full.failures if "no space left on device" in m]
    assert space and all(str(out) in m for m in space), full.failures
    assert all(m in space or "no stacked pawprint" in m for m in full.failures)
    # Nothing half-written: no temporary files, every product file complete.
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".part")]
    assert all(_complete(p) for p in files if p.suffix in (".fit", ".fits"))
    # Everything the ledger calls made is complete on disk, with its marker.
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        made = conn.execute("SELECT product, files FROM ledger.products WHERE run_id = %s"
                            " AND status = 'ok'", (full.run_id,)).fetchall()
        failed = conn.execute("SELECT count(*) FROM ledger.products WHERE run_id = %s"
                              " AND status = 'failed'", (full.run_id,)).fetchone()[0]
    assert failed == full.failed
    for _, product_files in made:
        assert all(_complete(Path(f)) for f in product_files)
        assert Path(product_files[0] + ".done.json").exists()
    done_before = {p: checksum(p) for p in out.rglob("*.done.json")}

    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    rerun = run_pipeline(cfg, raw, gaia, out, dsn=settings.dsn, workers=2, progress=False)
    assert rerun.failed == 0, rerun.failures
    assert sum(1 for p in rerun.products if p.endswith("_st.fit")) == 3
    assert sum(1 for p in rerun.products if p.endswith("_st_tl.fit")) == 1
    # Finished work was kept, not redone.
    assert all(checksum(p) == digest for p, digest in done_before.items())
    for marker in out.rglob("*_st*.fit.done.json"):
        record = json.loads(marker.read_text())
        assert all(_complete(Path(f)) for f in record["files"])
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    np.testing.assert_equal(len(list(out.rglob("*_st_tl.fit"))), 1)
