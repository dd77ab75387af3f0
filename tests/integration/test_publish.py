# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo publish``: an archive whose inputs are unchanged is not imported again.

Against the running stack's first image archive: a publish after a publish
leaves the recorded build and every row as they were; a product file touched
(new time, same bytes) changes nothing either, since the ledger compares
checksums, not times; ``--force`` imports again, to the same rows.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from casuvo.archive.imagemeta import image_files
from casuvo.config import Settings
from casuvo.dachs.stack import archives
from casuvo.storage import ledger
from casuvo.surveys.registry import Registry

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Archive:
    """What a publish may change: the recorded build and the archive's rows."""

    build: ledger.BuildRecord | None
    rows: dict[str, tuple[int, str]]
    """{table: (row count, MD5 of all rows in accref order)}."""


def _archive(settings: Settings, survey: str) -> Archive:
    rows = {}
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        build = ledger.last_build(conn, f"archive:{survey}")
        for table in (f"{survey}.images", f"{survey}.ancillary"):
            rows[table] = conn.execute(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.accref))"
                f" FROM {table} t").fetchone()
    return Archive(build, rows)


def _publish(casuvo_bin: Path, survey: str, *args: str) -> str:
    """Run ``casuvo publish SURVEY ARGS``; its log (stderr)."""
    proc = subprocess.run([str(casuvo_bin), "publish", survey, *args], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stderr


@pytest.mark.long
def test_publish_skips_an_unchanged_archive_and_force_imports(
        settings: Settings, registry: Registry, casuvo_bin: Path) -> None:
    survey = archives(settings)[0]
    _publish(casuvo_bin, survey)  # imports only if the archive is not recorded as current
    first = _archive(settings, survey)
    assert first.build is not None and first.build.status == "ok"
    images, ancillary = first.rows[f"{survey}.images"][0], first.rows[f"{survey}.ancillary"][0]
    assert images > 0 and ancillary > 0
    assert first.build.tables == {f"{survey}.images": images, f"{survey}.ancillary": ancillary}
    products = image_files(settings.data_dir / "products" / registry.by_collection(survey).key)
    assert {str(f.path.resolve()) for f in products} <= set(first.build.inputs)

    log = _publish(casuvo_bin, survey)
    assert f"{survey} archive: up to date ({images} images, {ancillary} ancillary files)" in log
    assert _archive(settings, survey) == first

    catalogue = products[0].catalogue
    times = catalogue.stat()
    try:
        os.utime(catalogue, ns=(times.st_atime_ns, times.st_mtime_ns + 3600 * 10**9))
        log = _publish(casuvo_bin, survey)
        assert f"{survey} archive: up to date" in log
        assert _archive(settings, survey) == first
    finally:
        os.utime(catalogue, ns=(times.st_atime_ns, times.st_mtime_ns))

    log = _publish(casuvo_bin, survey, "--force")
    assert f"{survey} archive: {images} images published" in log
    forced = _archive(settings, survey)
    assert forced.build is not None and forced.build.finished > first.build.finished
    assert forced.build.fingerprint == first.build.fingerprint
    assert forced.rows == first.rows
