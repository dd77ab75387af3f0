# SPDX-License-Identifier: BSD-3-Clause
"""The ``casuvo`` command line: a thin dispatcher over one module per subcommand.

Each subcommand module in :mod:`casuvo.cli` defines ``add_arguments(parser)`` and
``run(args, settings) -> int``; its one-line help is its entry in :data:`SUBCOMMANDS`
here, so that ``casuvo --help`` lists every subcommand without importing any.  A
module is imported only when its subcommand runs, so ``casuvo --help`` stays fast
and a subcommand's dependencies load only for it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from casuvo.config import ConfigError, Settings

__all__ = ["main"]

SUBCOMMANDS: dict[str, str] = {
    "up": "Start PostgreSQL and DaCHS, publish the resource descriptors.",
    "down": "Stop the DaCHS server and the database (data are kept).",
    "status": "What runs, table row counts and the last ingests.",
    "simulate": "Build the seeded demo sky (Gaia-like reference catalogue).",
    "ingest": "Bulk-load catalogue files into a published table.",
    "endpoints": "Print the service URLs (--json for tools).",
    "pipeline": "Run the VISTA/VST imaging pipelines; status and QC plots.",
    "publish": "Publish pipeline products in the image archives (SIA, ObsCore, SODA).",
    "coverage": "MOCs and HiPS of the image collections, for Aladin.",
    "xmatch": "Build and load a survey's Gaia neighbour table (<survey>.sources_x_gaia).",
    "export": "Export a published catalogue, e.g. as a HATS catalogue for LSDB.",
    "cluster": "A Dask scheduler and workers as separate processes (up, down, status).",
    "replica": "A streaming read replica and a DaCHS reading it (up, down, status, serve).",
    "hub": "JupyterHub beside the demo, with its notebooks (up, down, status).",
    "release": "ESO Phase 3 releases: build from archive queries, validate, list.",
    "demo": "up + simulate + ingest + pipelines: the whole demo data centre.",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casuvo", description="casuvo survey data centre: pipelines and VO services.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in SUBCOMMANDS.items():
        # no -h here: ``casuvo COMMAND --help`` is answered by the module's own parser
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``casuvo``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # Parse the command name first, then let its module add its own options.
    known, _ = parser.parse_known_args(argv)
    module = importlib.import_module(f"casuvo.cli.{known.command}")
    sub = argparse.ArgumentParser(prog=f"casuvo {known.command}",
                                  description=SUBCOMMANDS[known.command])
    module.add_arguments(sub)
    args = sub.parse_args(argv[argv.index(known.command) + 1:])
    logging.basicConfig(
        level=logging.DEBUG if known.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"casuvo: {exc}", file=sys.stderr)
        return 2
    try:
        return int(module.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the message names what failed; tracebacks with -v
        if known.verbose:
            raise
        print(f"casuvo {known.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
