# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark: TAP sync and SCS small cones on gaia.sources, 1 DaCHS process vs the front.

The baseline is one DaCHS process of the running stack, reached on its own
internal port (bypassing haproxy: exactly a single server); the candidate is
the public port, where haproxy spreads requests over all DaCHS processes
(``CASUVO_SERVER_PROCESSES``, ``casuvo.dachs.front``).  Both are measured in the
same run with 1 and 8 concurrent clients, each sending 5″ cone queries at random
centres in the demo fields, over keep-alive connections.

The load generator is Debian's ``wrk`` (``deploy/local/install.sh`` installs
it; ``--generator wrk``, the default when it is installed): one C thread drives
all connections at well under 1 % of a core per 100 requests/s, so the
servers get the machine's two cores.  The former generator, Python threads
with one ``requests`` session each (``--generator threads``), spent about
2 ms of CPU per request on the same two cores and so held the measured
throughput of the front below what its servers could give (1.4–1.65× where
the CPU-time projection said 2.1×).  Both the 1-process baseline and the
front are always measured with the same generator, and every answer is
checked for a 200 and a ``<TABLE``.

Printed: throughput, p50, p95, the ratios, and the goals of issue 12
(8 clients ≥ 1.8× one process; TAP p50 ≤ 30 ms, SCS p50 ≤ 10 ms).  The CPU
time of DaCHS, haproxy and PostgreSQL per request is measured too: on a shared
machine the wall-clock throughput depends on what else runs, while the
throughput that CPU time allows on two free cores does not.  Every pair
(baseline, front) is measured back to back, ``--repeat`` rounds in
alternating order; the figures are medians, the ratios medians of the
pairs' ratios.  ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import requests
from cone import centres as cone_centres  # bench/cone.py, beside this script

from casuvo.archive.endpoints import endpoints
from casuvo.config import Settings
from casuvo.dachs import front

RADIUS_DEG = 5 / 3600
THROUGHPUT_GOAL = 1.8
P50_GOAL_MS = {"tap": 30.0, "scs": 10.0}


def _request(session: requests.Session, base: str, kind: str, ra: float, dec: float) -> None:
    if kind == "tap":
        adql = ("SELECT source_id, ra, dec, phot_g_mean_mag FROM gaia.sources WHERE "
                f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {RADIUS_DEG}))")
        resp = session.post(f"{base}/tap/sync", data={
            "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql}, timeout=120)
    else:
        resp = session.get(f"{base}/gaia/q/cone/scs.xml",
                           params={"RA": ra, "DEC": dec, "SR": RADIUS_DEG}, timeout=120)
    resp.raise_for_status()
    if b"<TABLE" not in resp.content:
        raise RuntimeError(f"{kind} answered without a table: {resp.text[:300]}")


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still there (``/proc/<pid>/stat``)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


class _CpuMeter:
    """CPU seconds the processes spent since the meter was made.

    Only processes present at both readings count: a database backend that
    exits in between (its CPU time gone with it) must not make the sum negative.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = _cpu_by_pid(pids)

    def spent(self) -> float:
        now = _cpu_by_pid(self.pids)
        return sum(now[p] - self.start[p] for p in now.keys() & self.start.keys())


def _postgres_pids(settings: Settings) -> list[int]:
    """The postmaster of the local cluster and its backends."""
    try:
        master = int((settings.pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return []
    pids = [master]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return pids


@dataclass(frozen=True)
class Run:
    """One measurement: a target, a protocol, a number of concurrent clients."""

    target: str
    kind: str
    clients: int
    seconds: float
    latencies: list[float]
    dachs_cpu: float
    """CPU seconds the DaCHS processes spent in the run."""
    total_cpu: float
    """CPU seconds of DaCHS, haproxy and PostgreSQL in the run."""
    generator_cpu: float = 0.0
    """CPU seconds of the load generator itself (wrk's child rusage; 0 for threads)."""
    percentiles_ms: dict[float, float] = field(default_factory=dict)
    """Latency percentiles wrk measured (its latencies are not kept one by one)."""
    requests: int = 0
    """Answers in the run, when ``latencies`` does not hold them all (wrk)."""

    @property
    def count(self) -> int:
        return self.requests or len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        if q in self.percentiles_ms:
            return self.percentiles_ms[q]
        return float(np.percentile(self.latencies, q) * 1e3)

    def capacity(self, processes: int, cores: int = 2) -> float:
        """Requests/s this server side could sustain on ``cores`` free cores: each
        DaCHS process is one interpreter (at most one core), and DaCHS, haproxy and
        PostgreSQL together get ``cores``.  Independent of other load on the
        machine, which the wall-clock throughput is not."""
        n = self.count
        return min(processes * n / self.dachs_cpu, cores * n / self.total_cpu)


def measure(base: str, target: str, kind: str, clients: int, per_client: int,
            seed: int, dachs_pids: list[int], other_pids: list[int]) -> Run:
    """``clients`` threads each send ``per_client`` requests; wall time over all."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        session = requests.Session()
        centres = cone_centres(np.random.default_rng(seed * 100 + index), per_client + 2)
        for ra, dec in centres[:2]:  # warm the connection
            _request(session, base, kind, ra, dec)
        barrier.wait()
        mine = []
        try:
            for ra, dec in centres[2:]:
                t = time.perf_counter()
                _request(session, base, kind, ra, dec)
                mine.append(time.perf_counter() - t)
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    dachs_meter, other_meter = _CpuMeter(dachs_pids), _CpuMeter(other_pids)
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    dachs_cpu = dachs_meter.spent()
    total_cpu = dachs_cpu + other_meter.spent()
    if errors:
        raise errors[0]
    return Run(target, kind, clients, seconds, latencies, dachs_cpu, total_cpu)


#: wrk script: cycles through the given requests, checks every answer, and prints
#: the figures as one JSON line (``done`` runs in wrk's main Lua state; the
#: per-connection-thread counters are read back through ``thread:get``)
WRK_SCRIPT = """
local requests = {%(requests)s}
local i = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; sample = "" end
function request()
  i = i %% #requests + 1
  local r = requests[i]
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "<TABLE", 1, true) then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
  end
end
function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad")
    if sample == "" then sample = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, '
    .. '"socket_errors": %%d, "bad": %%d}\\nsample: %%s\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    e.connect + e.read + e.write + e.timeout, bad, sample))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string


def _wrk_requests(base: str, kind: str, seed: int, n: int) -> list[tuple[str, str, dict, str]]:
    """``n`` requests (method, path, headers, body) at random cone centres."""
    out = []
    for ra, dec in cone_centres(np.random.default_rng(seed), n):
        if kind == "tap":
            adql = ("SELECT source_id, ra, dec, phot_g_mean_mag FROM gaia.sources WHERE "
                    f"1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, "
                    f"{RADIUS_DEG}))")
            body = urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql})
            out.append(("POST", "/tap/sync",
                        {"Content-Type": "application/x-www-form-urlencoded"}, body))
        else:
            query = urlencode({"RA": ra, "DEC": dec, "SR": RADIUS_DEG})
            out.append(("GET", f"/gaia/q/cone/scs.xml?{query}", {}, ""))
    return out


def _wrk_script(requests_: list[tuple[str, str, dict, str]]) -> str:
    rows = []
    for method, path, headers, body in requests_:
        hdrs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        rows.append(f"{{{_lua_string(method)}, {_lua_string(path)}, {{{hdrs}}}, "
                    f"{_lua_string(body) if body else 'nil'}}}")
    return WRK_SCRIPT % {"requests": ",\n".join(rows)}


def warm(urls: list[str], kind: str, seed: int) -> None:
    """Two requests to every DaCHS process directly, before anything is measured.

    A fresh process builds DaCHS's ADQL grammar and loads its RDs' code on its
    first query (seconds on a loaded machine); behind the front, leastconn
    would hand that first query to whichever process is idle, in the middle
    of a measurement."""
    session = requests.Session()
    for base in urls:
        for ra, dec in cone_centres(np.random.default_rng(seed), 2):
            _request(session, base, kind, ra, dec)


def _wrk(base: str, script: Path, clients: int, seconds: float) -> dict:
    """One wrk run; its JSON line, and its CPU time under ``cpu``."""
    before = os.times()
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "60s",
         "-s", str(script), base],
        capture_output=True, text=True, check=True)
    after = os.times()
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not line:
        raise RuntimeError(f"wrk printed no figures: {proc.stdout}{proc.stderr}")
    out = json.loads(line[-1])
    if out["socket_errors"] or out["bad"]:
        sample = proc.stdout.split("sample: ", 1)[-1].strip()
        raise RuntimeError(f"wrk against {base}: {out['socket_errors']} socket errors, "
                           f"{out['bad']} answers without a table, e.g. {sample}")
    if not out["requests"]:
        raise RuntimeError(f"wrk against {base}: no answer within {seconds:g} s")
    out["cpu"] = ((after.children_user - before.children_user)
                  + (after.children_system - before.children_system))
    return out


def measure_wrk(base: str, target: str, kind: str, clients: int, seconds: float,
                seed: int, dachs_pids: list[int], other_pids: Callable[[], list[int]]) -> Run:
    """wrk with ``clients`` keep-alive connections for ``seconds`` (after a 1-s warm-up;
    ``other_pids`` is asked after it, so that the database backends it opened count)."""
    with tempfile.TemporaryDirectory(prefix="casuvo-wrk-") as tmp:
        script = Path(tmp) / "cones.lua"
        script.write_text(_wrk_script(_wrk_requests(base, kind, seed, 500)))
        _wrk(base, script, clients, 1)
        dachs_meter, other_meter = _CpuMeter(dachs_pids), _CpuMeter(other_pids())
        out = _wrk(base, script, clients, seconds)
        dachs_cpu = dachs_meter.spent()
        total_cpu = dachs_cpu + other_meter.spent()
    return Run(target, kind, clients, out["duration_us"] / 1e6, [], dachs_cpu, total_cpu,
               generator_cpu=out["cpu"],
               percentiles_ms={50: out["p50_us"] / 1e3, 95: out["p95_us"] / 1e3},
               requests=out["requests"])


def _figure(name: str, value: float, unit: str, baseline: str, baseline_value: float,
            ratio: float, goal: str, met: bool) -> dict:
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": baseline,
            "baseline_value": round(baseline_value, 3), "ratio": round(ratio, 3),
            "goal": goal, "met": bool(met)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40,
                        help="requests per client (single client: 2n)")
    parser.add_argument("--seconds", type=float, default=10,
                        help="seconds per measurement (wrk)")
    parser.add_argument("--generator", choices=("wrk", "threads"),
                        default="wrk" if shutil.which("wrk") else "threads",
                        help="load generator (default: wrk where installed)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every measurement pair; medians are reported")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    settings = Settings.from_env()
    state = front.read_state(settings)
    if state is None or not front.is_running(settings):
        raise SystemExit("no front running: start the stack with CASUVO_SERVER_PROCESSES "
                         "> 1 (the default on a machine with several cores)")
    public = endpoints(settings)["base"].rstrip("/")
    single = state.process_urls()[0]
    n_proc = len(state.ports)
    targets = {"1 process": single, f"{n_proc} processes": public}

    runs: dict[tuple[str, str, int], list[Run]] = {}

    def other() -> list[int]:
        """haproxy and the database processes now (backends come and go)."""
        return [state.haproxy_pid, *_postgres_pids(settings)]

    for kind in ("tap", "scs"):
        warm(state.process_urls(), kind, 999)
    print(f"generator: {args.generator}, {args.repeat} rounds")
    print(f"{'target':<13} {'kind':<4} {'clients':>7} {'req/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'CPU ms/req':>10} {'2-core req/s':>12} {'gen ms/req':>10}")
    for rnd in range(args.repeat):
        for kind in ("tap", "scs"):
            for clients in (1, 8):
                # baseline and front back to back, in alternating order: load from
                # elsewhere on the machine drifts alike over both of a pair
                order = list(enumerate(targets.items()))
                for seed, (target, base) in (order if rnd % 2 == 0 else order[::-1]):
                    if args.generator == "wrk":
                        run = measure_wrk(base, target, kind, clients, args.seconds,
                                          seed + 10 * clients + 100 * rnd, state.pids,
                                          other)
                    else:
                        per_client = 2 * args.n if clients == 1 else args.n
                        run = measure(base, target, kind, clients, per_client,
                                      seed + 10 * clients + 100 * rnd, state.pids, other())
                    runs.setdefault((target, kind, clients), []).append(run)
                    procs = 1 if target == "1 process" else n_proc
                    print(f"{target:<13} {kind:<4} {clients:>7} {run.throughput:8.1f} "
                          f"{run.percentile(50):8.1f} {run.percentile(95):8.1f} "
                          f"{run.total_cpu / run.count * 1e3:10.1f} "
                          f"{run.capacity(procs):12.1f} "
                          f"{run.generator_cpu / run.count * 1e3:10.2f}")

    def median(key: tuple[str, str, int], value: Callable[[Run], float]) -> float:
        return float(np.median([value(r) for r in runs[key]]))

    def paired(key: tuple[str, str, int], base_key: tuple[str, str, int],
               value: Callable[[Run], float]) -> float:
        """Median over the rounds of the ratio of a pair measured back to back."""
        return float(np.median([value(r) / value(b)
                                for r, b in zip(runs[key], runs[base_key], strict=True)]))

    def p50(r: Run) -> float:
        return r.percentile(50)

    def p95(r: Run) -> float:
        return r.percentile(95)

    figures = []
    multi = f"{n_proc} processes"
    print(f"\nmedians of {args.repeat} rounds; ratios: median of the back-to-back pairs")
    for kind in ("tap", "scs"):
        label = "TAP sync" if kind == "tap" else "SCS"
        key, base_key = (multi, kind, 8), ("1 process", kind, 8)
        ratio = paired(key, base_key, lambda r: r.throughput)
        figures.append(_figure(
            f"{label} 5\" cone, 8 clients, throughput, {multi} behind haproxy",
            median(key, lambda r: r.throughput), "req/s", "1 DaCHS process, 8 clients",
            median(base_key, lambda r: r.throughput),
            ratio, f">= {THROUGHPUT_GOAL}x one process", ratio >= THROUGHPUT_GOAL))
        cap_ratio = float(np.median([r.capacity(n_proc) / b.capacity(1) for r, b in
                                     zip(runs[key], runs[base_key], strict=True)]))
        figures.append(_figure(
            f"{label} 5\" cone, 8 clients, 2-core capacity from CPU time, {multi}",
            median(key, lambda r: r.capacity(n_proc)), "req/s", "1 DaCHS process, same model",
            median(base_key, lambda r: r.capacity(1)), cap_ratio,
            f">= {THROUGHPUT_GOAL}x one process (projected)", cap_ratio >= THROUGHPUT_GOAL))
        figures.append(_figure(
            f"{label} 5\" cone, 8 clients, p95 latency, {multi}", median(key, p95), "ms",
            "1 DaCHS process, 8 clients", median(base_key, p95),
            paired(key, base_key, p95), "reported", True))
        one, one_base = (multi, kind, 1), ("1 process", kind, 1)
        goal = P50_GOAL_MS[kind]
        figures.append(_figure(
            f"{label} 5\" cone, 1 client, p50 latency through the front", median(one, p50),
            "ms", "1 DaCHS process directly, 1 client", median(one_base, p50),
            paired(one, one_base, p50), f"<= {goal:g} ms", median(one, p50) <= goal))
        figures.append(_figure(
            f"{label} 5\" cone, 1 client, p95 latency through the front", median(one, p95),
            "ms", "1 DaCHS process directly, 1 client", median(one_base, p95),
            paired(one, one_base, p95), "reported", True))
    for f in figures:
        print(f"{f['name']:<62} {f['value']:8.1f} {f['unit']:<5} vs {f['baseline_value']:8.1f}"
              f"  {f['ratio']:5.2f}x  goal {f['goal']:<22} {'met' if f['met'] else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"bench": "concurrency", "generator": args.generator,
                                         "rounds": args.repeat, "figures": figures},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
