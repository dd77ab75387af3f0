# SPDX-License-Identifier: BSD-3-Clause
"""Several DaCHS server processes behind one haproxy front on the public port.

One DaCHS process serves every request in one Python interpreter (Twisted's
reactor plus a thread pool under one GIL), so it keeps one core busy however
many clients wait, and one request that holds the GIL (an ADQL parse, a large
VOTable being written, a cutout) delays every other request of that process.
With ``Settings.dachs_processes`` > 1, ``casuvo up`` starts that many
``dachs serve start --foreground`` processes on free loopback ports, each with
its own ``gavo.rc`` (identical but for ``serverPort`` and ``logDir``;
``serverURL`` stays the public URL), and Debian's haproxy on the public port.

Layout: light and work processes
--------------------------------
Process 0, the *primary*, is the **light** process: it answers what must stay
fast whatever else runs — health and VOSI (``…/availability``,
``…/capabilities``, ``…/tables``, ``…/tableMetadata``), the TAP examples,
static files (``/static``, HiPS tiles and MOCs, ``robots.txt``), the root
page, table and service info pages, and empty forms — for ``GET`` and
``HEAD`` only (:data:`LIGHT_PATHS`).  It also owns every UWS route
(``…/async``, ``…/dlasync``, ``…/uws.xml``: creating, starting, aborting and
deleting jobs, reading their state and results; why only one process may do
that is in :mod:`casuvo.dachs.server`): none of these parses ADQL or cuts
images, and the async job itself runs in a ``gavo taprun`` child at lower CPU
priority.  Processes 1… are **work** processes: TAP sync, the ADQL form, SCS,
SIA, SODA, DataLink, filled forms, POSTs, a job's ``plan`` (the one UWS read
that parses ADQL) and everything not listed as light, spread by least
connections.  Why so:

- the GIL cannot be shared out: isolation has to be by process.  No request
  a client can make reaches the light process with ADQL, a cutout or an
  unbounded database query, so health answers in milliseconds while the work
  processes are saturated (``tests/integration/test_hostile.py``).
- each work process takes at most :data:`WORK_MAXCONN` requests at once;
  haproxy queues the rest (``timeout queue``, then a 503 with a DALI error
  document), so a burst does not pile threads onto one interpreter.  The
  light process serves as a backup of the work processes, so the service
  still answers while they are down.
- what runs long runs at lower CPU priority: async jobs (``gavo taprun``, at
  ``casuvo.dachs.server.TAPRUN_NICENESS``) and the database backends of
  ADQL queries (:mod:`casuvo.dachs.timeouts`, which also bounds them with
  statement timeouts and no parallel workers).  The work processes keep
  normal priority (:data:`WORK_NICENESS`): a niced work process made the cone
  searches it serves lose against those backends and against other load.
  ADQL too large to parse quickly is refused before the parse
  (:mod:`casuvo.dachs.adqlguard`); URL-encoded bodies over 1 MiB, which take
  a server about 0.4 s to decode, are refused by haproxy (413).
- the static VOSI documents (capabilities, tables, examples) are answered
  from haproxy's cache (:data:`VOSI_CACHE_S`): DaCHS renders capabilities
  anew for every request (~20 ms of CPU), and clients ask for it often.
- the default process count (``Settings.dachs_processes``) is one light
  process plus one work process per core: on two cores, three processes, so
  the work still has both cores (issue 12's throughput) and health has its
  own interpreter.  ``CASUVO_SERVER_PROCESSES=1`` runs a single DaCHS without
  a front: the ADQL limits and timeouts still hold, the isolation does not.

haproxy checks each process (``GET /robots.txt``) and stops sending requests to
one that does not answer.  Processes 1… run with ``--secondary`` (no periodic
jobs).

Everything generated is in ``Settings.front_dir`` (``var/front/``): the
per-process ``gavo-<i>.rc``, ``haproxy.cfg``, ``busy.http``, ``bad-request.http`` and
``too-large.http`` (haproxy's 503, 400 and 413 as DALI errors),
``haproxy.pid`` and ``processes.json`` (pids and ports); each process logs into
``var/dachs/logs/server-<i>/``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from casuvo.config import Settings
from casuvo.dachs.limits import ADQL, MAX_FORM_BODY
from casuvo.processes import free_ports, pid_alive, terminate
from casuvo.storage import access

__all__ = [
    "HAPROXY",
    "FrontError",
    "FrontState",
    "is_running",
    "read_state",
    "start",
    "stop",
    "wait_for",
]

log = logging.getLogger(__name__)

#: Debian's haproxy (``deploy/local/install.sh`` installs it)
HAPROXY = "/usr/sbin/haproxy"

#: path segments of DaCHS's UWS renderers: all job state changes go to the primary
UWS_SEGMENTS = ("async", "dlasync", "uws.xml")

#: a cheap page every DaCHS process serves without touching the database
HEALTH_PATH = "/robots.txt"

#: request paths (regular expressions, for GET and HEAD) the light process answers
LIGHT_PATHS = (
    r"^/$",
    r"^/(robots\.txt|favicon\.(ico|png))$",
    r"^/static/",
    r"/q/[^/]+/static/",
    r"/(availability|capabilities|tableMetadata|tables|examples)/?$",
    r"^/tableinfo/",
    r"^/browse/",
    r"/info$",
)
#: static VOSI documents (changed only by a restart, which restarts the front):
#: the front answers them from its cache for :data:`VOSI_CACHE_S` seconds
VOSI_STATIC_PATH = r"/(capabilities|tables|tableMetadata|examples)/?$"
VOSI_CACHE_S = 60
#: forms, light only when empty (no query string): filled, they run queries
FORM_PATH = r"/form$"
#: a UWS read that parses ADQL: a work process answers it
UWS_PLAN_PATH = r"/async/[^/]+/plan$"

#: requests one work process takes at once; haproxy queues the rest
WORK_MAXCONN = 6
#: requests the light process takes at once (they are short)
LIGHT_MAXCONN = 64
#: seconds a request may wait in haproxy's queue before the 503
QUEUE_TIMEOUT_S = 60
#: haproxy's buffer: the longest request line plus headers it takes; DaCHS
#: (Twisted) drops longer request lines itself, so longer GETs get haproxy's
#: 400 (a DALI error) rather than a dropped connection (a 502)
BUFSIZE = 16384
#: niceness of the work processes.  0, like the light process: they serve cone
#: searches and sync queries, which must not lose the CPU to other load; what
#: runs long is niced instead (async runners, ADQL database backends)
WORK_NICENESS = 0


class FrontError(RuntimeError):
    """The front or one of its DaCHS processes did not come up."""


@dataclass(frozen=True)
class FrontState:
    """What :func:`start` started: read back by :func:`stop` and ``casuvo status``."""

    public_port: int
    ports: list[int]
    """Internal port of each DaCHS process; index 0 is the primary."""
    pids: list[int]
    """PID of each DaCHS process, in the order of ``ports``."""
    haproxy_pid: int
    started: float
    """``time.time()`` when the front was started (``casuvo up`` restarts older ones
    after an edit of the RDs or of ``services/``)."""

    def process_urls(self) -> list[str]:
        """URLs of the processes themselves, bypassing the front (tests, benchmarks)."""
        return [f"http://127.0.0.1:{port}" for port in self.ports]


def _state_file(settings: Settings) -> Path:
    return settings.front_dir / "processes.json"


def read_state(settings: Settings) -> FrontState | None:
    """The state of the last :func:`start`, or None if no front was started."""
    try:
        return FrontState(**json.loads(_state_file(settings).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def is_running(settings: Settings) -> bool:
    """True if the front and all its DaCHS processes are alive."""
    state = read_state(settings)
    return state is not None and all(pid_alive(p) for p in [state.haproxy_pid, *state.pids])


def _dali_error(status: str, message: str, extra_headers: str = "") -> str:
    """A complete HTTP answer (haproxy ``errorfile``) carrying a DALI error document."""
    body = ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
            '<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">'
            f"{message}</INFO></RESOURCE></VOTABLE>\n")
    return (f"HTTP/1.0 {status}\r\n"
            "Cache-Control: no-cache\r\nConnection: close\r\n"
            f"Content-Type: text/xml\r\n{extra_headers}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}")


def busy_answer() -> str:
    """haproxy's 503 (no process free within the queue timeout) as a DALI error document."""
    return _dali_error(
        "503 Service Unavailable",
        f"The service is busy: no server process was free within {QUEUE_TIMEOUT_S} s."
        " Please retry later.", "Retry-After: 30\r\n")


def too_large_answer() -> str:
    """haproxy's 413 for a URL-encoded body over :data:`MAX_FORM_BODY`."""
    return _dali_error(
        "413 Payload Too Large",
        f"The request body is over {MAX_FORM_BODY // 1024} kB: an ADQL query is at most"
        f" {ADQL.max_length} characters (ADQL limit max_length); upload tables as"
        " files (multipart/form-data).")


def bad_request_answer() -> str:
    """haproxy's own 400 (a request line and headers over ``tune.bufsize``, or malformed)."""
    return _dali_error(
        "400 Bad Request",
        f"The request is malformed, or its URL and headers exceed {BUFSIZE // 1024} kB:"
        " send long queries with POST.")


def haproxy_config(settings: Settings, ports: list[int]) -> str:
    """haproxy.cfg: UWS and light routes to process 0, the work to processes 1…"""
    uws = "|".join(seg.replace(".", r"\.") for seg in UWS_SEGMENTS)
    light = " ".join(LIGHT_PATHS)
    check = "check inter 5s fall 2 rise 1"
    work = "\n".join(
        f"    server dachs{i} 127.0.0.1:{port} {check} maxconn {WORK_MAXCONN}"
        for i, port in enumerate(ports) if i > 0)
    return f"""\
# Generated by casuvo (casuvo/dachs/front.py) at every `casuvo up`: do not edit.
global
    maxconn 2000
    tune.bufsize {BUFSIZE}
    pidfile {settings.front_dir / "haproxy.pid"}

defaults
    mode http
    option forwardfor
    option httpchk GET {HEALTH_PATH}
    timeout connect 5s
    timeout http-request 120s
    # sync queries may stream large results; async uploads may be slow
    timeout client 3600s
    timeout server 3600s
    timeout queue {QUEUE_TIMEOUT_S}s
    errorfile 503 {settings.front_dir / "busy.http"}
    errorfile 400 {settings.front_dir / "bad-request.http"}
    errorfile 413 {settings.front_dir / "too-large.http"}

cache vosi
    total-max-size 16
    max-object-size 1048576
    max-age {VOSI_CACHE_S}

frontend casuvo
    bind 127.0.0.1:{settings.http_port}
    # UWS (TAP async, DataLink async, user UWS): one process owns job state changes
    acl uws path_reg /({uws})(/|$)
    acl uws_plan path_reg {UWS_PLAN_PATH}
    acl read method GET HEAD
    acl light path_reg {light}
    acl form path_reg {FORM_PATH}
    acl has_query query -m found
    # a URL-encoded body this large cannot be valid, and decoding it would hold
    # a server process (the primary too, for async jobs)
    acl form_body req.hdr(content-type) -m beg -i application/x-www-form-urlencoded
    acl big_body req.hdr_val(content-length) gt {MAX_FORM_BODY}
    http-request deny deny_status 413 if form_body big_body
    # capabilities, tables and examples are static between restarts
    acl vosi_static path_reg {VOSI_STATIC_PATH}
    http-request set-var(txn.vosi) bool(true) if read vosi_static
    # one cached form for every client: DaCHS gzips for clients that accept it,
    # without a Vary header
    http-request del-header Accept-Encoding if read vosi_static
    http-request cache-use vosi if read vosi_static
    # DaCHS gives them no expiry, without which haproxy does not store them
    acl vosi_answer var(txn.vosi) -m bool
    acl ok status 200
    http-response set-header Cache-Control "max-age={VOSI_CACHE_S}" if vosi_answer ok
    http-response cache-store vosi if vosi_answer ok
    use_backend primary if uws !uws_plan
    use_backend light if read light
    use_backend light if read form !has_query
    default_backend work

backend light
    server dachs0 127.0.0.1:{ports[0]} {check} maxconn {LIGHT_MAXCONN}

backend work
    balance leastconn
{work}
    # while no work process answers, the light one takes the work
    server dachs0 127.0.0.1:{ports[0]} track light/dachs0 backup maxconn {WORK_MAXCONN}

backend primary
    server dachs0 127.0.0.1:{ports[0]} track light/dachs0 maxconn {LIGHT_MAXCONN}
"""


def _worker_rc(settings: Settings, index: int, port: int) -> Path:
    from casuvo.dachs.instance import render_gavo_rc

    log_dir = settings.dachs_root / "logs" / f"server-{index}"
    log_dir.mkdir(parents=True, exist_ok=True)
    rc = settings.front_dir / f"gavo-{index}.rc"
    rc.write_text(render_gavo_rc(settings, port, log_dir))
    return rc


def _url_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def wait_for(urls: list[str], pids: list[int], timeout: float, logs: Path) -> None:
    """Block until every URL answers 200; fail early if a process died."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        dead = [pid for pid in pids if not pid_alive(pid)]
        if dead:
            raise FrontError(f"DaCHS process(es) {dead} exited during start-up; see {logs}")
        pending = [u for u in pending if not _url_ok(u)]
        if pending:
            time.sleep(0.5)
    if pending:
        raise FrontError(f"no answer from {', '.join(pending)} within {timeout:.0f} s; "
                         f"see {logs}")


def start(settings: Settings, n: int) -> FrontState:
    """Start ``n`` DaCHS processes and haproxy on the public port; wait until all answer."""
    from casuvo.dachs.instance import dachs_env

    if not Path(HAPROXY).exists():
        raise FrontError(f"{HAPROXY} is missing: install Debian's haproxy "
                         "(deploy/local/install.sh does) or set CASUVO_SERVER_PROCESSES=1")
    front = settings.front_dir
    front.mkdir(parents=True, exist_ok=True)
    ports = free_ports(n)
    pids = []
    logs = settings.dachs_root / "logs"
    for i, port in enumerate(ports):
        env = access.server_environment(dachs_env(settings))
        env["GAVOSETTINGS"] = str(_worker_rc(settings, i, port))
        role = [] if i == 0 else ["--secondary"]
        stderr = (logs / f"server-{i}" / "server.stderr").open("a")
        proc = subprocess.Popen(
            [sys.executable, "-m", "casuvo.dachs.server", *role, "serve", "start",
             "--foreground"],
            env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            cwd=settings.dachs_root, start_new_session=True)
        stderr.close()
        if i > 0 and WORK_NICENESS:
            os.setpriority(os.PRIO_PROCESS, proc.pid, WORK_NICENESS)
        pids.append(proc.pid)
    try:
        wait_for([f"http://127.0.0.1:{p}/tap/capabilities" for p in ports], pids, 180, logs)
        (front / "busy.http").write_text(busy_answer())
        (front / "bad-request.http").write_text(bad_request_answer())
        (front / "too-large.http").write_text(too_large_answer())
        cfg = front / "haproxy.cfg"
        cfg.write_text(haproxy_config(settings, ports))
        subprocess.run([HAPROXY, "-c", "-q", "-f", str(cfg)], check=True,
                       capture_output=True, text=True)
        pidfile = front / "haproxy.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run([HAPROXY, "-D", "-f", str(cfg), "-p", str(pidfile)], check=True,
                       capture_output=True, text=True)
        haproxy_pid = int(pidfile.read_text().split()[0])
        state = FrontState(settings.http_port, ports, pids, haproxy_pid, time.time())
        _state_file(settings).write_text(json.dumps(asdict(state)))
        wait_for([f"{settings.server_url}/tap/capabilities"], [haproxy_pid], 60, logs)
    except (FrontError, subprocess.CalledProcessError, OSError, ValueError) as exc:
        for pid in pids:
            terminate(pid)
        detail = getattr(exc, "stderr", "") or ""
        raise FrontError(f"front on port {settings.http_port} did not start: {exc} "
                         f"{detail}".strip()) from exc
    log.info("%d DaCHS processes on ports %s behind haproxy on %s", n, ports,
             settings.server_url)
    return state


def stop(settings: Settings) -> bool:
    """Stop haproxy and the DaCHS processes of the front; returns whether any ran."""
    state = read_state(settings)
    if state is None:
        return False
    running = [p for p in [state.haproxy_pid, *state.pids] if pid_alive(p)]
    for pid in running:
        terminate(pid)
    _state_file(settings).unlink(missing_ok=True)
    return bool(running)
