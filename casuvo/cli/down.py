# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo down``: stop the DaCHS server and the local database; data are kept."""

from __future__ import annotations

import argparse

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    from casuvo.dachs.stack import down

    server, database = down(settings)
    print(f"DaCHS server: {'stopped' if server else 'was not running'}")
    print(f"PostgreSQL: {'stopped' if database else 'was not running (or external)'}")
    return 0
