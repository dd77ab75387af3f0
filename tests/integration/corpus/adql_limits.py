# SPDX-License-Identifier: BSD-3-Clause
"""ADQL size and complexity limits of TAP sync (``casuvo.dachs.limits.ADQL``).

For every limit: the query one unit over it gets a 400 whose message names the
limit (``max_length``, ``max_tokens``, ``max_depth``, ``max_in_items``,
``max_terms``), sent as GET and as POST; the largest query at the limit is
answered, with values the query's own construction predicts (the sum of a
chain of ones, the literal sent back, the ``random_index`` values asked for:
Gaia's ``random_index`` is a permutation of 0…N-1, so every small value names
exactly one source).  Plus the hostile sizes of issue 13 (an IN list of
20,000 items, 60,000 OR terms), which must be refused as fast as the rest.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table

from casuvo.dachs.limits import ADQL, AdqlLimits
from tests.integration.corpus import Case, qs

__all__ = ["at_limit", "cases", "over_limit"]

GAIA = " FROM gaia.sources"


def _ones(n: int) -> str:
    """``SELECT TOP 1 1 + 1 + … AS s FROM gaia.sources``: 2n + 8 tokens, s = n."""
    return "SELECT TOP 1 " + " + ".join(["1"] * n) + " AS s" + GAIA


def _literal(length: int) -> tuple[str, str]:
    """A query of exactly ``length`` characters selecting one long string literal."""
    head, tail = "SELECT TOP 1 '", "' AS s" + GAIA
    text = "x" * (length - len(head) - len(tail))
    return head + text + tail, text


def _nested(depth: int) -> str:
    """``ABS`` nested ``depth`` deep around -5: parentheses ``depth`` deep, v = 5."""
    return "SELECT TOP 1 " + "ABS(" * depth + "-5" + ")" * depth + " AS v" + GAIA


def _in_list(values: list[int]) -> str:
    return ("SELECT random_index" + GAIA + " WHERE random_index IN ("
            + ", ".join(map(str, values)) + ")")


def _or_terms(values: list[int]) -> str:
    return ("SELECT random_index" + GAIA + " WHERE "
            + " OR ".join(f"random_index = {v}" for v in values))


def _table(response: requests.Response) -> Table:
    assert response.status_code == 200, response.text[:300]
    return parse_single_table(io.BytesIO(response.content), verify="ignore").to_table()


def _expect_scalar(column: str, want: object) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        table = _table(response)
        assert len(table) == 1
        got = table[column][0]
        got = got.decode() if isinstance(got, bytes) else got
        assert got == want, (str(got)[:80], str(want)[:80])
    return check


def _expect_indices(values: list[int]) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        got = sorted(int(v) for v in _table(response)["random_index"])
        assert got == sorted(values)
    return check


def at_limit(limits: AdqlLimits = ADQL) -> Iterator[tuple[str, str, Callable]]:
    """(name, query, check) for the largest query each limit allows."""
    n = (limits.max_tokens - 8) // 2
    yield f"max_tokens: {2 * n + 8} tokens", _ones(n), _expect_scalar("s", n)
    query, text = _literal(limits.max_length)
    yield f"max_length: {limits.max_length} characters", query, _expect_scalar("s", text)
    yield (f"max_depth: ABS nested {limits.max_depth} deep", _nested(limits.max_depth),
           _expect_scalar("v", 5))
    values = [7 * i + 3 for i in range(limits.max_in_items)]
    yield (f"max_in_items: {limits.max_in_items} items", _in_list(values),
           _expect_indices(values))
    values = [11 * i + 1 for i in range(limits.max_terms)]
    yield f"max_terms: {limits.max_terms} OR terms", _or_terms(values), _expect_indices(values)


def over_limit(limits: AdqlLimits = ADQL) -> Iterator[tuple[str, str, str]]:
    """(name, query, the limit its refusal must name), one unit over each limit."""
    n = (limits.max_tokens - 8) // 2 + 1
    yield f"{2 * n + 8} tokens", _ones(n), "max_tokens"
    yield f"{limits.max_length + 1} characters", _literal(limits.max_length + 1)[0], "max_length"
    yield f"parentheses {limits.max_depth + 1} deep", _nested(limits.max_depth + 1), "max_depth"
    yield (f"IN list of {limits.max_in_items + 1}", _in_list(list(range(limits.max_in_items + 1))),
           "max_in_items")
    yield (f"{limits.max_terms + 1} OR terms", _or_terms(list(range(limits.max_terms + 1))),
           "max_terms")


def _fits_url(query: str) -> bool:
    return len(qs(("QUERY", query))) < 15_000


def cases(endpoints: dict) -> Iterator[Case]:
    sync = endpoints["tap"].rstrip("/") + "/sync"

    def form(query: str) -> dict:
        return {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}

    # GET carries those whose URL fits DaCHS's (Twisted's) 16 kB request line
    for method in ("POST", "GET"):
        def request(query: str, method: str = method) -> dict:
            if method == "POST":
                return {"method": "POST", "data": form(query)}
            return {"query": qs(*form(query).items())}

        for name, query, limit in over_limit():
            if method == "POST" or _fits_url(query):
                yield Case("tap", f"adql limit, {method}: {name}", sync, **request(query),
                           status=400, needle=f"ADQL limit {limit}")
        # valid queries at the limit cost up to half a second each: all by POST,
        # one by GET
        for name, query, check in at_limit():
            if method == "POST" or name.startswith("max_tokens"):
                yield Case("tap", f"adql at limit, {method}: {name}", sync,
                           **request(query), status=200, check=check)
    hostile = [
        ("IN list of 20000", _in_list(list(range(20_000))), "max_in_items"),
        ("60000 OR terms", "SELECT source_id" + GAIA + " WHERE "
         + " OR ".join(f"ra={i}" for i in range(60_000)), "max_terms"),
    ]
    for name, query, limit in hostile:
        yield Case("tap", f"adql limit, POST: {name}", sync, method="POST", data=form(query),
                   status=400, needle=f"ADQL limit {limit}")
