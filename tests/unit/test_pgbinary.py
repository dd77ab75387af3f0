# SPDX-License-Identifier: BSD-3-Clause
"""The numpy binary-COPY encoder, decoded by hand (unit) and by PostgreSQL (integration)."""

from __future__ import annotations

import struct

import numpy as np
import psycopg
import pytest

from casuvo.storage.ingest.pgbinary import HEADER, TRAILER, CopyColumn, encode_rows, iter_chunks

COLUMNS = [CopyColumn("id", "bigint"), CopyColumn("x", "double precision"),
           CopyColumn("f", "real"), CopyColumn("n", "smallint"), CopyColumn("s", "text")]


def _arrays() -> dict[str, np.ndarray]:
    return {
        "id": np.array([1, 2, 3], dtype=np.int64),
        "x": np.array([1.5, np.nan, -2.25]),
        "f": np.array([np.nan, 0.5, 3.0], dtype=np.float32),
        "n": np.array([31, 3, 31], dtype=np.int16),
        "s": np.array(["VARIABLE", "NOT_AVAILABLE", "é"]),
    }


def _decode(payload: bytes, ncols: int) -> list[list[bytes | None]]:
    rows, pos = [], 0
    while pos < len(payload):
        (count,) = struct.unpack_from(">h", payload, pos)
        assert count == ncols
        pos += 2
        row = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            if length < 0:
                row.append(None)
            else:
                row.append(payload[pos:pos + length])
                pos += length
        rows.append(row)
    return rows


def test_encoding_layout() -> None:
    rows = _decode(encode_rows(COLUMNS, _arrays()), len(COLUMNS))
    assert len(rows) == 3
    assert struct.unpack(">q", rows[0][0])[0] == 1
    assert struct.unpack(">d", rows[0][1])[0] == 1.5
    assert rows[1][1] is None  # NaN becomes NULL
    assert rows[0][2] is None
    assert struct.unpack(">f", rows[1][2])[0] == 0.5
    assert struct.unpack(">h", rows[1][3])[0] == 3
    assert rows[1][4] == b"NOT_AVAILABLE"
    assert rows[2][4] == "é".encode()


def test_chunks_concatenate_to_the_whole() -> None:
    arrays = _arrays()
    assert b"".join(iter_chunks(COLUMNS, arrays, chunk_rows=2)) == encode_rows(COLUMNS, arrays)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="spoint"):
        CopyColumn("pos", "spoint")


def test_length_mismatch_is_refused() -> None:
    arrays = _arrays()
    arrays["x"] = arrays["x"][:2]
    with pytest.raises(ValueError, match="column x"):
        encode_rows(COLUMNS, arrays)


@pytest.mark.integration
def test_postgres_reads_what_we_write(settings) -> None:
    with psycopg.connect(settings.dsn) as conn:
        conn.execute("CREATE TEMP TABLE t (id bigint, x double precision, f real,"
                     " n smallint, s text)")
        with conn.cursor() as cur, cur.copy(
                "COPY t (id, x, f, n, s) FROM STDIN (FORMAT binary)") as copy:
            copy.write(HEADER)
            copy.write(encode_rows(COLUMNS, _arrays()))
            copy.write(TRAILER)
        rows = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert rows == [(1, 1.5, None, 31, "VARIABLE"), (2, None, 0.5, 3, "NOT_AVAILABLE"),
                    (3, -2.25, 3.0, 31, "é")]
