# SPDX-License-Identifier: BSD-3-Clause
"""Size and complexity limits on ADQL, checked before DaCHS parses the query.

DaCHS 2.7 parses ADQL with pyparsing (packrat) under one process-wide lock
(``gavo.utils.parsetricks._PYPARSE_LOCK``) while holding the GIL.  The parse
costs about 1–2 ms of CPU per token on the reference machine, linear in the
query's size: an IN list of 20,000 items or 60,000 OR terms keeps a server
process busy for minutes, and every other request of that process waits for
the lock or the GIL.  A cheap lexical scan (:func:`scan`, one regular
expression, linear, no backtracking) measures what drives the parse time —
length, tokens, parenthesis depth, the longest IN list, the AND/OR terms —
and :func:`check` refuses a query over any limit of
:data:`casuvo.dachs.limits.ADQL` with a usage error that names the limit.

Installed by :func:`install` (from :func:`casuvo.dachs.server.main`) in front
of ``gavo.protocols.adqlglue.morphADQL``, which every ADQL query of DaCHS
passes before its parse: TAP sync (in the server process), TAP async (in the
``gavo taprun`` child that runs the job, which is ``casuvo.dachs.server`` too:
the job goes to ERROR with the message), the job's ``plan`` action and the
ADQL web form (``__system__/adql/query/form``).  The usage error is a
``gavo.base.ValidationError`` on ``QUERY``: HTTP 400 with DaCHS's DALI error
document (:mod:`casuvo.dachs.errors`), the job's error summary for async.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from casuvo.dachs.limits import ADQL, MAX_FORM_BODY, AdqlLimits

__all__ = ["AdqlLimitError", "QueryShape", "check", "install", "scan"]

#: Longer texts are not scanned (the scan is linear, at most ~0.4 s for a
#: mebibyte of one-letter tokens, and holds the GIL): they are refused on
#: their length alone.  Behind the front, no longer form body arrives.
SCAN_CEILING = MAX_FORM_BODY

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<comment>--[^\n]*)
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<delimited>"(?:[^"]|"")*"?)
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<word>[^\W\d]\w*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<comma>,)
    | (?P<op><=|>=|<>|!=|\|\||\S)
    )""", re.VERBOSE)


class AdqlLimitError(ValueError):
    """A query over one of the ADQL limits; the message names the limit."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class QueryShape:
    """What :func:`scan` measured of a query."""

    length: int
    tokens: int
    depth: int
    in_items: int
    """items of the longest IN (...) list of values (sub-queries do not count)"""
    terms: int
    """AND/OR terms: one more than the number of AND and OR keywords"""
    scanned: bool = True
    """False when the text was longer than :data:`SCAN_CEILING` (counts are 0)"""


def scan(query: str) -> QueryShape:
    """Measure ``query`` without parsing it (comments and literals are one token)."""
    if len(query) > SCAN_CEILING:
        return QueryShape(len(query), 0, 0, 0, 0, scanned=False)
    tokens = depth = max_depth = longest = ands = 0
    # one entry per open parenthesis: the item count if it opens an IN list, else -1
    frames: list[int] = []
    prev_in = False  # the previous token was the keyword IN
    pending_list = False  # the previous token opened a parenthesis after IN
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup
        if kind is None or kind == "comment":
            continue
        tokens += 1
        if pending_list:
            pending_list = False
            if kind == "word" and m.group(kind).upper() == "SELECT":
                frames[-1] = -1  # IN (SELECT ...): a sub-query, not a list
            elif kind == "close":
                frames[-1] = 0
        if kind == "open":
            frames.append(1 if prev_in else -1)
            pending_list = prev_in
            depth += 1
            max_depth = max(max_depth, depth)
        elif kind == "close":
            if frames:
                items = frames.pop()
                longest = max(longest, items)
                depth -= 1
        elif kind == "comma":
            if frames and frames[-1] > 0:
                frames[-1] += 1
        elif kind == "word":
            word = m.group(kind).upper()
            if word in ("AND", "OR"):
                ands += 1
            prev_in = word == "IN"
            continue
        prev_in = False
    # an IN list left open by a broken query still counts
    longest = max([longest, *frames])
    return QueryShape(len(query), tokens, max_depth, longest, ands + 1 if ands else 0)


def check(query: str, limits: AdqlLimits = ADQL) -> QueryShape:
    """Raise :class:`AdqlLimitError` if ``query`` is over a limit; else its shape.

    Of several limits exceeded, the most specific is named (an IN list before
    the terms, the depth and the tokens, the length last), with the advice
    that fits it.
    """
    shape = scan(query)
    if shape.scanned:
        if shape.in_items > limits.max_in_items:
            raise AdqlLimitError(
                f"the query has {shape.in_items} items in one IN list; at most "
                f"{limits.max_in_items} are allowed: upload a table instead "
                "(TAP UPLOAD) and join it", "max_in_items")
        if shape.terms > limits.max_terms:
            raise AdqlLimitError(
                f"the query has {shape.terms} AND/OR terms; at most {limits.max_terms} "
                "are allowed: upload a table of the values (TAP UPLOAD) and join it",
                "max_terms")
        if shape.depth > limits.max_depth:
            raise AdqlLimitError(
                f"the query nests parentheses {shape.depth} deep; at most "
                f"{limits.max_depth} levels are allowed", "max_depth")
        if shape.tokens > limits.max_tokens:
            raise AdqlLimitError(
                f"the query has {shape.tokens} tokens; at most {limits.max_tokens} "
                "are allowed: split it, or upload long value lists as a table",
                "max_tokens")
    if shape.length > limits.max_length:
        raise AdqlLimitError(
            f"the query is {shape.length} characters long; at most "
            f"{limits.max_length} are allowed", "max_length")
    return shape


_installed = False


def install() -> None:
    """Check every ADQL query against :data:`ADQL` before DaCHS parses it; idempotent."""
    global _installed
    if _installed:
        return
    from gavo import base
    from gavo.protocols import adqlglue

    morph = adqlglue.morphADQL

    def guarded_morph(query: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, str):
            try:
                check(query)
            except AdqlLimitError as exc:
                raise base.ValidationError(
                    f"Query refused: {exc} (ADQL limit {exc.limit})", "QUERY") from None
        return morph(query, *args, **kwargs)

    guarded_morph.__wrapped__ = morph  # type: ignore[attr-defined]
    adqlglue.morphADQL = guarded_morph
    _installed = True
