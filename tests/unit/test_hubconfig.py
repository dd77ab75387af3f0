# SPDX-License-Identifier: BSD-3-Clause
"""JupyterHub's configuration beside the demo (casuvo.jobs.hubconfig), without a hub."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from casuvo.config import Settings
from casuvo.jobs.hub import HubError, hub_up
from casuvo.jobs.hubconfig import NOTEBOOKS, configure, prepare_home

ACCESS = '''
[[user]]
name = "survey-team"
password = "team-pw"
groups = ["vvv"]
'''


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "access.toml").write_text(ACCESS)
    (tmp_path / "notebooks").mkdir()
    for name in NOTEBOOKS:
        (tmp_path / "notebooks" / name).write_text(f'{{"name": "{name}"}}')
    return Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_HUB_PORT": "8123",
                              "CASUVO_HTTP_PORT": "9090"})


def test_configure_sets_ports_authenticator_spawner(settings: Settings) -> None:
    c = Config()
    configure(c, proxy_api_port=40001, hub_api_port=40002, api_token="t" * 64,
              settings=settings)
    assert c.JupyterHub.bind_url == "http://localhost:8123"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:40002"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:40001"
    assert c.JupyterHub.db_url == f"sqlite:///{settings.var / 'hub' / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "demo-hub-pw"
    assert c.SimpleLocalProcessSpawner.home_dir_template == str(
        settings.var / "hub" / "users" / "{username}")
    singleuser = Path(c.Spawner.cmd[0])
    assert singleuser == Path(sys.executable).with_name("jupyterhub-singleuser")
    env = c.Spawner.environment
    # the kernels find this instance's services; the hub's password stays with the hub
    assert env["CASUVO_HTTP_PORT"] == "9090" and env["CASUVO_HOME"] == str(settings.home)
    assert "CASUVO_HUB_PASSWORD" not in env
    assert Settings.from_env(env) == Settings.from_env(
        {**env, "CASUVO_HUB_PASSWORD": settings.hub_password})
    assert c.JupyterHub.services == [{"name": "casuvo-admin", "api_token": "t" * 64}]


def test_home_gets_notebooks_and_the_archive_login(settings: Settings, tmp_path: Path) -> None:
    home = tmp_path / "users" / "survey-team"
    prepare_home(settings, home, "survey-team")
    assert sorted(p.name for p in home.glob("*.ipynb")) == sorted(NOTEBOOKS)
    netrc = home / ".netrc"
    assert netrc.read_text() == "machine localhost login survey-team password team-pw\n"
    assert netrc.stat().st_mode & 0o777 == 0o600
    # a user's edits are kept at the next start
    (home / "cutouts.ipynb").write_text("edited")
    prepare_home(settings, home, "survey-team")
    assert (home / "cutouts.ipynb").read_text() == "edited"


def test_other_names_are_anonymous(settings: Settings, tmp_path: Path) -> None:
    home = tmp_path / "users" / "visitor"
    home.mkdir(parents=True)
    (home / ".netrc").write_text("machine localhost login survey-team password team-pw\n")
    prepare_home(settings, home, "visitor")
    assert not (home / ".netrc").exists()
    assert (home / "spectra.ipynb").exists()


def test_a_short_password_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_HUB_PASSWORD": "short"})
    with pytest.raises(HubError, match="at least 8 characters"):
        hub_up(settings)
    assert not (tmp_path / "var" / "hub").exists()


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings.from_env({"CASUVO_HOME": str(tmp_path),
                                      "CASUVO_HUB_PORT": str(port)})
        with pytest.raises(HubError, match=f"port {port} of localhost is in use"):
            hub_up(settings)
    assert not (tmp_path / "var" / "hub").exists()
