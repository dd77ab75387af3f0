# SPDX-License-Identifier: BSD-3-Clause
"""``casuvo release``: ESO Phase 3 releases built from the archive.

- ``casuvo release build NAME --query ADQL [--query ADQL …] [--group G]
  [--catalogue SURVEY …] [--out DIR]``: the products the queries select (an
  ObsCore ``access_url`` or ``obs_publisher_did``, or an ``accref`` column),
  as the public sees them or, with ``--group``, as that group's members do,
  with what their headers point to, written to the ESO SDP standard under
  ``var/releases/NAME`` (default), validated, and recorded in the archive
  (TAP ``releases.releases``).  ``--sql`` takes SQL instead of ADQL (operators).
  ``--catalogue vst`` adds the survey's band-merged catalogue as a
  SCIENCE.CATALOG, holding the frame sets whose tiles are all in the release.
- ``casuvo release validate DIR``: every check of :mod:`casuvo.release.validate`;
  each problem on one line (file[HDU] KEYWORD: message); exit status 1 if any.
- ``casuvo release list``: the recorded releases.

ADQL is translated by DaCHS's own translator (``casuvo.dachs.adqlsql``, in a
child process of the instance's DaCHS environment), so a release query means
what the same query means in TAP.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from casuvo.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="build (or rebuild) a release from archive queries")
    build.add_argument("name", help="release name: upper-case letters, digits, underscores")
    build.add_argument("--query", action="append", default=[],
                       help="ADQL selecting products (repeatable; the selections are joined)")
    build.add_argument("--sql", action="append", default=[],
                       help="SQL selecting products instead of ADQL (repeatable)")
    build.add_argument("--group", help="build for this group's members (default: public)")
    build.add_argument("--catalogue", action="append", default=[], metavar="SURVEY",
                       help="add SURVEY's band-merged catalogue (SCIENCE.CATALOG)")
    build.add_argument("--out", type=Path, help="directory (default var/releases/NAME)")
    build.add_argument("--no-validate", action="store_true",
                       help="skip the validation after building")
    validate = sub.add_parser("validate", help="check a release directory")
    validate.add_argument("directory", type=Path)
    validate.add_argument("--offline", action="store_true",
                          help="without the archive (no earlier releases, no positions)")
    sub.add_parser("list", help="the recorded releases")


def _adql_to_sql(settings: Settings, query: str) -> str:
    from casuvo.dachs.instance import dachs_env

    done = subprocess.run([sys.executable, "-m", "casuvo.dachs.adqlsql", query],
                          env=dachs_env(settings), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["translation failed"])[-1]
        raise ValueError(f"ADQL query not understood: {last}")
    return done.stdout.strip()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        return _list(settings)
    if args.action == "validate":
        return _validate(settings, args.directory, offline=args.offline)
    from casuvo.release.build import BuildError, ReleaseRequest, build_release
    from casuvo.surveys.registry import load_registry

    if not args.query and not args.sql:
        print("casuvo release build: give --query (ADQL) or --sql", file=sys.stderr)
        return 2
    try:
        sql = [_adql_to_sql(settings, q) for q in args.query] + list(args.sql)
    except ValueError as exc:
        print(f"casuvo release build: {exc}", file=sys.stderr)
        return 2
    registry = load_registry(settings)
    for key in args.catalogue:
        if key not in registry or not registry[key].sources:
            print(f"casuvo release build: {key!r} is not a survey with a merged catalogue",
                  file=sys.stderr)
            return 2
    out = args.out or settings.var / "releases" / args.name
    request = ReleaseRequest(
        name=args.name, sql=sql, query=" UNION ".join(args.query + args.sql),
        query_language="ADQL" if args.query else "SQL", out_dir=out, group=args.group,
        catalogues=tuple(args.catalogue))
    started = time.monotonic()
    try:
        manifest = build_release(request, dsn=settings.dsn, inputs=settings.data_dir,
                                 products_dir=settings.data_dir / "products",
                                 surveys=registry.__getitem__, progress=print)
    except (BuildError, ValueError) as exc:
        print(f"casuvo release build: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for entry in manifest["files"].values():
        counts[entry["prodcatg"]] = counts.get(entry["prodcatg"], 0) + 1
    summary = {"name": args.name, "directory": str(out), "files": len(manifest["files"]),
               "counts": counts, "external": len(manifest["external"]),
               "skipped": len(manifest["skipped"]),
               "seconds": round(time.monotonic() - started, 1)}
    if not args.no_validate:
        status = _validate(settings, out, offline=False, quiet=True)
        summary["problems"] = status
        if status:
            print(json.dumps(summary))
            return 1
    print(json.dumps(summary))
    return 0


def _validate(settings: Settings, directory: Path, *, offline: bool,
              quiet: bool = False) -> int:
    from casuvo.release.validate import validate_release

    earlier: dict[str, str] = {}
    if not offline:
        from casuvo.release.manifest import read_manifest
        from casuvo.storage.releases import released_names

        try:
            name = read_manifest(directory)["name"]
        except ValueError:
            name = ""
        earlier = released_names(settings.dsn, exclude=[name])
    problems = validate_release(directory, released=earlier)
    for problem in problems:
        print(problem)
    if not quiet:
        print(f"{directory}: {len(problems)} problem(s)")
    return len(problems) if quiet else (1 if problems else 0)


def _list(settings: Settings) -> int:
    import psycopg

    from casuvo.storage.releases import ensure_schema

    with psycopg.connect(settings.dsn) as conn:
        ensure_schema(conn)
        rows = conn.execute("SELECT name, built, owner_group, n_files, counts, directory"
                            " FROM ledger.releases ORDER BY built").fetchall()
    for name, built, group, n, counts, directory in rows:
        print(f"{name:24s} {built:%Y-%m-%d %H:%M} {group or 'public':10s} {n:5d} files  "
              f"{json.dumps(counts)}  {directory}")
    return 0
