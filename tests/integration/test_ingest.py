# SPDX-License-Identifier: BSD-3-Clause
"""Ingestion into gaia.sources: idempotent, all-or-nothing, ledgered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits
from astropy.table import Table

from casuvo.dachs.instance import dachs_env
from casuvo.storage.ingest import IngestError, ingest_catalogue
from casuvo.storage.ingest.fitstable import (
    CatalogueFileError,
    column_names,
    read_columns,
    read_rows,
)

pytestmark = pytest.mark.integration

TARGET = "gaia.sources"


def _count(settings) -> int:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM gaia.sources").fetchone()[0]


def _checksum(settings) -> str:
    """An order-independent digest of the table's content."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT md5(string_agg(source_id::text || ':' || ra::text || ':'"
            " || coalesce(parallax::text, 'null'), ',' ORDER BY source_id))"
            " FROM gaia.sources").fetchone()[0]


def _last_ledger(settings, n: int = 1) -> list[tuple]:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT file, status, rows, checksum, message FROM ledger.ingests"
            " ORDER BY id DESC LIMIT %s", (n,)).fetchall()


def test_rerun_is_skipped_and_changes_nothing(settings, casuvo_bin, gaia_files,
                                              gaia_catalogue) -> None:
    before = _checksum(settings)
    proc = subprocess.run([str(casuvo_bin), "ingest", "gaia", "--no-progress"],
                          capture_output=True, text=True, check=True)
    assert "up to date" in proc.stdout
    assert _count(settings) == len(gaia_catalogue)
    assert _checksum(settings) == before


def test_forced_reingest_gives_the_same_table(settings, gaia_files, gaia_catalogue) -> None:
    before = _checksum(settings)
    result = ingest_catalogue(settings.dsn, TARGET, gaia_files, order_by="source_id",
                              force=True, progress=False)
    assert not result.skipped
    assert result.rows == len(gaia_catalogue)
    assert _count(settings) == len(gaia_catalogue)
    assert _checksum(settings) == before
    ledger = _last_ledger(settings, len(gaia_files))
    assert {Path(f).name for f, *_ in ledger} == {f.name for f in gaia_files}
    assert all(status == "ok" and len(sha) == 64 for _, status, _, sha, _ in ledger)
    assert sum(rows for _, _, rows, _, _ in ledger) == len(gaia_catalogue)


def _indexes(settings) -> dict[str, tuple[int, str, bool]]:
    """gaia.sources' indexes: name -> (relation oid, definition, valid)."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT i.relname, i.oid::bigint, pg_get_indexdef(x.indexrelid), x.indisvalid"
            " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = 'gaia.sources'::regclass").fetchall()
    return {name: (oid, definition, valid) for name, oid, definition, valid in rows}


def _access(settings) -> tuple[str, list[str], list[str]]:
    """gaia.sources' owner and privileges, and any shadow tables an ingest left in gaia."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        owner, acl = conn.execute(
            "SELECT pg_get_userbyid(relowner), relacl::text[] FROM pg_class"
            " WHERE oid = 'gaia.sources'::regclass").fetchone()
        leftovers = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'gaia'"
            " AND tablename LIKE '%%casuvo%%'")]
    return owner, sorted(acl), leftovers


def _plan(settings, where: str) -> str:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return "\n".join(r[0] for r in conn.execute(
            f"EXPLAIN SELECT source_id FROM gaia.sources WHERE {where}"))


def test_indexes_survive_a_reload(settings, gaia_files, gaia_catalogue) -> None:
    """A forced reload drops and rebuilds every index, from the same definitions.

    What must change: each index is a new relation (a new oid), which shows the
    reload really happened.  What must stay: the index names and definitions
    (those of the resource descriptor), their validity, the rows, and the
    planner's use of the indexes for an identifier look-up and a cone.
    """
    before = _indexes(settings)
    # One GiST on the positions: the functional one that ADQL and SCS use.
    assert set(before) == {"sources_healpix12", "sources_source_id", "sources_spoint_sources"}
    content = _checksum(settings)
    access = _access(settings)
    assert access[0] == "gavoadmin" and "gavo=r/gavoadmin" in access[1]
    assert access[2] == []
    result = ingest_catalogue(settings.dsn, TARGET, gaia_files, order_by="source_id",
                              force=True, progress=False)
    assert not result.skipped
    assert result.rows == len(gaia_catalogue)
    after = _indexes(settings)
    assert set(after) == set(before)
    for name, (oid, definition, valid) in after.items():
        assert oid != before[name][0], f"{name} was not rebuilt"
        assert definition == before[name][1]
        assert valid
    assert _checksum(settings) == content
    # The reload builds a new table and swaps it in: what DaCHS needs of the
    # old one (owner, read access for its roles) comes along, nothing is left over.
    assert _access(settings) == access
    source_id = int(gaia_catalogue["source_id"][0])
    assert "sources_source_id" in _plan(settings, f"source_id = {source_id}")
    assert "sources_spoint_sources" in _plan(
        settings, "spoint(radians(ra), radians(dec))"
        " @ scircle(spoint(radians(194.3), radians(-64.75)), radians(0.01))")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing-column"])
def test_corrupt_file_fails_and_leaves_table_unchanged(settings, gaia_files, tmp_path,
                                                       damage: str) -> None:
    before_count, before_sum = _count(settings), _checksum(settings)
    bad = tmp_path / f"gaia_{damage}.fits"
    if damage == "truncate":
        data = gaia_files[0].read_bytes()
        bad.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbage":
        bad.write_bytes(b"SIMPLE  = this is not FITS at all" * 200)
    else:
        from astropy.table import Table

        table = Table.read(gaia_files[0], hdu=1)
        table.remove_column("parallax")
        table.write(bad)
    # The bad file comes *after* good ones: their rows must not survive either.
    files = [*gaia_files, bad]
    with pytest.raises(IngestError, match=bad.name):
        ingest_catalogue(settings.dsn, TARGET, files, force=True, progress=False)
    assert _count(settings) == before_count
    assert _checksum(settings) == before_sum
    (file, status, rows, _, message), = _last_ledger(settings)
    assert status == "failed" and rows is None
    assert bad.name in message


def test_cli_names_the_bad_file(settings, casuvo_bin, gaia_files, tmp_path) -> None:
    bad = tmp_path / "gaia_broken.fits"
    shutil.copy(gaia_files[0], bad)
    with bad.open("r+b") as f:
        f.truncate(bad.stat().st_size - 5000)
    proc = subprocess.run([str(casuvo_bin), "ingest", "gaia", str(bad), "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "gaia_broken.fits" in proc.stderr
    assert "Traceback" not in proc.stderr


#: ADQL cones as users write them; DaCHS must turn each into SQL the GiST index serves.
INDEXED_ADQL = {
    "contains-point": "SELECT source_id FROM gaia.sources WHERE 1 = CONTAINS("
                      "POINT('ICRS', ra, dec), CIRCLE('ICRS', 194.3, -64.75, 0.01))",
    "distance-point": "SELECT source_id FROM gaia.sources WHERE "
                      "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 194.3, -64.75)) < 0.01",
}


@pytest.mark.parametrize("form", sorted(INDEXED_ADQL))
def test_adql_cones_on_ra_dec_use_the_position_index(settings, gaia_catalogue,
                                                      form: str) -> None:
    """The one GiST index of gaia.sources serves the ADQL forms the examples use.

    The SQL is what DaCHS's own translator writes for the query; its plan must
    go through ``sources_spoint_sources`` (the column ``pos`` has no index).
    """
    translated = subprocess.run(
        [sys.executable, "-m", "casuvo.dachs.adqlsql", INDEXED_ADQL[form]],
        env=dachs_env(settings), capture_output=True, text=True, check=True).stdout
    assert "spoint(RADIANS(ra), RADIANS(dec))" in translated
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + translated))
    assert "sources_spoint_sources" in plan, plan


def test_fast_reader_agrees_with_astropy(gaia_files, tmp_path) -> None:
    """read_rows (raw big-endian rows, own DATASUM check) gives astropy's values;
    a changed data byte is caught by the checksum."""
    path = gaia_files[0]
    names = column_names(path)
    fast = read_rows(path, names, "source_id")
    ref = read_columns(path, names)
    order = np.argsort(ref["source_id"], kind="stable")
    for name in names:
        if fast[name].dtype.kind == "S":
            assert [v.rstrip(b"\0 ").decode() for v in fast[name]] == \
                [str(v) for v in ref[name][order]], name
        else:
            assert np.array_equal(np.asarray(fast[name]), np.asarray(ref[name])[order],
                                  equal_nan=True), name
    bad = tmp_path / "flipped.fits"
    data = bytearray(path.read_bytes())
    with fits.open(path) as hdul:
        offset = hdul.fileinfo(1)["datLoc"] + 100
    data[offset] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(CatalogueFileError, match="checksum"):
        read_rows(bad, names)


def test_nulls_nans_and_strings_survive_the_load(settings, tmp_path) -> None:
    """NaN floats and TNULL integers arrive as NULL, padded strings without padding."""
    table = Table({"id": np.array([1, 2, 3], dtype=np.int64),
                   "x": np.array([1.5, np.nan, -2.25]),
                   "f": np.array([np.nan, 0.5, 3.0], dtype=np.float32),
                   "n": np.ma.MaskedArray(np.array([31, -1, 3], dtype=np.int16),
                                          mask=[False, True, False]),
                   "s": np.array(["VARIABLE", "NOT_AVAILABLE", ""])})
    path = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(path, checksum=True)
    target = "public.casuvo_ingest_probe"
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {target}")
        conn.execute(f"CREATE TABLE {target} (id bigint, x double precision, f real,"
                     " n smallint, s text, twice bigint GENERATED ALWAYS AS (2 * id) STORED)")
    try:
        result = ingest_catalogue(settings.dsn, target, [path], force=True, progress=False)
        assert result.rows == 3
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            rows = conn.execute(f"SELECT * FROM {target} ORDER BY id").fetchall()
    finally:
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {target}")
            conn.execute("DELETE FROM ledger.ingests WHERE target = %s", (target,))
            conn.execute("DELETE FROM ledger.builds WHERE target = %s", (target,))
    assert rows == [(1, 1.5, None, 31, "VARIABLE", 2), (2, None, 0.5, None, "NOT_AVAILABLE", 4),
                    (3, -2.25, 3.0, 3, "", 6)]


def _probe_table(settings, target: str) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {target}")
        conn.execute(f"CREATE TABLE {target} (id bigint, x double precision, f real,"
                     " n smallint, s text, twice bigint GENERATED ALWAYS AS (2 * id) STORED)")


def _drop_probe(settings, target: str) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {target}")
        conn.execute("DELETE FROM ledger.ingests WHERE target = %s", (target,))
        conn.execute("DELETE FROM ledger.builds WHERE target = %s", (target,))


def test_parquet_files_load_beside_fits(settings, tmp_path) -> None:
    """Parquet partitions (HATS, the cross-match's pairs): nulls as NULL, with FITS files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = tmp_path / "Npix=1.parquet"
    pq.write_table(pa.table({
        "ID": pa.array([4, 5, 6], pa.int64()),          # names match case-insensitively
        "x": pa.array([None, float("nan"), 7.0], pa.float64()),
        "f": pa.array([1.0, None, 2.5], pa.float32()),
        "n": pa.array([None, 2, 3], pa.int16()),
        "s": pa.array(["é", None, "x"], pa.string()),
        "extra": pa.array([1, 2, 3], pa.int8())}), part)
    fits_file = tmp_path / "t.fits"
    table = Table({"id": np.array([1], dtype=np.int64), "x": np.array([0.5]),
                   "f": np.array([1.0], dtype=np.float32),
                   "n": np.array([9], dtype=np.int16), "s": np.array(["a"])})
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(fits_file,
                                                                        checksum=True)
    target = "public.casuvo_ingest_probe"
    _probe_table(settings, target)
    try:
        result = ingest_catalogue(settings.dsn, target, [fits_file, part], force=True,
                                  progress=False)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            rows = conn.execute(f"SELECT * FROM {target} ORDER BY id").fetchall()
    finally:
        _drop_probe(settings, target)
    assert result.rows == 4
    assert rows == [(1, 0.5, 1.0, 9, "a", 2), (4, None, 1.0, None, "é", 8),
                    (5, None, None, 2, "", 10), (6, 7.0, 2.5, 3, "x", 12)]


@pytest.mark.parametrize("damage", ["garbage", "missing column"])
def test_bad_parquet_file_fails_and_names_it(settings, tmp_path, damage: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    columns = {"id": pa.array([1], pa.int64()), "x": pa.array([1.0]),
               "f": pa.array([1.0], pa.float32()), "n": pa.array([1], pa.int16()),
               "s": pa.array(["a"])}
    pq.write_table(pa.table(columns), good)
    bad = tmp_path / "bad.parquet"
    if damage == "garbage":
        bad.write_bytes(b"PAR1 this is not Parquet" * 50)
    else:
        pq.write_table(pa.table({k: v for k, v in columns.items() if k != "x"}), bad)
    target = "public.casuvo_ingest_probe"
    _probe_table(settings, target)
    try:
        with pytest.raises(IngestError, match=bad.name):
            ingest_catalogue(settings.dsn, target, [good, bad], force=True, progress=False)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            left = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    finally:
        _drop_probe(settings, target)
    assert left == 0
