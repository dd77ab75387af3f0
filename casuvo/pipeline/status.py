# SPDX-License-Identifier: BSD-3-Clause
"""The operator's view of the processing ledger: runs, products, failures, QC.

Only psycopg and the standard library, so it runs in either environment.
"""

from __future__ import annotations

import psycopg

from casuvo.config import Settings
from casuvo.storage import ledger

__all__ = ["print_status"]


def print_status(settings: Settings, failures: int = 10) -> int:
    """Print the last runs, product counts and QC per pipeline, and recent failures."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_products_schema(conn)
        runs = conn.execute(
            "SELECT run_id, pipeline, started, finished, status, n_ok, n_resumed, n_failed"
            " FROM ledger.runs ORDER BY started DESC LIMIT 6").fetchall()
        print("Runs:")
        for r in runs:
            took = f"{(r[3] - r[2]).total_seconds():.0f} s" if r[3] else "running"
            print(f"  {r[0]}  {r[1]:<6} {r[2]:%Y-%m-%d %H:%M}  {took:>7}  {r[4]}"
                  f"  ok={r[5]} resumed={r[6]} failed={r[7]}")
        print("\nProducts (latest record of each):")
        rows = conn.execute("""
            SELECT pipeline, kind, count(*),
                   count(*) FILTER (WHERE qc->>'qcstatus' = 'pass'),
                   avg((qc->>'seeing_arcsec')::float), avg((qc->>'magzpt')::float),
                   avg((qc->>'depth')::float)
            FROM (SELECT DISTINCT ON (product) * FROM ledger.products
                  WHERE status <> 'failed' ORDER BY product, finished DESC) p
            GROUP BY pipeline, kind ORDER BY pipeline, kind""").fetchall()
        print(f"  {'pipeline':<8} {'kind':<9} {'n':>5} {'QC pass':>8} {'seeing':>7} "
              f"{'MAGZPT':>7} {'depth':>6}")
        for p in rows:
            print(f"  {p[0]:<8} {p[1]:<9} {p[2]:>5} {p[3]:>8} {p[4] or 0:>6.2f}\" "
                  f"{p[5] or 0:>7.2f} {p[6] or 0:>6.2f}")
        fails = conn.execute(
            "SELECT finished, pipeline, message FROM ledger.products WHERE status = 'failed'"
            " ORDER BY finished DESC LIMIT %s", (failures,)).fetchall()
        print(f"\nRecent failures ({len(fails)} shown):")
        for f in fails:
            print(f"  {f[0]:%Y-%m-%d %H:%M}  {f[1]:<6} {f[2]}")
    return 0
