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
        runs = ledger.last_runs(conn)
        summaries = ledger.product_summaries(conn)
        fails = ledger.failed_products(conn, failures)
    print("Runs:")
    for r in runs:
        took = f"{(r.finished - r.started).total_seconds():.0f} s" if r.finished else "running"
        print(f"  {r.run_id}  {r.pipeline:<6} {r.started:%Y-%m-%d %H:%M}  {took:>7}  {r.status}"
              f"  ok={r.n_ok} resumed={r.n_resumed} failed={r.n_failed}")
    print("\nProducts (latest record of each):")
    print(f"  {'pipeline':<8} {'kind':<9} {'n':>5} {'QC pass':>8} {'seeing':>7} "
          f"{'MAGZPT':>7} {'depth':>6}")
    for p in summaries:
        print(f"  {p.pipeline:<8} {p.kind:<9} {p.n:>5} {p.n_pass:>8} "
              f"{p.seeing_arcsec or 0:>6.2f}\" {p.magzpt or 0:>7.2f} {p.depth or 0:>6.2f}")
    print(f"\nRecent failures ({len(fails)} shown):")
    for f in fails:
        print(f"  {f.finished:%Y-%m-%d %H:%M}  {f.pipeline:<6} {f.message}")
    return 0
