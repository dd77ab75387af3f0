# SPDX-License-Identifier: BSD-3-Clause
"""Every limit the services enforce, in one place.

The ADQL guard, the parameter checks, ``services/gavo.rc.template`` values
that casuvo renders, the VOSI capabilities and the limits page all read these
numbers, so what a client is told is what the server does.  No ``gavo``
import: tests and the command line read them too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADQL", "AdqlLimits"]


@dataclass(frozen=True)
class AdqlLimits:
    """Size and complexity of an ADQL query, checked before DaCHS parses it.

    DaCHS's ADQL parser (pyparsing) holds the GIL for the whole parse; its time
    grows faster than linearly with these quantities.  The limits are chosen
    so that the largest query they allow parses in well under a second, while
    every query a person writes (and the examples) stays far below them; large
    position lists belong in a table upload.
    """

    max_length: int = 100_000
    """characters of the query text"""
    max_tokens: int = 10_000
    """lexical tokens (identifiers, literals, operators, punctuation)"""
    max_depth: int = 32
    """nesting of parentheses (sub-queries, function calls, grouping)"""
    max_in_items: int = 1_000
    """items of one IN (...) list"""
    max_terms: int = 500
    """AND/OR terms of the whole query"""


#: the limits the TAP service enforces
ADQL = AdqlLimits()
