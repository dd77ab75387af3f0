# SPDX-License-Identifier: BSD-3-Clause
"""The haproxy configuration of the front: valid for haproxy, UWS routes on the primary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from casuvo.config import Settings
from casuvo.dachs.front import HAPROXY, haproxy_config


def test_haproxy_accepts_the_config_and_routes_uws_to_the_primary(tmp_path: Path) -> None:
    settings = Settings.from_env({"CASUVO_HOME": str(tmp_path), "CASUVO_HTTP_PORT": "18090"})
    text = haproxy_config(settings, [18101, 18102, 18103])
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "bind 127.0.0.1:18090" in text
    # every process serves the shared routes; only the first one serves UWS
    shared = text.split("\nbackend all", 1)[1].split("\nbackend primary", 1)[0]
    assert re.findall(r"127\.0\.0\.1:(\d+)", shared) == ["18101", "18102", "18103"]
    primary = text.split("\nbackend primary", 1)[1]
    assert re.findall(r"127\.0\.0\.1:(\d+)", primary) == ["18101"]
    # the ACL haproxy applies, as a regular expression over request paths
    acl = re.search(r"acl uws path_reg (\S+)", text).group(1)
    uws = ["/tap/async", "/tap/async/abc123/results/result", "/__system__/tap/run/async",
           "/vista/q/dl/dlasync/x1/phase", "/svc/q/run/uws.xml/job1"]
    other = ["/tap/sync", "/gaia/q/cone/scs.xml", "/vista/q/dl/dlget", "/tap/capabilities",
             "/tableinfo/gaia.sources", "/asyncthing/form"]
    assert all(re.search(acl, p) for p in uws)
    assert not any(re.search(acl, p) for p in other)
