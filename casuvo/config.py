# SPDX-License-Identifier: BSD-3-Clause
"""casuvo's one typed configuration, read from ``CASUVO_*`` environment variables.

Every setting has a documented default that gives the project-local instance
(database cluster, DaCHS root and products under ``var/``).  The settings are
built once by the command line (:func:`Settings.from_env`) and passed down; no
other module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["ConfigError", "Settings"]

_PACKAGE_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A ``CASUVO_*`` variable has a value casuvo cannot use."""


def _default_home() -> Path:
    """The source checkout holding resdir/ and services/ (casuvo installs editable)."""
    return _PACKAGE_DIR.parent


@dataclass(frozen=True)
class Settings:
    """Where casuvo keeps its state and how its services are reached.

    Each field maps to the variable ``CASUVO_<FIELD NAME IN UPPER CASE>``.
    """

    home: Path
    """CASUVO_HOME: the casuvo checkout (resource descriptors, services/ configuration)."""
    var: Path
    """CASUVO_VAR: generated state: database cluster, DaCHS root, products, logs."""
    db_host: str = "localhost"
    """CASUVO_DB_HOST: PostgreSQL host; anything but localhost means an external server."""
    db_port: int = 54329
    """CASUVO_DB_PORT: PostgreSQL port of the project-local cluster (not the system 5432)."""
    db_name: str = "gavo"
    """CASUVO_DB_NAME: the database DaCHS and casuvo share."""
    db_user: str = "postgres"
    """CASUVO_DB_USER: the owner role casuvo ingests as (DaCHS creates its own roles)."""
    manage_db: bool = True
    """CASUVO_MANAGE_DB: start/stop a project-local cluster (false for an external server)."""
    http_host: str = "localhost"
    """CASUVO_HTTP_HOST: host name in the public service URLs."""
    http_port: int = 8080
    """CASUVO_HTTP_PORT: the public port of the services (the DaCHS server, or the
    front that spreads requests over several DaCHS processes)."""
    server_processes: int = 0
    """CASUVO_SERVER_PROCESSES: DaCHS server processes behind the public port; 0 means
    one for health, VOSI and pages plus one per CPU core (at most 4) for the work
    (:mod:`casuvo.dachs.front`); 1 runs a single DaCHS on the public port, no front."""
    replica_port: int = 0
    """CASUVO_REPLICA_PORT: PostgreSQL port of the project-local streaming read replica
    (``casuvo replica up``, :mod:`casuvo.storage.replica`); 0 means ``db_port`` + 1."""
    replica_http_port: int = 0
    """CASUVO_REPLICA_HTTP_PORT: port of the read-only DaCHS server that reads from the
    replica (:mod:`casuvo.dachs.readonly`); 0 means ``http_port`` + 1."""
    seed: int = 20161
    """CASUVO_SEED: random seed of the demo survey (same seed, same sky)."""
    scale: float = 1.0
    """CASUVO_SCALE: multiplies the number of simulated sources (benchmarks use > 1)."""
    hub_port: int = 8000
    """CASUVO_HUB_PORT: the public port of JupyterHub beside the demo (``casuvo hub up``)."""
    hub_password: str = "demo-hub-pw"
    """CASUVO_HUB_PASSWORD: the demo hub's shared password (JupyterHub's
    SharedPasswordAuthenticator; at least 8 characters)."""
    survey_dirs: tuple[Path, ...] = ()
    """CASUVO_SURVEY_DIRS: more survey config directories beside ``pipelines/``
    (``os.pathsep``-separated; each holds ``<survey>/config.toml``)."""
    dask_scheduler: str = ""
    """CASUVO_DASK_SCHEDULER: the Dask scheduler the services' jobs (bulk cutouts) run
    on; empty: the cluster of ``casuvo cluster up`` if one runs, else a local one."""

    def __post_init__(self) -> None:
        # The replica's ports follow the primary's unless set: two stacks on one
        # machine, each on its own ports, then never share a replica port.
        if self.replica_port == 0:
            object.__setattr__(self, "replica_port", self.db_port + 1)
        if self.replica_http_port == 0:
            object.__setattr__(self, "replica_http_port", self.http_port + 1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``CASUVO_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("CASUVO_HOME", str(_default_home()))).resolve()
        values: dict[str, object] = {
            "home": home,
            "var": Path(env.get("CASUVO_VAR", str(home / "var"))).resolve(),
        }
        for f in fields(cls):
            key = f"CASUVO_{f.name.upper()}"
            if f.name in values or key not in env:
                continue
            values[f.name] = _convert(key, env[key], f.default)
        return cls(**values)  # type: ignore[arg-type]

    # Derived locations; one owner for every path under var/.
    @property
    def pgdata(self) -> Path:
        return self.var / "pgdata"

    @property
    def pgsocket(self) -> Path:
        return self.var / "pgsocket"

    @property
    def dachs_root(self) -> Path:
        return self.var / "dachs"

    @property
    def gavo_rc(self) -> Path:
        return self.var / "gavo.rc"

    @property
    def compute_python(self) -> Path:
        """Python of the compute environment (pipelines, cross-matches; decision 12)."""
        return self.var / "venv-compute" / "bin" / "python"

    @property
    def data_dir(self) -> Path:
        """Simulated and pipeline products (the survey's product store)."""
        return self.var / "data"

    @property
    def replica_dir(self) -> Path:
        """The streaming read replica: its data directory, socket, state and the
        read-only DaCHS server's configuration (``casuvo replica up``)."""
        return self.var / "replica"

    @property
    def replica_dsn(self) -> str:
        """libpq connection string for the owner role on the read replica."""
        return (
            f"host={self.db_host} port={self.replica_port} dbname={self.db_name} "
            f"user={self.db_user}"
        )

    @property
    def log_dir(self) -> Path:
        return self.var / "logs"

    @property
    def dachs_processes(self) -> int:
        """How many DaCHS server processes ``casuvo up`` runs (``server_processes`` resolved)."""
        if self.server_processes > 0:
            return self.server_processes
        return 1 + max(1, min(os.cpu_count() or 1, 4))

    @property
    def front_dir(self) -> Path:
        """The front's generated files: per-process gavo.rc, haproxy.cfg, pids, ports."""
        return self.var / "front"

    @property
    def hub_dir(self) -> Path:
        """JupyterHub's state: its database, cookie secret, configuration, users' homes."""
        return self.var / "hub"

    @property
    def hub_url(self) -> str:
        return f"http://{self.http_host}:{self.hub_port}"

    @property
    def server_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def dsn(self) -> str:
        """libpq connection string for casuvo's own (owner) connections."""
        return (
            f"host={self.db_host} port={self.db_port} dbname={self.db_name} "
            f"user={self.db_user}"
        )


def _convert(key: str, raw: str, default: object) -> object:
    """Convert ``raw`` to the type of ``default``, naming the variable on failure."""
    try:
        if isinstance(default, tuple):
            return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)
        if isinstance(default, bool):
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r} is not a valid {type(default).__name__}") from None
    return raw


def ivoa_authority(settings: Settings) -> str:
    """The data centre's IVOA authority (``[ivoa] authority`` of the DaCHS configuration
    template): the authority of HiPS identifiers, alert IVORNs and publisher DIDs."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(settings.home / "services" / "gavo.rc.template")
    return parser.get("ivoa", "authority", fallback="casuvo.example.org")
