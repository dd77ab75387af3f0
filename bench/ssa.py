# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: SSA 1.1 query latency (p50, p95) against the same query as direct SQL.

Cones centred on public spectra of each spectroscopic collection at three
sizes; each query runs through the collection's SSA service (HTTP, anonymously:
DaCHS's SSA core → SQL on the SSA view → VOTable) and, as the baseline, as the
same pgSphere condition over psycopg on the same view in the same run, read as
the public (``bench/public.py``): both sides see the released spectra only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import public  # bench/public.py, beside this script
import requests
from report import figure, write_json  # bench/report.py, beside this script

from casuvo.archive.endpoints import endpoints
from casuvo.config import Settings

#: cone radii (degrees); SSA gets SIZE = twice the radius (SSA 1.1: SIZE is the diameter)
SIZES_DEG = (0.001, 0.02, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="queries per collection and size")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    settings = Settings.from_env()
    services = endpoints(settings).get("ssa", {})
    if not services:
        raise SystemExit("no SSA service: publish the spectroscopic archives first")
    rng = np.random.default_rng(1)
    session = requests.Session()
    figures = []
    print(f"{'collection':>10} {'size':>7} {'rows':>6} {'SQL p50':>9} {'SQL p95':>9} "
          f"{'SSA p50':>9} {'SSA p95':>9} {'SSA/SQL p50':>12}")
    with public.connect(settings) as conn:
        for collection, url in sorted(services.items()):
            positions = conn.execute(f"SELECT ra, dec FROM {collection}.spectra").fetchall()
            if not positions:
                continue
            for size in SIZES_DEG:
                sql_t, ssa_t, rows = [], [], []
                for k in rng.integers(0, len(positions), args.n):
                    ra, dec = positions[k]
                    sql = (f"SELECT * FROM {collection}.spectra WHERE ssa_location"
                           " <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))")
                    t = time.perf_counter()
                    n = len(conn.execute(sql, (ra, dec, size)).fetchall())
                    sql_t.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    resp = session.get(url, params={"REQUEST": "queryData",
                                                    "POS": f"{ra!r},{dec!r}",
                                                    "SIZE": str(2 * size)}, timeout=60)
                    resp.raise_for_status()
                    ssa_t.append(time.perf_counter() - t)
                    rows.append(n)
                s50, s95 = np.percentile(sql_t, [50, 95]) * 1e3
                a50, a95 = np.percentile(ssa_t, [50, 95]) * 1e3
                print(f"{collection:>10} {size:6.3f}° {np.mean(rows):6.1f} {s50:7.2f}ms "
                      f"{s95:7.2f}ms {a50:7.1f}ms {a95:7.1f}ms {a50 / s50:11.1f}x")
                figures.append(figure(
                    f"{collection} SSA cone r={size}° p50 ({np.mean(rows):.0f} spectra)",
                    round(a50, 2), "ms", baseline="same cone as SQL over psycopg, p50",
                    baseline_value=round(s50, 3)))
                figures.append(figure(f"{collection} SSA cone r={size}° p95", round(a95, 2),
                                      "ms", baseline="SQL p95", baseline_value=round(s95, 3)))
    if args.json:
        write_json(args.json, "ssa", figures, queries_per_size=args.n)


if __name__ == "__main__":
    main()
