# SPDX-License-Identifier: BSD-3-Clause
"""A short load run (``bench/load.py``): 16 clients, the mixed VO workload, 0 errors.

Sixteen concurrent clients send TAP sync and async, SCS, SIA 2.0 and 1.0,
SODA and DataLink requests for a few seconds; every answer must have the
right status and the value computed before the run from SQL and the product
files (cone and image-search row counts, COUNTs, cutout shapes, DataLink
access references).  No timing is asserted: ``make bench`` reports the
latencies.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from casuvo.config import Settings

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load  # noqa: E402  -- bench/load.py: the workload and its checks

SECONDS = 5.0


def test_prepared_values_are_not_trivial(settings: Settings, endpoints: dict) -> None:
    """The checks compare against real values: cones and searches that find rows."""
    work = load.prepare(settings, endpoints, n=8)
    assert set(work) == set(load.MIX)
    for kind in ("tap sync", "tap count", "scs", "sia2", "sia1"):
        assert sum(r.expected for r in work[kind]) > 0, kind
    assert all(ny > 10 and nx > 10 for ny, nx in (r.expected for r in work["soda"]))


def test_sixteen_clients_mixed_workload_no_errors(settings: Settings, endpoints: dict) -> None:
    work = load.prepare(settings, endpoints, n=16, seed=7)
    outcome = load.run(work, load.CLIENTS, SECONDS, seed=3)
    assert outcome.errors == []
    # every kind was sent (each client starts with a different one) and checked
    assert set(outcome.checked) == set(load.MIX)
    assert all(outcome.checked[k] >= 2 for k in load.MIX), outcome.checked
