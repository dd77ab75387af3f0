# SPDX-License-Identifier: BSD-3-Clause
"""The SQL that DaCHS's ADQL translator makes of a query, for looking at its plan.

``python -m casuvo.dachs.adqlsql 'ADQL'`` (in the instance's DaCHS
environment, :func:`casuvo.dachs.instance.dachs_env`) prints the PostgreSQL
that gavo's ``adql`` module (parser, then the PostgreSQL/pgSphere morphers)
produces; ``TAP_UPLOAD.name`` becomes ``name``, the name of the temporary table
DaCHS makes of an upload, so that a test can EXPLAIN the SQL against a
temporary table of its own.  Geometry becomes pgSphere (``spoint``,
``scircle``, ``<@``, ``<->``), which is what must hit the GiST indexes.
"""

from __future__ import annotations

import re
import sys

__all__ = ["adql_to_sql"]

_UPLOAD = re.compile(r"\bTAP_UPLOAD\.", re.IGNORECASE)


def adql_to_sql(query: str) -> str:
    """PostgreSQL for an ADQL query, as DaCHS's translator writes it."""
    from gavo import adql
    from gavo.adql import morphpg, nodes

    _, tree = morphpg.morphPG(adql.parseToTree(query))
    return _UPLOAD.sub("", nodes.flatten(tree))


def main(argv: list[str] | None = None) -> None:
    print(adql_to_sql(" ".join(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
