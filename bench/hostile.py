# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: health latency (p50, p95) while hostile ADQL and SQL requests run.

A stream of cheap requests (``/tap/availability``, ``/tap/capabilities``, a 5″
SCS cone on gaia.sources) runs first alone (the baseline, same run) and then
while one request of each expensive class runs concurrently: an IN list of
20,000 items, 60,000 OR terms (under 1 MB), deeply nested parentheses, a huge
query text, a self cross join of gaia.sources without a spatial constraint
(TAP sync), and the same as a TAP async job.  Printed: the cheap requests'
p50/p95 in both phases and their ratio, and what each hostile request got
(status, seconds).

``--before PATH`` reads the JSON this script wrote on a stack without the
ADQL guard, statement timeouts and process layout of issue 13
(``bench/hostile_before.json`` is such a measurement, taken once on the
unchanged stack, two DaCHS processes behind haproxy; there the async job was
never started, as DaCHS 2.7 ignores PHASE=RUN at creation, so it had one
hostile request fewer) and prints it beside this run, with the ratio.
``--json PATH`` writes the figures (``bench/report.py`` format) plus the raw
per-phase summaries.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from cone import centres as cone_centres  # bench/cone.py, beside this script
from report import figure, write_json  # bench/report.py, beside this script

from casuvo.archive.endpoints import endpoints
from casuvo.config import Settings

P95_GOAL_MS = 100.0
#: the client gives up on a hostile request after this (an unbounded server
#: keeps working on it; the bench reports it as "timeout")
HOSTILE_CLIENT_TIMEOUT = 60.0
CHEAP_TIMEOUT = 30.0
#: the async job's EXECUTIONDURATION: its statement timeout
ASYNC_EXECUTION_S = 15


def hostile_queries() -> dict[str, str]:
    """One ADQL text per expensive class (cheap to send, expensive to parse or run)."""
    ids = ", ".join(str(4_000_000_000 + i) for i in range(20_000))
    ors = " OR ".join(f"ra={i}" for i in range(60_000))  # 0.8 MB
    depth = 2_000
    nested = "(" * depth + "source_id=1" + ")" * depth
    return {
        "in-list 20000": f"SELECT source_id FROM gaia.sources WHERE source_id IN ({ids})",
        "or-terms 60000": f"SELECT source_id FROM gaia.sources WHERE {ors}",
        f"nesting {depth}": f"SELECT source_id FROM gaia.sources WHERE {nested}",
        "huge text": "SELECT source_id FROM gaia.sources -- " + "x" * 3_000_000,
        "cross join (sync)": CROSS_JOIN,
    }


#: expensive to run, cheap to parse: 241,000² pairs without a spatial constraint
CROSS_JOIN = ("SELECT COUNT(*) AS n FROM gaia.sources AS a, gaia.sources AS b "
              "WHERE a.phot_g_mean_mag < b.phot_g_mean_mag")


@dataclass
class Stream:
    """Cheap requests sent in a loop by a few clients; latencies by phase."""

    base: str
    scs: str
    clients: int = 2
    phase: str = "idle"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    by_kind: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _requests(self, rng: np.random.Generator) -> list[Callable[[requests.Session], bool]]:
        ra, dec = cone_centres(rng, 1)[0]

        def availability(s: requests.Session) -> bool:
            r = s.get(f"{self.base}/tap/availability", timeout=CHEAP_TIMEOUT)
            return r.status_code == 200 and b"available>true" in r.content

        def capabilities(s: requests.Session) -> bool:
            r = s.get(f"{self.base}/tap/capabilities", timeout=CHEAP_TIMEOUT)
            return r.status_code == 200 and b"capabilities" in r.content

        def cone(s: requests.Session) -> bool:
            r = s.get(self.scs, params={"RA": ra, "DEC": dec, "SR": 5 / 3600},
                      timeout=CHEAP_TIMEOUT)
            return r.status_code == 200 and b"<TABLE" in r.content

        return [availability, capabilities, cone]

    def _client(self, index: int) -> None:
        session = requests.Session()
        calls = self._requests(np.random.default_rng(index))
        i = index
        while not self.stop.is_set():
            call = calls[i % len(calls)]
            i += 1
            phase = self.phase
            t = time.perf_counter()
            try:
                ok = call(session)
            except requests.RequestException:
                ok = False
            dt = time.perf_counter() - t
            with self.lock:
                self.latencies.setdefault(phase, []).append(dt)
                self.by_kind.setdefault((phase, call.__name__), []).append(dt)
                if not ok:
                    self.failures[phase] = self.failures.get(phase, 0) + 1
            time.sleep(0.02)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                   for i in range(self.clients)]
        for t in threads:
            t.start()
        return threads

    def summary(self, phase: str) -> dict[str, float]:
        lat = np.array(self.latencies.get(phase, [float("nan")]))
        return {"n": int(lat.size), "failures": self.failures.get(phase, 0),
                "p50_ms": float(np.percentile(lat, 50) * 1e3),
                "p95_ms": float(np.percentile(lat, 95) * 1e3),
                "max_ms": float(lat.max() * 1e3)}


def _sync(base: str, adql: str) -> tuple[int, str]:
    r = requests.post(f"{base}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                "QUERY": adql},
                      timeout=HOSTILE_CLIENT_TIMEOUT)
    return r.status_code, r.text


def _async(base: str, adql: str) -> tuple[int, str]:
    """Create and run a job; wait (bounded) for a final phase; delete the job."""
    r = requests.post(f"{base}/tap/async", data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql},
        timeout=HOSTILE_CLIENT_TIMEOUT, allow_redirects=False)
    job = r.headers.get("Location")
    if r.status_code not in (200, 303) or not job:
        return r.status_code, r.text
    # DaCHS 2.7 takes EXECUTIONDURATION (and PHASE=RUN) only on the job, not at creation
    requests.post(f"{job}/executionduration", data={"EXECUTIONDURATION": ASYNC_EXECUTION_S},
                  timeout=HOSTILE_CLIENT_TIMEOUT, allow_redirects=False)
    requests.post(f"{job}/phase", data={"PHASE": "RUN"}, timeout=HOSTILE_CLIENT_TIMEOUT,
                  allow_redirects=False)
    deadline = time.monotonic() + HOSTILE_CLIENT_TIMEOUT
    phase = ""
    try:
        while time.monotonic() < deadline:
            phase = requests.get(f"{job}/phase", timeout=CHEAP_TIMEOUT).text.strip()
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                break
            time.sleep(0.5)
        error = requests.get(f"{job}/error", timeout=CHEAP_TIMEOUT).text \
            if phase == "ERROR" else ""
        return 200, f"phase {phase or 'unknown'} {error}".strip()
    finally:
        requests.post(job, data={"ACTION": "DELETE"}, timeout=CHEAP_TIMEOUT)


def run_hostile(base: str) -> dict[str, dict]:
    """Fire every hostile class at once; returns status, seconds, message per class."""
    results: dict[str, dict] = {}
    jobs: dict[str, Callable[[], tuple[int, str]]] = {
        name: (lambda q=q: _sync(base, q)) for name, q in hostile_queries().items()}
    jobs["cross join (async)"] = lambda: _async(base, CROSS_JOIN)

    def one(name: str, call: Callable[[], tuple[int, str]]) -> None:
        t = time.perf_counter()
        try:
            status, text = call()
            msg = " ".join(text.split())[-200:]
        except requests.Timeout:
            status, msg = 0, f"no answer within {HOSTILE_CLIENT_TIMEOUT:.0f} s"
        except requests.RequestException as exc:
            status, msg = 0, f"{type(exc).__name__}: {exc}"[:200]
        results[name] = {"status": status, "seconds": round(time.perf_counter() - t, 2),
                         "message": msg}

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=8.0,
                        help="seconds of the cheap stream alone (baseline)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of the cheap stream before the baseline")
    parser.add_argument("--clients", type=int, default=2, help="cheap-stream clients")
    parser.add_argument("--before", type=Path,
                        help="JSON of a run on the stack before issue 13 (to compare)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    settings = Settings.from_env()
    eps = endpoints(settings)
    base = eps["base"].rstrip("/")
    stream = Stream(base, eps["scs"]["gaia.sources"], clients=args.clients)
    # every server process warm: its first TAP query and cone load what they need
    for _ in range(max(2, settings.dachs_processes)):
        _sync(base, "SELECT TOP 1 source_id FROM gaia.sources")
    stream.phase = "warm-up"
    threads = stream.start()
    time.sleep(args.warmup)
    stream.phase = "idle"
    time.sleep(args.idle)
    stream.phase = "hostile"
    t0 = time.perf_counter()
    hostile = run_hostile(base)
    hostile_s = time.perf_counter() - t0
    stream.phase = "after"
    time.sleep(2.0)
    stream.stop.set()
    for t in threads:
        t.join(timeout=CHEAP_TIMEOUT + 1)
    idle, busy, after = (stream.summary(p) for p in ("idle", "hostile", "after"))

    print(f"hostile phase: {hostile_s:.1f} s")
    for name, res in hostile.items():
        print(f"  {name:<20} {res['status']:>4} {res['seconds']:7.2f} s  {res['message'][:110]}")
    print(f"{'cheap requests':<28} {'n':>5} {'fail':>5} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'max ms':>8}")
    for label, s in (("alone (baseline)", idle), ("while hostile run", busy),
                     ("2 s after", after)):
        print(f"{label:<28} {s['n']:>5} {s['failures']:>5} {s['p50_ms']:8.1f} "
              f"{s['p95_ms']:8.1f} {s['max_ms']:8.1f}")
    for (phase, kind), lat in sorted(stream.by_kind.items()):
        print(f"  {phase:<8} {kind:<13} n={len(lat):>4} p50 {np.percentile(lat, 50) * 1e3:7.1f} "
              f"p95 {np.percentile(lat, 95) * 1e3:7.1f} ms")
    print(f"p95 while hostile / alone: {busy['p95_ms'] / idle['p95_ms']:.2f}x "
          f"(goal: p95 <= {P95_GOAL_MS:g} ms)")

    figures = [
        figure("cheap requests p50 while hostile requests run", busy["p50_ms"], "ms",
               baseline="cheap requests alone, same run", baseline_value=idle["p50_ms"],
               goal="reported", met=None),
        figure("cheap requests p95 while hostile requests run", busy["p95_ms"], "ms",
               baseline="cheap requests alone, same run", baseline_value=idle["p95_ms"],
               goal=f"<= {P95_GOAL_MS:g} ms", met=busy["p95_ms"] <= P95_GOAL_MS),
    ]
    if args.before:
        before = json.loads(args.before.read_text())["phases"]["hostile"]
        print(f"{'before issue 13, hostile':<28} {before['n']:>5} {before['failures']:>5} "
              f"{before['p50_ms']:8.1f} {before['p95_ms']:8.1f} {before['max_ms']:8.1f}")
        ratio95 = before["p95_ms"] / busy["p95_ms"]
        ratio50 = before["p50_ms"] / busy["p50_ms"]
        print(f"before / now: p50 {ratio50:.1f}x, p95 {ratio95:.1f}x")
        for q in ("p50", "p95"):
            figures.append(figure(
                f"cheap requests {q} while hostile requests run, before issue 13 "
                "(ratio = before / now)", before[f"{q}_ms"], "ms",
                baseline="this run (guard, timeouts, process layout)",
                baseline_value=busy[f"{q}_ms"],
                ratio=before[f"{q}_ms"] / busy[f"{q}_ms"], goal=None, met=None))
    if args.json:
        write_json(args.json, "hostile", figures,
                   phases={"idle": idle, "hostile": busy, "after": after},
                   hostile=hostile, hostile_seconds=round(hostile_s, 2))


if __name__ == "__main__":
    main()
