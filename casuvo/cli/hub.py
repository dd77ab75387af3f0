# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo hub up|down|status``: JupyterHub beside the demo, on this machine.

``casuvo hub up`` starts JupyterHub on ``CASUVO_HUB_PORT`` (default 8000): users
log in with any name and the shared password ``CASUVO_HUB_PASSWORD``, and find
the demo notebooks (cutouts, PN × Gaia, spectra) in their home with the casuvo
client set for this instance's services (:mod:`casuvo.jobs.hubconfig`).  On
Kubernetes the zero-to-jupyterhub chart with ``deploy/k8s/jupyterhub-values.yaml``
plays the same part.
"""

from __future__ import annotations

import argparse
import json

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("up", help="start JupyterHub (and its proxy)")
    sub.add_parser("down", help="stop it, with the users' servers")
    sub.add_parser("status", help="its URL, processes, users and servers (JSON)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from casuvo.jobs.hub import HubError, hub_down, hub_state, hub_up, hub_users

    if args.action == "up":
        try:
            state = hub_up(settings)
        except HubError as exc:
            print(f"casuvo hub up: {exc}")
            return 1
        print(json.dumps({**asdict(state), "login": f"{state.url}/hub/login"}))
        return 0
    if args.action == "down":
        print("stopped" if hub_down(settings) else "no hub was running")
        return 0
    state = hub_state(settings)
    if state is None:
        print(json.dumps(None))
        return 1
    users = {u["name"]: {name: {"ready": s.get("ready"), "url": s.get("url")}
                         for name, s in (u.get("servers") or {}).items()}
             for u in hub_users(settings)}
    print(json.dumps({**asdict(state), "users": users}))
    return 0
