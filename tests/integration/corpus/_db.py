"""Independent answers for the corpus's valid half: SQL on the survey database.

The checks compare what a service answers with what PostgreSQL says directly
(psycopg, casuvo's own connection settings), never with the service itself.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import requests

__all__ = ["one", "rows", "votable_rows"]


@functools.cache
def _dsn() -> str:
    from casuvo.config import Settings

    return Settings.from_env().dsn


def rows(query: str, *args: object) -> list[tuple]:
    """All rows of ``query`` (``%s`` placeholders for ``args``)."""
    import psycopg

    with psycopg.connect(_dsn(), autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(query, args)
        return cursor.fetchall()


def one(query: str, *args: object) -> Any:
    """The single value ``query`` returns."""
    return rows(query, *args)[0][0]


def votable_rows(answer: requests.Response) -> Any:
    """The first table of a VOTable answer (an astropy masked array)."""
    from astropy.io.votable import parse

    vot = parse(io.BytesIO(answer.content), verify="ignore")
    return vot.get_first_table().array
