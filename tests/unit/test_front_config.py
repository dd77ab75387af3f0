# SPDX-License-Identifier: BSD-3-Clause
"""The haproxy configuration of the front: valid for haproxy, UWS and light routes on
the primary, the work on the other processes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from casuvo.config import Settings
from casuvo.dachs.front import (
    FORM_PATH,
    HAPROXY,
    LIGHT_PATHS,
    UWS_PLAN_PATH,
    WORK_MAXCONN,
    bad_request_answer,
    busy_answer,
    haproxy_config,
    too_large_answer,
)


def _backend(text: str, name: str) -> str:
    return text.split(f"\nbackend {name}\n", 1)[1].split("\nbackend ", 1)[0]


def _route(text: str, method: str, path: str, query: str = "") -> str:
    """The backend haproxy picks, evaluated like its ``use_backend`` rules."""
    uws = re.search(r"acl uws path_reg (\S+)", text).group(1)
    if re.search(uws, path) and not re.search(UWS_PLAN_PATH, path):
        return "primary"
    if method in ("GET", "HEAD"):
        if any(re.search(p, path) for p in LIGHT_PATHS):
            return "light"
        if re.search(FORM_PATH, path) and not query:
            return "light"
    return "work"


def test_haproxy_accepts_the_config_and_routes_uws_to_the_primary(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_HTTP_PORT": "18090"})
    settings.front_dir.mkdir(parents=True)
    (settings.front_dir / "busy.http").write_text(busy_answer())
    (settings.front_dir / "bad-request.http").write_text(bad_request_answer())
    (settings.front_dir / "too-large.http").write_text(too_large_answer())
    text = haproxy_config(settings, [18101, 18102, 18103])
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "bind 127.0.0.1:18090" in text
    # the work goes to processes 1 and 2 (process 0 only as a backup), each
    # taking a bounded number of requests at once
    work = _backend(text, "work")
    servers = re.findall(r"server \S+ 127\.0\.0\.1:(\d+)(.*)", work)
    assert [port for port, _ in servers] == ["18102", "18103", "18101"]
    assert all(f"maxconn {WORK_MAXCONN}" in rest for _, rest in servers)
    assert "backup" in servers[2][1] and "backup" not in servers[0][1]
    # the static VOSI documents come from the front's cache
    assert "http-request cache-use vosi if read vosi_static" in text
    vosi = re.search(r"acl vosi_static path_reg (\S+)", text).group(1)
    assert all(re.search(vosi, p) for p in ("/tap/capabilities", "/tap/tables",
                                             "/tap/examples", "/gaia/q/cone/capabilities"))
    assert not any(re.search(vosi, p) for p in ("/tap/availability", "/tap/sync",
                                                 "/tap/async/x/capabilities2"))
    # health, VOSI, pages and UWS on process 0 only
    for name in ("light", "primary"):
        assert re.findall(r"127\.0\.0\.1:(\d+)", _backend(text, name)) == ["18101"]
    # the ACL haproxy applies, as a regular expression over request paths
    acl = re.search(r"acl uws path_reg (\S+)", text).group(1)
    uws = ["/tap/async", "/tap/async/abc123/results/result", "/__system__/tap/run/async",
           "/vista/q/dl/dlasync/x1/phase", "/svc/q/run/uws.xml/job1"]
    other = ["/tap/sync", "/gaia/q/cone/scs.xml", "/vista/q/dl/dlget", "/tap/capabilities",
             "/tableinfo/gaia.sources", "/asyncthing/form"]
    assert all(re.search(acl, p) for p in uws)
    assert not any(re.search(acl, p) for p in other)


def test_routes_light_work_and_uws(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASUVO_HOME": str(tmp_path)})
    text = haproxy_config(settings, [18101, 18102, 18103])
    light = [("GET", "/tap/availability"), ("GET", "/tap/capabilities"),
             ("HEAD", "/tap/capabilities"), ("GET", "/tap/tables"), ("GET", "/tap/examples"),
             ("GET", "/gaia/q/cone/availability"), ("GET", "/robots.txt"), ("GET", "/"),
             ("GET", "/static/css/gavo_dc.css"), ("GET", "/tableinfo/gaia.sources"),
             ("GET", "/coverage/q/hips/static/vista/J/properties"),
             ("GET", "/coverage/q/moc/static/vst.moc.fits"), ("GET", "/gaia/q/cone/info"),
             ("GET", "/gaia/q/cone/form"), ("GET", "/__system__/adql/query/form")]
    work = [("POST", "/tap/sync"), ("GET", "/tap/sync"), ("GET", "/gaia/q/cone/scs.xml"),
            ("GET", "/vista/q/sia2/siap2.xml"), ("GET", "/vista/q/dl/dlget"),
            ("GET", "/vista/q/dl/dlmeta"), ("POST", "/tap/capabilities"),
            ("GET", "/tap/async/abc123/plan"), ("GET", "/vista/q/overview/volatile")]
    for method, path in light:
        assert _route(text, method, path) == "light", (method, path)
    for method, path in work:
        assert _route(text, method, path) == "work", (method, path)
    # a filled form runs a query: work
    assert _route(text, "GET", "/gaia/q/cone/form", "RA=1&DEC=2&SR=0.1") == "work"
    assert _route(text, "GET", "/__system__/adql/query/form", "query=x") == "work"
    # every UWS change of state stays on the primary, whatever the method
    for method, path in [("POST", "/tap/async"), ("POST", "/tap/async/abc123/phase"),
                         ("DELETE", "/tap/async/abc123"), ("GET", "/tap/async/abc123")]:
        assert _route(text, method, path) == "primary", (method, path)


def test_haproxy_errors_are_http_answers_with_a_dali_error() -> None:
    for answer, status in ((busy_answer(), "503"), (bad_request_answer(), "400"),
                           (too_large_answer(), "413")):
        head, body = answer.split("\r\n\r\n", 1)
        assert head.startswith(f"HTTP/1.0 {status} ")
        length = int(re.search(r"Content-Length: (\d+)", head).group(1))
        assert length == len(body.encode())
        assert '<INFO name="QUERY_STATUS" value="ERROR">' in body
