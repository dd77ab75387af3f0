# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo cluster up|down|status``: a Dask scheduler and workers as separate processes.

``casuvo cluster up --workers 2`` starts ``dask scheduler`` and two ``dask worker``
processes (each under a nanny that restarts it) of the compute environment and
prints the scheduler's address; ``casuvo pipeline run vista --scheduler ADDRESS``
and ``casuvo xmatch vista --scheduler ADDRESS`` then run on it.  On a real
cluster the same two commands (``dask scheduler``; ``dask worker ADDRESS``) run on
other machines, or the Dask Kubernetes operator starts them.
"""

from __future__ import annotations

import argparse
import json

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start the scheduler and the workers")
    up.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    up.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    up.add_argument("--port", type=int, default=8786, help="scheduler port (default 8786)")
    up.add_argument("--dashboard-port", type=int, default=8787,
                    help="dashboard port (default 8787)")
    up.add_argument("--memory-limit", default="auto", help="per worker (default auto)")
    sub.add_parser("down", help="stop them")
    sub.add_parser("status", help="the scheduler address and the processes (JSON)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from casuvo.jobs.cluster import ClusterError, cluster_down, cluster_state, cluster_up

    if args.action == "up":
        if args.workers < 1 or args.threads < 1:
            print("casuvo cluster up: --workers and --threads must be at least 1")
            return 2
        try:
            state = cluster_up(settings.var, settings.compute_python, workers=args.workers,
                               threads=args.threads, port=args.port,
                               dashboard_port=args.dashboard_port,
                               memory_limit=args.memory_limit)
        except ClusterError as exc:
            print(f"casuvo cluster up: {exc}")
            return 1
        print(json.dumps(asdict(state)))
        return 0
    if args.action == "down":
        print("stopped" if cluster_down(settings.var) else "no cluster was running")
        return 0
    state = cluster_state(settings.var)
    print(json.dumps(asdict(state) if state else None))
    return 0 if state else 1
