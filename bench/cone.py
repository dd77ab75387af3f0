# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: TAP sync cone latency (p50, p95) against the same cone as direct SQL.

Random cone centres inside the demo fields at three radii; each query runs
through DaCHS's TAP sync endpoint (HTTP, ADQL → SQL → VOTable, anonymously)
and, as the baseline, as the equivalent pgSphere SQL over psycopg in the same
run, read as the public (``bench/public.py``: the rows the service may answer).
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
from casuvo.simulate.fields import DEMO_FIELDS

RADII_ARCSEC = (5.0, 60.0, 600.0)


def centres(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    """``n`` cone centres inside the demo fields (also bench/concurrency.py's)."""
    out = []
    for i in range(n):
        f = DEMO_FIELDS[i % len(DEMO_FIELDS)]
        half = f.size_deg / 2 * 0.6
        dec = f.dec + rng.uniform(-half, half)
        ra = f.ra + rng.uniform(-half, half) / np.cos(np.radians(dec))
        out.append((ra, dec))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="queries per radius")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    figures = []
    settings = Settings.from_env()
    tap = endpoints(settings)["tap"] + "/sync"
    rng = np.random.default_rng(1)
    session = requests.Session()
    print(f"{'radius':>7} {'rows':>7} {'SQL p50':>9} {'SQL p95':>9} {'TAP p50':>9} "
          f"{'TAP p95':>9} {'TAP/SQL p50':>12}")
    with public.connect(settings) as conn:
        for r in RADII_ARCSEC:
            sql_t, tap_t, rows = [], [], []
            for ra, dec in centres(rng, args.n):
                rdeg = r / 3600
                adql = ("SELECT source_id, ra, dec, phot_g_mean_mag FROM gaia.sources WHERE "
                        f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {rdeg}))")
                sql = ("SELECT source_id, ra, dec, phot_g_mean_mag FROM gaia.sources WHERE "
                       "spoint(radians(ra), radians(dec)) <@ scircle(spoint(radians(%s),"
                       " radians(%s)), radians(%s))")
                t = time.perf_counter()
                n = len(conn.execute(sql, (ra, dec, rdeg)).fetchall())
                sql_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                resp = session.post(tap, data={"REQUEST": "doQuery", "LANG": "ADQL",
                                               "QUERY": adql, "MAXREC": "100000"}, timeout=60)
                resp.raise_for_status()
                tap_t.append(time.perf_counter() - t)
                rows.append(n)
            s50, s95 = np.percentile(sql_t, [50, 95]) * 1e3
            t50, t95 = np.percentile(tap_t, [50, 95]) * 1e3
            print(f"{r:6.0f}″ {np.mean(rows):7.1f} {s50:7.2f}ms {s95:7.2f}ms {t50:7.1f}ms "
                  f"{t95:7.1f}ms {t50 / s50:11.1f}x")
            small = r == RADII_ARCSEC[0]
            figures.append(figure(
                f"TAP sync cone {r:.0f}″ p50 ({np.mean(rows):.0f} rows)", round(t50, 2), "ms",
                baseline="same cone as SQL over psycopg, p50", baseline_value=round(s50, 3),
                goal="≤ 30 ms" if small else None, met=bool(t50 <= 30) if small else None))
            figures.append(figure(f"TAP sync cone {r:.0f}″ p95", round(t95, 2), "ms",
                                  baseline="SQL p95", baseline_value=round(s95, 3)))
    if args.json:
        write_json(args.json, "cone", figures, queries_per_radius=args.n)


if __name__ == "__main__":
    main()
