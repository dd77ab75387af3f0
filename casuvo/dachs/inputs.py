# SPDX-License-Identifier: BSD-3-Clause
"""Service input that DaCHS 2.7 turns into a 500 or a wrong success, made usage errors.

Three adjustments, installed at server start (:func:`install`):

- :func:`utf8_sql_sets`: DaCHS writes a multi-valued text parameter (SIA 2.0's
  ``ID``, ``COLLECTION``, ``TARGET``, ...; SIA 1.0's filters) as an SQL set
  (``x IN ('a', 'b')``) through psycopg2's default string quoting, which
  encodes in Latin-1: ``COLLECTION=✓`` failed with a UnicodeEncodeError (a 500)
  and ``COLLECTION=Ü`` sent Latin-1 bytes that PostgreSQL refused as invalid
  UTF-8.  Items are now quoted in UTF-8, as DaCHS already does for arrays.
- :func:`refuse_empty_constraints`: twisted hands ``POS=`` to DaCHS as an empty
  string, which DaCHS drops, so an SIA 2.0 query with an empty constraint ran
  unconstrained and returned the first MAXREC images as if they matched.  An
  SIA 2.0 constraint given without a value is now a usage error.
- :func:`checked_sort_direction`: the web forms' ``_DBOPTIONS_DIR`` was looked
  up in a two-key dict, so any value but ASC or DESC was a KeyError (a 500);
  it is now a usage error naming the parameter.
"""

from __future__ import annotations

from typing import Any

__all__ = ["checked_sort_direction", "install", "refuse_empty_constraints", "utf8_sql_sets"]


def utf8_sql_sets() -> None:
    """Quote the text items of DaCHS's SQL sets in UTF-8 (not psycopg2's Latin-1)."""
    import psycopg2.extensions
    from gavo.base import sqlsupport

    adapter = sqlsupport.SqlSetAdapter
    if getattr(adapter.getquoted, "_casuvo_utf8_sets", False):
        return

    def getquoted(self: Any) -> bytes:
        quoted = []
        for item in self._seq:
            adapted = psycopg2.extensions.adapt(str(item) if isinstance(item, str) else item)
            if isinstance(item, str):
                adapted.encoding = "utf-8"
            quoted.append(adapted.getquoted())
        return b"(%s)" % b", ".join(quoted)

    getquoted._casuvo_utf8_sets = True  # type: ignore[attr-defined]
    adapter.getquoted = getquoted
    adapter.__str__ = getquoted


def refuse_empty_constraints() -> None:
    """An SIA 2.0 constraint given without a value (``POS=``) is a usage error."""
    from gavo import base
    from gavo.web import vodal

    renderer = vodal.SIAP2Renderer
    if "runAsync" in vars(renderer):
        return
    run = renderer.runAsync

    def run_async(self: Any, args: Any) -> Any:
        names = {key.name.upper() for key in self.service.getInputKeysFor(self)}
        for name, values in args.items():
            if name.upper() in names and values and all(
                    isinstance(v, str) and not v.strip() for v in values):
                raise base.ValidationError(
                    f"{name} is given without a value; leave it out to not constrain"
                    f" {name}", name)
        return run(self, args)

    renderer.runAsync = run_async


def checked_sort_direction() -> None:
    """``_DBOPTIONS_DIR`` must be ASC or DESC: a usage error otherwise."""
    from gavo import base
    from gavo.svcs import common

    fill = common.QueryMeta._fillDbOptions
    if getattr(fill, "_casuvo_sort_direction", False):
        return

    def fill_checked(self: Any, args: Any) -> None:
        direction = args.get("_DBOPTIONS_DIR")
        if isinstance(direction, list):   # a form's raw arguments
            direction = direction[-1] if direction else None
        if direction is not None and direction not in ("ASC", "DESC"):
            raise base.ValidationError(
                f"_DBOPTIONS_DIR must be ASC or DESC, not {str(direction)[:20]!r}",
                "_DBOPTIONS_DIR")
        fill(self, args)

    fill_checked._casuvo_sort_direction = True  # type: ignore[attr-defined]
    common.QueryMeta._fillDbOptions = fill_checked


def install() -> None:
    """Install the three adjustments; idempotent."""
    checked_sort_direction()
    utf8_sql_sets()
    refuse_empty_constraints()
