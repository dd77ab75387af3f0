# SPDX-License-Identifier: BSD-3-Clause
"""ADQL translations reused across queries that differ only in their numbers.

DaCHS parses every ADQL query with pyparsing: for a small TAP cone that is
about half of the server's time per request (a py-spy profile of 250 sync
cones on ``gaia.sources``: 47 % of all samples in ``ParserElement.parseString``),
and clients send the same query again and again with other coordinates
(TOPCAT's and pyvo's cones, a notebook looping over targets).  So
``adqlglue.morphADQL`` is wrapped: the query's *template* — its text with every
number that is a function argument (``CIRCLE('ICRS', 10.5, -50.7, 0.01)``)
replaced by a placeholder — is translated once, and later queries of the same
template get that translation with their own numbers put back.

Why it gives DaCHS's answer, not just a similar one:

- A template is used only after it was *proven* on a real query: the real
  query is translated the normal way, the template is translated too, and the
  template's SQL with the real numbers put back must equal the real SQL
  character for character (and the result columns, limits and warnings must
  be the same); otherwise the template is remembered as not reusable and
  every query of it is parsed in full.  A translation that depends on a
  value (``1=CONTAINS``, ``TOP``, a folded constant) never passes.
- Only numbers between ``(``/``,`` and ``,``/``)`` are templated: ``TOP n``,
  ``1=CONTAINS(...)`` and comparisons keep their values in the template.  A
  sign belongs to the template (``-50.7`` and ``50.7`` are different
  templates), so DaCHS's rendering of unary minus is never guessed.
- Value checks done while parsing are repeated for every reuse: a literal
  latitude of ``POINT`` or ``CIRCLE`` outside ±90° is refused as before
  (:mod:`casuvo.dachs.adqlchecks`).
- Queries with uploads are never cached; the cache holds at most
  :data:`MAX_TEMPLATES` templates for :data:`TTL_S` seconds, so a changed
  table description is seen within minutes even without a restart (``casuvo
  up`` restarts the servers after any RD change anyway).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_TEMPLATES", "TABLE_TTL_S", "TTL_S", "Template", "install",
           "remember_table_lookups", "stats", "template_of"]

#: templates kept (least recently used dropped first)
MAX_TEMPLATES = 512
#: seconds a proven template is reused
TTL_S = 300.0

#: an unsigned ADQL numeric literal, not part of a name or a longer number
_NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])")
#: placeholders: distinct, positive, below 1 (a valid latitude, radius or
#: coordinate), and unlikely to occur in a real query
_PLACEHOLDER = "0.918273645{:04d}"


@dataclass(frozen=True)
class Template:
    """A query's template text and the numbers taken out of it, in order."""

    text: str
    numbers: tuple[str, ...]


def _code_spans(query: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of ``query`` outside strings, quoted names and comments."""
    spans, start, i, n = [], 0, 0, len(query)
    while i < n:
        c = query[i]
        if c in "'\"":
            spans.append((start, i))
            j = i + 1
            while j < n:
                if query[j] == c:
                    if j + 1 < n and query[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = start = j + 1
        elif c == "-" and query.startswith("--", i):
            spans.append((start, i))
            j = query.find("\n", i)
            i = start = n if j < 0 else j
        else:
            i += 1
    spans.append((start, n))
    return [(a, b) for a, b in spans if b > a]


def _neighbour(query: str, index: int, step: int) -> str:
    """The first non-blank character from ``index`` in direction ``step`` ('' at an end)."""
    while 0 <= index < len(query):
        if not query[index].isspace():
            return query[index]
        index += step
    return ""


def template_of(query: str) -> Template:
    """The template of ``query``: function-argument numbers replaced by ``{}``-free markers.

    The marker of the i-th number is ``\\x00i\\x00`` (a NUL never reaches here:
    the request guard refuses it), so the template text is also the cache key.
    """
    parts: list[str] = []
    numbers: list[str] = []
    last = 0
    for a, b in _code_spans(query):
        for m in _NUMBER.finditer(query, a, b):
            start = m.start()
            before = _neighbour(query, start - 1, -1)
            if before in "+-":  # a sign: the template keeps it, the argument needs ( or , before it
                k = start - 1
                while k >= 0 and query[k].isspace():
                    k -= 1
                before = _neighbour(query, k - 1, -1)
            if before not in ("(", ",") or _neighbour(query, m.end(), 1) not in (",", ")"):
                continue
            parts.append(query[last:start])
            parts.append(f"\x00{len(numbers)}\x00")
            numbers.append(m.group())
            last = m.end()
    parts.append(query[last:])
    return Template("".join(parts), tuple(numbers))


def _fill(text: str, numbers: tuple[str, ...]) -> str:
    return re.sub("\x00(\\d+)\x00", lambda m: numbers[int(m.group(1))], text)


@dataclass
class _Entry:
    """A proven template: its SQL with markers, and what a result table needs."""

    sql: str | None
    """``None``: the template was tried and is not reusable."""
    tree: Any = None
    overflow: int | None = None
    warnings: tuple[str, ...] = ()
    latitudes: tuple[int, ...] = ()
    """Indexes of the numbers that are literal POINT/CIRCLE latitudes."""
    made: float = 0.0


_cache: OrderedDict[tuple, _Entry] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0, "refused": 0}


def stats() -> dict[str, int]:
    """Hits, misses and templates found not reusable since the server started."""
    return dict(_stats)


def _columns(table: Any) -> list[tuple]:
    return [(c.name, c.type, c.unit, c.ucd, c.description) for c in table.tableDef.columns]


def _warnings(table: Any) -> tuple[str, ...]:
    return tuple(str(m.getContent("text")) for m in table.iterMeta("_warning"))


def _latitude_indexes(tree: Any, placeholders: tuple[str, ...]) -> tuple[int, ...]:
    """Which placeholders stand as the latitude of a POINT (or a CIRCLE's centre)."""
    from gavo.adql import nodes

    index = {p: i for i, p in enumerate(placeholders)}
    found = []
    for _, node in tree.iterTree():
        if isinstance(node, nodes.Point):
            i = index.get(nodes.flatten(node.y).strip())
            if i is not None:
                found.append(i)
    return tuple(found)


def _prove(template: Template, query: str, key: tuple, morph: Any, args: tuple,
           kwargs: dict, real: tuple[str, Any]) -> None:
    """Translate the template and keep it if it reproduces the real translation."""
    placeholders = tuple(_PLACEHOLDER.format(i) for i in range(len(template.numbers)))
    entry = _Entry(sql=None, made=time.monotonic())
    captured: dict[str, Any] = {}
    try:
        sql, table = _morph_capturing_tree(morph, _fill(template.text, placeholders),
                                           args, kwargs, captured)
        real_sql, real_table = real
        marked = sql
        for i, p in enumerate(placeholders):
            if marked.count(p) != 1:
                raise LookupError(p)
            marked = marked.replace(p, f"\x00{i}\x00")
        if (_fill(marked, template.numbers) == real_sql
                and _columns(table) == _columns(real_table)
                and _warnings(table) == _warnings(real_table)
                and getattr(table.tableDef, "overflowLimit", None)
                == getattr(real_table.tableDef, "overflowLimit", None)):
            entry = _Entry(sql=marked, tree=captured["tree"],
                           overflow=getattr(table.tableDef, "overflowLimit", None),
                           warnings=_warnings(table),
                           latitudes=_latitude_indexes(captured["tree"], placeholders),
                           made=entry.made)
    except Exception:  # the template does not parse or translate alone: not reusable
        pass
    with _lock:
        if entry.sql is None:
            _stats["refused"] += 1
        _cache[key] = entry
        while len(_cache) > MAX_TEMPLATES:
            _cache.popitem(last=False)


_trees = threading.local()


def _morph_capturing_tree(morph: Any, query: str, args: tuple, kwargs: dict,
                          captured: dict[str, Any]) -> tuple[str, Any]:
    """``morph(query)``, keeping the annotated tree it made (for later result tables).

    The tree is the one this thread's ``_getTableDescForOutput`` last saw
    (:func:`install` wraps it once; DaCHS runs sync queries in a thread pool).
    """
    _trees.last = None
    result = morph(query, *args, **kwargs)
    captured["tree"] = _trees.last
    if captured["tree"] is None:
        raise LookupError("no annotated tree")
    return result


def _from_entry(entry: _Entry, template: Template, query: str) -> tuple[str, Any]:
    """(SQL, result table) of a query whose template is proven, without parsing it."""
    from gavo import rsc
    from gavo.adql import common
    from gavo.protocols import adqlglue

    for i in entry.latitudes:  # the range is symmetric: the sign (kept in the template) is moot
        if float(template.numbers[i]) > 90:
            raise common.RegionError(
                f"Latitude {template.numbers[i]} (or its negative) in a POINT or CIRCLE is out"
                " of range: it must be between -90 and 90 degrees")
    sql = _fill(entry.sql, template.numbers)
    table = rsc.TableForDef(adqlglue._getTableDescForOutput(entry.tree))
    table.tableDef.overflowLimit = entry.overflow
    for warning in entry.warnings:
        table.addMeta("_warning", warning)
    adqlglue._addTableMeta(sql, query, entry.tree, table)
    return sql, table


#: seconds a table name's definition is remembered (:func:`remember_table_lookups`)
TABLE_TTL_S = 30.0


def remember_table_lookups() -> None:
    """Remember ``MetaTableHandler.getTableDefForTable`` answers for :data:`TABLE_TTL_S` s.

    DaCHS finds a table's definition through two queries of ``dc.tablemeta``
    on every call, and every TAP query calls it at least twice (result
    columns, result metadata): 3.4 of the 7 ms of a cached cone translation.
    The definition is the RD's own object, which DaCHS caches anyway; a
    table dropped or re-described is seen again within the TTL (and ``casuvo
    up`` restarts the servers after RD changes).  Failed look-ups are not kept.
    """
    from gavo.rsc import metatable

    handler = metatable.MetaTableHandler
    lookup = handler.getTableDefForTable
    if getattr(lookup, "_casuvo_remembered", False):
        return
    known: dict[str, tuple[float, Any]] = {}

    def remembered(self: Any, tableName: str) -> Any:  # noqa: N803 - DaCHS's name
        key = tableName.lower()
        hit = known.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < TABLE_TTL_S:
            return hit[1]
        table_def = lookup(self, tableName)
        known[key] = (now, table_def)
        return table_def

    remembered._casuvo_remembered = True  # type: ignore[attr-defined]
    handler.getTableDefForTable = remembered


_installed = False


def install() -> None:
    """Wrap ``adqlglue.morphADQL`` with the template cache; idempotent.

    Install it before :mod:`casuvo.dachs.adqlguard`, so that the guard's limits
    are checked on every query, cached or not.
    """
    global _installed
    if _installed:
        return
    from gavo.protocols import adqlglue

    remember_table_lookups()
    morph = adqlglue.morphADQL
    describe = adqlglue._getTableDescForOutput

    def describe_keeping_tree(tree: Any) -> Any:
        _trees.last = tree
        return describe(tree)

    adqlglue._getTableDescForOutput = describe_keeping_tree

    def cached_morph(query: Any, metaProfile: Any = None, tdsForUploads: Any = (),  # noqa: N803
                     maxrec: Any = None, hardLimit: Any = None) -> Any:  # noqa: N803
        kwargs = {"metaProfile": metaProfile, "tdsForUploads": list(tdsForUploads or []),
                  "maxrec": maxrec, "hardLimit": hardLimit}
        if tdsForUploads or not isinstance(query, str):
            return morph(query, **kwargs)
        template = template_of(query)
        if not template.numbers:
            return morph(query, **kwargs)
        key = (template.text, repr(metaProfile), maxrec, hardLimit)
        with _lock:
            entry = _cache.get(key)
            if entry is not None and time.monotonic() - entry.made > TTL_S:
                del _cache[key]
                entry = None
            if entry is not None:
                _cache.move_to_end(key)
        if entry is not None and entry.sql is not None:
            _stats["hits"] += 1
            return _from_entry(entry, template, query)
        _stats["misses"] += 1
        real = morph(query, **kwargs)
        if entry is None:
            _prove(template, query, key, morph, (), kwargs, real)
        return real

    cached_morph.__wrapped__ = morph  # type: ignore[attr-defined]
    adqlglue.morphADQL = cached_morph
    _installed = True
