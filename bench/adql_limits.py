# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: DaCHS's parse time of the largest ADQL query each limit allows.

For every limit of ``casuvo.dachs.limits.ADQL`` (length, tokens, depth,
IN-list items, AND/OR terms) this builds the largest queries the ADQL guard
lets through, in the shapes that cost the parser most per token (a long select
list, an arithmetic chain, an AND chain, an IN list, OR terms, nested function
calls and parentheses, a long literal), and measures the CPU time of DaCHS's
``morphADQL`` (parse, annotation against the published tables, translation
to SQL): what one TAP request costs before the database sees it.  The
baseline, in the same run, is the largest of the service's own TAP examples.
The goal is that the worst case stays under a second of CPU.

Runs DaCHS in this process (its configuration from ``casuvo``'s settings);
the database must be up (``casuvo up``).  ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

from report import figure, write_json  # bench/report.py, beside this script

from casuvo.config import Settings
from casuvo.dachs.adqlguard import check
from casuvo.dachs.limits import ADQL, AdqlLimits

GOAL_S = 1.0
#: the largest TAP example (services/userconfig.rd): the same-run baseline
EXAMPLE = """SELECT TOP 200 s.sourceID, s.ra, s.dec, s.ksAperMag3 AS ks, s.jmhPnt,
  x.slaveObjID AS source_id, x.angular_distance, x.number_of_neighbours,
  g.parallax, g.pmra, g.pmdec, g.phot_g_mean_mag, g.bp_rp
FROM vista.sources AS s
JOIN vista.sources_x_gaia AS x ON x.masterObjID = s.sourceID
JOIN gaia.sources AS g ON g.source_id = x.slaveObjID
WHERE x.best_neighbour = 1 AND x.ambiguous = 0 AND s.ksAperMag3 < 14
ORDER BY ks"""

FROM = " FROM gaia.sources"


def _fill(prefix: str, item: str, sep: str, suffix: str, tokens_each: int,
          budget: int) -> str:
    """``prefix item sep item ... suffix`` with as many items as ``budget`` tokens allow."""
    head = check(prefix + item + suffix, AdqlLimits(10**9, 10**9, 10**9, 10**9, 10**9))
    n = 1 + (budget - head.tokens) // tokens_each
    return prefix + sep.join([item] * n) + suffix


def largest_queries(limits: AdqlLimits) -> Iterator[tuple[str, str]]:
    """(limit and shape, query) for the largest queries ``limits`` allow."""
    t = limits.max_tokens
    yield "max_tokens: select list", _fill("SELECT ", "ra", ", ", FROM, 2, t)
    yield "max_tokens: arithmetic chain", _fill("SELECT ", "ra", " + ", FROM, 2, t)
    yield "max_tokens: function arguments", _fill(
        "SELECT TOP 1 ", "COALESCE(ra, 1)", ", ", FROM, 7, t)
    terms = min(limits.max_terms, (t - 10) // 4)
    yield "max_terms: AND chain", "SELECT TOP 1 source_id" + FROM + " WHERE " + " AND ".join(
        f"ra > {i}" for i in range(terms))
    yield "max_terms: OR terms", "SELECT TOP 1 source_id" + FROM + " WHERE " + " OR ".join(
        f"source_id = {i}" for i in range(terms))
    items = min(limits.max_in_items, (t - 12) // 2)
    yield "max_in_items: IN list", ("SELECT TOP 1 source_id" + FROM + " WHERE source_id IN ("
                                    + ", ".join(str(4_000_000_000 + i) for i in range(items))
                                    + ")")
    d = limits.max_depth
    yield "max_depth: nested functions", "SELECT " + "ABS(" * d + "ra" + ")" * d + FROM
    yield "max_depth: nested parentheses", ("SELECT source_id" + FROM + " WHERE "
                                            + "(" * d + "ra > 0" + ")" * d)
    yield "max_depth: nested sub-queries", (
        "SELECT source_id" + FROM + " WHERE source_id IN "
        + "(SELECT source_id FROM gaia.sources WHERE source_id IN " * (d - 1)
        + "(SELECT source_id" + FROM + ")" * d)
    pad = limits.max_length - len("SELECT source_id FROM gaia.sources WHERE '' = 'x'")
    yield "max_length: string literal", (
        "SELECT source_id" + FROM + " WHERE '" + "x" * pad + "' = 'x'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=ADQL.max_tokens)
    parser.add_argument("--terms", type=int, default=ADQL.max_terms)
    parser.add_argument("--in-items", type=int, default=ADQL.max_in_items)
    parser.add_argument("--depth", type=int, default=ADQL.max_depth)
    parser.add_argument("--length", type=int, default=ADQL.max_length)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    limits = AdqlLimits(max_length=args.length, max_tokens=args.tokens,
                        max_depth=args.depth, max_in_items=args.in_items,
                        max_terms=args.terms)

    from casuvo.dachs.instance import dachs_env
    os.environ.update(dachs_env(Settings.from_env()))
    from gavo import api  # noqa: F401  (DaCHS configuration and RD machinery)
    from gavo.protocols import adqlglue

    def cpu(query: str) -> tuple[float, str]:
        best, outcome = float("inf"), "ok"
        for _ in range(args.repeat):
            c0 = time.process_time()
            try:
                adqlglue.morphADQL(query)
            except Exception as exc:  # reported: the parser's own refusal
                outcome = f"{type(exc).__name__}: {str(exc)[:60]}"
            best = min(best, time.process_time() - c0)
        return best, outcome

    cpu(EXAMPLE)  # warm the grammar and the table metadata
    base_s, base_ok = cpu(EXAMPLE)
    print(f"limits: {limits}")
    print(f"{'baseline: largest TAP example':<36} {check(EXAMPLE).tokens:>6} tokens "
          f"{base_s:7.3f} s  {base_ok}")
    figures = []
    worst = 0.0
    for name, query in largest_queries(limits):
        shape = check(query, limits)  # raises if the generator overshoots a limit
        seconds, outcome = cpu(query)
        worst = max(worst, seconds)
        print(f"{name:<36} {shape.tokens:>6} tokens {seconds:7.3f} s  {outcome}")
        figures.append(figure(
            f"morphADQL CPU, largest query allowed: {name}", seconds, "s",
            baseline="largest TAP example", baseline_value=base_s,
            goal=f"<= {GOAL_S:g} s", met=seconds <= GOAL_S))
    print(f"worst case {worst:.3f} s CPU ({worst / base_s:.0f}x the largest example); "
          f"goal <= {GOAL_S:g} s: {'met' if worst <= GOAL_S else 'NOT met'}")
    if args.json:
        write_json(args.json, "adql_limits", figures, limits=limits.__dict__)


if __name__ == "__main__":
    main()
