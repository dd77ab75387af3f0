# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub's configuration beside the demo: what ``var/hub/jupyterhub_config.py`` runs.

The generated configuration file calls :func:`configure` with JupyterHub's
config object; everything it sets comes from casuvo's :class:`Settings` (read
in the hub's process from the same ``CASUVO_*`` variables as the command that
started it) and from the ports ``casuvo hub up`` chose.  It imports nothing of
JupyterHub: the classes are named by their entry-point names, so this module
is linted and tested like any other.

- Authentication: JupyterHub's ``SharedPasswordAuthenticator`` (JupyterHub ≥ 5),
  one password for every user name (``CASUVO_HUB_PASSWORD``).  It is made for a
  demo or a workshop, refuses passwords under 8 characters, and is the one the
  zero-to-jupyterhub values in ``deploy/k8s/`` name too; ``DummyAuthenticator``
  would accept any password unless given one and is meant for JupyterHub's tests.
- Spawner: ``SimpleLocalProcessSpawner``, one single-user server per user as a
  process of this machine and this account (no system users), the user's home
  and notebook directory ``var/hub/users/<name>/``.
- Each home gets copies of the demo notebooks (never overwriting the user's
  edits) and, when the user name is one of the archive's accounts
  (``services/access.toml``), a ``.netrc`` with that account's password, so that
  pyvo and the casuvo client act for that account; other names are anonymous
  and see the public products.
- The kernels run the service environment's Python with the ``CASUVO_*``
  settings of the demo, so ``Settings.from_env()`` in a notebook finds its
  services.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from casuvo.config import Settings

__all__ = ["NOTEBOOKS", "archive_accounts", "configure", "prepare_home", "user_environment"]

#: the notebooks every user finds in their home
NOTEBOOKS = ("cutouts.ipynb", "pn_gaia.ipynb", "spectra.ipynb")


def archive_accounts(settings: Settings) -> dict[str, str]:
    """The archive's accounts (name → password) of ``services/access.toml``."""
    source = settings.home / "services" / "access.toml"
    if not source.exists():
        return {}
    with source.open("rb") as fh:
        users = tomllib.load(fh).get("user", [])
    return {u["name"]: u["password"] for u in users}


def user_environment(settings: Settings) -> dict[str, str]:
    """What a single-user server and its kernels need to find the demo's services."""
    env = {f"CASUVO_{f.name.upper()}": _as_text(getattr(settings, f.name))
           for f in fields(settings)
           if f.name != "hub_password"}
    env["MPLBACKEND"] = "Agg"
    return env


def _as_text(value: object) -> str:
    if isinstance(value, tuple):
        return os.pathsep.join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prepare_home(settings: Settings, home: Path, username: str) -> None:
    """Make a user's home: the demo notebooks (kept once copied) and the archive login."""
    home.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOKS:
        source = settings.home / "notebooks" / name
        if source.exists() and not (home / name).exists():
            shutil.copyfile(source, home / name)
    password = archive_accounts(settings).get(username)
    netrc = home / ".netrc"
    if password is None:
        netrc.unlink(missing_ok=True)
        return
    netrc.write_text(f"machine {settings.http_host} login {username} password {password}\n")
    netrc.chmod(0o600)


def configure(c: Any, *, proxy_api_port: int, hub_api_port: int, api_token: str,
              settings: Settings | None = None) -> None:
    """Fill JupyterHub's config object ``c`` (the ``c`` of a jupyterhub_config.py)."""
    settings = settings or Settings.from_env()
    state = settings.hub_dir
    bindir = Path(sys.executable).parent

    c.JupyterHub.bind_url = f"http://{settings.http_host}:{settings.hub_port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_api_port}"
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    # the proxy: the Python implementation of configurable-http-proxy (no node here)
    c.ConfigurableHTTPProxy.command = [str(bindir / "configurable-http-proxy")]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = settings.hub_password
    c.Authenticator.allow_all = True

    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "users" / "{username}")
    c.Spawner.cmd = [str(bindir / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.environment = user_environment(settings)
    c.Spawner.start_timeout = 90
    c.Spawner.http_timeout = 90
    if os.geteuid() == 0:
        # the demo machine's installs run as root; Jupyter refuses root unless told
        c.Spawner.args = ["--ServerApp.allow_root=True"]

    def pre_spawn_hook(spawner: Any) -> None:
        prepare_home(settings, Path(spawner.home_dir), spawner.user.name)

    c.Spawner.pre_spawn_hook = pre_spawn_hook

    # an administrator's token for `casuvo hub status` (users, their servers)
    c.JupyterHub.services = [{"name": "casuvo-admin", "api_token": api_token}]
    c.JupyterHub.load_roles = [{
        "name": "casuvo-admin",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "list:users"],
        "services": ["casuvo-admin"],
    }]
