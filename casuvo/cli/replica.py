# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo replica up|down|status|serve``: a streaming read replica and a DaCHS reading it.

``casuvo replica up`` copies the running project-local cluster into
``var/replica`` (``pg_basebackup`` with a replication slot), starts it as a hot
standby on ``CASUVO_REPLICA_PORT`` and a read-only DaCHS server reading from it
on ``CASUVO_REPLICA_HTTP_PORT`` (``--no-server``: the database only), and
prints their state as JSON.  ``down`` stops both (``--remove`` also deletes the
copy and drops the slot); ``status`` prints the state (exit 1 if the replica is
not streaming).  ``serve`` runs a read-only DaCHS in the foreground against the
database ``CASUVO_DB_HOST`` names (a container reading a replica's Service).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="copy the primary, start the replica and its DaCHS")
    up.add_argument("--no-server", action="store_true",
                    help="start the database replica only, no DaCHS server")
    down = sub.add_parser("down", help="stop the replica and its DaCHS (data kept)")
    down.add_argument("--remove", action="store_true",
                      help="also delete the replica's data and drop its slot on the primary")
    sub.add_parser("status", help="the replica's state as both servers see it (JSON)")
    serve = sub.add_parser("serve", help="a read-only DaCHS in the foreground (containers)")
    serve.add_argument("--profiles", type=Path, default=None,
                       help="DaCHS's database profiles (default: var/dachs/etc)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from casuvo.dachs import readonly
    from casuvo.storage import replica

    if args.action == "up":
        try:
            state = replica.up(settings)
            url = None if args.no_server else readonly.start(settings)
        except (replica.ReplicaError, readonly.ReadOnlyError) as exc:
            print(f"casuvo replica up: {exc}")
            return 1
        print(json.dumps({**asdict(state), "server": url}))
        return 0
    if args.action == "down":
        server = readonly.stop(settings)
        database = replica.remove(settings) if args.remove else replica.down(settings)
        done = "removed" if args.remove else "stopped"
        print(f"read-only DaCHS: {'stopped' if server else 'was not running'}")
        print(f"replica: {done if database else 'was not running'}")
        return 0
    if args.action == "serve":
        readonly.serve(settings, args.profiles or settings.dachs_root / "etc")
        return 0  # not reached: serve replaces this process
    state = replica.state(settings)
    pid = readonly.running_pid(settings)
    server = (f"http://{settings.http_host}:{settings.replica_http_port}"
              if pid is not None else None)
    print(json.dumps({**asdict(state), "server": server}))
    return 0 if state.streaming and state.in_recovery else 1
