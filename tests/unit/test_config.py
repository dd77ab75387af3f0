# SPDX-License-Identifier: BSD-3-Clause
"""Settings from CASUVO_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from casuvo.config import ConfigError, Settings


def test_defaults_put_state_under_var(tmp_path: Path) -> None:
    s = Settings.from_env({"CASUVO_HOME": str(tmp_path)})
    assert s.var == tmp_path / "var"
    assert s.pgdata == tmp_path / "var" / "pgdata"
    assert s.http_port == 8080
    assert s.server_url == "http://localhost:8080"
    assert "port=54329" in s.dsn


def test_variables_are_typed(tmp_path: Path) -> None:
    s = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_HTTP_PORT": "9090",
                           "CASUVO_MANAGE_DB": "no", "CASUVO_SCALE": "2.5",
                           "CASUVO_VAR": str(tmp_path / "state")})
    assert s.http_port == 9090 and s.manage_db is False and s.scale == 2.5
    assert s.var == tmp_path / "state"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CASUVO_DB_PORT"):
        Settings.from_env({"CASUVO_DB_PORT": "fifty"})


def test_server_processes_default_to_the_cores_plus_one(tmp_path: Path) -> None:
    import os

    auto = Settings.from_env({"CASUVO_HOME": str(tmp_path)})
    # one light process (health, VOSI, pages) and one work process per core
    assert auto.dachs_processes == 1 + max(1, min(os.cpu_count() or 1, 4))
    three = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_SERVER_PROCESSES": "3"})
    assert three.dachs_processes == 3
    assert three.front_dir == tmp_path / "var" / "front"


def test_replica_ports_follow_the_primarys_unless_set(tmp_path: Path) -> None:
    s = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_DB_PORT": "54349",
                           "CASUVO_HTTP_PORT": "8100"})
    assert (s.replica_port, s.replica_http_port) == (54350, 8101)
    assert "port=54350" in s.replica_dsn and "port=54349" in s.dsn
    assert s.replica_dir == tmp_path / "var" / "replica"
    set_ = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_REPLICA_PORT": "6000",
                              "CASUVO_REPLICA_HTTP_PORT": "9000"})
    assert (set_.replica_port, set_.replica_http_port) == (6000, 9000)
    with pytest.raises(ConfigError, match="CASUVO_REPLICA_PORT"):
        Settings.from_env({"CASUVO_REPLICA_PORT": "any"})
