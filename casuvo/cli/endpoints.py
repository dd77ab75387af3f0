# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo endpoints [--json]``: the service URLs of this instance."""

from __future__ import annotations

import argparse
import json
from typing import Any

from casuvo.archive.endpoints import endpoints
from casuvo.config import Settings

#: the limits service (``resdir/about/q.rd``; ``casuvo.dachs.limitspage``): the page, JSON
LIMITS_PATHS = {"page": "about/q/limits/volatile", "json": "about/q/limits/custom"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def urls(settings: Settings) -> dict[str, Any]:
    """:func:`casuvo.archive.endpoints.endpoints` and the limits page (``limits``)."""
    ep = endpoints(settings)
    base = ep["base"].rstrip("/")
    return {**ep, "limits": {key: f"{base}/{path}" for key, path in LIMITS_PATHS.items()}}


def print_urls(settings: Settings) -> None:
    """Human-readable list of the services."""
    ep = urls(settings)
    print(f"casuvo data centre:  {ep['base']}")
    print(f"TAP (ADQL):          {ep['tap']}")
    for protocol, services in ep.items():
        if isinstance(services, dict):
            for name, url in services.items():
                print(f"{protocol.upper():<5} {name:<14} {url}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.json:
        print(json.dumps(urls(settings), indent=2))
    else:
        print_urls(settings)
    return 0
