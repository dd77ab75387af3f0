# SPDX-License-Identifier: BSD-3-Clause
"""What the public sees: SQL that reads the archive as an anonymous HTTP request does.

The benches ask the services without credentials, so the public's rows are
all they can get back (row-level release control, ``docs/access.md``).  Their
expected answers, their samples of products and positions, and their SQL
baselines must read the same rows: the superuser's connection sees every
row, proprietary ones included, and so would expect more than the services
may answer and time SQL over rows the services never read.

:func:`connect` opens a connection as DaCHS's query role with the
anonymous ``casuvo.groups`` (:mod:`casuvo.storage.access`), so that the
release policies filter it exactly as they filter the services' queries.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from casuvo.config import Settings
from casuvo.storage.access import ANONYMOUS, GUC, QUERY_ROLES

#: The role DaCHS's services query as (``trustedquery``); the superuser is never filtered.
ROLE = QUERY_ROLES[0]


def connect(settings: Settings, setting: str = ANONYMOUS) -> psycopg.Connection:
    """An autocommit connection that reads as a request acting for ``setting``
    (a ``casuvo.groups`` value; default: anonymous, the public)."""
    conn = psycopg.connect(settings.dsn, autocommit=True)
    try:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE)))
        conn.execute("SELECT set_config(%s, %s, false)", (GUC, setting))
        if conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles"
                        " WHERE rolname = current_user").fetchone()[0]:
            raise RuntimeError(f"role {ROLE} is not filtered by row-level security")
    except BaseException:
        conn.close()
        raise
    return conn
