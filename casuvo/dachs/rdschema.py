# SPDX-License-Identifier: BSD-3-Clause
"""The table definitions a resource descriptor declares, as plain data.

Used to check that what casuvo COPYs matches what DaCHS publishes.  Run as
``python -m casuvo.dachs.rdschema RD TABLE`` in the instance's DaCHS
environment (see :func:`casuvo.dachs.instance.dachs_env`); prints JSON.
"""

from __future__ import annotations

import json
import sys

__all__ = ["declared_columns"]


def declared_columns(rd_id: str, table_id: str) -> list[dict[str, str | None]]:
    """[{name, type, unit, ucd}] of a table in an RD, in declaration order."""
    from gavo import api

    table = api.getRD(rd_id).getById(table_id)
    return [{"name": col.name, "type": col.type, "unit": col.unit, "ucd": col.ucd}
            for col in table.columns]


def main(argv: list[str] | None = None) -> None:
    rd_id, table_id = (sys.argv[1:] if argv is None else argv)[:2]
    print(json.dumps(declared_columns(rd_id, table_id)))


if __name__ == "__main__":
    main()
