#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Mend Debian's pgSphere 1.2.0 extension script for PostgreSQL >= 15.19.

PostgreSQL 15.19 tightened the check on operator commutators, and Debian's
``pg_sphere--1.2.0.sql`` then fails with "commutator operator @> is already the
commutator of operator <@".  The clash comes from the two backwards-compatible
``@`` operators on ``smoc`` kept for DaCHS: their ``COMMUTATOR``/``NEGATOR``
lines duplicate those of ``<@``.  Upstream pgSphere dropped these lines
(postgrespro/pgsphere#85, #92); we do the same, only inside those two blocks.

This is the one Debian file casuvo touches.  The edit is idempotent and the
original is kept next to it as ``pg_sphere--1.2.0.sql.orig``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

SCRIPT = Path("/usr/share/postgresql/15/extension/pg_sphere--1.2.0.sql")

# A CREATE OPERATOR @ block on an smoc right argument, up to its closing ");".
_BLOCK = re.compile(
    r"CREATE OPERATOR @ \(\n(?:(?!\);).)*?RIGHTARG\s*=\s*smoc,(?:(?!\);).)*?\);",
    re.DOTALL,
)
_EXTRA = re.compile(r"^\s*(COMMUTATOR|NEGATOR)\s*=.*\n", re.MULTILINE)


def mend(text: str) -> str:
    """Return ``text`` with COMMUTATOR/NEGATOR removed from the smoc ``@`` blocks."""
    return _BLOCK.sub(lambda m: _EXTRA.sub("", m.group(0)), text)


def main(path: Path = SCRIPT) -> int:
    if not path.exists():
        print(f"mend_pgsphere: {path} not found; is postgresql-15-pgsphere installed?")
        return 1
    text = path.read_text()
    mended = mend(text)
    if mended == text:
        print(f"mend_pgsphere: {path} needs no change")
        return 0
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        shutil.copy2(path, backup)
    path.write_text(mended)
    print(f"mend_pgsphere: mended {path} (original kept as {backup.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SCRIPT))
