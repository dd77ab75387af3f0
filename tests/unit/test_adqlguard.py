# SPDX-License-Identifier: BSD-3-Clause
"""The ADQL guard's lexical scan and limits, and the timeouts DaCHS is configured with."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from casuvo.dachs.adqlguard import SCAN_CEILING, AdqlLimitError, check, scan
from casuvo.dachs.limits import ADQL, TIMEOUTS, AdqlLimits
from casuvo.dachs.timeouts import capped

TEMPLATE = Path(__file__).resolve().parents[2] / "services" / "gavo.rc.template"


def test_scan_counts_tokens_depth_lists_and_terms() -> None:
    shape = scan("SELECT a, b FROM t WHERE x IN (1, 2, 3) AND (y > 2 OR z < 1)")
    # SELECT a , b FROM t WHERE x IN ( 1 , 2 , 3 ) AND ( y > 2 OR z < 1 )
    assert shape.tokens == 26
    assert shape.depth == 1
    assert shape.in_items == 3
    assert shape.terms == 3


def test_literals_comments_and_quoted_names_are_single_tokens() -> None:
    shape = scan("SELECT 'a, b AND (c' AS \"x OR (y\" FROM t -- AND OR ( ( (\n"
                 "WHERE s = 'it''s' AND 1.5e-3 <= 2")
    # SELECT 'lit' AS "name" FROM t WHERE s = 'lit' AND 1.5e-3 <= 2
    assert shape.tokens == 14
    assert shape.depth == 0
    assert shape.terms == 2
    assert shape.in_items == 0


def test_in_lists_count_their_own_items_only() -> None:
    # a sub-query is no list; items that are expressions count once; the longest wins
    shape = scan("SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c IN (1, 2)) "
                 "AND d NOT IN (ABS(1), (2), 3, 4) AND e IN ()")
    assert shape.in_items == 4
    assert shape.depth == 2
    assert scan("SELECT * FROM t WHERE a in (" + ",".join(["7"] * 500) + ")").in_items == 500


def test_depth_counts_nesting_not_pairs() -> None:
    assert scan("SELECT ABS(ABS(ABS(x))) FROM t").depth == 3
    assert scan("SELECT (a) + (b) + (c) FROM t").depth == 1
    assert scan("SELECT " + "(" * 40 + "1" + ")" * 40).depth == 40


@pytest.mark.parametrize("query, limit, message", [
    ("SELECT * FROM t WHERE a IN (" + ", ".join(map(str, range(20_000))) + ")",
     "max_in_items", "the query has 20000 items in one IN list; at most"),
    ("SELECT * FROM t WHERE " + " OR ".join(f"a={i}" for i in range(600)),
     "max_terms", "the query has 600 AND/OR terms; at most"),
    ("SELECT " + "(" * 100 + "1" + ")" * 100 + " FROM t",
     "max_depth", "the query nests parentheses 100 deep"),
    ("SELECT " + ", ".join(["a"] * 1000) + " FROM t",
     "max_tokens", "the query has 2002 tokens; at most"),
    ("SELECT 1 FROM t -- " + "x" * 50_000, "max_length", "the query is 50019 characters"),
], ids=["in-list", "terms", "depth", "tokens", "length"])
def test_over_a_limit_the_error_names_it(query: str, limit: str, message: str) -> None:
    with pytest.raises(AdqlLimitError) as err:
        check(query)
    assert err.value.limit == limit
    assert message in str(err.value)


def test_the_most_specific_limit_is_named() -> None:
    # an IN list of 20,000 is also over the tokens and the length: the list is named
    query = "SELECT * FROM t WHERE a IN (" + ", ".join(["123456"] * 20_000) + ")"
    with pytest.raises(AdqlLimitError) as err:
        check(query)
    assert err.value.limit == "max_in_items"
    assert "upload a table" in str(err.value)


def test_texts_over_the_scan_ceiling_are_refused_on_length_alone() -> None:
    query = "SELECT a FROM t WHERE " + " OR ".join(["a=1"] * (SCAN_CEILING // 7 + 1))
    assert not scan(query).scanned
    with pytest.raises(AdqlLimitError) as err:
        check(query)
    assert err.value.limit == "max_length"


def test_queries_at_every_limit_pass() -> None:
    limits = AdqlLimits(max_length=200, max_tokens=50, max_depth=3, max_in_items=5,
                        max_terms=4)
    at = [
        "SELECT * FROM t WHERE a IN (1, 2, 3, 4, 5)",
        "SELECT * FROM t WHERE a=1 OR a=2 OR a=3 AND b=4",
        "SELECT ABS(ABS(ABS(x))) FROM t",
        "SELECT " + ", ".join(["a"] * 24) + " FROM t",  # 1 + 24 + 23 + 2 = 50 tokens
        "SELECT 'x' FROM t -- " + "y" * (200 - 21),
    ]
    for query in at:
        check(query, limits)
    assert scan(at[3]).tokens == 50 and len(at[4]) == 200


def test_the_service_examples_are_far_below_the_limits() -> None:
    rd = (TEMPLATE.parent / "userconfig.rd").read_text()
    queries = re.findall(r"tapquery::\s*\n(.*?)\n\s*\n", rd, re.S)
    assert len(queries) >= 5
    for query in queries:
        shape = check(query.replace("&lt;", "<").replace("&gt;", ">"))
        assert shape.tokens <= ADQL.max_tokens // 2


def test_gavo_rc_carries_the_timeouts_of_limits(tmp_path: Path) -> None:
    from casuvo.config import Settings
    from casuvo.dachs.instance import render_gavo_rc

    settings = dataclasses.replace(Settings.from_env(), var=tmp_path)
    text = render_gavo_rc(settings, 8999, tmp_path)

    def value(key: str) -> int:
        return int(re.search(rf"^{key}:\s*(\d+)\s*$", text, re.M).group(1))

    assert value("defaultExecTimeSync") == TIMEOUTS.tap_sync_s == 20
    assert value("defaultExecTime") == TIMEOUTS.async_default_s == 3600
    assert value("sqlTimeout") == TIMEOUTS.web_sql_s == 15
    assert TIMEOUTS.async_default_s <= TIMEOUTS.async_max_s
    assert TIMEOUTS.web_sql_s <= TIMEOUTS.web_max_s


def test_capped_timeouts() -> None:
    assert capped(10, 60) == 10
    assert capped(1e9, 60) == 60
    assert capped(None, 60) == 60
    assert capped(0, 60) == 60
    assert capped(-5, 60) == 60
    assert capped(float("nan"), 60) == 60
