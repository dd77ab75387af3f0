# SPDX-License-Identifier: BSD-3-Clause
"""casuvo.storage.uptodate against the real ledger: when a build is skipped and when it reruns.

Each test builds a throw-away target (its own name, its own files under
tmp_path; its ledger rows are deleted afterwards): an unchanged rerun is
skipped and gets the recorded summary back; a changed input, a changed
parameter, an output deleted or modified since, a table that lost rows all
make it run again; a failed build is recorded and leaves the last good one
standing only while its outputs are intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from casuvo.storage import ledger, uptodate

pytestmark = pytest.mark.integration


@pytest.fixture()
def target(settings) -> Iterator[str]:
    name = f"test:uptodate:{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_builds_schema(conn)
        conn.execute("DELETE FROM ledger.builds WHERE target = %s", (name,))


class Builder:
    """A build that writes ``out`` from ``inputs`` and counts how often it ran."""

    def __init__(self, inputs: list[Path], out: Path) -> None:
        self.inputs, self.out, self.runs = inputs, out, 0

    def __call__(self) -> dict:
        self.runs += 1
        self.out.write_text("".join(p.read_text() for p in self.inputs))
        return {"bytes": self.out.stat().st_size, "run": self.runs}


@pytest.fixture()
def files(tmp_path) -> tuple[list[Path], Path]:
    inputs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    inputs[0].write_text("alpha\n")
    inputs[1].write_text("beta\n")
    return inputs, tmp_path / "out.txt"


def _ensure(settings, target, builder, params=None, **kw) -> uptodate.Outcome:
    fp = uptodate.fingerprint(target, builder.inputs, params or {"radius": 2.0})
    return uptodate.ensure_current(settings.dsn, fp, [builder.out], builder, **kw)


def test_unchanged_is_skipped_with_the_recorded_summary(settings, target, files) -> None:
    builder = Builder(*files)
    first = _ensure(settings, target, builder)
    assert not first.skipped and builder.runs == 1
    assert first.result == {"bytes": 11, "run": 1}
    again = _ensure(settings, target, builder)
    assert again.skipped and builder.runs == 1
    assert again.result == {"bytes": 11, "run": 1}
    assert again.build.outputs == {str(builder.out.resolve()): ledger.checksum(builder.out)}
    assert set(again.build.inputs) == {str(p.resolve()) for p in builder.inputs}
    # Touching an input (same bytes, new time) changes nothing.
    builder.inputs[0].write_text("alpha\n")
    assert _ensure(settings, target, builder).skipped and builder.runs == 1
    forced = _ensure(settings, target, builder, force=True)
    assert not forced.skipped and builder.runs == 2


def test_changed_input_reruns(settings, target, files) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder)
    builder.inputs[1].write_text("gamma\n")
    outcome = _ensure(settings, target, builder)
    assert not outcome.skipped and builder.runs == 2
    assert builder.out.read_text() == "alpha\ngamma\n"
    assert _ensure(settings, target, builder).skipped and builder.runs == 2


def test_added_input_reruns(settings, target, files, tmp_path) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder)
    (tmp_path / "c.txt").write_text("delta\n")
    builder.inputs.append(tmp_path / "c.txt")
    assert not _ensure(settings, target, builder).skipped and builder.runs == 2


def test_changed_parameter_reruns(settings, target, files) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder, {"radius": 2.0})
    assert not _ensure(settings, target, builder, {"radius": 1.5}).skipped
    assert builder.runs == 2
    assert _ensure(settings, target, builder, {"radius": 1.5}).skipped and builder.runs == 2


def test_deleted_output_reruns(settings, target, files) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder)
    builder.out.unlink()
    assert not _ensure(settings, target, builder).skipped and builder.runs == 2
    assert builder.out.read_text() == "alpha\nbeta\n"


def test_modified_output_reruns(settings, target, files) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder)
    builder.out.write_text("edited by hand\n")
    assert not _ensure(settings, target, builder).skipped and builder.runs == 2
    assert builder.out.read_text() == "alpha\nbeta\n"


def test_directory_output_is_checked_file_by_file(settings, target, files, tmp_path) -> None:
    inputs, _ = files
    tree = tmp_path / "tree"
    runs = []

    def build() -> dict:
        runs.append(1)
        (tree / "sub").mkdir(parents=True, exist_ok=True)
        (tree / "sub" / "part0.txt").write_text(inputs[0].read_text())
        return {}

    fp = uptodate.fingerprint(target, inputs)
    assert not uptodate.ensure_current(settings.dsn, fp, [tree], build).skipped
    assert uptodate.ensure_current(settings.dsn, fp, [tree], build).skipped
    (tree / "stray.txt").write_text("x")
    assert not uptodate.ensure_current(settings.dsn, fp, [tree], build).skipped
    assert len(runs) == 2  # the stray file stays, and is now part of the recorded tree
    assert uptodate.ensure_current(settings.dsn, fp, [tree], build).skipped


def test_failure_is_recorded_and_raised(settings, target, files) -> None:
    builder = Builder(*files)
    _ensure(settings, target, builder, {"radius": 2.0})

    def broken() -> dict:
        raise RuntimeError("the engine fell over")

    fp = uptodate.fingerprint(target, builder.inputs, {"radius": 1.0})
    with pytest.raises(RuntimeError, match="fell over"):
        uptodate.ensure_current(settings.dsn, fp, [builder.out], broken)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        failed = ledger.last_build(conn, target, status="failed")
    assert failed is not None and failed.message == "the engine fell over"
    assert failed.params == {"radius": 1.0}
    # The last good build still stands for its own fingerprint: its output is intact.
    assert _ensure(settings, target, builder, {"radius": 2.0}).skipped and builder.runs == 1


def test_table_that_lost_rows_reruns(settings, target, files) -> None:
    table = f"public.casuvo_uptodate_{uuid.uuid4().hex[:8]}"
    inputs, _ = files
    fp = uptodate.fingerprint(target, inputs)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} AS SELECT generate_series(1, 5) AS n")
        try:
            uptodate.record_build(conn, fp, tables={table: 5})
            assert uptodate.current_build(conn, fp) is not None
            conn.execute(f"DELETE FROM {table} WHERE n = 3")
            assert uptodate.current_build(conn, fp) is None
            conn.execute(f"DROP TABLE {table}")
            assert uptodate.current_build(conn, fp) is None
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_ensure_current_records_the_rows_of_its_tables(settings, target, files) -> None:
    table = f"public.casuvo_uptodate_{uuid.uuid4().hex[:8]}"
    inputs, _ = files
    fp = uptodate.fingerprint(target, inputs)
    runs = []

    def build() -> dict:
        runs.append(1)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} AS SELECT generate_series(1, 4) AS n")
        return {}

    try:
        made = uptodate.ensure_current(settings.dsn, fp, [], build, tables=[table])
        assert made.build.tables == {table: 4} and len(runs) == 1
        assert uptodate.ensure_current(settings.dsn, fp, [], build, tables=[table]).skipped
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {table} VALUES (5)")
        assert not uptodate.ensure_current(settings.dsn, fp, [], build, tables=[table]).skipped
        assert len(runs) == 2
        with pytest.raises(LookupError, match="did not create it"):
            uptodate.ensure_current(settings.dsn, fp, [], lambda: {}, tables=["public.nosuch"],
                                    force=True)
    finally:
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_ingested_files_of_a_table_never_loaded(settings) -> None:
    with pytest.raises(uptodate.StaleInputError, match="nosuch.table has not been loaded"):
        uptodate.ingested_files(settings.dsn, "nosuch.table")


def test_ingested_files_are_the_ledgers_and_verified(settings) -> None:
    files = uptodate.ingested_files(settings.dsn, "gaia.sources")
    assert files and all(Path(p).name.startswith("gaia_") for p in files)
    assert all(ledger.checksum(Path(p)) == digest for p, digest in files.items())


def test_parameters_must_be_json(settings, target, files) -> None:
    with pytest.raises(TypeError):
        uptodate.fingerprint(target, files[0], {"path": Path("/x")})
