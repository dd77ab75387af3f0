# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo status``: what runs, how big the published tables are, the last ingests."""

from __future__ import annotations

import argparse

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ingests", type=int, default=8, metavar="N",
                        help="show the N most recent ledger rows (default 8)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from casuvo.dachs import instance
    from casuvo.dachs.stack import table_states
    from casuvo.storage import ledger, pgcluster

    db_up = pgcluster.is_running(settings)
    pids = instance.server_pids(settings)
    print(f"PostgreSQL {settings.db_host}:{settings.db_port}: "
          f"{'running' if db_up else 'not running'}")
    running = (f"running (pid {pids[0]})" if len(pids) == 1 else
               f"running, {len(pids)} processes behind haproxy (pids "
               f"{', '.join(map(str, pids))})" if pids else "not running")
    print(f"DaCHS {settings.server_url}: {running}")
    if (settings.replica_dir / "pgdata").exists():  # made by `casuvo replica up`
        from casuvo.storage import replica

        standby = replica.state(settings)
        what = ("streaming" if standby.streaming else "running, not streaming"
                if standby.running else "not running")
        print(f"Read replica {settings.db_host}:{settings.replica_port}: {what}")
    if not db_up:
        return 1
    print("\nPublished tables:")
    for state in table_states(settings):
        print(f"  {state.name:<28} {state.rows:>12,d} rows   ({state.rd})")
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        ledger.ensure_schema(conn)
        entries = ledger.last_ingests(conn, args.ingests)
    print("\nLast ingests:")
    if not entries:
        print("  (none)")
    for e in entries:
        when = e.finished.strftime("%Y-%m-%d %H:%M:%S") if e.finished else "?"
        what = f"{e.rows:,d} rows, {e.seconds:.1f} s" if e.rows is not None else e.message
        print(f"  {when}  {e.status:<7} {e.target:<16} {e.file.rsplit('/', 1)[-1]}: {what}")
    return 0 if pids else 1
