# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub beside the demo (``casuvo hub up``): a user logs in, starts a server
through the Hub's REST API, and the cutouts notebook runs in a kernel of that server.

Everything goes through the hub's public port, as a user's browser or script
would: the login form, a token made through the REST API, the server started and
stopped through the REST API, the notebook read through the server's contents API
and its cells run in a kernel of that server over the server's kernel websocket
(Jupyter's messaging protocol, the messages made by ``jupyter_client``'s Session).
The values the notebook prints are compared with the database, read here
independently of the services.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from casuvo.config import Settings
from casuvo.processes import pid_alive

pytestmark = pytest.mark.integration

#: a hub user named after the archive's member of every team (services/access.toml):
#: the hub gives the user's server that account's login, as test_notebooks.py's netrc does
USER = "survey-team"


@pytest.fixture(autouse=True)
def anonymous_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub has its own logins: no archive member's basic auth (tests/conftest.py)
    and no netrc may ride along with these requests."""
    init = requests.Session.__init__

    def plain_init(self: requests.Session, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        self.auth = None
        self.trust_env = False

    monkeypatch.setattr(requests.Session, "__init__", plain_init)


@pytest.fixture(scope="module")
def hub(casuvo_bin: Path, settings: Settings) -> Iterator[dict]:
    """The hub of ``casuvo hub up``, stopped at the end if this module started it."""
    before = subprocess.run([str(casuvo_bin), "hub", "status"], capture_output=True,
                            text=True, check=False)
    started = subprocess.run([str(casuvo_bin), "hub", "up"], capture_output=True, text=True,
                             check=False, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    state = json.loads(started.stdout.strip().splitlines()[-1])
    yield state
    if before.returncode != 0:
        done = subprocess.run([str(casuvo_bin), "hub", "down"], capture_output=True,
                              text=True, check=True, timeout=120)
        assert done.stdout.strip() == "stopped"
        assert not pid_alive(state["pid"]) and not pid_alive(state["proxy_pid"])


def _login(url: str, password: str) -> tuple[requests.Session, requests.Response]:
    """Log in through the hub's login form (its XSRF cookie first, as a browser)."""
    session = requests.Session()
    session.get(f"{url}/hub/login", timeout=30).raise_for_status()
    reply = session.post(f"{url}/hub/login",
                         data={"username": USER, "password": password,
                               "_xsrf": session.cookies.get("_xsrf")},
                         allow_redirects=False, timeout=30)
    return session, reply


def _admin(settings: Settings) -> dict[str, str]:
    token = (settings.hub_dir / "admin_api_token").read_text().strip()
    return {"Authorization": f"token {token}"}


def test_wrong_password_is_refused(hub: dict) -> None:
    _, reply = _login(hub["url"], "not-the-password")
    assert reply.status_code == 403
    assert "Invalid username or password" in reply.text


def test_api_without_a_token_is_refused(hub: dict) -> None:
    url = hub["url"]
    assert requests.get(f"{url}/hub/api", timeout=30).json()["version"] == "5.4.2"
    for method, path in [("GET", "/hub/api/users"), ("POST", f"/hub/api/users/{USER}/server"),
                         ("POST", f"/hub/api/users/{USER}/tokens")]:
        reply = requests.request(method, url + path, timeout=30)
        assert reply.status_code == 403, (method, path, reply.status_code)
        reply = requests.request(method, url + path, timeout=30,
                                 headers={"Authorization": "token 0123456789abcdef"})
        assert reply.status_code == 403, (method, path, reply.status_code)


def _images_at(settings: Settings, ra: float, dec: float, radius_arcsec: float) -> list:
    """(filter, count) of the VISTA images whose footprint overlaps the circle, from
    the database (every release state: the user acts for the member of every team)."""
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(
            "SELECT filtername, count(*) FROM vista.images WHERE coverage &&"
            " scircle(spoint(radians(%s), radians(%s)), radians(%s / 3600.0))"
            " GROUP BY filtername ORDER BY filtername", (ra, dec, radius_arcsec)).fetchall()


@pytest.fixture
def user_server(hub: dict, settings: Settings) -> Iterator[dict]:
    """The user logged in through the login form, a token of theirs made through the
    REST API, and their server started through it; stopped at the end if still up."""
    url, api = hub["url"], f"{hub['url']}/hub/api"
    t0 = time.monotonic()
    browser, reply = _login(url, settings.hub_password)
    assert reply.status_code == 302, reply.text[:300]
    # the home page, as a browser after the login; then an API token of the user's own,
    # asked for with the login cookie (and the XSRF token of that page's cookie)
    browser.get(f"{url}/hub/home", timeout=30).raise_for_status()
    reply = browser.post(f"{api}/users/{USER}/tokens", timeout=30,
                         headers={"X-XSRFToken": browser.cookies.get("_xsrf")},
                         json={"note": "test_hub", "expires_in": 600})
    assert reply.status_code == 201, reply.text
    token = reply.json()["token"]
    auth = {"Authorization": f"token {token}"}
    assert requests.get(f"{api}/user", headers=auth, timeout=30).json()["name"] == USER
    if _servers(api, auth):
        requests.delete(f"{api}/users/{USER}/server", headers=auth, timeout=60)
        _wait(lambda: not _servers(api, auth), 60, "the old server to stop")

    reply = requests.post(f"{api}/users/{USER}/server", headers=auth, timeout=120)
    assert reply.status_code in (201, 202), reply.text
    _wait(lambda: _servers(api, auth).get("", {}).get("ready"), 120, "the server")
    assert _servers(api, auth)[""]["url"] == f"/user/{USER}/"
    # the server's process, as the hub's administrator sees it
    pid = requests.get(f"{api}/users/{USER}", headers=_admin(settings),
                       timeout=30).json()["servers"][""]["state"]["pid"]
    assert pid_alive(pid)
    yield {"api": api, "url": f"{url}/user/{USER}", "token": token, "auth": auth, "pid": pid,
           "seconds": time.monotonic() - t0}
    if _servers(api, auth):
        requests.delete(f"{api}/users/{USER}/server", headers=auth, timeout=60)
        _wait(lambda: not _servers(api, auth), 60, "the server to stop")


def test_cutouts_notebook_runs_in_a_hub_server(user_server: dict, settings: Settings) -> None:
    api, user_url, auth = user_server["api"], user_server["url"], user_server["auth"]
    pid = user_server["pid"]
    # the user finds the demo notebooks in their home, through the server's contents API
    listing = requests.get(f"{user_url}/api/contents", headers=auth, timeout=30).json()
    assert {"cutouts.ipynb", "pn_gaia.ipynb", "spectra.ipynb"} <= {
        c["name"] for c in listing["content"]}
    nb = requests.get(f"{user_url}/api/contents/cutouts.ipynb", headers=auth,
                      timeout=30).json()["content"]
    home = settings.hub_dir / "users" / USER
    assert (home / ".netrc").stat().st_mode & 0o077 == 0

    figure = settings.var / "notebooks" / "cutouts.png"
    before = figure.stat().st_mtime if figure.exists() else 0.0
    text = ""
    t1 = time.monotonic()
    cells = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    cells.append("import os, sys; print('kernel:', sys.prefix, os.getcwd())")
    for code, (reply, outputs) in zip(cells, _run_in_kernel(user_url, auth, cells),
                                      strict=True):
        assert reply["status"] == "ok", (code, reply, outputs)
        text += "".join(o["text"] for o in outputs if o["msg_type"] == "stream")
    ran = time.monotonic() - t1
    print(f"hub server ready in {user_server['seconds']:.1f} s;"
          f" cutouts.ipynb ran in it in {ran:.1f} s")

    # the kernel is the service environment's Python, in the user's home on the hub
    assert f"kernel: {sys.prefix} {home}\n" in text
    assert f"server: {settings.server_url}/\n" in text
    bands = _images_at(settings, 194.32, -64.75, 1.0)
    total = sum(n for _, n in bands)
    assert total >= 12
    assert (f"{total} images contain (194.32, -64.75): "
            + ", ".join(f"{b} {n}" for b, n in bands) + "\n") in text
    assert "cutouts: 12\n" in text and "axes with a cutout: 12\n" in text
    assert f"figure: {figure}\n" in text and figure.stat().st_mtime > before

    # stopped through the REST API: the hub forgets it and its process is gone
    reply = requests.delete(f"{api}/users/{USER}/server", headers=auth, timeout=60)
    assert reply.status_code in (202, 204), reply.text
    _wait(lambda: not _servers(api, auth), 60, "the server to stop")
    _wait(lambda: not pid_alive(pid), 30, f"process {pid} to end")
    # its URL now reaches the hub, which says the server is not running
    gone = requests.get(f"{user_url}/api/status", headers=auth, timeout=30)
    assert gone.status_code == 424 and "no longer running" in gone.json()["message"]


def _run_in_kernel(server_url: str, auth: dict[str, str], cells: list[str],
                   timeout: float = 180) -> Iterator[tuple[dict, list[dict]]]:
    """Run ``cells`` one after the other in a new kernel of the server at ``server_url``;
    yields each cell's execute_reply and its outputs (iopub messages' contents).

    The kernel is started with the server's REST API and spoken to over its websocket
    (``/api/kernels/<id>/channels``, the JSON form of Jupyter's messages); the token
    goes in a header, since JupyterHub 5's servers take none in URLs, websockets
    included.  The kernel is shut down at the end.
    """
    kernel = requests.post(f"{server_url}/api/kernels", headers=auth, json={"name": "python3"},
                           timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_url = f"{server_url}/api/kernels/{kernel.json()['id']}"
    session = Session(key=b"", username=USER)   # the server signs what goes to the kernel
    ws = websocket.create_connection(
        kernel_url.replace("http", "ws", 1) + "/channels", timeout=timeout,
        header=[f"Authorization: {auth['Authorization']}"])
    try:
        for msg_type, content in [("kernel_info_request", {}), *(
                ("execute_request", {"code": code, "silent": False, "store_history": True,
                                     "user_expressions": {}, "allow_stdin": False,
                                     "stop_on_error": True}) for code in cells)]:
            request = session.msg(msg_type, content)
            ws.send(json.dumps({**request, "channel": "shell"}, default=json_default))
            reply, outputs, idle = None, [], False
            while reply is None or not idle:
                msg = json.loads(ws.recv())
                if msg["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                    continue
                kind = msg["msg_type"]
                if msg["channel"] == "shell":
                    reply = msg["content"]
                elif kind == "status":
                    idle = msg["content"]["execution_state"] == "idle"
                elif kind in ("stream", "error", "display_data", "execute_result"):
                    outputs.append({"msg_type": kind, **msg["content"]})
            if msg_type == "execute_request":
                yield reply, outputs
    finally:
        ws.close()
        requests.delete(kernel_url, headers=auth, timeout=60)


def _servers(api: str, auth: dict[str, str]) -> dict:
    return requests.get(f"{api}/users/{USER}", headers=auth, timeout=30).json()["servers"]


def _wait(ready: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.5)


def test_status_lists_no_server_after_the_stop(hub: dict, casuvo_bin: Path) -> None:
    status = subprocess.run([str(casuvo_bin), "hub", "status"], capture_output=True,
                            text=True, check=True)
    state = json.loads(status.stdout)
    assert state["pid"] == hub["pid"] and state["url"] == hub["url"]
    assert state["users"].get(USER, {}) == {}
    assert re.match(r"http://[^:]+:\d+$", state["url"])
